"""A multilayer perceptron: ``x: (batch, in_dim) -> (batch, out_dim)`` logits, ReLU between layers.

Weights follow PyTorch's default (Kaiming-uniform) initialisation; seed it with
:func:`fmtheory.train.seeded`.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["MLPClassifier", "classifier_label"]


class MLPClassifier(nn.Module):
    """in_dim → hidden[0] → ... → hidden[-1] → out_dim, ReLU after each hidden layer."""

    def __init__(self, in_dim: int, hidden: list[int] | tuple[int, ...], out_dim: int):
        super().__init__()
        for name, v in (("in_dim", in_dim), ("out_dim", out_dim), *(("hidden", h) for h in hidden)):
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"{name} = {v!r}: must be an integer >= 1")
        dims = [in_dim, *hidden, out_dim]
        layers: list[nn.Module] = []
        for a, b in zip(dims[:-1], dims[1:], strict=True):
            layers += [nn.Linear(a, b), nn.ReLU()]
        self.net = nn.Sequential(*layers[:-1])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x.flatten(1))


def classifier_label(in_dim: int, hidden: list[int] | tuple[int, ...], out_dim: int) -> str:
    """e.g. "MLP 64-100-10 (ReLU)"."""
    return f"MLP {'-'.join(str(d) for d in (in_dim, *hidden, out_dim))} (ReLU)"
