"""Self-consuming loops for the misspecified density families: Gaussian mixture (EM) and KDE.

One replicate at a time (scikit-learn fits are not batched).  Distances to the real distribution:
total variation on a grid (``½ Σ |p − q| · cell``, the mass outside the grid box ignored), and W1/W2
from POT between ``eval_samples`` model draws and as many fresh real draws.  Part of the
``self-consuming`` experiment.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
import ot
from sklearn.mixture import GaussianMixture
from sklearn.neighbors import KernelDensity
from threadpoolctl import threadpool_limits

from fmtheory.experiments.self_consuming.regimes import (
    LoopOutput,
    Regime,
    Tick,
    real_count,
    recorded_generations,
)
from fmtheory.tasks.generative import MixtureData

__all__ = [
    "DensityLoopSpec",
    "run_density_loop",
    "sample_wasserstein",
    "grid_tv",
    "FittedDensity",
    "fit_density",
]


@dataclass(frozen=True)
class DensityLoopSpec:
    """``family``: "gmm" (``components`` full-covariance components, EM) or "kde" (Gaussian kernel,
    ``bandwidth``).  ``eval_samples``: draws per side for W1/W2; ``grid``: points per axis for
    TV."""

    family: Literal["gmm", "kde"]
    data: MixtureData
    n0: int
    generations: int
    replicates: int
    components: int = 3
    bandwidth: float = 0.3
    eval_samples: int = 500
    grid: int = 200
    record_every: int = 1
    max_n: int | None = None


def sample_wasserstein(x: np.ndarray, y: np.ndarray, *, p: int) -> float:
    """Empirical ``W_p`` between point clouds ``x: (n, d)`` and ``y: (m, d)`` (uniform weights).

    1-D: ``ot.wasserstein_1d`` (sorting), which returns ``W_p^p`` — the ``p``-th root is taken here.
    d ≥ 2: exact OT, ``ot.emd2`` on the cost ``|x − y|^p`` (also ``W_p^p``), then the root.
    """
    if x.shape[1] == 1:
        wpp = float(ot.wasserstein_1d(x[:, 0], y[:, 0], p=p))
    else:
        cost = ot.dist(x, y, metric="euclidean") ** p
        a = np.full(x.shape[0], 1.0 / x.shape[0])
        b = np.full(y.shape[0], 1.0 / y.shape[0])
        wpp = float(ot.emd2(a, b, cost, numItermax=1_000_000))
    return max(wpp, 0.0) ** (1.0 / p)


def grid_tv(p: np.ndarray, q: np.ndarray, cell: float) -> float:
    """``½ Σ |p − q| · cell``: total variation between densities evaluated at grid cell centres."""
    return 0.5 * float(np.abs(p - q).sum() * cell)


class FittedDensity:
    """A fitted GMM or KDE: ``sample(n, rng)``, ``density(points)``, ``variance()``."""

    def __init__(self, family: str, model: GaussianMixture | KernelDensity, data: np.ndarray):
        self.family = family
        self.model = model
        self._data = data  # KDE: its points; GMM: unused

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """``n`` draws ``(n, dim)`` driven by ``rng`` only."""
        d = self._data.shape[1]
        if n <= 0:
            return np.empty((0, d))
        if self.family == "kde":
            # exactly KernelDensity.sample for the Gaussian kernel: a data point plus h·N(0, I)
            idx = rng.integers(0, self._data.shape[0], size=n)
            return self._data[idx] + self.model.bandwidth_ * rng.standard_normal((n, d))
        m = self.model
        comp = rng.choice(m.weights_.shape[0], size=n, p=m.weights_ / m.weights_.sum())
        chol = np.linalg.cholesky(m.covariances_)  # (K, d, d)
        z = rng.standard_normal((n, d, 1))
        return m.means_[comp] + (chol[comp] @ z)[..., 0]

    def density(self, points: np.ndarray) -> np.ndarray:
        """Density at ``points: (m, dim)`` -> ``(m,)`` (scikit-learn ``score_samples``)."""
        return np.exp(self.model.score_samples(points))

    def variance(self) -> float:
        """Per-coordinate variance of the model, averaged over coordinates."""
        if self.family == "kde":
            return float(self._data.var(axis=0).mean() + self.model.bandwidth_**2)
        m = self.model
        w = m.weights_ / m.weights_.sum()
        mu = w @ m.means_
        second = np.einsum("k,kd->d", w, m.means_**2 + np.diagonal(m.covariances_, 0, 1, 2))
        return float((second - mu**2).mean())


def fit_density(
    family: str, x: np.ndarray, *, components: int, bandwidth: float, seed: int
) -> FittedDensity:
    """Fit a GMM by EM (``covariance_type="full"``, k-means++ seeding by ``seed``) or a KDE.

    One BLAS/OpenMP thread: these fits are tiny, and thread start-up dominates otherwise.
    """
    if family == "kde":
        # rtol: relative tolerance of the tree-based density sums (1e-6: exact for plotting/TV)
        return FittedDensity("kde", KernelDensity(bandwidth=bandwidth, rtol=1e-6).fit(x), x)
    k = min(components, x.shape[0])
    gmm = GaussianMixture(
        n_components=k,
        covariance_type="full",
        init_params="k-means++",
        random_state=seed,
        max_iter=200,
        reg_covar=1e-6,
    )
    with threadpool_limits(limits=1):
        gmm.fit(x)
    return FittedDensity("gmm", gmm, x)


def run_density_loop(
    spec: DensityLoopSpec, regime: Regime, rng: np.random.Generator, tick: Tick | None = None
) -> LoopOutput:
    """The loop of :func:`fmtheory.experiments.self_consuming.loops_exact.run_gaussian_loop` with a GMM or KDE.

    Metrics per replicate (``(G_rec, R)``): ``distance`` = TV on the grid, ``w1``, ``w2`` (POT, from
    samples), ``model_variance`` = per-coordinate variance of the fitted model.  ``extra`` holds the
    real-vs-real W1/W2 at the same sample size (the floor of the sample-based distances).
    """
    data = spec.data
    grid, cell = data.grid(spec.grid)
    p_real = data.density(grid)
    sizes = regime.sizes(spec.n0, spec.generations, spec.max_n).astype(np.int64)
    rec = recorded_generations(spec.generations, spec.record_every)
    names = ("distance", "w1", "w2", "model_variance")
    out = {k: np.empty((rec.size, spec.replicates)) for k in names}
    p_corr = regime.correction_prob
    floor_w1, floor_w2 = [], []
    for rep in range(spec.replicates):
        model: FittedDensity | None = None
        pool: list[np.ndarray] = []
        ri = 0
        for g in range(1, spec.generations + 1):
            n = int(sizes[g - 1])
            if g == 1:
                x = data.sample(n, rng)
            else:
                n_r = real_count(n, regime.real_fraction)
                k = int(rng.binomial(n - n_r, p_corr)) if p_corr > 0 else 0
                x = np.concatenate([data.sample(n_r + k, rng), model.sample(n - n_r - k, rng)])
            if regime.mode == "accumulate":
                pool.append(x)
                x = np.concatenate(pool)
            model = fit_density(
                spec.family,
                x,
                components=spec.components,
                bandwidth=spec.bandwidth,
                seed=int(rng.integers(0, 2**31 - 1)),
            )
            if ri < rec.size and rec[ri] == g:
                q = model.density(grid)
                out["distance"][ri, rep] = grid_tv(p_real, q, cell)
                xs = model.sample(spec.eval_samples, rng)
                xr = data.sample(spec.eval_samples, rng)
                out["w1"][ri, rep] = sample_wasserstein(xs, xr, p=1)
                out["w2"][ri, rep] = sample_wasserstein(xs, xr, p=2)
                out["model_variance"][ri, rep] = model.variance()
                ri += 1
            if tick is not None:
                tick(1)
        a, b = data.sample(spec.eval_samples, rng), data.sample(spec.eval_samples, rng)
        floor_w1.append(sample_wasserstein(a, b, p=1))
        floor_w2.append(sample_wasserstein(a, b, p=2))
    extra = {
        "real_vs_real_w1": float(np.mean(floor_w1)),
        "real_vs_real_w2": float(np.mean(floor_w2)),
        "real_variance": data.variance(),
        "grid_mass": float(p_real.sum() * cell),
    }
    if not math.isfinite(extra["grid_mass"]):
        raise RuntimeError("the real density is not finite on the grid")
    return LoopOutput(method=spec.family, generations=rec, metrics=out, extra=extra)
