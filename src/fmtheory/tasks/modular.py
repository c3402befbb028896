"""Modular addition (Power et al. 2022, "Grokking: generalization beyond overfitting on small
algorithmic datasets"; Nanda et al. 2023, "Progress measures for grokking", §3).

Every pair (a, b) ∈ Z_p² is the sequence ``[a, b, =]`` (token ``p`` is "="), labelled (a + b) mod p.
A seeded permutation splits the p² pairs into a training set (the first ``round(fraction · p²)``)
and a test set (the rest).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

__all__ = ["ModularSplit", "modular_addition_split"]


@dataclass(frozen=True)
class ModularSplit:
    """x_train: (n_train, 3) int64, y_train: (n_train,); x_test, y_test likewise; p: the modulus."""

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    p: int


def modular_addition_split(*, p: int, fraction: float, generator: torch.Generator) -> ModularSplit:
    """All p² sequences ``[a, b, p]`` with labels (a + b) mod p, split by a permutation drawn from
    ``generator``; tensors on the CPU."""
    if p < 3:
        raise ValueError(f"p = {p}: must be >= 3")
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"fraction = {fraction}: must be in (0, 1)")
    a = torch.arange(p).repeat_interleave(p)
    b = torch.arange(p).repeat(p)
    x = torch.stack([a, b, torch.full_like(a, p)], dim=1)  # (p², 3)
    y = (a + b) % p
    perm = torch.randperm(p * p, generator=generator, device=generator.device).cpu()
    n = min(p * p - 1, max(1, round(fraction * p * p)))
    tr, te = perm[:n], perm[n:]
    return ModularSplit(x[tr], y[tr], x[te], y[te], p)
