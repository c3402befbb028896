"""A stationary Markov source of order k over a vocabulary of V tokens: its transition matrix
(rows drawn from a symmetric Dirichlet(α): small α, peaky rows, low entropy) and batched sequences.

The source's entropy rate (``fmtheory.theory.scaling.entropy_rate``) is the loss floor of any
next-token predictor.  Shapes: ``transitions: (V^k, V)``; sequences ``(batch, T)`` int64.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

__all__ = ["MarkovSource", "make_markov_source"]


@dataclass(frozen=True)
class MarkovSource:
    """transitions: (V^k, V) float64 rows summing to 1; start: (V^k,) stationary context law."""

    vocab: int
    order: int
    transitions: torch.Tensor
    start: torch.Tensor

    def sample(self, batch: int, length: int, generator: torch.Generator) -> torch.Tensor:
        """Sequences (batch, length) int64: the first k tokens from the stationary law, then the chain."""
        v, k = self.vocab, self.order
        if length < k + 1:
            raise ValueError(f"length = {length}: must be >= order + 1 = {k + 1}")
        ctx = torch.multinomial(self.start, batch, replacement=True, generator=generator)
        out = torch.empty(batch, length, dtype=torch.int64)
        c = ctx.clone()
        for i in range(k - 1, -1, -1):  # unpack the context: newest token last
            out[:, i] = c % v
            c //= v
        for t in range(k, length):
            probs = self.transitions[ctx]
            x = torch.multinomial(probs, 1, generator=generator).squeeze(1)
            out[:, t] = x
            ctx = (ctx * v) % (v**k) + x
        return out

    def argmax_next(self, seq: torch.Tensor) -> torch.Tensor:
        """The Bayes-optimal next token argmax P(x_t | previous k tokens) for t ≥ k: (batch, T − k)."""
        return self.transitions[self._contexts(seq)].argmax(-1)

    def _contexts(self, seq: torch.Tensor) -> torch.Tensor:
        """The context index (base-V number of the previous k tokens) at every t ≥ k: (batch, T − k)."""
        v, k = self.vocab, self.order
        ctx = torch.zeros(seq.shape[0], dtype=torch.int64)
        for i in range(k):
            ctx = ctx * v + seq[:, i]
        out = []
        for t in range(k, seq.shape[1]):
            out.append(ctx)
            ctx = (ctx * v) % (v**k) + seq[:, t]
        return torch.stack(out, 1)

    def log_prob(self, seq: torch.Tensor) -> torch.Tensor:
        """log P(x_t | previous k tokens) for t ≥ k: (batch, T − k)."""
        return self.transitions[self._contexts(seq), seq[:, self.order :]].log()


def make_markov_source(
    *,
    vocab: int,
    order: int,
    alpha: float,
    seed: int,
    decay: float | None = None,
    scale: float = 8.0,
) -> MarkovSource:
    """A random order-k source; the same arguments give the same source.

    decay = None: rows drawn from Dirichlet(α).  decay = γ: rows softmax(scale·L_c) with the logit
    matrix L = U diag(i^{−γ}) Vᵀ (random orthonormal U, V; i = 1..V), so the best rank-r model of
    the logits improves as a power of r: capacity, not a phase change, limits a small model.
    """
    from fmtheory.theory.scaling import stationary_distribution

    if vocab < 2 or order < 1 or not alpha > 0:
        raise ValueError(f"vocab = {vocab}, order = {order}, alpha = {alpha}: need vocab >= 2, "
                         "order >= 1, alpha > 0")  # fmt: skip
    rng = np.random.default_rng(seed)
    if decay is not None:
        rows = vocab**order
        u, _ = np.linalg.qr(rng.standard_normal((rows, vocab)))
        v, _ = np.linalg.qr(rng.standard_normal((vocab, vocab)))
        s = np.arange(1, vocab + 1, dtype=float) ** -decay
        logits = scale * np.sqrt(rows) * (u * s) @ v.T
        logits -= logits.max(1, keepdims=True)
        p = np.exp(logits)
        p /= p.sum(1, keepdims=True)
    else:
        p = rng.dirichlet(np.full(vocab, alpha), size=vocab**order)
    p = np.clip(p, 1e-12, None)
    p /= p.sum(1, keepdims=True)
    pi = stationary_distribution(p, order)
    return MarkovSource(vocab, order, torch.from_numpy(p), torch.from_numpy(pi))
