"""Stability of in-context learning: the transformer stability bound and power-law rate fits.

**The bound** (survey arXiv:2410.11444, Thm 4.5, restating Li, Ildiz, Papailiopoulos & Oymak 2023,
"Transformers as Algorithms: Generalization and Stability in In-context Learning", ICML, §3):
a D-layer softmax-attention transformer whose attention logits are bounded by Γ in absolute value,
acting on prompts whose tokens lie in the unit ball, changes its output by at most

    B(n) = (1 + Γ e^Γ)^D / (2n − 1)

when ONE in-context example of a prompt with n examples is replaced (2n − 1 tokens: n − 1 example
pairs (x_i, y_i) plus the query x_n, in the interleaved layout).  That is, the algorithm the
transformer implements is O(1/n)-stable, with a constant that grows doubly-exponentially in Γ and
exponentially in depth.  The output is in the unit ball too, so two outputs differ by at most 2:
**the bound is vacuous whenever B(n) >= 2** (:func:`is_vacuous`).  This module evaluates the
expression as the survey states it; the theorem's assumptions (bounded tokens and value maps, its
exact attention normalisation, no MLP / LayerNorm between layers) are not met by a GPT-2 block, so
for a trained GPT the number is a reference, not a guarantee (see ``docs/icl-diversity-stability.md``).

**Rate fits**: :func:`fit_power_law` fits ``log v = a + b log n`` by least squares and returns the
exponent b with its standard error (the rate of an O(n^b) law; stability theory predicts b = −1 for
the change of the prediction when one of n examples is replaced, e.g. for ridge regression).

Registered formula: ``icl-stability-bound``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from fmtheory.theory.registry import Param, TheoryValue, register_formula

__all__ = [
    "log_stability_bound",
    "stability_bound",
    "is_vacuous",
    "VACUOUS_AT",
    "PowerLawFit",
    "fit_power_law",
]

#: Two outputs in the unit ball differ by at most 2: a bound >= 2 says nothing.
VACUOUS_AT = 2.0


def _check_bound_args(gamma: float, depth: int, n: int) -> None:
    if not (isinstance(gamma, (int, float)) and not isinstance(gamma, bool)) or not (
        math.isfinite(gamma) and gamma >= 0
    ):
        raise ValueError(f"gamma = {gamma!r} is invalid: must be a finite number >= 0")
    for name, v in (("depth", depth), ("n", n)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
            raise ValueError(f"{name} = {v!r} is invalid: must be an integer >= 1")


def log_stability_bound(*, gamma: float, depth: int, n: int) -> float:
    """Natural log of B(n) = (1 + Γe^Γ)^D / (2n − 1) (finite for any finite Γ; see module docs)."""
    _check_bound_args(gamma, depth, n)
    # log(1 + Γ e^Γ) without overflow: for large Γ, Γ e^Γ = exp(Γ + log Γ).
    if gamma == 0:
        log_term = 0.0
    else:
        z = gamma + math.log(gamma)
        log_term = z + math.log1p(math.exp(-z)) if z > 0 else math.log1p(math.exp(z))
    return depth * log_term - math.log(2 * n - 1)


def stability_bound(*, gamma: float, depth: int, n: int) -> float:
    """B(n) = (1 + Γe^Γ)^D / (2n − 1); ``inf`` when it overflows a float (it is then vacuous).

    Survey arXiv:2410.11444 Thm 4.5 (Li et al. 2023, ICML, §3): change of a D-layer transformer's
    output, logits bounded by Γ, when one of the n examples of a prompt is replaced.
    """
    lg = log_stability_bound(gamma=gamma, depth=depth, n=n)
    return math.exp(lg) if lg < 709.0 else math.inf


def is_vacuous(bound: float) -> bool:
    """True when ``bound >= 2``: outputs in the unit ball never differ by more than 2."""
    return not bound < VACUOUS_AT


@dataclass(frozen=True)
class PowerLawFit:
    """Least-squares fit of ``log v = log c + b log n``.

    ``exponent`` b and its standard error ``exponent_se`` (classical OLS formula; ``nan`` with fewer
    than 3 points); ``prefactor`` c; ``r2`` the coefficient of determination in log space;
    ``n_points`` the number of (n, v) pairs used.
    """

    exponent: float
    exponent_se: float
    prefactor: float
    r2: float
    n_points: int


def fit_power_law(n: np.ndarray, values: np.ndarray) -> PowerLawFit:
    """Fit v ≈ c·n^b on ``n: (K,)`` > 0 and ``values: (K,)`` > 0 (ordinary least squares in log-log)."""
    n = np.asarray(n, dtype=np.float64)
    v = np.asarray(values, dtype=np.float64)
    if n.ndim != 1 or n.shape != v.shape or n.shape[0] < 2:
        raise ValueError(f"n.shape = {n.shape}, values.shape = {v.shape}: need two equal (K >= 2,)")
    if not (np.all(np.isfinite(n)) and np.all(n > 0)):
        raise ValueError("n: every entry must be finite and > 0")
    if not (np.all(np.isfinite(v)) and np.all(v > 0)):
        raise ValueError("values: every entry must be finite and > 0 (a log-log fit)")
    lx, ly = np.log(n), np.log(v)
    xm, ym = lx.mean(), ly.mean()
    sxx = ((lx - xm) ** 2).sum()
    if sxx == 0:
        raise ValueError("n: needs at least two distinct values")
    b = float(((lx - xm) * (ly - ym)).sum() / sxx)
    a = float(ym - b * xm)
    resid = ly - (a + b * lx)
    k = n.shape[0]
    ss_res = float((resid**2).sum())
    ss_tot = float(((ly - ym) ** 2).sum())
    se = math.sqrt(ss_res / (k - 2) / sxx) if k > 2 else math.nan
    r2 = 1.0 - ss_res / ss_tot if ss_tot > 0 else 1.0
    return PowerLawFit(exponent=b, exponent_se=se, prefactor=math.exp(a), r2=r2, n_points=k)


def _bound_formula(*, gamma: float, depth: int, n: int) -> TheoryValue:
    return TheoryValue(stability_bound(gamma=gamma, depth=depth, n=n))


register_formula(
    "icl-stability-bound",
    _bound_formula,
    params=[
        Param("gamma", float, None, 0.0, 1e6, "bound Γ on the absolute attention logits"),
        Param("depth", int, None, 1, 1000, "number of attention layers D"),
        Param("n", int, None, 1, 10**9, "examples in the prompt (2n − 1 tokens, query included)"),
    ],
    source="survey arXiv:2410.11444, Thm 4.5; Li, Ildiz, Papailiopoulos & Oymak 2023 (ICML), §3",
    summary="(1 + Γe^Γ)^D / (2n − 1): change of the output when one of n examples is replaced "
    "(vacuous when >= 2; inf on float overflow)",
)
