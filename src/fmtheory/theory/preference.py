"""Learning rewards from pairwise comparisons: the Bradley–Terry MLE's error and the pessimistic
policy's suboptimality bound (Zhu, Jordan & Jiao 2023, "Principled reinforcement learning with human
feedback from pairwise or K-wise comparisons", ICML; survey arXiv:2410.11444 §5).

Model.  A comparison of two responses with features φ₁, φ₀ ∈ R^d (x = φ₁ − φ₀) prefers the first with
probability σ(θ*ᵀx) (Bradley–Terry).  With n comparisons, Σ_D = (1/n) Σᵢ xᵢxᵢᵀ is the data covariance
and the MLE θ̂ maximises the log-likelihood (plus (λ/2)‖θ‖² when λ > 0).

Rate (Zhu et al. Lemma 3.1).  ‖θ̂ − θ*‖_{Σ_D+λI} ≤ C·sqrt((d + log(1/δ))/(γ²n) + λB²) with
γ = 1/(2 + e^{−LB} + e^{LB}) for ‖x‖ ≤ L, ‖θ*‖ ≤ B: the error falls as n^{-1/2}.  The constant C is
left unspecified there; this module uses the asymptotic (Wald) constant instead: √n(θ̂ − θ*) →
N(0, I⁻¹) with the Fisher information I = (1/n) Σᵢ σ'(θ*ᵀxᵢ) xᵢxᵢᵀ (λ = 0), so

    E‖θ̂ − θ*‖²_{Σ_D} ≈ tr(Σ_D I⁻¹)/n,        and = d/(γ n) when I = γ Σ_D (e.g. θ* = 0, γ = 1/4).

Pessimism (Zhu et al. Thm 3.2).  With the confidence radius Γ, the policy maximising the lower bound
θ̂ᵀ(φ(a) − v) − Γ‖φ(a) − v‖_{(Σ_D+λI)⁻¹} (v a reference feature) has, on the event
‖θ̂ − θ*‖_{Σ_D+λI} ≤ Γ,

    SubOpt ≤ 2 Γ ‖φ(a*) − v‖_{(Σ_D+λI)⁻¹}.

Here Γ = sqrt(χ²_{d,1−δ}/(γ n)) + sqrt(λ)·B: the Wald radius (I ⪰ γΣ_D) plus the ridge bias.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import stats

from fmtheory.theory.registry import Param, TheoryValue, formula

__all__ = [
    "bt_gamma",
    "bt_fisher",
    "bt_asymptotic_sq_error",
    "bt_mle_rate",
    "pessimism_radius",
    "pessimism_bound",
]


def bt_gamma(lb: float) -> float:
    """γ = σ'(LB) = 1/(2 + e^{−LB} + e^{LB}): the smallest logistic slope over |θᵀx| ≤ LB
    (Zhu et al. 2023, Lemma 3.1)."""
    return 1.0 / (2.0 + math.exp(-lb) + math.exp(lb))


def bt_fisher(x: np.ndarray, theta: np.ndarray) -> np.ndarray:
    """Per-comparison Fisher information (1/n) Σᵢ σ'(θᵀxᵢ) xᵢxᵢᵀ.  x: (..., n, d), theta: (..., d)
    -> (..., d, d)."""
    z = np.einsum("...nd,...d->...n", x, theta)
    s = 1.0 / (1.0 + np.exp(-z))
    w = s * (1.0 - s)
    return np.einsum("...n,...nd,...ne->...de", w, x, x) / x.shape[-2]


def bt_asymptotic_sq_error(x: np.ndarray, theta: np.ndarray) -> np.ndarray:
    """tr(Σ_D I⁻¹)/n: the asymptotic E‖θ̂ − θ*‖²_{Σ_D} of the unpenalised MLE on design x.

    x: (..., n, d) comparison differences, theta: (..., d) true parameter -> (...,).
    Source: the MLE's asymptotic normality √n(θ̂ − θ*) → N(0, I⁻¹) applied to Zhu et al.'s Σ_D-norm.
    """
    n = x.shape[-2]
    sigma = np.einsum("...nd,...ne->...de", x, x) / n
    fisher = bt_fisher(x, theta)
    return np.trace(np.linalg.solve(fisher, sigma), axis1=-2, axis2=-1) / n


def pessimism_radius(*, d: int, n: int, gamma: float, delta: float, lam: float, b: float) -> float:
    """Γ = sqrt(χ²_{d,1−δ}/(γ n)) + sqrt(λ)·B (see the module docstring)."""
    return math.sqrt(stats.chi2.ppf(1.0 - delta, d) / (gamma * n)) + math.sqrt(lam) * b


@formula(
    "bt-mle-rate",
    params=[
        Param("d", int, 8, 1, 10_000, "dimension of θ"),
        Param("n", int, 1000, 1, None, "number of comparisons"),
        Param("gamma", float, 0.25, 1e-9, 0.25, "Fisher/covariance ratio (σ'(θᵀx); 1/4 at θ* = 0)"),
    ],
    source="Zhu, Jordan & Jiao 2023, Lemma 3.1 (asymptotic constant)",
    summary="RMS Σ_D-norm error of the Bradley–Terry MLE: sqrt(d/(γ n)) when I = γΣ_D",
)
def bt_mle_rate(*, d: int, n: int, gamma: float) -> TheoryValue:
    """sqrt(E‖θ̂ − θ*‖²_{Σ_D}) ≈ sqrt(d/(γ n)) when the Fisher information is γΣ_D."""
    return TheoryValue(math.sqrt(d / (gamma * n)))


@formula(
    "rlhf-pessimism-bound",
    params=[
        Param("d", int, 8, 1, 10_000, "dimension of θ"),
        Param("n", int, 1000, 1, None, "number of comparisons"),
        Param("gamma", float, 0.1, 1e-9, 0.25, "γ = 1/(2 + e^{-LB} + e^{LB})"),
        Param("delta", float, 0.1, 1e-9, 0.999, "failure probability"),
        Param("lam", float, 0.0, 0.0, None, "ridge λ"),
        Param("b", float, 1.0, 0.0, None, "bound B on ‖θ*‖"),
        Param("coverage_norm", float, 1.0, 0.0, None, "‖φ(a*) − v‖ in the (Σ_D+λI)⁻¹ norm"),
    ],
    source="Zhu, Jordan & Jiao 2023, Thm 3.2 (Wald radius for the constant C)",
    summary="suboptimality of the pessimistic (LCB) policy ≤ 2Γ‖φ(a*) − v‖_{(Σ_D+λI)^-1}",
)
def pessimism_bound(
    *, d: int, n: int, gamma: float, delta: float, lam: float, b: float, coverage_norm: float
) -> TheoryValue:
    """2 Γ ‖φ(a*) − v‖_{(Σ_D+λI)⁻¹}, Γ from :func:`pessimism_radius`."""
    g = pessimism_radius(d=d, n=n, gamma=gamma, delta=delta, lam=lam, b=b)
    return TheoryValue(2.0 * g * coverage_norm)
