"""A ReLU MLP in NTK or mean-field parameterisation, for the lazy vs rich regimes.

NTK (Arora et al. 2019, NeurIPS, §3, eq. 3-4): weights N(0, 1), every hidden activation
scaled by √(2/width), f(x) = W⁽ᴸ⁺¹⁾ √(2/d_L) σ(…σ(W⁽¹⁾ x)) with no bias; its tangent kernel tends
to :func:`fmtheory.theory.ntk.relu_ntk` as the width grows.

Mean-field (Mei, Montanari & Nguyen 2018, PNAS; Chizat & Bach 2018): one hidden layer,
f(x) = (1/m) Σ_j a_j σ(⟨w_j, x⟩), weights N(0, 1); with a learning rate scaled by m its features
move by O(1) at every width (the rich, feature-learning regime).
"""

from __future__ import annotations

import math
from typing import Literal

import torch
from torch import nn

__all__ = ["WideMLP"]


class WideMLP(nn.Module):
    """in_dim → width (× depth hidden layers) → 1, ReLU, no biases.

    parameterization: "ntk" or "mean-field" (depth 1 only).  Input x: (n, in_dim); output (n,).
    """

    def __init__(
        self,
        in_dim: int,
        width: int,
        *,
        depth: int = 1,
        parameterization: Literal["ntk", "mean-field"] = "ntk",
    ):
        super().__init__()
        if parameterization == "mean-field" and depth != 1:
            raise ValueError(f"depth = {depth}: the mean-field network has one hidden layer")
        self.parameterization = parameterization
        dims = [in_dim] + [width] * depth + [1]
        self.weights = nn.ParameterList(
            nn.Parameter(torch.randn(b, a)) for a, b in zip(dims[:-1], dims[1:], strict=True)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x
        last = len(self.weights) - 1
        for i, w in enumerate(self.weights):
            h = h @ w.T
            if i < last:
                h = torch.relu(h)
                if self.parameterization == "ntk":
                    h = h * math.sqrt(2.0 / w.shape[0])
        if self.parameterization == "mean-field":
            h = h / self.weights[0].shape[0]
        return h[:, 0]
