"""The sample-size schedule ``n_i = n0 · max(1, round(i^k))`` shared by every closed form and by the experiment's loops (Fu et al. 2024, survey Cor 5.8).

Conventions: see :mod:`fmtheory.theory.self_consuming`.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["schedule_multipliers", "schedule_sizes"]

# --------------------------------------------------------------------------------------------
# the sample-size schedule
# --------------------------------------------------------------------------------------------


def schedule_multipliers(generation: int, *, power: float = 0.0) -> np.ndarray:
    """``c_i = max(1, round(i ** power))`` for ``i = 1..generation``, shape ``(generation,)``.

    ``round`` is half-up (``floor(x + 1/2)``), so ``c_1 = 1`` for every power.  Fu et al. 2024
    ("A theoretical perspective: how to prevent model collapse in self-consuming training loops",
    survey Cor 5.8): with no real data the per-generation sample size must grow for the error to
    stay bounded; ``power > 1`` makes ``Σ 1/c_i`` finite.
    """
    if generation < 0:
        raise ValueError(f"generation = {generation}: must be >= 0")
    if power < 0 or not math.isfinite(power):
        raise ValueError(f"power = {power}: must be a finite number >= 0")
    i = np.arange(1, generation + 1, dtype=np.float64)
    return np.maximum(1.0, np.floor(i**power + 0.5))


def schedule_sizes(
    n0: int, generation: int, *, power: float = 0.0, max_n: int | None = None
) -> np.ndarray:
    """Sample sizes ``n_i = min(n0 * c_i, max_n)`` (float64, exact integers), ``i = 1..generation``.

    ``max_n`` (None: no cap) bounds the growth for families whose cost grows with ``n_i``.
    """
    if n0 < 1:
        raise ValueError(f"n0 = {n0}: must be >= 1")
    sizes = float(n0) * schedule_multipliers(generation, power=power)
    if max_n is not None:
        if max_n < n0:
            raise ValueError(f"max_n = {max_n}: must be >= n0 = {n0}")
        sizes = np.minimum(sizes, float(max_n))
    return sizes
