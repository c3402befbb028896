"""A table of logits (or rewards), batched over independent problems: the "policy over a finite
response set" of DPO / RLHF experiments (Rafailov et al. 2023 §5 use the same tabular view)."""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["TabularTable"]


class TabularTable(nn.Module):
    """``table``: (batch, n_states, n_actions) parameters, initialised from ``init``.

    As a policy, ``log_probs()`` = log_softmax over actions; as a reward model, ``table`` itself.
    The batch axis holds independent problems (data sets): no term of a loss mixes them.
    """

    def __init__(self, init: torch.Tensor):
        super().__init__()
        self.table = nn.Parameter(init.detach().clone().to(torch.float64))

    def log_probs(self) -> torch.Tensor:
        """(batch, n_states, n_actions) log π(a|s)."""
        return torch.log_softmax(self.table, dim=-1)

    def forward(self) -> torch.Tensor:
        return self.table
