"""A bias-free ReLU MLP whose weights can also be given as a batch (for sampled networks).

Biases are carried by a constant input feature (``tasks/digits.py`` appends one), so the network is
f(x) = A_L σ(… σ(A_1 x)) with matrices only: the form the norm-based bounds of Bartlett, Foster &
Telgarsky 2017 and Golowich, Rakhlin & Shamir 2018 are stated for.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

__all__ = ["MLP", "mlp_forward", "mlp_label"]


def mlp_forward(weights: Sequence[torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """Logits of a stack of networks.  weights[i]: (S, out_i, in_i) for S networks (or (out, in)
    for one); x: (n, in_0).  Returns (S, n, out_L) (or (n, out_L))."""
    h = x
    for i, w in enumerate(weights):
        h = h @ w.transpose(-1, -2)
        if i < len(weights) - 1:
            h = torch.relu(h)
    return h


class MLP(nn.Module):
    """in_dim → hidden[0] → … → out_dim, ReLU, no biases.  PyTorch's default (Kaiming-uniform)
    initialisation of ``nn.Linear``."""

    def __init__(self, in_dim: int, hidden: Sequence[int], out_dim: int):
        super().__init__()
        dims = [in_dim, *hidden, out_dim]
        self.layers = nn.ModuleList(
            nn.Linear(a, b, bias=False) for a, b in zip(dims[:-1], dims[1:], strict=True)
        )

    def weights(self) -> list[torch.Tensor]:
        """The matrices A_1..A_L, each (out, in)."""
        return [layer.weight for layer in self.layers]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (n, in_dim) -> logits (n, out_dim)."""
        return mlp_forward(self.weights(), x)


def mlp_label(in_dim: int, hidden: Sequence[int], out_dim: int) -> str:
    """e.g. "MLP 65-100-10 (ReLU, no biases)"."""
    return f"MLP {'-'.join(str(d) for d in (in_dim, *hidden, out_dim))} (ReLU, bias as input)"
