"""Alignment speed: the batched Bradley–Terry MLE of ``rlhf-pessimism`` against scikit-learn.

Case (the ``rlhf-pessimism`` quick preset's largest point): 128 data sets of n = 4000 comparisons in
d = 8.  ``value`` is the best of 3 timings (seconds) of ``bt_mle`` (batched damped Newton, numpy) on
all data sets; ``reference`` is ``LogisticRegression(fit_intercept=False, C=inf)`` fitted to each data
set in turn; ``ratio = reference / value``.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
from sklearn.linear_model import LogisticRegression

from fmtheory.experiments._preference import bt_mle

REPS, N, DIM, REPEATS = 128, 4000, 8, 3


def _data() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    theta = rng.standard_normal(DIM) / np.sqrt(DIM)
    x = rng.standard_normal((REPS, N, DIM)) - rng.standard_normal((REPS, N, DIM))
    y = (rng.random((REPS, N)) < 1 / (1 + np.exp(-(x @ theta)))).astype(float)
    return x, y


def _best(fn) -> float:
    best = float("inf")
    for _ in range(REPEATS):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def bench_bt_mle() -> dict[str, Any]:
    x, y = _data()
    value = _best(lambda: bt_mle(x, y))

    def sk() -> None:
        for r in range(REPS):
            LogisticRegression(fit_intercept=False, C=np.inf, tol=1e-8).fit(x[r], y[r])

    reference = _best(sk)
    return {"name": "bt_mle_128x4000", "value": value, "unit": "s", "reference": reference,
            "ratio": reference / value,
            "case": f"{REPS} data sets, n={N}, d={DIM}; reference: sklearn LogisticRegression "
                    "per data set"}  # fmt: skip


BENCHMARKS = {"bt_mle_128x4000": bench_bt_mle}
