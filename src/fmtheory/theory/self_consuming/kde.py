"""A Gaussian kernel density estimate refitted on its own samples: the exact variance recursion (derived here).

Conventions: see :mod:`fmtheory.theory.self_consuming`.
"""

from __future__ import annotations

from fmtheory.theory.self_consuming.schedule import schedule_sizes

__all__ = ["kde_model_variance"]

# --------------------------------------------------------------------------------------------
# kernel density estimate refitted on its own samples
# --------------------------------------------------------------------------------------------


def kde_model_variance(
    *,
    real_var: float,
    bandwidth: float,
    n0: int,
    generation: int,
    power: float = 0.0,
    max_n: int | None = None,
) -> float:
    """Per-coordinate variance of the Gaussian KDE at generation ``n`` (fully synthetic, replace).

    A KDE with bandwidth ``h`` on points with biased sample variance ``v`` has variance ``v + h²``;
    sampling it is resampling a point and adding ``h·N(0, I)``.  With ``n_i`` points per generation,
    ``E[v_i] = ((n_i−1)/n_i)(E[v_{i−1}] + h²)`` and ``E[v_1] = ((n_1−1)/n_1) σ²_real``, so the
    KDE's variance ``E[v_n] + h²`` drifts towards the fixed point ``M h²`` (constant schedule)
    whatever the real variance: the loop forgets the data (Shumailov et al. 2024 on density
    estimators; derivation here).
    """
    sizes = schedule_sizes(n0, generation, power=power, max_n=max_n)
    v = real_var
    for i, n in enumerate(sizes):
        v = (n - 1.0) / n * (v + (bandwidth**2 if i > 0 else 0.0))
    return float(v + bandwidth**2) if generation > 0 else float(real_var)
