"""Mixing in real data and correcting towards it: the exact contraction factor, the mean-square error of a refitted mean, Bertrand et al.'s sufficient stability condition (survey Thm 5.4, Thm 5.6).

Conventions: see :mod:`fmtheory.theory.self_consuming`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["mix_contraction", "gaussian_mix_mean_mse", "StabilityCondition", "bertrand_stability"]

# --------------------------------------------------------------------------------------------
# mixing with real data, correction, stability
# --------------------------------------------------------------------------------------------


def _real_count(n: int, real_fraction: float) -> int:
    return int(math.floor(real_fraction * n + 0.5))


def mix_contraction(*, real_fraction: float, gamma: float = 0.0, n: int = 0) -> float:
    """Exact factor ``κ`` of ``E[μ_{t+1} − μ* | μ_t] = κ (μ_t − μ*)`` for a refitted mean.

    With ``λ = (1−α)/α`` synthetic samples per real one, maximum likelihood of the mean gives
    ``μ_{t+1} = (μ* + λ μ_t)/(1+λ)`` in expectation: ``κ = λ/(1+λ) = 1 − α`` (the Gaussian example
    of Bertrand et al. 2024; survey §5.4).  The correction keeps each synthetic sample with
    probability ``1/(1+γ)``, so ``κ = (1 − α)/(1 + γ)``.  With ``n > 0`` the real count is rounded
    as in the simulation: ``κ = (n − round(α n))/n / (1+γ)``.  Holds whether or not the covariance
    is refitted (the synthetic sample mean is conditionally unbiased for ``μ_t``), and for OLS on a
    fixed design whose rows are split at random (``E[X_sᵀX_s] = (n_s/T) XᵀX``).
    """
    synth = (n - _real_count(n, real_fraction)) / n if n > 0 else 1.0 - real_fraction
    return synth / (1.0 + gamma)


def gaussian_mix_mean_mse(
    *, sigma: float, n: int, real_fraction: float, gamma: float, generation: int, dim: int = 1
) -> float:
    """``E||μ_n − μ*||²`` with a real share and correction, covariance *fixed* at ``σ² I``.

    Each generation fits the mean of ``n`` points: ``n_r = round(αn)`` fresh real ones and
    ``n_s = n − n_r`` synthetic ones of which ``K ~ Bin(n_s, γ/(1+γ))`` are replaced by real ones.
    Then ``e_{t+1} = ((n_s − K)/n) e_t + σ z̄`` with ``Var z̄ = 1/n`` per coordinate, so
    ``E||e_{t+1}||² = c E||e_t||² + dim σ²/n`` with ``c = E[(n_s − K)²]/n²
    = ((n_s q)² + n_s p q)/n²`` (``p = γ/(1+γ)``, ``q = 1 − p``) and ``E||e_1||² = dim σ²/n``.
    The exact finite-sample version of Bertrand et al. 2024's Gaussian example; constant schedule.
    """
    n_s = n - _real_count(n, real_fraction)
    p = gamma / (1.0 + gamma)
    q = 1.0 - p
    c = ((n_s * q) ** 2 + n_s * p * q) / n**2
    noise = dim * sigma**2 / n
    if generation <= 0:
        return 0.0
    # geometric sum: E||e_n||² = noise * Σ_{j<n} c^j
    if abs(1.0 - c) < 1e-15:
        return noise * generation
    return noise * (1.0 - c**generation) / (1.0 - c)


@dataclass(frozen=True)
class StabilityCondition:
    """Bertrand et al.'s contraction constant ``κ = λ_eff (1 + Lε/α)`` (stable iff ``κ < 1``)."""

    kappa: float
    lambda_eff: float
    stable: bool


def bertrand_stability(
    *, lam: float, lipschitz: float, eps: float, strong_concavity: float, gamma: float = 0.0
) -> StabilityCondition:
    """Sufficient stability condition of iterative retraining on mixed data.

    Bertrand et al. 2024 ("On the stability of iterative retraining of generative models on their
    own data", ICLR; survey Thm 5.4): retraining ``θ_{t+1} = argmax E_data[log p_θ] + λ
    E_{p_θt}[log p_θ]`` (``λ`` synthetic samples per real one) is stable around ``θ*`` when
    ``λ(1 + Lε/α) < 1``, where the expected log-likelihood is ``α``-strongly concave near ``θ*``,
    ``x ↦ ∇²_θ log p_θ(x)`` is ``L``-Lipschitz and ``W1(p_θ*, p_data) ≤ ε``.  *Where it applies*: a
    local (near ``θ*``), population-level (infinite-sample) statement; finite samples add a
    statistical error term.  It is sufficient, not necessary: the exact Gaussian factor
    :func:`mix_contraction` is ``λ/(1+λ) < 1`` for every ``λ``.

    With the idealized correction of strength ``γ`` (Gillman et al. 2024, ICML; survey Thm 5.6) the
    synthetic term becomes ``E_{π_γ(p_θt)} = (E_{p_θt} + γ E_data)/(1+γ)``, which is Bertrand's
    objective with ``λ_eff = λ/(1 + γ(1+λ))``; this function applies Bertrand's condition to
    ``λ_eff`` (exact rewriting, stated here rather than copied from Gillman et al.'s theorem).
    """
    lam_eff = lam / (1.0 + gamma * (1.0 + lam))
    kappa = lam_eff * (1.0 + lipschitz * eps / strong_concavity)
    return StabilityCondition(kappa=kappa, lambda_eff=lam_eff, stable=kappa < 1.0)
