"""Linear-regression prompts y = <w, x> + noise (Garg et al. 2022, "What can transformers learn
in-context?", §2; the Gaussian prior and noise of Raventós et al. 2023).

A prompt is (x_1, y_1, ..., x_n, y_n): ``x: (batch, n_points, dim)``, ``y: (batch, n_points)``,
``w: (batch, dim)``.  The last pair of a prompt serves as the query when only one is needed; for
evaluation at every context length, position k is predicted from the k pairs before it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

__all__ = ["RegressionSpec", "RegressionBatch", "sample_regression", "make_generator"]


def make_generator(seed: int, device: torch.device | str = "cpu") -> torch.Generator:
    """A fresh generator seeded with ``seed`` on ``device`` (samplers never read global state)."""
    g = torch.Generator(device=torch.device(device))
    g.manual_seed(int(seed))
    return g


@dataclass(frozen=True)
class RegressionSpec:
    """The task family.

    x ~ N(0, Σx) with Σx diagonal, eigenvalues geometric from 1 to 1/x_cond, rescaled to trace = dim
    (x_cond = 1: identity).  w ~ N(w_mean·1, w_scale²·I); if ``sparsity`` = k, all but k uniformly chosen
    coordinates of w are zeroed (Garg et al.'s sparse linear functions).  noise ~ N(0, noise_std²).
    """

    dim: int
    noise_std: float = 0.0
    x_cond: float = 1.0
    w_mean: float = 0.0
    w_scale: float = 1.0
    sparsity: int | None = None

    def __post_init__(self) -> None:
        if self.dim < 1:
            raise ValueError(f"dim = {self.dim}: must be >= 1")
        if self.noise_std < 0:
            raise ValueError(f"noise_std = {self.noise_std}: must be >= 0")
        if self.x_cond < 1:
            raise ValueError(f"x_cond = {self.x_cond}: must be >= 1")
        if self.w_scale <= 0:
            raise ValueError(f"w_scale = {self.w_scale}: must be > 0")
        if self.sparsity is not None and not 1 <= self.sparsity <= self.dim:
            raise ValueError(f"sparsity = {self.sparsity}: must be in [1, dim={self.dim}]")

    def x_variances(self, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """Diagonal of Σx, shape (dim,), summing to dim."""
        if self.dim == 1 or self.x_cond == 1.0:
            return torch.ones(self.dim, dtype=dtype)
        e = torch.logspace(0.0, -math.log10(self.x_cond), self.dim, dtype=torch.float64)
        return (e * self.dim / e.sum()).to(dtype)

    def x_covariance(self, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """Σx, shape (dim, dim)."""
        return torch.diag(self.x_variances(dtype))

    def w_prior(self, dtype: torch.dtype = torch.float32) -> tuple[torch.Tensor, torch.Tensor]:
        """(mean (dim,), covariance (dim, dim)) of the Gaussian prior on w (ignores sparsity)."""
        mean = torch.full((self.dim,), float(self.w_mean), dtype=dtype)
        cov = torch.eye(self.dim, dtype=dtype) * self.w_scale**2
        return mean, cov


@dataclass(frozen=True)
class RegressionBatch:
    """``x: (batch, n_points, dim)``, ``y: (batch, n_points)`` noisy labels, ``w: (batch, dim)``."""

    x: torch.Tensor
    y: torch.Tensor
    w: torch.Tensor


def sample_regression(
    spec: RegressionSpec,
    *,
    batch: int,
    n_points: int,
    generator: torch.Generator,
    active_dims: int | None = None,
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float32,
) -> RegressionBatch:
    """Sample ``batch`` prompts of ``n_points`` pairs.

    ``active_dims`` (curriculum, Garg et al. §3): only the first ``active_dims`` coordinates of x are
    non-zero; the rest are 0, so the effective task dimension is smaller.  Draws happen on the
    generator's device.
    """
    if batch < 1 or n_points < 1:
        raise ValueError(f"batch = {batch}, n_points = {n_points}: both must be >= 1")
    d = spec.dim
    dev = generator.device if device is None else torch.device(device)
    std = spec.x_variances(dtype).to(dev).sqrt()
    x = torch.randn(batch, n_points, d, generator=generator, device=dev, dtype=dtype) * std
    if active_dims is not None and active_dims < d:
        if active_dims < 1:
            raise ValueError(f"active_dims = {active_dims}: must be >= 1")
        x[..., active_dims:] = 0.0
    w = torch.randn(batch, d, generator=generator, device=dev, dtype=dtype) * spec.w_scale
    w = w + spec.w_mean
    if spec.sparsity is not None and spec.sparsity < d:
        keys = torch.rand(batch, d, generator=generator, device=dev)
        keep = keys.argsort(dim=1)[:, : spec.sparsity]
        mask = torch.zeros(batch, d, device=dev, dtype=dtype).scatter_(1, keep, 1.0)
        w = w * mask
    y = torch.einsum("bnd,bd->bn", x, w)
    if spec.noise_std > 0:
        y = y + spec.noise_std * torch.randn(
            batch, n_points, generator=generator, device=dev, dtype=dtype
        )
    return RegressionBatch(x=x, y=y, w=w)
