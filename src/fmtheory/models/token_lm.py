"""A tiny autoregressive token model for self-consuming loops over Zipf-distributed tokens.

``p(x_t | x_{t−1}) = softmax(W_out · MLP(E[x_{t−1}]) + b)`` with ``x_{−1} = BOS``: a neural bigram
model (context of one token).  On i.i.d. Zipf data
(:func:`fmtheory.tasks.generative.sample_zipf_tokens`) every conditional should equal the Zipf law;
the first-token distribution ``p(x_0 | BOS)`` is the quantity the self-consuming experiment tracks,
since it is exact to compute (one softmax) and its tail is what a model trained on its own samples
loses first (Dohmatob et al. 2024, "A tale of tails"; Shumailov et al. 2024).

Shapes: tokens ``(B, L)`` int64 in ``[0, vocab)``; logits ``(B, L, vocab)``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["TokenLMConfig", "TokenLM"]


@dataclass(frozen=True)
class TokenLMConfig:
    """vocab: token types (BOS is the extra id ``vocab``).  embed_dim: width of the token embedding.
    hidden: width of the one-hidden-layer MLP.  init_std: std of the N(0, std²) weight init."""

    vocab: int
    embed_dim: int = 16
    hidden: int = 64
    init_std: float = 0.02

    def __post_init__(self) -> None:
        for name in ("vocab", "embed_dim", "hidden"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"{name} = {v!r}: must be an integer >= 1")
        if self.vocab < 2:
            raise ValueError(f"vocab = {self.vocab}: must be >= 2")
        if not self.init_std > 0:
            raise ValueError(f"init_std = {self.init_std}: must be > 0")


class TokenLM(nn.Module):
    """Neural bigram language model; ``forward(tokens) -> next-token logits``.

    ``logits[:, t]`` is the distribution of ``tokens[:, t]`` given ``tokens[:, t−1]`` (BOS for
    ``t = 0``), so the training loss is ``cross_entropy(forward(tokens), tokens)`` without a shift.
    """

    def __init__(self, config: TokenLMConfig, *, generator: torch.Generator | None = None):
        super().__init__()
        if not isinstance(config, TokenLMConfig):
            raise ValueError(f"config = {config!r}: must be a TokenLMConfig")
        self.config = config
        self.bos = config.vocab
        self.embed = nn.Embedding(config.vocab + 1, config.embed_dim)  # +1: BOS
        self.fc_in = nn.Linear(config.embed_dim, config.hidden)
        self.fc_out = nn.Linear(config.hidden, config.embed_dim)
        self.head = nn.Linear(config.embed_dim, config.vocab)
        self.reset_parameters(generator=generator)

    @torch.no_grad()
    def reset_parameters(self, *, generator: torch.Generator | None = None) -> None:
        """Weights ~ N(0, init_std²) drawn from ``generator`` (CPU), biases 0.

        ``fc_out`` is scaled by ``1/√2`` as a residual branch (GPT-2 style); the head's bias starts
        at 0, i.e. the untrained model is close to uniform over the vocabulary.
        """
        std = self.config.init_std
        for name, p in self.named_parameters():
            if name.endswith("bias"):
                p.zero_()
                continue
            scale = std / math.sqrt(2.0) if name.startswith("fc_out") else std
            w = torch.randn(p.shape, generator=generator, dtype=torch.float32) * scale
            p.copy_(w.to(p.device, p.dtype))

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """``tokens: (B, L)`` -> ``logits: (B, L, vocab)``."""
        if tokens.dim() != 2:
            raise ValueError(f"tokens must have shape (batch, seq_len), got {tuple(tokens.shape)}")
        bos = torch.full_like(tokens[:, :1], self.bos)
        prev = torch.cat([bos, tokens[:, :-1]], dim=1)  # (B, L)
        return self._logits(prev)

    def _logits(self, prev: torch.Tensor) -> torch.Tensor:
        e = self.embed(prev)  # (B, L, C)
        h = e + self.fc_out(F.gelu(self.fc_in(e)))  # residual MLP
        return self.head(h)  # (B, L, V)

    def loss(self, tokens: torch.Tensor) -> torch.Tensor:
        """Mean next-token cross-entropy (nats) over ``tokens: (B, L)``."""
        logits = self.forward(tokens)
        return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), tokens.reshape(-1))

    @torch.no_grad()
    def conditional_probs(self) -> torch.Tensor:
        """``(vocab + 1, vocab)``: row ``a`` is ``p(· | previous = a)``; the last row is BOS."""
        prev = torch.arange(self.config.vocab + 1, device=self.embed.weight.device)[None, :]
        return torch.softmax(self._logits(prev)[0].double(), dim=-1)

    @torch.no_grad()
    def first_token_probs(self) -> torch.Tensor:
        """``(vocab,)`` float64: ``p(x_0 | BOS)``."""
        prev = torch.full((1, 1), self.bos, device=self.embed.weight.device)
        return torch.softmax(self._logits(prev)[0, 0].double(), dim=-1)

    @torch.no_grad()
    def sample(self, n: int, seq_len: int, *, generator: torch.Generator) -> torch.Tensor:
        """Ancestral sampling of ``n`` sequences ``(n, seq_len)``, int64, on the model's device."""
        if n < 0 or seq_len < 1:
            raise ValueError(f"n = {n}, seq_len = {seq_len}: need n >= 0 and seq_len >= 1")
        dev = self.embed.weight.device
        out = torch.empty(n, seq_len, dtype=torch.long, device=dev)
        if n == 0:
            return out
        table = self.conditional_probs().float()  # (V+1, V): a bigram model needs only this
        prev = torch.full((n,), self.bos, dtype=torch.long, device=dev)
        for t in range(seq_len):
            probs = table[prev].to(generator.device)
            nxt = torch.multinomial(probs, 1, generator=generator)[:, 0].to(dev)
            out[:, t] = nxt
            prev = nxt
        return out
