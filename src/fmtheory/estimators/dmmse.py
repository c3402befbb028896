"""The discrete MMSE estimator of Raventós et al. 2023: Bayes-optimal for a finite task pool."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from fmtheory.estimators._linalg import chunks, exclusive_cumsum
from fmtheory.estimators.base import (
    COMPUTE_DTYPE,
    LinearICLEstimator,
    check_real,
    register_estimator,
)

__all__ = ["DMMSE"]


class DMMSE(LinearICLEstimator):
    """Posterior mean over a pool of ``M`` tasks with uniform prior:
    ``ŵ = Σ_m π_m w_m``, ``π_m ∝ exp(−Σ_{i<k} (y_i − w_mᵀx_i)² / (2σ²))``.

    Raventós, Paul, Chen & Ganguli 2023, "Pretraining task diversity and the emergence of
    non-Bayesian in-context learning for regression", §2 (the dMMSE estimator, Bayes-optimal for
    the pretraining distribution uniform on the pool).  ``pool: (M, dim)``, ``noise_std = σ > 0``.
    Weights by ``softmax`` (log-sum-exp stable); all prefixes by cumulative sums of squared
    residuals.  ``k = 0`` gives the pool mean.
    """

    name = "dmmse"

    def __init__(self, *, pool: Tensor, noise_std: float) -> None:
        if not isinstance(pool, Tensor) or not pool.is_floating_point() or pool.ndim != 2:
            shape = tuple(pool.shape) if isinstance(pool, Tensor) else type(pool).__name__
            raise ValueError(f"dmmse.pool = {shape}: expected a floating tensor of shape (M, dim)")
        if pool.shape[0] < 1 or pool.shape[1] < 1:
            raise ValueError(f"dmmse.pool.shape = {tuple(pool.shape)}: expected M >= 1, dim >= 1")
        if not bool(torch.isfinite(pool).all()):
            raise ValueError("dmmse.pool holds NaN or inf: every entry must be finite")
        check_real("noise_std", noise_std, owner="dmmse", low=0.0, low_open=True)
        self.pool = pool
        self.noise_std = noise_std

    @classmethod
    def example_params(cls) -> dict[str, Any]:
        g = torch.Generator().manual_seed(0)
        return {"pool": torch.randn(16, 3, generator=g, dtype=torch.float64), "noise_std": 0.5}

    def _pool(self, x: Tensor) -> Tensor:
        if self.pool.shape[1] != x.shape[-1]:
            raise ValueError(
                f"dmmse.pool.shape = {tuple(self.pool.shape)}: x has dim {x.shape[-1]}"
            )
        return self.pool.detach().to(x.device, COMPUTE_DTYPE)

    def _fit(self, x: Tensor, y: Tensor) -> None:
        x, y = x.to(COMPUTE_DTYPE), y.to(COMPUTE_DTYPE)
        pool = self._pool(x)
        s2 = float(self.noise_std) ** 2
        sse = ((y.unsqueeze(-1) - x @ pool.T) ** 2).sum(1)  # (B, M)
        self.weights_ = torch.softmax(-sse / (2 * s2), dim=-1)
        self.coef_ = self.weights_ @ pool

    def _predict_prefixes(self, x: Tensor, y: Tensor) -> Tensor:
        x, y = x.to(COMPUTE_DTYPE), y.to(COMPUTE_DTYPE)
        pool = self._pool(x)
        s2 = float(self.noise_std) ** 2
        batch, n, _ = x.shape
        out = torch.empty(batch, n, dtype=COMPUTE_DTYPE, device=x.device)
        for sl in chunks(batch, n * pool.shape[0], budget=1 << 20):
            sq = (y[sl].unsqueeze(-1) - x[sl] @ pool.T) ** 2  # (b, n, M)
            weights = torch.softmax(-exclusive_cumsum(sq, 1) / (2 * s2), dim=-1)
            out[sl] = (x[sl] * (weights @ pool)).sum(-1)
        return out


register_estimator("dmmse", DMMSE)
