"""Scaling laws: the loss of a model of N parameters trained on D tokens, and the floor a source's
entropy sets.

    L(N, D) = E + A / N^α + B / D^β                                   (Hoffmann et al. 2022, eq. 2)

E is the irreducible loss: for a stationary Markov source of order k it is the entropy rate
H = −Σ_c π(c) Σ_x P(x | c) log P(x | c) (Cover & Thomas 2006, Thm 4.2.4), c ranging over the k-token
contexts with stationary law π.  With compute C ≈ 6ND (Kaplan et al. 2020, §2.1), minimising
L subject to C gives N_opt(C) = G·(C/6)^{β/(α+β)}, G = (αA/(βB))^{1/(α+β)} (Hoffmann et al. eq. 4).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import optimize

from fmtheory.theory.registry import Param, TheoryValue, formula

__all__ = [
    "ScalingFit",
    "compute_optimal_n",
    "entropy_rate",
    "fit_scaling_law",
    "scaling_law",
    "stationary_distribution",
]


def scaling_law(n: np.ndarray, d: np.ndarray, e: float, a: float, alpha: float, b: float,
                beta: float) -> np.ndarray:  # fmt: skip
    """L(N, D) = E + A N^−α + B D^−β, elementwise."""
    return e + a * np.asarray(n, float) ** -alpha + b * np.asarray(d, float) ** -beta


def compute_optimal_n(c: float, *, a: float, alpha: float, b: float, beta: float) -> float:
    """N minimising L(N, C/(6N)) at compute C (Hoffmann et al. 2022, eq. 4)."""
    g = (alpha * a / (beta * b)) ** (1 / (alpha + beta))
    return float(g * (c / 6) ** (beta / (alpha + beta)))


def stationary_distribution(transitions: np.ndarray, order: int) -> np.ndarray:
    """π over the V^k contexts of an order-k chain with ``transitions: (V^k, V)`` (rows sum to 1);
    context index = Σ_i x_{t−k+i} V^{k−1−i} (the newest token last).  Power iteration."""
    s, v = transitions.shape
    if v**order != s:
        raise ValueError(f"transitions.shape = {transitions.shape}: needs V^order rows")
    nxt = (np.arange(s)[:, None] * v) % s + np.arange(v)[None, :]  # context after emitting x
    pi = np.full(s, 1 / s)
    for _ in range(10_000):
        new = np.zeros(s)
        np.add.at(new, nxt.ravel(), (pi[:, None] * transitions).ravel())
        if np.abs(new - pi).sum() < 1e-13:
            return new
        pi = new
    return pi


def entropy_rate(transitions: np.ndarray, order: int) -> float:
    """H = Σ_c π(c) H(P(· | c)) in nats: the loss of the Bayes-optimal next-token predictor."""
    pi = stationary_distribution(transitions, order)
    p = np.clip(transitions, 1e-300, 1.0)
    return float(-(pi[:, None] * transitions * np.log(p)).sum())


@dataclass(frozen=True)
class ScalingFit:
    """Fitted (E, A, α, B, β) with standard errors from the fit's covariance (a linearisation)."""

    e: float
    a: float
    alpha: float
    b: float
    beta: float
    se: dict[str, float]
    rms: float

    def predict(self, n: np.ndarray, d: np.ndarray) -> np.ndarray:
        return scaling_law(n, d, self.e, self.a, self.alpha, self.b, self.beta)


def fit_scaling_law(n: np.ndarray, d: np.ndarray, loss: np.ndarray,
                    se: np.ndarray | None = None) -> ScalingFit:  # fmt: skip
    """Weighted nonlinear least squares of L(N, D) (scipy ``curve_fit``), from several starts; the
    standard errors come from the covariance scaled by the residual variance."""
    n, d, loss = (np.asarray(v, float) for v in (n, d, loss))
    if n.size < 6:
        raise ValueError(f"{n.size} points: a 5-parameter law needs at least 6")
    sigma = None if se is None else np.clip(np.asarray(se, float), 1e-6, None)
    best = None
    lo = [0.0, 0.0, 0.01, 0.0, 0.01]
    hi = [float(loss.max()) * 2, 1e6, 3.0, 1e6, 3.0]
    for alpha0 in (0.2, 0.5, 1.0):
        for beta0 in (0.2, 0.5, 1.0):
            p0 = [float(loss.min()) * 0.8, 1.0, alpha0, 1.0, beta0]
            try:
                p, cov = optimize.curve_fit(
                    lambda x, *q: scaling_law(x[0], x[1], *q), np.vstack([n, d]), loss, p0=p0,
                    sigma=sigma, absolute_sigma=False, bounds=(lo, hi), maxfev=20_000,
                )  # fmt: skip
            except (RuntimeError, ValueError):
                continue
            r = loss - scaling_law(n, d, *p)
            rms = float(np.sqrt(np.mean(r**2)))
            if best is None or rms < best[2]:
                best = (p, cov, rms)
    if best is None:
        raise RuntimeError("the scaling-law fit did not converge from any start")
    p, cov, rms = best
    names = ("e", "a", "alpha", "b", "beta")
    se_d = {k: float(math.sqrt(max(cov[i, i], 0.0))) if np.isfinite(cov[i, i]) else math.nan
            for i, k in enumerate(names)}  # fmt: skip
    return ScalingFit(*(float(v) for v in p), se=se_d, rms=rms)


@formula(
    "scaling-law-loss",
    params=[
        Param("n", float, None, 1.0, 1e15, "parameters N"),
        Param("d", float, None, 1.0, 1e18, "training tokens D"),
        Param("e", float, 1.69, 0.0, 100.0, "irreducible loss E"),
        Param("a", float, 406.4, 0.0, 1e9, "A"),
        Param("alpha", float, 0.34, 0.0, 5.0, "α"),
        Param("b", float, 410.7, 0.0, 1e9, "B"),
        Param("beta", float, 0.28, 0.0, 5.0, "β"),
    ],
    source="Hoffmann et al. 2022, 'Training compute-optimal large language models', eq. 2 "
    "(defaults: their fitted values, Approach 3)",
    summary="L(N, D) = E + A/N^α + B/D^β",
)
def _law(
    *, n: float, d: float, e: float, a: float, alpha: float, b: float, beta: float
) -> TheoryValue:
    return TheoryValue(float(scaling_law(n, d, e, a, alpha, b, beta)))


@formula(
    "compute-optimal-n",
    params=[
        Param("c", float, None, 1.0, 1e30, "compute C ≈ 6ND (FLOPs)"),
        Param("a", float, 406.4, 1e-12, 1e9, "A"),
        Param("alpha", float, 0.34, 1e-6, 5.0, "α"),
        Param("b", float, 410.7, 1e-12, 1e9, "B"),
        Param("beta", float, 0.28, 1e-6, 5.0, "β"),
    ],
    source="Hoffmann et al. 2022, eq. 4",
    summary="compute-optimal model size N_opt(C) = G (C/6)^{β/(α+β)}",
)
def _nopt(*, c: float, a: float, alpha: float, b: float, beta: float) -> TheoryValue:
    return TheoryValue(compute_optimal_n(c, a=a, alpha=alpha, b=b, beta=beta))
