"""Data for self-consuming loops: the real distributions a generative model is fitted to.

Every sampler is a pure function of its spec and an explicit generator (``numpy.random.Generator``
for the numpy/scikit-learn families, ``torch.Generator`` for tokens).  Shapes are batch-first:
``(replicates, n, dim)`` for points, ``(batch, seq_len)`` for tokens.

* :class:`GaussianSpec` — ``N(mean·1, std² I_dim)``, plus exact draws of the sufficient statistics
  (sample mean and scatter) of ``n`` points, so that loops with millions of points per generation
  cost O(1) per generation (:func:`sample_gaussian_stats`).
* :class:`ZipfSpec` — i.i.d. Zipf tokens ``p_i ∝ i^{-β}`` (Dohmatob et al. 2024).
* :func:`sample_design` / :func:`regression_labels` — fixed-design linear regression
  (Gerstgrasser et al. 2024): isotropic Gaussian rows, labels ``Xw + σ ε``.
* :class:`MixtureData` — the "real data" of the misspecified families: a 1-D trimodal Gaussian
  mixture, a 2-D ring of eight Gaussians (densities known exactly), and the scikit-learn digits
  projected to their first two principal components (a real data set shipped offline; its
  "density" is a reference KDE of the whole set).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Literal

import numpy as np
import torch

from fmtheory.theory.self_consuming import zipf_probs

__all__ = [
    "GaussianSpec",
    "GaussianStats",
    "sample_gaussian",
    "sample_gaussian_stats",
    "sample_scatter",
    "sample_bartlett_factor",
    "ZipfSpec",
    "sample_zipf_tokens",
    "sample_design",
    "regression_labels",
    "MixtureData",
    "MIXTURE_DATASETS",
    "make_mixture_data",
]


# --------------------------------------------------------------------------------------------
# Gaussian
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class GaussianSpec:
    """The real distribution ``N(mean·1, std² I_dim)``."""

    dim: int = 1
    mean: float = 0.0
    std: float = 1.0

    def __post_init__(self) -> None:
        if self.dim < 1:
            raise ValueError(f"dim = {self.dim}: must be >= 1")
        if not self.std > 0:
            raise ValueError(f"std = {self.std}: must be > 0")

    def mean_vector(self) -> np.ndarray:
        """``(dim,)``."""
        return np.full(self.dim, float(self.mean))

    def covariance(self) -> np.ndarray:
        """``(dim, dim)``."""
        return np.eye(self.dim) * self.std**2


def sample_gaussian(
    spec: GaussianSpec, *, n: int, replicates: int, rng: np.random.Generator
) -> np.ndarray:
    """``n`` i.i.d. points per replicate, shape ``(replicates, n, dim)``."""
    if n < 1 or replicates < 1:
        raise ValueError(f"n = {n}, replicates = {replicates}: both must be >= 1")
    z = rng.standard_normal((replicates, n, spec.dim))
    return spec.mean + spec.std * z


def sample_scatter(dof: np.ndarray, dim: int, rng: np.random.Generator) -> np.ndarray:
    """Draws of ``W ~ Wishart_dim(I, dof_r)``, one per entry of ``dof`` (integers ≥ 0).

    Shape ``(R,) -> (R, dim, dim)``.  ``dof ≥ dim``: Bartlett decomposition ``W = A Aᵀ`` with
    ``A`` lower triangular, ``A_jj = sqrt(χ²_{dof−j+1})``, ``A_jk ~ N(0,1)`` below the diagonal
    (Bartlett 1933).  ``dof < dim`` (singular): ``W = Σ_{l≤dof} z_l z_lᵀ`` directly.  ``dof = 0``
    gives ``W = 0``.  Cost O(R dim²) whatever the dof.
    """
    dof = np.asarray(dof, dtype=np.int64)
    if dof.ndim != 1:
        raise ValueError(f"dof must be one-dimensional, got shape {dof.shape}")
    if (dof < 0).any():
        raise ValueError(f"dof = {int(dof.min())}: must be >= 0")
    r = dof.shape[0]
    if dim == 1:
        return (2.0 * rng.standard_gamma(dof / 2.0, size=r))[:, None, None]
    j = np.arange(dim)
    # Bartlett: chi-square with dof - j degrees of freedom on the diagonal (j = 0..dim-1).
    shape = np.clip(dof[:, None] - j[None, :], 0, None) / 2.0
    diag = np.sqrt(2.0 * rng.standard_gamma(shape))
    a = np.tril(rng.standard_normal((r, dim, dim)), k=-1)
    a[:, j, j] = diag
    w = a @ np.swapaxes(a, -1, -2)
    small = dof < dim
    if small.any():
        rows = dim - 1
        z = rng.standard_normal((int(small.sum()), rows, dim))
        keep = (np.arange(rows)[None, :] < dof[small][:, None]).astype(np.float64)
        z = z * keep[:, :, None]
        w[small] = np.swapaxes(z, -1, -2) @ z
    return w


def sample_bartlett_factor(dof: np.ndarray, dim: int, rng: np.random.Generator) -> np.ndarray:
    """Lower-triangular ``A`` with ``A Aᵀ ~ Wishart_dim(I, dof_r)`` (Bartlett 1933), ``dof ≥ dim``.

    Shape ``(R,) -> (R, dim, dim)``; ``A_jj = sqrt(χ²_{dof−j+1})`` (``j = 1..dim``),
    ``A_jk ~ N(0, 1)`` below the diagonal.  A chain ``L_{t+1} = L_t A_t / √k`` keeps a covariance
    in factored form, so ``ln det`` is a sum of logs even when the covariance itself is numerically
    singular.
    """
    dof = np.asarray(dof, dtype=np.int64)
    if (dof < dim).any():
        raise ValueError(f"dof = {int(dof.min())}: the Bartlett factor needs dof >= dim = {dim}")
    j = np.arange(dim)
    a = np.tril(rng.standard_normal((dof.shape[0], dim, dim)), k=-1)
    a[:, j, j] = np.sqrt(2.0 * rng.standard_gamma((dof[:, None] - j[None, :]) / 2.0))
    return a


@dataclass(frozen=True)
class GaussianStats:
    """Sufficient statistics of ``count`` points per replicate.

    ``mean: (R, dim)`` sample mean, ``scatter: (R, dim, dim)`` = ``Σ (x − x̄)(x − x̄)ᵀ``,
    ``count: (R,)``.  Replicates with ``count = 0`` have mean 0 and scatter 0.
    """

    mean: np.ndarray
    scatter: np.ndarray
    count: np.ndarray

    def merge(self, other: GaussianStats) -> GaussianStats:
        """Statistics of the union (Chan, Golub & LeVeque 1979 pairwise update)."""
        n = self.count + other.count
        safe = np.where(n > 0, n, 1.0)
        delta = other.mean - self.mean
        mean = self.mean + delta * (other.count / safe)[:, None]
        w = (self.count * other.count / safe)[:, None, None]
        scatter = self.scatter + other.scatter + w * delta[:, :, None] * delta[:, None, :]
        return GaussianStats(mean=mean, scatter=scatter, count=n)


def sample_gaussian_stats(
    mean: np.ndarray, chol: np.ndarray, count: np.ndarray, rng: np.random.Generator
) -> GaussianStats:
    """Exact joint draw of (sample mean, scatter) of ``count_r`` i.i.d. ``N(mean_r, L_r L_rᵀ)``.

    ``mean: (R, dim)``, ``chol: (R, dim, dim)`` (any square root ``L`` of the covariance),
    ``count: (R,)`` integers ≥ 0.  Independence of the sample mean ``~ N(μ, Σ/n)`` and the scatter
    ``~ Wishart(Σ, n − 1)`` (Cochran's theorem) makes this an exact sampler of what a fit sees.
    """
    count = np.asarray(count, dtype=np.int64)
    r, dim = mean.shape
    z = rng.standard_normal((r, dim))
    safe = np.where(count > 0, count, 1).astype(np.float64)
    m = mean + np.einsum("rij,rj->ri", chol, z) / np.sqrt(safe)[:, None]
    m = np.where((count > 0)[:, None], m, 0.0)
    w = sample_scatter(np.clip(count - 1, 0, None), dim, rng)
    scatter = chol @ w @ np.swapaxes(chol, -1, -2)
    return GaussianStats(mean=m, scatter=scatter, count=count.astype(np.float64))


# --------------------------------------------------------------------------------------------
# Zipf tokens
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ZipfSpec:
    """I.i.d. tokens ``0..vocab−1`` with ``P(token = i−1) ∝ i^{-exponent}`` (rank ``i``)."""

    vocab: int
    exponent: float = 1.1

    def __post_init__(self) -> None:
        if self.vocab < 2:
            raise ValueError(f"vocab = {self.vocab}: must be >= 2")
        if not self.exponent > 0:
            raise ValueError(f"exponent = {self.exponent}: must be > 0")

    def probs(self) -> np.ndarray:
        """``(vocab,)`` float64, decreasing."""
        return zipf_probs(self.vocab, self.exponent)


def sample_zipf_tokens(
    spec: ZipfSpec,
    *,
    batch: int,
    seq_len: int,
    generator: torch.Generator,
) -> torch.Tensor:
    """I.i.d. Zipf tokens, ``LongTensor (batch, seq_len)`` on the generator's device."""
    if batch < 1 or seq_len < 1:
        raise ValueError(f"batch = {batch}, seq_len = {seq_len}: both must be >= 1")
    p = torch.as_tensor(spec.probs(), dtype=torch.float64, device=generator.device)
    flat = torch.multinomial(p, batch * seq_len, replacement=True, generator=generator)
    return flat.view(batch, seq_len)


# --------------------------------------------------------------------------------------------
# fixed-design regression
# --------------------------------------------------------------------------------------------


def sample_design(*, replicates: int, rows: int, dim: int, rng: np.random.Generator) -> np.ndarray:
    """Fixed designs with i.i.d. ``N(0, I_dim)`` rows, shape ``(replicates, rows, dim)``."""
    if replicates < 1 or rows < 1 or dim < 1:
        raise ValueError(f"replicates = {replicates}, rows = {rows}, dim = {dim}: must be >= 1")
    return rng.standard_normal((replicates, rows, dim))


def regression_labels(
    x: np.ndarray,
    w: np.ndarray,
    *,
    noise_std: float,
    rng: np.random.Generator,
    copies: int = 1,
) -> np.ndarray:
    """Labels ``x w + σ ε̄``: ``x: (R, T, d)``, ``w: (R, d)`` or ``(R, T, d)`` (per-row weights),
    returns ``(R, T)``.  ``copies`` = how many labelled copies of each row the dataset holds; the
    returned label is their average (noise variance ``σ²/copies``), which is all OLS sees."""
    if copies < 1:
        raise ValueError(f"copies = {copies}: must be >= 1")
    mean = np.einsum("rtd,rd->rt", x, w) if w.ndim == 2 else np.einsum("rtd,rtd->rt", x, w)
    return mean + (noise_std / math.sqrt(copies)) * rng.standard_normal(mean.shape)


# --------------------------------------------------------------------------------------------
# real data for the misspecified families
# --------------------------------------------------------------------------------------------

MIXTURE_DATASETS = ("trimodal-1d", "ring-2d", "digits-2d")


@dataclass(frozen=True)
class MixtureData:
    """A real distribution in 1 or 2 dimensions with a density on a grid.

    Either a Gaussian mixture (``weights: (K,)``, ``means: (K, dim)``, ``stds: (K,)`` isotropic) or
    an empirical data set (``points: (N, dim)``), whose reference density is a Gaussian KDE of all
    points with Scott's bandwidth (an approximation, stated as such in reports).
    ``lo``/``hi``: the box of the evaluation grid (it holds > 99.9% of the mass).
    """

    name: str
    dim: int
    lo: float
    hi: float
    weights: np.ndarray | None = None
    means: np.ndarray | None = None
    stds: np.ndarray | None = None
    points: np.ndarray | None = field(default=None, repr=False)

    @property
    def exact_density(self) -> bool:
        return self.points is None

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """``n`` fresh draws ``(n, dim)``; an empirical set is resampled with replacement."""
        if n < 0:
            raise ValueError(f"n = {n}: must be >= 0")
        if self.points is not None:
            return self.points[rng.integers(0, self.points.shape[0], size=n)]
        comp = rng.choice(self.weights.shape[0], size=n, p=self.weights)
        return self.means[comp] + self.stds[comp, None] * rng.standard_normal((n, self.dim))

    def density(self, x: np.ndarray) -> np.ndarray:
        """Density at ``x: (m, dim)`` -> ``(m,)``."""
        if self.points is not None:
            h = _scott_bandwidth(self.points)
            return _gauss_mixture_density(
                x, np.full(len(self.points), 1.0 / len(self.points)), self.points, h
            )
        return _gauss_mixture_density(x, self.weights, self.means, self.stds)

    def variance(self) -> float:
        """Per-coordinate variance averaged over coordinates (exact for mixtures and data sets)."""
        if self.points is not None:
            return float(self.points.var(axis=0).mean())
        mu = self.weights @ self.means
        second = self.weights @ (self.means**2 + self.stds[:, None] ** 2)
        return float((second - mu**2).mean())

    def grid(self, points_per_axis: int) -> tuple[np.ndarray, float]:
        """Cell centres ``(points_per_axis**dim, dim)`` and the cell volume."""
        edges = np.linspace(self.lo, self.hi, points_per_axis + 1)
        centres = 0.5 * (edges[1:] + edges[:-1])
        step = edges[1] - edges[0]
        if self.dim == 1:
            return centres[:, None], step
        gx, gy = np.meshgrid(centres, centres, indexing="ij")
        return np.stack([gx.ravel(), gy.ravel()], axis=1), step**2


def _scott_bandwidth(points: np.ndarray) -> float:
    n, d = points.shape
    return float(points.std(axis=0).mean() * n ** (-1.0 / (d + 4)))


def _gauss_mixture_density(
    x: np.ndarray, weights: np.ndarray, means: np.ndarray, stds: np.ndarray | float
) -> np.ndarray:
    """``Σ_k w_k N(x; m_k, s_k² I)`` at ``x: (m, d)``; squared distances by the Gram identity."""
    d = x.shape[1]
    stds = np.broadcast_to(np.asarray(stds, dtype=np.float64), weights.shape)
    sq = (x**2).sum(1)[:, None] + (means**2).sum(1)[None, :] - 2.0 * x @ means.T
    sq = np.clip(sq, 0.0, None)
    s2 = stds**2
    norm = (2.0 * math.pi * s2) ** (-d / 2.0)
    return np.exp(-0.5 * sq / s2) @ (weights * norm)


@lru_cache(maxsize=1)
def _digits_2d() -> np.ndarray:
    from sklearn.datasets import load_digits

    x = load_digits().data.astype(np.float64)
    x = x - x.mean(axis=0)
    # first two principal components (deterministic SVD), then standardised
    _, _, vt = np.linalg.svd(x, full_matrices=False)
    sign = np.sign(vt[:2].sum(axis=1, keepdims=True))
    pcs = x @ (vt[:2] * sign).T
    return pcs / pcs.std(axis=0)


def make_mixture_data(name: Literal["trimodal-1d", "ring-2d", "digits-2d"]) -> MixtureData:
    """The named real distribution (see the module docstring)."""
    if name == "trimodal-1d":
        return MixtureData(
            name=name,
            dim=1,
            lo=-6.0,
            hi=7.0,
            weights=np.array([0.5, 0.3, 0.2]),
            means=np.array([[-2.0], [1.0], [4.0]]),
            stds=np.array([0.6, 1.0, 0.4]),
        )
    if name == "ring-2d":
        angles = 2.0 * math.pi * np.arange(8) / 8
        return MixtureData(
            name=name,
            dim=2,
            lo=-3.5,
            hi=3.5,
            weights=np.full(8, 1.0 / 8),
            means=2.0 * np.stack([np.cos(angles), np.sin(angles)], axis=1),
            stds=np.full(8, 0.25),
        )
    if name == "digits-2d":
        pts = _digits_2d()
        return MixtureData(name=name, dim=2, lo=-4.0, hi=4.0, points=pts)
    raise ValueError(f"mixture data = {name!r}: allowed {', '.join(MIXTURE_DATASETS)}")
