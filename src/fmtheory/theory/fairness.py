"""Fairness identities and the Lipschitz transfer bound of a demographic-parity gap.

**Chouldechova's identity** (Chouldechova 2017, "Fair prediction with disparate impact", eq. (2.6)):
for a binary classifier on a group with prevalence p, positive predictive value PPV and
false-negative rate FNR, the false-positive rate is

    FPR = p / (1 − p) · (1 − PPV) / PPV · (1 − FNR).

Two groups with equal PPV and equal FNR but unequal prevalences therefore have unequal FPRs.

**Kleinberg, Mullainathan & Raghavan 2016** ("Inherent trade-offs in the fair determination of
risk scores", §2, the proof of Thm 1.1): a score s that is calibrated within a group of base rate p
satisfies E[s·1{Y=0}] = E[(1 − s)·1{Y=1}] = E[s(1 − s)], so its generalized false-positive rate
x = E[s | Y=0] and generalized false-negative rate y = E[1 − s | Y=1] obey

    y = x · (1 − p) / p.

Two groups with unequal base rates can share x and y only when x = y = 0 (perfect prediction).

**Transfer bound** (survey arXiv:2410.11444 §6, fairness under distribution shift; by
Kantorovich–Rubinstein duality): for a score that is L-Lipschitz in the features, the
demographic-parity gap Δ = E_{P₀}[s] − E_{P₁}[s] moves under a shift P_a → Q_a by at most
L · (W₁(P₀, Q₀) + W₁(P₁, Q₁)).

Registered formulas: ``chouldechova-fpr``, ``kmr-generalized-fnr``, ``fairness-transfer-bound``.
"""

from __future__ import annotations

from fmtheory.theory.registry import Param, TheoryValue, register_formula

__all__ = ["chouldechova_fpr", "kmr_generalized_fnr", "transfer_bound"]


def chouldechova_fpr(*, prevalence: float, ppv: float, fnr: float) -> float:
    """FPR = p/(1 − p) · (1 − PPV)/PPV · (1 − FNR) (Chouldechova 2017, eq. 2.6); 0 < p < 1, PPV > 0."""
    if not 0.0 < prevalence < 1.0:
        raise ValueError(f"prevalence = {prevalence!r}: must be in (0, 1)")
    if not 0.0 < ppv <= 1.0:
        raise ValueError(f"ppv = {ppv!r}: must be in (0, 1]")
    if not 0.0 <= fnr <= 1.0:
        raise ValueError(f"fnr = {fnr!r}: must be in [0, 1]")
    return prevalence / (1.0 - prevalence) * (1.0 - ppv) / ppv * (1.0 - fnr)


def kmr_generalized_fnr(*, base_rate: float, gfpr: float) -> float:
    """y = x (1 − p)/p: generalized FNR of a within-group calibrated score (Kleinberg et al. 2016)."""
    if not 0.0 < base_rate < 1.0:
        raise ValueError(f"base_rate = {base_rate!r}: must be in (0, 1)")
    if not 0.0 <= gfpr <= 1.0:
        raise ValueError(f"gfpr = {gfpr!r}: must be in [0, 1]")
    return gfpr * (1.0 - base_rate) / base_rate


def transfer_bound(*, lipschitz: float, w1_group0: float, w1_group1: float) -> float:
    """L · (W₁(P₀, Q₀) + W₁(P₁, Q₁)): the largest move of an L-Lipschitz score's DP gap."""
    for name, v in (("lipschitz", lipschitz), ("w1_group0", w1_group0), ("w1_group1", w1_group1)):
        if not v >= 0.0:
            raise ValueError(f"{name} = {v!r}: must be >= 0")
    return lipschitz * (w1_group0 + w1_group1)


register_formula(
    "chouldechova-fpr",
    lambda **k: TheoryValue(chouldechova_fpr(**k)),
    params=[
        Param("prevalence", float, None, 1e-9, 1 - 1e-9, "base rate p of the group, in (0, 1)"),
        Param("ppv", float, None, 1e-9, 1.0, "positive predictive value, in (0, 1]"),
        Param("fnr", float, None, 0.0, 1.0, "false-negative rate, in [0, 1]"),
    ],
    source="Chouldechova 2017, eq. (2.6); survey arXiv:2410.11444 §6",
    summary="FPR = p/(1−p)·(1−PPV)/PPV·(1−FNR): equal PPV and FNR force unequal FPR",
)
register_formula(
    "kmr-generalized-fnr",
    lambda **k: TheoryValue(kmr_generalized_fnr(**k)),
    params=[
        Param("base_rate", float, None, 1e-9, 1 - 1e-9, "base rate p of the group, in (0, 1)"),
        Param("gfpr", float, None, 0.0, 1.0, "generalized FPR x = E[s | Y=0]"),
    ],
    source="Kleinberg, Mullainathan & Raghavan 2016, Thm 1.1 (proof, §2)",
    summary="calibrated score: E[1−s | Y=1] = E[s | Y=0]·(1−p)/p",
)
register_formula(
    "fairness-transfer-bound",
    lambda **k: TheoryValue(transfer_bound(**k)),
    params=[
        Param("lipschitz", float, None, 0.0, None, "Lipschitz constant L of the score"),
        Param("w1_group0", float, None, 0.0, None, "W1(P0, Q0)"),
        Param("w1_group1", float, None, 0.0, None, "W1(P1, Q1)"),
    ],
    source="survey arXiv:2410.11444 §6 (Kantorovich–Rubinstein duality)",
    summary="|ΔDP(Q) − ΔDP(P)| ≤ L·(W1(P0,Q0) + W1(P1,Q1))",
)
