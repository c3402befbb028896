"""Garg et al. 2022's simple baselines: zero, averaging and k-nearest neighbours, batched."""

from __future__ import annotations

import torch
from torch import Tensor

from fmtheory.estimators._linalg import chunks, exclusive_cumsum
from fmtheory.estimators.base import (
    COMPUTE_DTYPE,
    ICLEstimator,
    LinearICLEstimator,
    check_int,
    register_estimator,
)

__all__ = ["Zero", "Averaging", "KNN"]


class Zero(LinearICLEstimator):
    """Predicts ``ŷ = 0`` (``coef_ = 0``): the error of the prior mean, Garg et al. 2022 Fig. 2."""

    name = "zero"

    def __init__(self) -> None:
        pass

    def _fit(self, x: Tensor, y: Tensor) -> None:
        self.coef_ = torch.zeros(x.shape[0], x.shape[2], dtype=COMPUTE_DTYPE, device=x.device)

    def _predict_prefixes(self, x: Tensor, y: Tensor) -> Tensor:
        return torch.zeros(x.shape[:2], dtype=COMPUTE_DTYPE, device=x.device)


class Averaging(LinearICLEstimator):
    """``ŵ = (1/k) Σ_{i<k} y_i x_i`` (0 when ``k = 0``); Garg et al. 2022 §3, "averaging".

    Equals one gradient step with unit learning rate from 0 on ``(1/2k)‖y − Xw‖²``.
    All prefixes by a cumulative sum.
    """

    name = "averaging"

    def __init__(self) -> None:
        pass

    def _fit(self, x: Tensor, y: Tensor) -> None:
        x, y = x.to(COMPUTE_DTYPE), y.to(COMPUTE_DTYPE)
        k = x.shape[1]
        s = torch.einsum("bkd,bk->bd", x, y)
        self.coef_ = s / k if k > 0 else s

    def _predict_prefixes(self, x: Tensor, y: Tensor) -> Tensor:
        x, y = x.to(COMPUTE_DTYPE), y.to(COMPUTE_DTYPE)
        s = exclusive_cumsum(x * y.unsqueeze(-1), 1)  # (B, n, d): sums over i < k
        k = torch.arange(x.shape[1], dtype=COMPUTE_DTYPE, device=x.device).clamp(min=1)
        return (x * s).sum(-1) / k


class KNN(ICLEstimator):
    """Mean label of the ``n_neighbors`` nearest context points (Euclidean), Garg et al. 2022 §3.

    With fewer than ``n_neighbors`` context points, the mean over all of them; 0 when ``k = 0``.
    All prefixes at once by masking the distance matrix to earlier points.  Ties in distance are
    broken by ``torch.topk`` (scikit-learn's ``KNeighborsRegressor`` may pick another of the tied
    points).
    """

    name = "knn"

    def __init__(self, *, n_neighbors: int = 3) -> None:
        check_int("n_neighbors", n_neighbors, owner="knn", low=1)
        self.n_neighbors = n_neighbors

    def _fit(self, x: Tensor, y: Tensor) -> None:
        self.x_ = x.to(COMPUTE_DTYPE)
        self.y_ = y.to(COMPUTE_DTYPE)

    @staticmethod
    def _mean_of_nearest(dist: Tensor, labels: Tensor, nn: int) -> Tensor:
        """``dist: (B, m, k)`` (inf = not allowed), ``labels: (B, k)`` -> ``(B, m)``."""
        kk = min(nn, dist.shape[-1])
        if kk == 0:
            return torch.zeros(dist.shape[:2], dtype=COMPUTE_DTYPE, device=dist.device)
        vals, idx = torch.topk(dist, kk, dim=-1, largest=False)
        valid = torch.isfinite(vals)
        lab = torch.gather(labels.unsqueeze(1).expand(-1, dist.shape[1], -1), 2, idx)
        count = valid.sum(-1).clamp(min=1)
        return torch.where(valid, lab, torch.zeros_like(lab)).sum(-1) / count

    def _predict(self, x: Tensor) -> Tensor:
        x = x.to(COMPUTE_DTYPE)
        out = torch.empty(x.shape[:2], dtype=COMPUTE_DTYPE, device=x.device)
        k = self.x_.shape[1]
        for sl in chunks(x.shape[0], x.shape[1] * max(k, 1)):
            d = torch.cdist(x[sl], self.x_[sl], compute_mode="donot_use_mm_for_euclid_dist")
            out[sl] = self._mean_of_nearest(d, self.y_[sl], int(self.n_neighbors))
        return out

    def _predict_prefixes(self, x: Tensor, y: Tensor) -> Tensor:
        x, y = x.to(COMPUTE_DTYPE), y.to(COMPUTE_DTYPE)
        n = x.shape[1]
        out = torch.empty(x.shape[:2], dtype=COMPUTE_DTYPE, device=x.device)
        later = torch.ones(n, n, dtype=torch.bool, device=x.device).triu()  # j >= k: not context
        for sl in chunks(x.shape[0], n * n):
            d = torch.cdist(x[sl], x[sl], compute_mode="donot_use_mm_for_euclid_dist")
            d = d.masked_fill(later, float("inf"))
            out[sl] = self._mean_of_nearest(d, y[sl], int(self.n_neighbors))
        return out


register_estimator("zero", Zero)
register_estimator("averaging", Averaging)
register_estimator("knn", KNN)
