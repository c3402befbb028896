"""dMMSE risk by Monte Carlo: the vectorised curve vs the plain per-draw, per-prefix numpy loop.

Case: d = 5, n = 12 context lengths, a fixed pool of M = 256 tasks, 2000 draws of (task, prompt)
(``dmmse_risk_curve(..., pool=...)``, seed 0).  ``value`` is the best of 3 wall-clock seconds of the
vectorised curve (all prefixes at once, chunked, log-sum-exp weights); ``reference`` is the loop
that, for each draw and each prefix k, forms the M residual sums and the softmax weights and the
posterior mean, timed (best of 3) on the first ``LOOP_SUBSAMPLE`` draws and scaled linearly.
``ratio = reference / value``; ``max_abs_diff`` compares both on the subsample (same draws).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np

from fmtheory.theory.task_diversity import dmmse_risk_curve

D, N, M, SIGMA, N_MC = 5, 12, 256, 0.5, 2000
LOOP_SUBSAMPLE = 100
REPEATS = 3


def _best_of(fn: Callable[[], Any]) -> tuple[float, Any]:
    best, out = float("inf"), None
    for _ in range(REPEATS):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def dmmse_loop(pool: np.ndarray, n_mc: int, seed: int) -> np.ndarray:
    """Per draw and prefix: weights ∝ exp(−SSE_m / 2σ²), ŵ = Σ π_m w_m, error ‖ŵ − w‖² + σ².

    Draws are taken in the same order as ``dmmse_risk_curve`` (one chunk: task index, x, noise).
    """
    rng = np.random.default_rng(seed)
    m = pool.shape[0]
    idx = rng.integers(0, m, size=n_mc)
    x = rng.standard_normal((n_mc, N, D))
    noise = rng.standard_normal((n_mc, N))
    out = np.zeros((n_mc, N))
    for c in range(n_mc):
        w = pool[idx[c]]
        y = x[c] @ w + SIGMA * noise[c]
        for k in range(N):
            sse = ((y[:k, None] - x[c, :k] @ pool.T) ** 2).sum(0)
            logit = -sse / (2 * SIGMA**2)
            p = np.exp(logit - logit.max())
            w_hat = (p / p.sum()) @ pool
            out[c, k] = ((w_hat - w) ** 2).sum() + SIGMA**2
    return out


def bench_dmmse_risk() -> dict[str, Any]:
    pool = np.random.default_rng(123).standard_normal((M, D))

    def fast(n_mc: int) -> Any:
        return dmmse_risk_curve(d=D, n=N, m=M, sigma=SIGMA, tasks="pool", n_mc=n_mc, seed=0,
                                pool=pool)  # fmt: skip

    t_fast, curve = _best_of(lambda: fast(N_MC))
    t_loop, ref = _best_of(lambda: dmmse_loop(pool, LOOP_SUBSAMPLE, 0))
    sub = fast(LOOP_SUBSAMPLE)
    scale = N_MC / LOOP_SUBSAMPLE
    return {
        "name": "dmmse-risk",
        "value": t_fast,
        "unit": "s",
        "reference": t_loop * scale,
        "ratio": t_loop * scale / t_fast,
        "case": f"dmmse_risk_curve, d={D}, n={N}, M={M}, {N_MC} draws, fixed pool",
        "reference_method": "python loop over draws x prefixes (numpy softmax weights)",
        "reference_timed_draws": LOOP_SUBSAMPLE,
        "max_abs_diff": float(np.abs(sub.risk - ref.mean(0)).max()),
        "risk_at_k_max": float(curve.risk[-1]),
    }


BENCHMARKS: dict[str, Callable[[], dict[str, Any]]] = {"dmmse-risk": bench_dmmse_risk}
