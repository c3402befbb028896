"""Linear regression on a fixed design refitted on its own labels: linear growth when labels are replaced, bounded when they accumulate (Gerstgrasser et al. 2024; Dohmatob, Feng & Kempe 2024).

Conventions: see :mod:`fmtheory.theory.self_consuming`.
"""

from __future__ import annotations

import numpy as np

from fmtheory.theory.self_consuming.schedule import schedule_multipliers

__all__ = ["inverse_wishart_trace_mean", "linreg_replace_error", "linreg_accumulate_error"]

# --------------------------------------------------------------------------------------------
# linear regression with a fixed design (Gerstgrasser et al. 2024)
# --------------------------------------------------------------------------------------------


def inverse_wishart_trace_mean(*, d: int, T: int) -> float:
    """``E[tr((XᵀX)^{-1})] = d/(T − d − 1)`` for ``X`` with ``T`` i.i.d. ``N(0, I_d)`` rows
    (mean of the inverse Wishart, e.g. Mardia, Kent & Bibby 1979, §3.8); needs ``T > d + 1``."""
    if d + 1 >= T:
        raise ValueError(f"T = {T}: the inverse-Wishart mean needs T > d + 1 = {d + 1}")
    return d / (T - d - 1.0)


def linreg_replace_error(
    *, d: int, T: int, sigma: float, generation: int, power: float = 0.0
) -> float:
    """``E||ŵ_n − w*||²`` when each generation relabels the fixed design with the previous model.

    ``ŵ_{i+1} = ŵ_i + (XᵀX)^{-1}Xᵀ ε̄_i``, the label noise of generation ``i`` averaged over its
    ``c_i`` copies of the design (variance ``σ²/c_i``), hence
    ``E||ŵ_n − w*||² = σ² E tr((XᵀX)^{-1}) Σ_{i≤n} 1/c_i = n σ² d/(T − d − 1)`` for the constant
    schedule (Dohmatob, Feng & Kempe 2024, "Model collapse demystified", replacement case, as
    restated by Gerstgrasser et al. 2024, "Is model collapse inevitable?"; survey §5.4).  With
    isotropic rows this is also the excess test error.
    """
    c = schedule_multipliers(generation, power=power)
    return float(sigma**2 * inverse_wishart_trace_mean(d=d, T=T) * (1.0 / c).sum())


def linreg_accumulate_error(
    *, d: int, T: int, sigma: float, generation: int, power: float = 0.0
) -> float:
    """``E||ŵ_n − w*||²`` when every generation refits all labels drawn so far (accumulate).

    Stacking ``C_k = Σ_{j≤k} c_j`` copies of the design gives ``e_k = e_{k−1} + (c_k/C_k) u_k`` with
    ``Cov u_k = σ²(XᵀX)^{-1}/c_k``, so ``E||e_n||² = σ² d/(T−d−1) Σ_k c_k/C_k²``
    ``= σ² d/(T−d−1) Σ_{k≤n} 1/k²`` (constant schedule) ``≤ π²/6`` times the first generation's
    (Gerstgrasser et al. 2024, accumulation theorem for linear regression; survey §5.4).
    """
    c = schedule_multipliers(generation, power=power)
    cum = np.cumsum(c)
    return float(sigma**2 * inverse_wishart_trace_mean(d=d, T=T) * (c / cum**2).sum())
