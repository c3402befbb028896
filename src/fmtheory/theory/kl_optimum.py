"""The KL-regularised optimum that RLHF and DPO aim at (Rafailov et al. 2023, "Direct preference
optimization", eq. (4); Korbak et al. 2022; survey arXiv:2410.11444 §5).

For a state s, a finite response set and a reference policy π_ref(·|s),

    max_π  E_{a~π}[r(s, a)] − β KL(π(·|s) ‖ π_ref(·|s))

is solved by  π*(a|s) = π_ref(a|s) exp(r(s, a)/β) / Z(s),  Z(s) = Σ_a π_ref(a|s) exp(r(s, a)/β),
with optimal value β log Z(s) (the Gibbs variational principle).  Conversely r(s, a) = β log
π*(a|s)/π_ref(a|s) + β log Z(s): the DPO "implicit reward" equals r up to a constant per state
(Rafailov et al. 2023, Thm 1).
"""

from __future__ import annotations

import math

import numpy as np
from scipy.special import logsumexp

from fmtheory.theory.registry import Param, TheoryValue, formula

__all__ = ["kl_optimal_policy", "kl_optimal_value", "kl_divergence", "kl_optimum_two_arm"]


def kl_optimal_policy(logp_ref: np.ndarray, reward: np.ndarray, beta: float) -> np.ndarray:
    """π*(a|s) ∝ π_ref(a|s) exp(r(s, a)/β).  logp_ref, reward: (..., A) -> probabilities (..., A)."""
    z = logp_ref + reward / beta
    return np.exp(z - logsumexp(z, axis=-1, keepdims=True))


def kl_optimal_value(logp_ref: np.ndarray, reward: np.ndarray, beta: float) -> np.ndarray:
    """max_π E_π[r] − β KL(π‖π_ref) = β log Σ_a π_ref(a) exp(r(a)/β).  (..., A) -> (...)."""
    return beta * logsumexp(logp_ref + reward / beta, axis=-1)


def kl_divergence(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """KL(p‖q) = Σ_a p log(p/q) over the last axis (0·log 0 = 0).  (..., A) -> (...)."""
    p = np.asarray(p, dtype=float)
    q = np.asarray(q, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(p > 0, p * (np.log(p) - np.log(q)), 0.0)
    return terms.sum(axis=-1)


@formula(
    "kl-optimum-two-arm",
    params=[
        Param("p_ref", float, 0.5, 1e-12, 1 - 1e-12, "π_ref of the first response"),
        Param("reward_gap", float, 1.0, None, None, "r(first) − r(second)"),
        Param("beta", float, 1.0, 1e-9, None, "KL coefficient β > 0"),
    ],
    source="Rafailov et al. 2023, eq. (4)",
    summary="π*(first) of max E_π r − β KL(π‖π_ref) over two responses",
)
def kl_optimum_two_arm(*, p_ref: float, reward_gap: float, beta: float) -> TheoryValue:
    """π*(first) = p e^{Δ/β} / (p e^{Δ/β} + 1 − p) = σ(logit(p) + Δ/β)."""
    z = math.log(p_ref) - math.log1p(-p_ref) + reward_gap / beta
    return TheoryValue(1.0 / (1.0 + math.exp(-z)) if z > -700 else 0.0)
