"""Risk of the discrete MMSE (dMMSE) estimator: the Bayes predictor for a finite pool of M tasks.

Setting (Raventós, Paul, Chen & Ganguli 2023, "Pretraining task diversity and the emergence of
non-Bayesian in-context learning for regression", NeurIPS, §2)::

    pool  W = (w_1, ..., w_M),  w_m ~ N(0, τ² I_d) i.i.d.       (τ = prior_scale)
    task  w = w_J, J ~ Unif{1..M}   ("pool" tasks: the pretraining distribution)
       or w ~ N(0, τ² I_d)          ("fresh" tasks: the Gaussian prior, i.e. generalisation)
    x_i, x_q ~ N(0, I_d),   y_i = w·x_i + ε_i,   ε_i ~ N(0, σ²),   i = 1..k.

The dMMSE estimator is the posterior mean under the uniform prior on the pool (Raventós et al. §2,
eq. for ŵ_dMMSE)::

    ŵ = Σ_m π_m w_m,      π_m ∝ exp(−Σ_{i≤k} (y_i − w_mᵀx_i)² / (2σ²)),

and its risk of predicting the noisy query label, NOT divided by d, is

    R = E[(x_qᵀŵ − y_q)²] = E‖ŵ − w‖² + σ²          (x_q ~ N(0, I) independent of ŵ, w).

The expectation runs over the pool, the task, the context and the noise.  No closed form is known
for general (k, M); it is computed by Monte Carlo with its standard error, except in two exact cases
(derived here; they are the tests' anchors):

* k = 0 (no context): ŵ = w̄ (the pool mean), so R = τ²d(1 + 1/M) + σ² on fresh tasks and
  R = τ²d(1 − 1/M) + σ² on pool tasks (E‖w̄ − w_J‖² = τ²d(1 − 1/M)).
* M = 1: ŵ = w_1 for every context, so R = 2τ²d + σ² on fresh tasks and R = σ² on pool tasks.

For M → ∞ the dMMSE estimator tends to the Gaussian posterior mean (ridge with λ = σ²/τ²), whose risk
is ``icl-bayes-risk`` in :mod:`fmtheory.theory.linear_regression`.

Registered formula: ``dmmse-risk``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from fmtheory.theory.registry import Param, TheoryValue, register_formula

__all__ = [
    "DMMSERiskCurve",
    "dmmse_risk_exact",
    "dmmse_risk_given_pool",
    "dmmse_risk_curve",
    "dmmse_risk",
]

# Largest number of float64 entries one Monte Carlo chunk may hold (~32 MB).
_CHUNK_FLOATS = 4_000_000
TASKS = ("pool", "fresh")


@dataclass(frozen=True)
class DMMSERiskCurve:
    """Risk of the dMMSE estimator at every context length ``k = 0 .. n-1``.

    ``risk: (n,)`` Monte Carlo means of (x_qᵀŵ_k − y_q)² (not divided by d); ``stderr: (n,)`` their
    standard errors (standard deviation over draws / sqrt(n_mc)); ``n_mc`` draws.
    """

    risk: np.ndarray
    stderr: np.ndarray
    n_mc: int


def _check(d: int, n: int, m: int, sigma: float, prior_scale: float, tasks: str, n_mc: int) -> None:
    for name, v, lo in (("d", d, 1), ("n", n, 1), ("m", m, 1), ("n_mc", n_mc, 2)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < lo:
            raise ValueError(f"{name} = {v!r} is invalid: must be an integer >= {lo}")
    if not (isinstance(sigma, (int, float)) and math.isfinite(sigma) and sigma > 0):
        raise ValueError(f"sigma = {sigma!r} is invalid: must be a finite number > 0")
    if not (
        isinstance(prior_scale, (int, float)) and math.isfinite(prior_scale) and prior_scale > 0
    ):
        raise ValueError(f"prior_scale = {prior_scale!r} is invalid: must be a finite number > 0")
    if tasks not in TASKS:
        raise ValueError(f"tasks = {tasks!r} is invalid: must be one of {TASKS}")


def dmmse_risk_exact(
    *, d: int, k: int, m: int, sigma: float, prior_scale: float = 1.0, tasks: str = "pool"
) -> float | None:
    """The exact risk in the two closed-form cases (k = 0 or M = 1, see the module docstring);
    None otherwise.  Pool-averaged (the pool is random)."""
    t2d = prior_scale**2 * d
    if m == 1:
        return sigma**2 if tasks == "pool" else 2 * t2d + sigma**2
    if k == 0:
        return t2d * (1 - 1 / m) + sigma**2 if tasks == "pool" else t2d * (1 + 1 / m) + sigma**2
    return None


def dmmse_risk_given_pool(
    pool: np.ndarray, *, k: int, sigma: float, prior_scale: float = 1.0, tasks: str = "pool"
) -> float | None:
    """The exact risk of the dMMSE estimator GIVEN the pool ``pool: (M, d)``, not divided by d, in
    the two cases with a closed form; None otherwise.

    * k = 0: ŵ = w̄ (pool mean), so R = ‖w̄‖² + τ²d + σ² on fresh tasks (E‖w̄ − w‖² with
      w ~ N(0, τ²I)) and R = (1/M) Σ_m ‖w_m − w̄‖² + σ² on pool tasks.
    * M = 1: ŵ = w_1 whatever the context, so the k = 0 values hold at every k.

    Derived from the posterior-mean formula of Raventós et al. 2023 §2; no simulation involved.
    """
    pool = np.asarray(pool, dtype=np.float64)
    if pool.ndim != 2 or pool.shape[0] < 1:
        raise ValueError(f"pool.shape = {pool.shape}: expected (M, d) with M >= 1")
    if tasks not in TASKS:
        raise ValueError(f"tasks = {tasks!r} is invalid: must be one of {TASKS}")
    m, d = pool.shape
    if k != 0 and m != 1:
        return None
    wbar = pool.mean(axis=0)
    if tasks == "fresh":
        return float(wbar @ wbar + prior_scale**2 * d + sigma**2)
    return float(((pool - wbar) ** 2).sum(axis=1).mean() + sigma**2)


def dmmse_risk_curve(
    *,
    d: int,
    n: int,
    m: int,
    sigma: float,
    prior_scale: float = 1.0,
    tasks: str = "pool",
    n_mc: int = 4000,
    seed: int = 0,
    pool: np.ndarray | None = None,
) -> DMMSERiskCurve:
    """Monte Carlo risk of the dMMSE estimator for context lengths ``k = 0 .. n-1`` (same draws).

    ``pool: (M, d)`` (optional): condition on this pool (the risk of one pretraining run's dMMSE);
    otherwise every draw samples its own pool w_m ~ N(0, τ²I), giving the pool-averaged risk of
    ``dmmse-risk``.  Per draw: a task (from the pool or the prior), ``n`` points x ~ N(0, I) with
    noisy labels; the dMMSE weights of every prefix come from cumulative sums of squared residuals
    (log-sum-exp stable); the query term is integrated exactly, (x_qᵀŵ − y_q)² → ‖ŵ − w‖² + σ².
    Deterministic in ``seed``; memory bounded by chunking the draws.
    """
    if pool is not None:
        pool = np.asarray(pool, dtype=np.float64)
        if pool.ndim != 2 or pool.shape[0] < 1 or pool.shape[1] != d:
            raise ValueError(f"pool.shape = {pool.shape}: expected (M, d={d}) with M >= 1")
        m = pool.shape[0]
    _check(d, n, m, sigma, prior_scale, tasks, n_mc)
    rng = np.random.default_rng(seed)
    per_draw = n * m + 2 * m * d + n * d
    size = max(1, _CHUNK_FLOATS // per_draw)
    sq_err = []
    for start in range(0, n_mc, size):
        c = min(size, n_mc - start)
        if pool is None:
            pools = rng.standard_normal((c, m, d)) * prior_scale  # (c, M, d)
        else:
            pools = np.broadcast_to(pool, (c, m, d))
        if tasks == "pool":
            w = pools[np.arange(c), rng.integers(0, m, size=c)]  # (c, d)
        else:
            w = rng.standard_normal((c, d)) * prior_scale
        x = rng.standard_normal((c, n, d))
        y = (x @ w[:, :, None])[:, :, 0] + sigma * rng.standard_normal((c, n))
        fit = x @ pool.T if pool is not None else x @ pools.transpose(0, 2, 1)  # (c, n, M)
        resid2 = (y[:, :, None] - fit) ** 2  # (c, n, M)
        # Exclusive cumulative sums: prefix k uses pairs 0..k-1.
        sse = np.concatenate([np.zeros((c, 1, m)), np.cumsum(resid2, axis=1)[:, :-1]], axis=1)
        logits = -sse / (2 * sigma**2)
        logits -= logits.max(axis=2, keepdims=True)
        p = np.exp(logits)
        p /= p.sum(axis=2, keepdims=True)  # (c, n, M)
        w_hat = p @ pool if pool is not None else p @ pools  # (c, n, d)
        sq_err.append(((w_hat - w[:, None, :]) ** 2).sum(axis=2) + sigma**2)  # (c, n)
    e = np.concatenate(sq_err)
    return DMMSERiskCurve(
        risk=e.mean(axis=0), stderr=e.std(axis=0, ddof=1) / math.sqrt(n_mc), n_mc=n_mc
    )


def dmmse_risk(
    *,
    d: int,
    k: int,
    m: int,
    sigma: float,
    prior_scale: float = 1.0,
    fresh: int = 0,
    n_mc: int = 4000,
    seed: int = 0,
) -> TheoryValue:
    """E[(x_qᵀŵ_dMMSE − y_q)²] from ``k`` context pairs with a pool of ``m`` tasks (not divided by d).

    ``fresh = 0``: tasks drawn from the pool (the pretraining distribution, where dMMSE is Bayes-
    optimal); ``fresh = 1``: tasks drawn from the Gaussian prior.  Exact (stderr None) when k = 0 or
    m = 1; Monte Carlo over ``n_mc`` pool-and-prompt draws otherwise (Raventós et al. 2023, §2).
    """
    tasks = "fresh" if int(fresh) else "pool"
    exact = dmmse_risk_exact(d=d, k=k, m=m, sigma=sigma, prior_scale=prior_scale, tasks=tasks)
    if exact is not None:
        return TheoryValue(float(exact))
    c = dmmse_risk_curve(
        d=d, n=k + 1, m=m, sigma=sigma, prior_scale=prior_scale, tasks=tasks, n_mc=n_mc, seed=seed
    )
    return TheoryValue(float(c.risk[k]), float(c.stderr[k]))


register_formula(
    "dmmse-risk",
    dmmse_risk,
    params=[
        Param("d", int, None, 1, 256, "task dimension"),
        Param("k", int, None, 0, 512, "context length (pairs before the query)"),
        Param("m", int, None, 1, 2**16, "number of pretraining tasks M in the pool"),
        Param("sigma", float, None, 1e-3, 100.0, "label noise standard deviation σ (> 0)"),
        Param("prior_scale", float, 1.0, 1e-3, 100.0, "standard deviation τ of each task entry"),
        Param("fresh", int, 0, 0, 1, "0: tasks from the pool; 1: fresh tasks from N(0, τ²I)"),
        Param("n_mc", int, 4000, 2, 1_000_000, "Monte Carlo draws (pool, task, prompt)"),
        Param("seed", int, 0, 0, 2**31 - 1, "Monte Carlo seed"),
    ],
    source="Raventós, Paul, Chen & Ganguli 2023 (NeurIPS), §2: the dMMSE estimator",
    summary="risk E[(ŷ − y_q)²] of the posterior mean over a pool of M Gaussian tasks (not / d); "
    "exact for k = 0 or M = 1, Monte Carlo with its standard error otherwise",
)
