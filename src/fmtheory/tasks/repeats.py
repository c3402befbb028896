"""Repeated random segments with a variable period (the induction-head task of Olsson et al. 2022,
"In-context learning and induction heads", §"Argument 1"; Elhage et al. 2021, repeated random tokens).

A sequence is ``x_t = s_{t mod P}`` for a segment ``s`` of ``P`` distinct tokens drawn uniformly
without replacement from ``[0, vocab)`` and a period ``P`` uniform in ``[period_min, period_max]``.
Targets ``x_1 .. x_{P-1}`` (first copy) are unpredictable; targets ``x_{P+1} ..`` are predicted by an
induction head (attend to the token after the previous occurrence of the current one).  Because ``P``
varies, positions alone cannot find that token.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

__all__ = ["RepeatBatch", "sample_repeats"]


@dataclass(frozen=True)
class RepeatBatch:
    """tokens: (B, T) int64.  period: (B,) int64, the period P of each sequence."""

    tokens: torch.Tensor
    period: torch.Tensor


def sample_repeats(*, batch: int, seq_len: int, vocab: int, period_min: int, period_max: int,
                   generator: torch.Generator) -> RepeatBatch:  # fmt: skip
    """``batch`` sequences of length ``seq_len`` (on the generator's device)."""
    if not 2 <= period_min <= period_max:
        raise ValueError(f"period range [{period_min}, {period_max}]: need 2 <= min <= max")
    if period_max > vocab:
        raise ValueError(f"period_max = {period_max}: must be <= vocab = {vocab} (distinct tokens)")
    if 2 * period_max > seq_len:
        raise ValueError(f"period_max = {period_max}: must be <= seq_len / 2 = {seq_len / 2}")
    dev = generator.device
    period = torch.randint(period_min, period_max + 1, (batch,), generator=generator, device=dev)
    segment = torch.rand(batch, vocab, generator=generator, device=dev).argsort(dim=1)  # (B, V)
    idx = torch.arange(seq_len, device=dev)[None, :] % period[:, None]  # (B, T)
    return RepeatBatch(tokens=segment.gather(1, idx), period=period)
