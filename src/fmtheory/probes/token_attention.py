"""Attention aggregated by key token identity (Tian, Wang, Chen & Du 2023, "Scan and Snap", §3:
the attention a query pays to each *token type* of its context, c_n(l) = Σ_{s: x_s = l} a_s, and its
entropy, the quantity of their Fig. 6).

Without positional encoding every occurrence of a token gets the same attention logit, so the
distribution over token types, not over positions, is what training shapes; its entropy does not grow
with the context length the way the positional entropy log T does.
"""

from __future__ import annotations

import torch

__all__ = ["token_attention", "token_attention_entropy"]


def token_attention(pattern: torch.Tensor, keys: torch.Tensor, *, vocab: int) -> torch.Tensor:
    """Attention mass per key token: ``pattern (B, H, T, S)``, ``keys (B, S)`` -> ``(B, H, T, vocab)``.

    Entry ``[b, h, t, l] = Σ_{s: keys[b, s] = l} pattern[b, h, t, s]``.  Rows of a softmax pattern
    stay probability rows.
    """
    if pattern.ndim != 4:
        raise ValueError(f"pattern.shape = {tuple(pattern.shape)}: must be (batch, heads, T, S)")
    if keys.shape != (pattern.shape[0], pattern.shape[-1]):
        raise ValueError(f"keys.shape = {tuple(keys.shape)}: must be (batch, S) = "
                         f"{(pattern.shape[0], pattern.shape[-1])}")  # fmt: skip
    if keys.numel() and (int(keys.min()) < 0 or int(keys.max()) >= vocab):
        raise ValueError(
            f"keys must lie in [0, {vocab}): got [{int(keys.min())}, {int(keys.max())}]"
        )
    b, h, t, s = pattern.shape
    idx = keys[:, None, None, :].expand(b, h, t, s)
    out = pattern.new_zeros(b, h, t, vocab)
    return out.scatter_add_(-1, idx, pattern)


def token_attention_entropy(
    pattern: torch.Tensor, keys: torch.Tensor, *, vocab: int, atol: float = 1e-4
) -> torch.Tensor:
    """Entropy in nats of the attention over key token types: ``-> (B, H, T)``.

    H = -Σ_l c_l log c_l with c = :func:`token_attention` and 0 log 0 = 0: 0 when all the attention
    falls on one token type, log(n) when it is spread evenly over n token types (however many
    positions each occupies).  Raises ValueError unless the rows of ``pattern`` are probability rows
    (non-negative, summing to 1 within ``atol``).
    """
    if pattern.numel():
        if bool((pattern < 0).any()):
            raise ValueError("pattern has negative entries: entropy needs probability rows")
        err = float((pattern.sum(-1) - 1.0).abs().max())
        if err > atol:
            raise ValueError(f"pattern rows sum to 1 only within {err:.3g} > atol = {atol}")
    c = token_attention(pattern, keys, vocab=vocab)
    plogp = torch.where(c > 0, c * torch.log(c.clamp_min(torch.finfo(c.dtype).tiny)), 0.0)
    return -plogp.sum(-1)
