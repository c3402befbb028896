"""A neural n-gram language model (Bengio et al. 2003, "A neural probabilistic language model"):
the previous ``context`` tokens are embedded, concatenated and passed through a one-hidden-layer
MLP to next-token logits.

It has no positional embedding and no recurrence, so every parameter is used by ``nn.Embedding``
and ``nn.Linear`` on inputs with a leading batch axis: Opacus computes its per-example gradients
exactly (DP-SGD), unlike a GPT whose positional embedding is applied without a batch axis.

Convention (as :class:`fmtheory.models.token_lm.TokenLM`): ``logits[:, t]`` is the distribution of
``tokens[:, t]`` given ``tokens[:, t − context : t]``, with positions before 0 filled by BOS (the
extra id ``vocab``), so the training loss is ``cross_entropy(forward(tokens), tokens)`` without a
shift.  Shapes: tokens ``(B, T)`` int64 in ``[0, vocab)``; logits ``(B, T, vocab)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["NGramLMConfig", "NGramLM"]


@dataclass(frozen=True)
class NGramLMConfig:
    """vocab: token types (BOS is the extra id ``vocab``).  context: tokens seen before each
    prediction (n − 1 of an n-gram).  embed_dim: width of a token embedding.  hidden: width of the
    MLP's hidden layer."""

    vocab: int
    context: int = 4
    embed_dim: int = 16
    hidden: int = 128

    def __post_init__(self) -> None:
        for name in ("vocab", "context", "embed_dim", "hidden"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"{name} = {v!r}: must be an integer >= 1")
        if self.vocab < 2:
            raise ValueError(f"vocab = {self.vocab}: must be >= 2")


class NGramLM(nn.Module):
    """``forward(tokens: (B, T)) -> logits (B, T, vocab)``; see the module docstring."""

    def __init__(self, config: NGramLMConfig):
        super().__init__()
        self.config = config
        self.bos = config.vocab
        self.embed = nn.Embedding(config.vocab + 1, config.embed_dim)  # +1: BOS
        self.fc = nn.Linear(config.context * config.embed_dim, config.hidden)
        self.head = nn.Linear(config.hidden, config.vocab)

    def windows(self, tokens: torch.Tensor) -> torch.Tensor:
        """The context of every position: ``(B, T, context)``, BOS before the start."""
        c = self.config.context
        padded = F.pad(tokens, (c, 0), value=self.bos)  # (B, T + c)
        return padded.unfold(1, c, 1)[:, :-1]  # (B, T, c): window t holds tokens t−c .. t−1

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        w = self.windows(tokens)  # (B, T, c)
        e = self.embed(w).flatten(2)  # (B, T, c·embed_dim)
        return self.head(torch.tanh(self.fc(e)))  # (B, T, vocab)
