"""Small encoders and the two contrastive losses of the ``contrastive-ssl`` experiment.

* :func:`spectral_contrastive_loss` — HaoChen, Wei, Gaidon & Ma 2021 (NeurIPS), eq. (4), on a batch:
  −2 mean_a f(x_a)ᵀf(x⁺_a) + mean_{a≠b} (f(x_a)ᵀf(x⁺_b))², the off-diagonal pairs standing for
  independent draws from the vertex marginal.
* :func:`info_nce_loss` — van den Oord et al. 2018 / SimCLR (Chen et al. 2020) with normalised
  embeddings and temperature τ, the other views of the batch as negatives.
* :class:`TabularEncoder` — one free embedding per vertex of a finite augmentation graph (the
  "realisable" function class of HaoChen et al.'s population analysis).
* :class:`LinearEncoder` — f(x) = W x, the linear network of Jing, Vincent, LeCun & Tian 2022
  ("Understanding dimensional collapse in contrastive self-supervised learning", ICLR, §4).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "spectral_contrastive_loss",
    "info_nce_loss",
    "TabularEncoder",
    "LinearEncoder",
    "LOSSES",
]

LOSSES = ("spectral", "infonce")


def spectral_contrastive_loss(fa: torch.Tensor, fb: torch.Tensor) -> torch.Tensor:
    """``fa, fb: (B, k)`` embeddings of the two views of B positive pairs -> scalar (B ≥ 2)."""
    B = fa.shape[0]
    m = fa @ fb.T  # (B, B)
    pos = m.diagonal().mean()
    off = (m.pow(2).sum() - m.diagonal().pow(2).sum()) / (B * (B - 1))
    return -2.0 * pos + off


def info_nce_loss(fa: torch.Tensor, fb: torch.Tensor, temperature: float = 0.5) -> torch.Tensor:
    """``fa, fb: (B, k)``: cross-entropy of each view against the B views of the other side."""
    za, zb = F.normalize(fa, dim=1), F.normalize(fb, dim=1)
    logits = za @ zb.T / temperature  # (B, B)
    return F.cross_entropy(logits, torch.arange(fa.shape[0], device=fa.device))


class TabularEncoder(nn.Module):
    """``forward(idx: (B,) long) -> (B, k)``: a free k-vector per vertex, initialised N(0, 0.1²)."""

    def __init__(self, n_vertices: int, dim: int):
        super().__init__()
        self.table = nn.Parameter(torch.randn(n_vertices, dim) * 0.1)

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        return self.table[idx]


class LinearEncoder(nn.Module):
    """``forward(x: (B, d)) -> (B, d)``: f(x) = W x, W initialised at I + N(0, 0.01²)."""

    def __init__(self, dim: int):
        super().__init__()
        self.weight = nn.Parameter(torch.eye(dim) + 0.01 * torch.randn(dim, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x @ self.weight.T
