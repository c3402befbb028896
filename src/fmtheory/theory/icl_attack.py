"""In-context attack and defense as a Bayesian update between two task hypotheses (Wei, Wang, Li &
Wang 2023, "Jailbreak and guard aligned language models with only few in-context demonstrations",
arXiv:2310.06387; the Bayesian reading of in-context learning of Xie et al. 2022, ICLR, eq. (2)).

A context of demonstrations on harmful queries is explained either by a "safe" hypothesis (a harmful
query is complied with, with probability ``comply_safe``) or by a "compliant" one (probability
``comply_compliant`` > ``comply_safe``); alignment leaves a prior ``prior_compliant`` on the latter.
After k demonstrations of compliance and k_d of refusal, Bayes' rule gives

    P(compliant | demos) = σ(a + b·k − b_r·k_d),   a = logit(prior_compliant),
    b = log(comply_compliant / comply_safe),  b_r = log((1 − comply_safe) / (1 − comply_compliant)),

a logistic function of k whose slope b is the log-likelihood ratio of one compliance demonstration.
When the final harmful query is answered by the hypothesis itself (compliant: answer; safe: refuse),
this posterior is the attack success rate; k_d refusal demonstrations shift the curve right by
k_d·b_r/b demonstrations.
"""

from __future__ import annotations

import math

from fmtheory.theory.registry import Param, TheoryValue, formula

__all__ = ["attack_llr", "refusal_llr", "attack_success", "icl_attack_success"]


def attack_llr(comply_safe: float, comply_compliant: float) -> float:
    """b = log(comply_compliant / comply_safe): log-likelihood ratio of one compliance demo."""
    return math.log(comply_compliant) - math.log(comply_safe)


def refusal_llr(comply_safe: float, comply_compliant: float) -> float:
    """b_r = log((1 − comply_safe) / (1 − comply_compliant)): LLR of one refusal demo for 'safe'."""
    return math.log1p(-comply_safe) - math.log1p(-comply_compliant)


def attack_success(
    k: float, *, prior_compliant: float, comply_safe: float, comply_compliant: float,
    k_defense: float = 0.0,
) -> float:  # fmt: skip
    """σ(logit(prior_compliant) + b·k − b_r·k_defense) (see the module docstring)."""
    z = math.log(prior_compliant) - math.log1p(-prior_compliant)
    z += k * attack_llr(comply_safe, comply_compliant)
    z -= k_defense * refusal_llr(comply_safe, comply_compliant)
    return 1.0 / (1.0 + math.exp(-z)) if z > -700 else 0.0


@formula(
    "icl-attack-success",
    params=[
        Param("k", float, 4.0, 0.0, None, "compliance demonstrations on harmful queries"),
        Param(
            "prior_compliant", float, 0.03, 1e-12, 1 - 1e-12, "prior of the compliant hypothesis"
        ),
        Param("comply_safe", float, 0.2, 1e-12, 1 - 1e-12, "P(comply) on a harmful demo if safe"),
        Param("comply_compliant", float, 0.6, 1e-12, 1 - 1e-12, "P(comply) if compliant"),
        Param("k_defense", float, 0.0, 0.0, None, "refusal demonstrations prepended"),
    ],
    source="Wei et al. 2023 (arXiv:2310.06387) §3; Bayesian ICL of Xie et al. 2022, eq. (2)",
    summary="attack success σ(a + b·k − b_r·k_d), b = log(c_c/c_s), b_r = log((1−c_s)/(1−c_c))",
)
def icl_attack_success(
    *, k: float, prior_compliant: float, comply_safe: float, comply_compliant: float,
    k_defense: float,
) -> TheoryValue:  # fmt: skip
    """The posterior of the compliant hypothesis after k compliance and k_defense refusal demos."""
    return TheoryValue(attack_success(k, prior_compliant=prior_compliant, comply_safe=comply_safe,
                                      comply_compliant=comply_compliant, k_defense=k_defense))  # fmt: skip
