"""A finite pool of M task vectors and the pretraining sampler that draws tasks only from it
(Raventós, Paul, Chen & Ganguli 2023, "Pretraining task diversity and the emergence of non-Bayesian
in-context learning for regression", NeurIPS, §2: "task diversity" = the number M of distinct
regression vectors seen in pretraining).

* :func:`sample_task_pool` draws ``w_1..w_M ~ N(w_mean·1, w_scale² I)`` (the Gaussian prior of
  :class:`~fmtheory.tasks.regression.RegressionSpec`).  A sweep over M draws the largest pool once
  and takes its first M rows (:func:`nested_pools`), so the pools are nested and the sweep changes one
  thing at a time.
* :func:`sample_pool_regression` samples prompts whose task is a uniformly chosen pool row; x and the
  noise follow ``spec`` exactly as :func:`~fmtheory.tasks.regression.sample_regression` does.

Shapes are batch-first: ``pool: (M, dim)``, ``x: (batch, n_points, dim)``, ``y: (batch, n_points)``,
``w: (batch, dim)``, ``task_index: (batch,)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from fmtheory.tasks.regression import RegressionSpec

__all__ = ["PoolBatch", "sample_task_pool", "nested_pools", "sample_pool_regression"]


def _positive_int(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} = {value!r}: must be an integer >= 1")
    return value


def sample_task_pool(
    spec: RegressionSpec,
    *,
    n_tasks: int,
    generator: torch.Generator,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """``n_tasks`` (= M) task vectors from the prior of ``spec``: ``(M, dim)``.

    w ~ N(w_mean·1, w_scale² I) (sparsity, if any, is ignored: the pool experiments use dense
    Gaussian tasks).  Draws happen on the generator's device.  (Two calls with different M from the
    same generator state need not share rows: slice one large pool with :func:`nested_pools`.)
    """
    m = _positive_int("n_tasks (M)", n_tasks)
    if spec.sparsity is not None:
        raise ValueError(f"spec.sparsity = {spec.sparsity}: task pools use dense Gaussian tasks")
    w = torch.randn(m, spec.dim, generator=generator, device=generator.device, dtype=dtype)
    return w * spec.w_scale + spec.w_mean


def nested_pools(pool: torch.Tensor, sizes: list[int]) -> dict[int, torch.Tensor]:
    """``{M: pool[:M]}`` for each M in ``sizes`` (each <= len(pool)): nested sub-pools."""
    if pool.ndim != 2:
        raise ValueError(f"pool.shape = {tuple(pool.shape)}: expected (M, dim)")
    out = {}
    for m in sizes:
        _positive_int("M", m)
        if m > pool.shape[0]:
            raise ValueError(f"M = {m}: larger than the pool ({pool.shape[0]} tasks)")
        out[m] = pool[:m]
    return out


@dataclass(frozen=True)
class PoolBatch:
    """``x: (batch, n_points, dim)``, ``y: (batch, n_points)``, ``w: (batch, dim)`` and the pool row
    of each prompt ``task_index: (batch,)`` (int64)."""

    x: torch.Tensor
    y: torch.Tensor
    w: torch.Tensor
    task_index: torch.Tensor


def sample_pool_regression(
    spec: RegressionSpec,
    pool: torch.Tensor,
    *,
    batch: int,
    n_points: int,
    generator: torch.Generator,
    dtype: torch.dtype = torch.float32,
) -> PoolBatch:
    """Prompts whose task is a uniformly drawn row of ``pool: (M, dim)``.

    x ~ N(0, Σx) of ``spec`` (its ``x_variances``), y = <w, x> + N(0, noise_std²).  Raventós et al.
    2023 §2: pretraining draws w uniformly from the M pool tasks.  Draws happen on the generator's
    device; ``pool`` is moved there.
    """
    _positive_int("batch", batch)
    _positive_int("n_points", n_points)
    if pool.ndim != 2 or pool.shape[0] < 1 or pool.shape[1] != spec.dim:
        raise ValueError(f"pool.shape = {tuple(pool.shape)}: expected (M >= 1, dim = {spec.dim})")
    dev = generator.device
    d = spec.dim
    std = spec.x_variances(dtype).to(dev).sqrt()
    x = torch.randn(batch, n_points, d, generator=generator, device=dev, dtype=dtype) * std
    idx = torch.randint(pool.shape[0], (batch,), generator=generator, device=dev)
    w = pool.to(device=dev, dtype=dtype)[idx]  # (batch, dim)
    y = torch.einsum("bnd,bd->bn", x, w)
    if spec.noise_std > 0:
        y = y + spec.noise_std * torch.randn(
            batch, n_points, generator=generator, device=dev, dtype=dtype
        )
    return PoolBatch(x=x, y=y, w=w, task_index=idx)
