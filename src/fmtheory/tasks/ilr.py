"""Inverse-linear-regression prompts with a low-rank cross-task prior (Lu & Yu 2025,
"Transformer learns the cross-task prior and regularization for in-context learning",
arXiv:2505.12138, §2).

A pretraining run draws ONE prior, shared by all its tasks::

    w0 ∈ R^d  (norm ``w0_norm``, uniformly random direction),   U ∈ R^{d×r} Haar orthonormal,

and each task draws ``v ~ N(0, Λ)``, ``Λ = prior_scale² I_r``, so ``w = w0 + U v``.  A prompt of
the task holds ``x ~ N(0, Σx)`` (Σx diagonal, eigenvalues geometric from 1 to 1/x_cond, rescaled to
trace d as :class:`~fmtheory.tasks.regression.RegressionSpec` does, or with the largest at 1) and ``y = <w, x> + N(0, σ²)``.
The context length n may be smaller than d.  Two targets: the inverse target w (estimate it from the
context) and the forward target y at a query x (the last pair of a prompt, when one is wanted).

Shapes are batch-first: ``x: (batch, n_points, dim)``, ``y: (batch, n_points)``, ``w: (batch, dim)``,
``v: (batch, rank)``.  Samplers are pure functions of (spec, prior, generator).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch

from fmtheory.tasks.regression import RegressionSpec

__all__ = ["ILRSpec", "ILRPrior", "ILRBatch", "sample_ilr_prior", "sample_ilr"]


@dataclass(frozen=True)
class ILRSpec:
    """The task family: dimension d, prior rank r <= d, noise σ, condition number κ of Σx.

    ``prior_scale``: standard deviation of each coordinate of v (Λ = prior_scale² I_r).
    ``w0_norm``: ‖w0‖ (0: tasks centred at the origin).
    ``alignment``: "random" — U is Haar-random (then UᵀΣxU averages the spectrum of Σx and κ
    barely matters); "weakest" — U spans the r coordinate axes of smallest x-variance (randomly
    rotated within them), the case where the conditioning of the inputs hurts most.
    ``x_scale``: "trace" — the eigenvalues of Σx sum to d (the convention of ``RegressionSpec``:
    raising κ also raises the strongest directions); "max" — they run from 1 down to 1/κ (the largest
    fixed, so raising κ only weakens directions).
    """

    dim: int
    rank: int
    noise_std: float = 0.0
    x_cond: float = 1.0
    prior_scale: float = 1.0
    w0_norm: float = 1.0
    alignment: Literal["random", "weakest"] = "random"
    x_scale: Literal["trace", "max"] = "trace"

    def __post_init__(self) -> None:
        if self.alignment not in ("random", "weakest"):
            raise ValueError(f"alignment = {self.alignment!r}: must be 'random' or 'weakest'")
        if self.x_scale not in ("trace", "max"):
            raise ValueError(f"x_scale = {self.x_scale!r}: must be 'trace' or 'max'")
        for name in ("dim", "rank"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"{name} = {v!r}: must be an integer >= 1")
        if self.rank > self.dim:
            raise ValueError(f"rank = {self.rank}: must be <= dim = {self.dim}")
        checks = (
            ("noise_std", self.noise_std >= 0, ">= 0"),
            ("x_cond", self.x_cond >= 1, ">= 1"),
            ("prior_scale", self.prior_scale > 0, "> 0"),
            ("w0_norm", self.w0_norm >= 0, ">= 0"),
        )
        for name, ok, allowed in checks:
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and math.isfinite(v) and ok):
                raise ValueError(f"{name} = {v!r}: must be a finite number {allowed}")

    def x_variances(self, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """Diagonal of Σx, shape (dim,): geometric from the largest to the largest/κ, summing to dim
        (``x_scale="trace"``, as RegressionSpec) or with the largest equal to 1 (``"max"``)."""
        v = RegressionSpec(dim=self.dim, x_cond=self.x_cond).x_variances(dtype)
        return v / v.max() if self.x_scale == "max" else v

    def spectrum(self, dtype: torch.dtype = torch.float64) -> torch.Tensor:
        """Prior variances of v, shape (rank,): Λ = prior_scale² I_r."""
        return torch.full((self.rank,), float(self.prior_scale) ** 2, dtype=dtype)


@dataclass(frozen=True)
class ILRPrior:
    """One pretraining run's prior: ``w0: (dim,)``, ``basis: (dim, rank)`` orthonormal U,
    ``spectrum: (rank,)`` the variances Λ of v.  float64."""

    w0: torch.Tensor
    basis: torch.Tensor
    spectrum: torch.Tensor

    @property
    def cov(self) -> torch.Tensor:
        """Σw = U Λ Uᵀ, shape (dim, dim)."""
        return (self.basis * self.spectrum) @ self.basis.T


@dataclass(frozen=True)
class ILRBatch:
    """``x: (batch, n_points, dim)``, ``y: (batch, n_points)``, ``w: (batch, dim)``, ``v: (batch, rank)``."""

    x: torch.Tensor
    y: torch.Tensor
    w: torch.Tensor
    v: torch.Tensor


def sample_ilr_prior(spec: ILRSpec, *, generator: torch.Generator) -> ILRPrior:
    """Draw w0 (norm ``spec.w0_norm``, uniform direction) and U: (d, r), float64.

    Haar U: the Q of a Gaussian matrix's QR with diag(R) made positive (Mezzadri 2007, §5).
    ``alignment="weakest"``: the r axes of smallest x-variance times a Haar r×r rotation.  Drawn on
    the CPU from ``generator`` (a CPU generator).
    """
    d, r = spec.dim, spec.rank
    g = torch.randn(d, generator=generator, dtype=torch.float64)
    w0 = spec.w0_norm * g / g.norm().clamp_min(1e-300)
    rows = d if spec.alignment == "random" else r
    q, rr = torch.linalg.qr(torch.randn(rows, r, generator=generator, dtype=torch.float64))
    sign = torch.sign(torch.diagonal(rr))
    sign[sign == 0] = 1.0
    basis = q * sign
    if spec.alignment == "weakest":
        axes = torch.argsort(spec.x_variances(torch.float64), stable=True)[:r]
        basis = torch.eye(d, dtype=torch.float64)[:, axes] @ basis
    return ILRPrior(w0=w0, basis=basis, spectrum=spec.spectrum(torch.float64))


def sample_ilr(
    spec: ILRSpec,
    prior: ILRPrior,
    *,
    batch: int,
    n_points: int,
    generator: torch.Generator,
    dtype: torch.dtype = torch.float32,
) -> ILRBatch:
    """Sample ``batch`` tasks w = w0 + U v and ``n_points`` pairs of each.

    Draw order (fixed, so equal seeds give equal prompts): v, then x, then the noise.  Draws
    happen on the generator's device; ``prior`` is moved there.
    """
    if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
        raise ValueError(f"batch = {batch!r}: must be an integer >= 1")
    if isinstance(n_points, bool) or not isinstance(n_points, int) or n_points < 1:
        raise ValueError(f"n_points = {n_points!r}: must be an integer >= 1")
    if tuple(prior.basis.shape) != (spec.dim, spec.rank):
        raise ValueError(
            f"prior.basis.shape = {tuple(prior.basis.shape)}: expected (dim, rank) = "
            f"({spec.dim}, {spec.rank})"
        )
    dev = generator.device
    r, d = spec.rank, spec.dim
    lam = prior.spectrum.to(dev, dtype)
    v = torch.randn(batch, r, generator=generator, device=dev, dtype=dtype) * lam.sqrt()
    w = prior.w0.to(dev, dtype) + v @ prior.basis.to(dev, dtype).T  # (batch, d)
    std = spec.x_variances(dtype).to(dev).sqrt()
    x = torch.randn(batch, n_points, d, generator=generator, device=dev, dtype=dtype) * std
    y = torch.einsum("bnd,bd->bn", x, w)
    if spec.noise_std > 0:
        y = y + spec.noise_std * torch.randn(
            batch, n_points, generator=generator, device=dev, dtype=dtype
        )
    return ILRBatch(x=x, y=y, w=w, v=v)
