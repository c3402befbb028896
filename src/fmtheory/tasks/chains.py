"""Deterministic chains through a fixed random permutation, started from a Zipf-distributed token: a
task whose answer is L tokens long and whose per-token difficulty varies (frequent entries of the map
are learned first), for the emergence-mirage experiment (Schaeffer, Miranda & Koyejo 2023).

``x_0 ~ Zipf(α)`` over ``[0, vocab)`` (``P(x_0 = k) ∝ (k + 1)^−α``), ``x_{t+1} = perm[x_t]``.
"""

from __future__ import annotations

import torch

__all__ = ["random_permutation", "sample_chains"]


def random_permutation(vocab: int, *, generator: torch.Generator) -> torch.Tensor:
    """A uniformly random permutation of ``[0, vocab)``: (vocab,) int64, on the generator's device."""
    return torch.randperm(vocab, generator=generator, device=generator.device)


def sample_chains(*, perm: torch.Tensor, batch: int, length: int, zipf_alpha: float,
                  generator: torch.Generator) -> torch.Tensor:  # fmt: skip
    """``batch`` chains of ``length`` tokens: (batch, length) int64."""
    if length < 2:
        raise ValueError(f"length = {length}: must be >= 2")
    if zipf_alpha < 0:
        raise ValueError(f"zipf_alpha = {zipf_alpha}: must be >= 0")
    V = perm.numel()
    weights = torch.arange(1, V + 1, dtype=torch.float64, device=perm.device).pow(-zipf_alpha)
    x = torch.multinomial(weights, batch, replacement=True, generator=generator)  # (B,)
    out = [x]
    for _ in range(length - 1):
        x = perm[x]
        out.append(x)
    return torch.stack(out, dim=1)  # (B, length)
