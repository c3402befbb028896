"""Rényi-DP accountant of DP-SGD (the Poisson-subsampled Gaussian mechanism) and the DP bound on a
membership-inference attacker's advantage.

**RDP of the sampled Gaussian mechanism** (Mironov, Talwar & Zhang 2019, "Rényi Differential
Privacy of the Sampled Gaussian Mechanism", arXiv:1908.10530): one step with sampling rate q and
noise multiplier σ has RDP ε(α) = log A_α / (α − 1), where

- for integer α (§3.2, eq. (3)): A_α = Σ_{k=0}^{α} C(α, k) (1 − q)^{α−k} q^k exp((k² − k) / (2σ²));
- for fractional α (§3.3): A_α = A₁ + A₂ with z₀ = σ² log(1/q − 1) + 1/2 and
  A₁ = Σ_{i≥0} C(α, i) (1 − q)^{α−i} q^i exp((i² − i)/(2σ²)) · erfc((i − z₀)/(√2 σ)) / 2,
  A₂ = Σ_{i≥0} C(α, i) (1 − q)^i q^{α−i} exp(((α−i)² − (α−i))/(2σ²)) · erfc((z₀ − (α − i))/(√2 σ)) / 2.

RDP composes additively over T steps.  The conversion to (ε, δ)-DP is Balle et al. 2020,
"Hypothesis testing interpretations and Rényi DP", Thm 21:
ε = min_α [ T·ε(α) + log((α − 1)/α) − (log δ + log α)/(α − 1) ].

**Membership advantage** (Yeom et al. 2018 defined it; the tight (ε, δ) bound is Humphries et al.
2021, "Investigating membership inference attacks under data dependencies", Thm 1): an
(ε, δ)-DP training algorithm limits every attacker's TPR − FPR to (e^ε − 1 + 2δ) / (e^ε + 1).

Registered formulas: ``dp-sgd-epsilon``, ``dp-advantage-bound``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from scipy import special

from fmtheory.theory.registry import Param, TheoryValue, register_formula

__all__ = ["DEFAULT_ORDERS", "rdp_sampled_gaussian", "dp_sgd_epsilon", "advantage_bound"]

#: the Rényi orders searched (fractional near 1, integers up to 63; the grid Opacus also uses)
DEFAULT_ORDERS: tuple[float, ...] = tuple(
    [1 + x / 10.0 for x in range(1, 100)] + list(range(12, 64))
)


def _logsumexp_signed(logs: np.ndarray, signs: np.ndarray) -> float:
    """log Σ signs·exp(logs) (the sum must be positive)."""
    m = float(np.max(logs))
    s = float(np.sum(signs * np.exp(logs - m)))
    if s <= 0:
        raise FloatingPointError("non-positive sum in the RDP series")
    return m + math.log(s)


def _log_a_int(q: float, sigma: float, alpha: int) -> float:
    k = np.arange(alpha + 1, dtype=float)
    logs = (special.gammaln(alpha + 1) - special.gammaln(k + 1) - special.gammaln(alpha - k + 1)
            + (alpha - k) * math.log1p(-q) + k * math.log(q) + (k * k - k) / (2 * sigma**2))  # fmt: skip
    return float(special.logsumexp(logs))


def _log_binom_signed(alpha: float, i: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """log |C(α, i)| and its sign for real α and integer i ≥ 0."""
    # C(α, i) = Γ(α+1) / (Γ(i+1) Γ(α−i+1)); Γ at negative non-integers carries a sign.
    g = special.gamma(alpha - i + 1)  # finite: α is fractional
    with np.errstate(divide="ignore"):
        log_abs = special.gammaln(alpha + 1) - special.gammaln(i + 1) - np.log(np.abs(g))
    return log_abs, np.sign(g)


def _log_a_frac(q: float, sigma: float, alpha: float, terms: int = 2000) -> float:
    i = np.arange(terms, dtype=float)
    lb, sb = _log_binom_signed(alpha, i)
    z0 = sigma**2 * math.log(1 / q - 1) + 0.5
    j = alpha - i
    # erfc(u / (√2 σ)) / 2 = Φ(−u/σ), in logs without underflow
    log_e1 = special.log_ndtr(-(i - z0) / sigma)
    log_e2 = special.log_ndtr(-(z0 - j) / sigma)
    l1 = lb + j * math.log1p(-q) + i * math.log(q) + (i * i - i) / (2 * sigma**2) + log_e1
    l2 = lb + i * math.log1p(-q) + j * math.log(q) + (j * j - j) / (2 * sigma**2) + log_e2
    logs = np.concatenate([l1, l2])
    signs = np.concatenate([sb, sb])
    keep = np.isfinite(logs)
    return _logsumexp_signed(logs[keep], signs[keep])


def rdp_sampled_gaussian(*, q: float, sigma: float, alpha: float) -> float:
    """RDP ε(α) of ONE step of the Poisson-subsampled Gaussian mechanism (MTZ 2019, §3)."""
    if not 0.0 < q <= 1.0:
        raise ValueError(f"sample_rate = {q!r}: must be in (0, 1]")
    if not sigma > 0.0:
        raise ValueError(f"sigma = {sigma!r}: must be > 0")
    if not alpha > 1.0:
        raise ValueError(f"alpha = {alpha!r}: must be > 1")
    if q == 1.0:
        return alpha / (2 * sigma**2)
    if float(alpha).is_integer():
        log_a = _log_a_int(q, sigma, int(alpha))
    else:
        log_a = _log_a_frac(q, sigma, float(alpha))
    return log_a / (alpha - 1)


def dp_sgd_epsilon(
    *, sigma: float, sample_rate: float, steps: int, delta: float,
    orders: Sequence[float] = DEFAULT_ORDERS,
) -> float:  # fmt: skip
    """ε of T steps of DP-SGD at δ: RDP composition + Balle et al. 2020 Thm 21 (see module docs)."""
    if not 0.0 < delta < 1.0:
        raise ValueError(f"delta = {delta!r}: must be in (0, 1)")
    if steps < 0:
        raise ValueError(f"steps = {steps!r}: must be >= 0")
    if steps == 0:
        return 0.0
    a = np.asarray(orders, dtype=float)
    rdp = np.array([steps * rdp_sampled_gaussian(q=sample_rate, sigma=sigma, alpha=x) for x in a])
    eps = rdp + np.log((a - 1) / a) - (math.log(delta) + np.log(a)) / (a - 1)
    return float(max(0.0, np.nanmin(eps)))


def advantage_bound(*, epsilon: float, delta: float) -> float:
    """(e^ε − 1 + 2δ)/(e^ε + 1): the largest TPR − FPR against (ε, δ)-DP (Humphries et al. 2021)."""
    if not epsilon >= 0.0:
        raise ValueError(f"epsilon = {epsilon!r}: must be >= 0")
    if not 0.0 <= delta < 1.0:
        raise ValueError(f"delta = {delta!r}: must be in [0, 1)")
    if math.isinf(epsilon):
        return 1.0
    return min(1.0, (math.expm1(epsilon) + 2 * delta) / (math.exp(epsilon) + 1))


register_formula(
    "dp-sgd-epsilon",
    lambda **k: TheoryValue(dp_sgd_epsilon(**k)),
    params=[
        Param("sigma", float, None, 1e-3, 1e3, "noise multiplier σ"),
        Param("sample_rate", float, None, 1e-9, 1.0, "Poisson sampling rate q, in (0, 1]"),
        Param("steps", int, None, 0, 10**9, "number of DP-SGD steps T"),
        Param("delta", float, 1e-5, 1e-300, 1 - 1e-12, "δ, in (0, 1)"),
    ],
    source="Mironov, Talwar & Zhang 2019 §3 (RDP); Balle et al. 2020 Thm 21 (conversion)",
    summary="(ε, δ) of T steps of DP-SGD with noise σ and sampling rate q",
)
register_formula(
    "dp-advantage-bound",
    lambda **k: TheoryValue(advantage_bound(**k)),
    params=[
        Param("epsilon", float, None, 0.0, None, "ε ≥ 0"),
        Param("delta", float, 1e-5, 0.0, 1 - 1e-12, "δ, in [0, 1)"),
    ],
    source="Humphries et al. 2021, Thm 1; Yeom et al. 2018 (advantage)",
    summary="TPR − FPR of any membership attacker against (ε, δ)-DP ≤ (e^ε − 1 + 2δ)/(e^ε + 1)",
)
