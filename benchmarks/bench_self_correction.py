"""Self-correction speed: the batched Plackett–Luce loss of ``self-correction`` against a loop.

Case (the ``self-correction`` quick preset's training batch at its last prefix): 128 prompts of
K = 8 ranked responses, forward and backward.  ``value`` is the best of 3 timings (seconds) of
``plackett_luce_loss`` (sort, reversed logcumsumexp, one call for the batch); ``reference`` is
``plackett_luce_loss_loop`` (one prompt and one rank at a time, the textbook sum); ``ratio =
reference / value``.  Both give the same numbers (tests/alignment/test_self_correction.py).
"""

from __future__ import annotations

import time
from typing import Any

import torch

from fmtheory.experiments.self_correction import plackett_luce_loss, plackett_luce_loss_loop

BATCH, K, REPEATS = 128, 8, 3


def _best(fn) -> float:
    best = float("inf")
    for _ in range(REPEATS):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def bench_pl_loss() -> dict[str, Any]:
    g = torch.Generator().manual_seed(0)
    scores = torch.randn(BATCH, K, generator=g, requires_grad=True)
    quality = torch.rand(BATCH, K, generator=g)

    def vec() -> None:
        plackett_luce_loss(scores, quality).mean().backward()

    def loop() -> None:
        plackett_luce_loss_loop(scores, quality).mean().backward()

    value, reference = _best(vec), _best(loop)
    return {"name": "pl_loss_128x8", "value": value, "unit": "s", "reference": reference,
            "ratio": reference / value,
            "case": f"{BATCH} prompts × {K} responses, forward + backward; reference: loop per "
                    "prompt and rank"}  # fmt: skip


BENCHMARKS = {"pl_loss_128x8": bench_pl_loss}
