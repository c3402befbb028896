"""Adversarial robustness in closed form: the Gaussian mixture model of Schmidt et al. 2018, and the
certified radius of randomized smoothing (Cohen, Rosenfeld & Kolter 2019).

Gaussian model (Schmidt, Santurkar, Tsipras, Talwar & Madry 2018, "Adversarially robust
generalization requires more data", §2): y uniform on {−1, +1}, x ~ N(y·θ*, σ²I_d), θ* = (1, ..., 1)
(so ‖θ*‖₂ = √d).  A linear classifier sign(⟨w, x⟩) under an ℓ∞ perturbation of size ε loses
ε‖w‖₁ of margin (the worst δ is −εy·sign(w)), so its robust error is exactly

    err_ε(w) = Φ((ε‖w‖₁ − ⟨w, θ*⟩) / (σ‖w‖₂))                                    (1)

(ε = 0: the standard error).  The estimator of their Thm 4/5 is ŵ = (1/n) Σ y_i x_i ~ N(θ*, s²I),
s = σ/√n.  For large d, ⟨ŵ, θ*⟩ → d, ‖ŵ‖₁ → d·m₁(s), ‖ŵ‖₂² → d(1 + s²), with
m₁(s) = E|1 + sZ| = s√(2/π)·exp(−1/(2s²)) + 1 − 2Φ(−1/s), so

    err_ε(ŵ) → Φ(√d (ε m₁(s) − 1) / (σ √(1 + s²)))                               (2)

With σ = c·d^{1/4} (their scaling), the standard error (ε = 0) is small already at n = 1, while the
robust error is small only once s = σ/√n is small enough that ε m₁(s) < 1: n ∝ σ² ∝ √d samples, the
gap of their Thms 5 and 6 (there up to log d factors).

Randomized smoothing (Cohen et al. 2019, Thm 1): if the base classifier's top class has probability
p_A ≥ p̲_A > 1/2 under N(0, σ²I) noise, the smoothed classifier is constant within the ℓ2 ball of
radius R = σ Φ⁻¹(p̲_A); p̲_A is a one-sided Clopper–Pearson lower bound (their CERTIFY).
"""

from __future__ import annotations

import math

import numpy as np
from scipy import stats

from fmtheory.theory.registry import Param, TheoryValue, formula

__all__ = [
    "linear_robust_error",
    "abs_mean",
    "gmm_robust_error_limit",
    "clopper_pearson_lower",
    "smoothing_radius",
]


def linear_robust_error(w: np.ndarray, *, sigma: float, eps: float) -> np.ndarray:
    """Eq. (1): exact ℓ∞-robust error of sign(⟨w, x⟩) in the Gaussian model with θ* = 1.

    w: (..., d) -> (...) errors.  ε = 0 gives the standard error.
    """
    w = np.asarray(w, dtype=float)
    margin = w.sum(-1)  # ⟨w, θ*⟩ with θ* = 1
    l1 = np.abs(w).sum(-1)
    l2 = np.sqrt((w**2).sum(-1))
    return stats.norm.cdf((eps * l1 - margin) / (sigma * l2))


def abs_mean(s: float) -> float:
    """m₁(s) = E|1 + sZ|, Z ~ N(0, 1) (the mean of a folded normal)."""
    if s == 0:
        return 1.0
    return s * math.sqrt(2 / math.pi) * math.exp(-1 / (2 * s * s)) + 1 - 2 * stats.norm.cdf(-1 / s)


def gmm_robust_error_limit(*, d: int, n: int, sigma: float, eps: float) -> float:
    """Eq. (2): the large-d robust error of ŵ = mean of n samples y_i x_i."""
    s = sigma / math.sqrt(n)
    return float(
        stats.norm.cdf(math.sqrt(d) * (eps * abs_mean(s) - 1) / (sigma * math.sqrt(1 + s * s)))
    )


def clopper_pearson_lower(k: int, n: int, alpha: float) -> float:
    """One-sided (1 − α) Clopper–Pearson lower bound on p from k successes in n trials."""
    if k <= 0:
        return 0.0
    return float(stats.beta.ppf(alpha, k, n - k + 1))


def smoothing_radius(*, sigma: float, p_lower: float) -> float:
    """Cohen et al. 2019 Thm 1: R = σ Φ⁻¹(p̲_A) when p̲_A > 1/2, else 0 (abstain)."""
    return float(sigma * stats.norm.ppf(p_lower)) if p_lower > 0.5 else 0.0


@formula(
    "gmm-robust-error",
    params=[
        Param("d", int, None, 1, 10**7, "dimension"),
        Param("n", int, None, 1, 10**9, "training samples"),
        Param("sigma", float, None, 1e-6, 1e6, "noise σ of x ~ N(yθ*, σ²I)"),
        Param("eps", float, 0.0, 0.0, 1e3, "ℓ∞ perturbation ε (0: standard error)"),
    ],
    source="Schmidt et al. 2018, 'Adversarially robust generalization requires more data', §2, Thms 4-6",
    summary="large-d ℓ∞-robust error of ŵ = mean(y x) in the Gaussian model, θ* = 1",
)
def _gmm_formula(*, d: int, n: int, sigma: float, eps: float) -> TheoryValue:
    return TheoryValue(gmm_robust_error_limit(d=d, n=n, sigma=sigma, eps=eps))


@formula(
    "smoothing-radius",
    params=[
        Param("sigma", float, None, 1e-9, 1e6, "smoothing noise σ (must be > 0)"),
        Param("p_a", float, None, 0.0, 1.0, "lower bound on the top-class probability p_A"),
    ],
    source="Cohen, Rosenfeld & Kolter 2019, 'Certified adversarial robustness via randomized "
    "smoothing', Thm 1",
    summary="certified ℓ2 radius σ Φ⁻¹(p_A) of the smoothed classifier (0 when p_A ≤ 1/2)",
)
def _radius_formula(*, sigma: float, p_a: float) -> TheoryValue:
    return TheoryValue(smoothing_radius(sigma=sigma, p_lower=p_a))


def _k_le_n(p: dict) -> None:
    if p["k"] > p["n"]:
        raise ValueError(f"k = {p['k']}: must be <= n = {p['n']}")


@formula(
    "clopper-pearson-lower",
    params=[
        Param("k", int, None, 0, 10**9, "successes"),
        Param("n", int, None, 1, 10**9, "trials"),
        Param("alpha", float, 0.001, 1e-12, 0.5, "one-sided miss probability"),
    ],
    source="Clopper & Pearson 1934; used by Cohen et al. 2019, CERTIFY",
    summary="one-sided (1 − α) lower confidence bound on a binomial probability",
    check=lambda p: _k_le_n(p),
)
def _cp_formula(*, k: int, n: int, alpha: float) -> TheoryValue:
    return TheoryValue(clopper_pearson_lower(k, n, alpha))
