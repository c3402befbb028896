"""Vectorised self-consuming loops for the families with closed forms: Gaussian, linear regression.

All replicates advance together (numpy arrays with a leading replicate axis ``R``); a generation
costs O(R d²) for the Gaussian (exact draws of the sufficient statistics, whatever ``n_i``) and
O(R T d) for regression.  Part of the ``self-consuming`` experiment (``experiments/self_consuming/``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from fmtheory.experiments.self_consuming.regimes import (
    ContractionSums,
    LoopOutput,
    Regime,
    Tick,
    real_count,
    recorded_generations,
)
from fmtheory.tasks.generative import (
    GaussianSpec,
    GaussianStats,
    sample_bartlett_factor,
    sample_design,
    sample_gaussian_stats,
)
from fmtheory.theory.self_consuming import gaussian_w2_squared_batched, schedule_multipliers

__all__ = [
    "GaussianLoopSpec",
    "run_gaussian_loop",
    "LinregLoopSpec",
    "run_linreg_loop",
    "fit_gaussian_stats",
    "ols_projector",
]


# --------------------------------------------------------------------------------------------
# Gaussian
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class GaussianLoopSpec:
    """``estimator``: "unbiased" divides the scatter by ``N − 1``, "mle" by ``N``.
    ``fit_covariance=False`` refits the mean only (covariance fixed at the truth)."""

    real: GaussianSpec
    n0: int
    generations: int
    replicates: int
    estimator: Literal["mle", "unbiased"] = "unbiased"
    fit_covariance: bool = True
    record_every: int = 1


def fit_gaussian_stats(
    stats: GaussianStats, estimator: Literal["mle", "unbiased"]
) -> tuple[np.ndarray, np.ndarray]:
    """(mean ``(R, d)``, covariance ``(R, d, d)``) from sufficient statistics: the sample mean and
    ``scatter / N`` (MLE) or ``scatter / (N − 1)`` (unbiased), as ``numpy.cov(ddof=0 or 1)``."""
    denom = stats.count if estimator == "mle" else stats.count - 1.0
    return stats.mean, stats.scatter / denom[:, None, None]


def ols_projector(x: np.ndarray) -> np.ndarray:
    """``(XᵀX)⁻¹Xᵀ`` for designs ``x: (R, T, d)`` -> ``(R, d, T)``: OLS weights are ``P @ y``."""
    return np.linalg.solve(np.swapaxes(x, 1, 2) @ x, np.swapaxes(x, 1, 2))


def _sqrt_cov(cov: np.ndarray) -> np.ndarray:
    """A square root ``L`` with ``L Lᵀ = cov``: Cholesky, symmetric root where it fails."""
    if cov.shape[-1] == 1:
        return np.sqrt(np.clip(cov, 0.0, None))
    try:
        return np.linalg.cholesky(cov)
    except np.linalg.LinAlgError:
        w, v = np.linalg.eigh(cov)
        return v * np.sqrt(np.clip(w, 0.0, None))[:, None, :]


def run_gaussian_loop(
    spec: GaussianLoopSpec, regime: Regime, rng: np.random.Generator, tick: Tick | None = None
) -> LoopOutput:
    """Run ``spec.generations`` fits of ``N(μ, Σ)`` for ``spec.replicates`` independent chains.

    Generation 1 fits ``n_1`` real points.  Generation ``g ≥ 2`` draws ``n_g`` points:
    ``round(α n_g)`` real, the rest from model ``g − 1`` of which ``K ~ Bin(·, γ/(1+γ))`` are
    swapped for real ones (the correction); accumulate adds them to every earlier dataset.

    Metrics per replicate (``(G_rec, R)``): ``distance`` = exact W2 to the real Gaussian,
    ``w2_sq`` = its square, ``log_var_ratio`` = ``ln det(Σ_g Σ*⁻¹)``, ``var_ratio`` =
    ``det(Σ_g Σ*⁻¹)^{1/d}``, ``mean_sq_err`` = ``||μ_g − μ*||²``.
    """
    r, d = spec.replicates, spec.real.dim
    mu_star = np.broadcast_to(spec.real.mean_vector(), (r, d))
    cov_star = spec.real.covariance()
    l_star = np.broadcast_to(np.linalg.cholesky(cov_star), (r, d, d))
    logdet_star = float(np.linalg.slogdet(cov_star)[1])
    sizes = regime.sizes(spec.n0, spec.generations).astype(np.int64)
    rec = recorded_generations(spec.generations, spec.record_every)
    names = ("distance", "w2_sq", "log_var_ratio", "var_ratio", "mean_sq_err")
    out = {k: np.empty((rec.size, r)) for k in names}
    contraction = ContractionSums() if regime.mode == "replace" else None
    p_corr = regime.correction_prob
    total: GaussianStats | None = None
    mean = cov = None
    # Fully synthetic replace loops refit Σ_{g} = L W Lᵀ / k: keep the factor L (lower triangular)
    # and ln det exactly in log space, since the covariance itself becomes numerically singular
    # long before its log-determinant leaves float range (the loop's Lyapunov spectrum spreads).
    factorized = regime.fully_synthetic and regime.mode == "replace" and spec.fit_covariance
    chol = l_star.copy()
    logdet = np.zeros(r)
    ri = 0
    for g in range(1, spec.generations + 1):
        n = int(sizes[g - 1])
        if factorized:
            centre = mu_star if g == 1 else mean
            z = rng.standard_normal((r, d, 1))
            new_mean = centre + (chol @ z)[..., 0] / np.sqrt(n)
            a = sample_bartlett_factor(np.full(r, n - 1), d, rng)
            k = float(n if spec.estimator == "mle" else n - 1)
            chol = chol @ a / np.sqrt(k)
            logdet = logdet + 2.0 * np.log(np.abs(np.diagonal(a, axis1=1, axis2=2))).sum(-1)
            logdet = logdet - d * np.log(k)
            if contraction is not None and g > 1:
                contraction.add(mean - mu_star, new_mean - mu_star)
            mean = new_mean
            if ri < rec.size and rec[ri] == g:
                cov = chol @ np.swapaxes(chol, -1, -2)
                _record(out, ri, mean, cov, mu_star, cov_star, logdet, d)
                ri += 1
            if tick is not None:
                tick(1)
            continue
        if g == 1:
            n_real = np.full(r, n, dtype=np.int64)
        else:
            n_r = real_count(n, regime.real_fraction)
            n_syn = np.full(r, n - n_r, dtype=np.int64)
            k = rng.binomial(n_syn, p_corr) if p_corr > 0 else np.zeros(r, dtype=np.int64)
            n_real = n_r + k
        stats = sample_gaussian_stats(mu_star, l_star, n_real, rng)
        if g > 1:
            syn = sample_gaussian_stats(mean, _sqrt_cov(cov), n - n_real, rng)
            stats = stats.merge(syn)
        if regime.mode == "accumulate":
            total = stats if total is None else total.merge(stats)
            fit = total
        else:
            fit = stats
        if spec.fit_covariance:
            new_mean, new_cov = fit_gaussian_stats(fit, spec.estimator)
        else:
            new_mean, new_cov = fit.mean, np.broadcast_to(cov_star, (r, d, d))
        if contraction is not None and g > 1:
            contraction.add(mean - mu_star, new_mean - mu_star)
        mean, cov = new_mean, new_cov
        if ri < rec.size and rec[ri] == g:
            with np.errstate(divide="ignore", invalid="ignore"):
                logdet = np.linalg.slogdet(cov)[1] - logdet_star
            _record(out, ri, mean, cov, mu_star, cov_star, logdet, d)
            ri += 1
        if tick is not None:
            tick(1)
    method = f"gaussian-{spec.estimator}" if spec.fit_covariance else "gaussian-mean"
    return LoopOutput(method=method, generations=rec, metrics=out, contraction=contraction)


def _record(
    out: dict[str, np.ndarray],
    ri: int,
    mean: np.ndarray,
    cov: np.ndarray,
    mu_star: np.ndarray,
    cov_star: np.ndarray,
    logdet: np.ndarray,
    d: int,
) -> None:
    with np.errstate(divide="ignore", invalid="ignore", over="ignore", under="ignore"):
        w2 = gaussian_w2_squared_batched(mean, cov, mu_star, cov_star)
        out["w2_sq"][ri] = w2
        out["distance"][ri] = np.sqrt(w2)
        out["log_var_ratio"][ri] = logdet
        out["var_ratio"][ri] = np.exp(logdet / d)
        out["mean_sq_err"][ri] = ((mean - mu_star) ** 2).sum(-1)


# --------------------------------------------------------------------------------------------
# linear regression with a fixed design
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LinregLoopSpec:
    """``rows`` = T (design rows), ``dim`` = d, label noise ``noise_std``."""

    dim: int
    rows: int
    noise_std: float
    generations: int
    replicates: int
    record_every: int = 1


def run_linreg_loop(
    spec: LinregLoopSpec, regime: Regime, rng: np.random.Generator, tick: Tick | None = None
) -> LoopOutput:
    """OLS on a fixed design whose labels come from the previous generation's model.

    Each replicate has its own design ``X: (T, d)`` with ``N(0, I)`` rows and its own
    ``w* ~ N(0, I)``.  Generation ``g`` holds ``c_g = round(g^power)`` labelled copies of the design
    (only their average label matters to OLS).  A random ``round(αT)`` rows get real labels; of the
    other rows' copies, each is relabelled by the real ``w*`` with probability ``γ/(1+γ)`` (the
    correction), else by ``ŵ_{g−1}``; label noise ``σ`` is fresh for every copy.  Accumulate refits
    on every dataset drawn so far (all copies of the same design: OLS on the weighted mean label).

    Computed in weight space, exactly in distribution: OLS on this generation's labels is
    ``v = ŵ_{g−1} + P(s ⊙ X(w* − ŵ_{g−1})) + u`` with ``P = (XᵀX)⁻¹Xᵀ``, ``s`` the share of each
    row's copies with real labels and ``u = Pε̄ ~ N(0, σ²(XᵀX)⁻¹/c_g)`` drawn as ``L z`` with
    ``L Lᵀ = (XᵀX)⁻¹``; accumulate averages the ``v``'s with weights ``c_g``.  The ``T``-sized
    products are only formed when ``s ≠ 0`` (α > 0 or γ > 0).

    Metric ``distance`` = ``||ŵ_g − w*||²`` per replicate (the excess test error for isotropic
    inputs).
    """
    r, t, d = spec.replicates, spec.rows, spec.dim
    x = sample_design(replicates=r, rows=t, dim=d, rng=rng)
    w_star = rng.standard_normal((r, d))
    gram_inv = np.linalg.inv(np.swapaxes(x, 1, 2) @ x)
    gram_inv = 0.5 * (gram_inv + np.swapaxes(gram_inv, 1, 2))
    chol_inv = np.linalg.cholesky(gram_inv)  # (R, d, d)
    copies = schedule_multipliers(spec.generations, power=regime.power)
    rec = recorded_generations(spec.generations, spec.record_every)
    out = {"distance": np.empty((rec.size, r))}
    contraction = ContractionSums() if regime.mode == "replace" else None
    p_corr = regime.correction_prob
    n_r = real_count(t, regime.real_fraction)
    mixes = p_corr > 0 or n_r > 0
    proj = ols_projector(x) if mixes else None  # (R, d, T)
    w_hat = w_star
    c_acc = 0.0
    ri = 0
    for g in range(1, spec.generations + 1):
        c = int(copies[g - 1])
        z = rng.standard_normal((r, d, 1))
        v = w_hat + (spec.noise_std / np.sqrt(c)) * (chol_inv @ z)[..., 0]
        if g > 1 and mixes:
            share = np.zeros((r, t))  # fraction of each row's copies labelled by w*
            if p_corr > 0:
                if c == 1:  # Bernoulli: much cheaper than the general binomial draw
                    share = (rng.random((r, t)) < p_corr).astype(np.float64)
                else:
                    share = rng.binomial(c, p_corr, size=(r, t)) / c
            if n_r > 0:  # a uniformly random subset of n_r rows per replicate
                keys = rng.random((r, t))
                order = np.argpartition(keys, n_r - 1, axis=1)[:, :n_r] if n_r < t else None
                if order is None:
                    share[:] = 1.0
                else:
                    np.put_along_axis(share, order, 1.0, axis=1)
            resid = (x @ (w_star - w_hat)[..., None])[..., 0]  # (R, T)
            v = v + (proj @ (share * resid)[..., None])[..., 0]
        if regime.mode == "accumulate":
            new_w = (c_acc * w_hat + c * v) / (c_acc + c) if g > 1 else v
            c_acc += c
        else:
            new_w = v
        if contraction is not None and g > 1:
            contraction.add(w_hat - w_star, new_w - w_star)
        w_hat = new_w
        if ri < rec.size and rec[ri] == g:
            out["distance"][ri] = ((w_hat - w_star) ** 2).sum(-1)
            ri += 1
        if tick is not None:
            tick(1)
    return LoopOutput(method="ols", generations=rec, metrics=out, contraction=contraction)
