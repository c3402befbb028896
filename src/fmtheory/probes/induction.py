"""Induction-head probes (Olsson et al. 2022, "In-context learning and induction heads", §2 and
Appendix "Head activation evaluators"; Elhage et al. 2021, "A Mathematical Framework for Transformer
Circuits").

* :func:`prefix_matching_score` — the attention a head pays to the token that *followed* an earlier
  occurrence of the current token (Olsson et al.: "prefix matching").
* :func:`previous_token_score` — the attention a head pays to the position just before the query.
* :func:`copying_score` — Σ_i λ_i / Σ_i |λ_i| over the eigenvalues of a head's full OV circuit
  ``W_E W_OV W_U`` (Elhage et al. 2021, "Detecting copying"; Olsson et al. 2022 "copying"): 1 for a
  head that raises the logit of the token it attends to, −1 for one that lowers it.
"""

from __future__ import annotations

import torch

__all__ = ["prefix_matching_score", "previous_token_score", "copying_score"]


def _check_pattern(pattern: torch.Tensor, tokens: torch.Tensor | None = None) -> None:
    if pattern.ndim != 4 or pattern.shape[-1] != pattern.shape[-2]:
        raise ValueError(f"pattern.shape = {tuple(pattern.shape)}: must be (batch, heads, T, T)")
    if tokens is not None and (
        tokens.ndim != 2 or tokens.shape != (pattern.shape[0], pattern.shape[2])
    ):
        raise ValueError(
            f"tokens.shape = {tuple(tokens.shape)}: must be (batch, T) = "
            f"{(pattern.shape[0], pattern.shape[2])}"
        )


def prefix_matching_score(pattern: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
    """Mean attention on prefix-matching keys: ``pattern (B, H, T, T)``, ``tokens (B, T)`` -> (B, H).

    For query t the prefix-matching keys are the s with 1 ≤ s ≤ t and ``tokens[s-1] == tokens[t]``
    (the token after an earlier occurrence of the current token).  The score of a head on a sequence
    is Σ_s pattern[t, s] over those keys, averaged over the queries that have at least one; NaN for a
    sequence with no such query.  1 = a perfect induction pattern, about (number of matches)/t for
    uniform attention.
    """
    _check_pattern(pattern, tokens)
    B, H, T, _ = pattern.shape
    prev = torch.cat(
        [torch.full_like(tokens[:, :1], -1), tokens[:, :-1]], dim=1
    )  # tokens[s-1], (B, T)
    match = prev[:, None, :] == tokens[:, :, None]  # match[b, t, s], (B, T, T)
    match &= torch.ones(T, T, dtype=torch.bool, device=tokens.device).tril()  # s <= t
    has = match.any(dim=-1)  # (B, T)
    mass = (pattern * match[:, None].to(pattern.dtype)).sum(dim=-1)  # (B, H, T)
    n = has.sum(dim=-1).to(pattern.dtype)  # (B,)
    total = (mass * has[:, None].to(pattern.dtype)).sum(dim=-1)  # (B, H)
    return torch.where(n[:, None] > 0, total / n.clamp_min(1)[:, None], float("nan"))


def previous_token_score(pattern: torch.Tensor) -> torch.Tensor:
    """Mean attention from query t to key t − 1 over t = 1 .. T−1: ``(B, H, T, T) -> (B, H)``."""
    _check_pattern(pattern)
    return pattern.diagonal(offset=-1, dim1=-2, dim2=-1).mean(dim=-1)  # (B, H)


def copying_score(ov: torch.Tensor) -> float:
    """Σ Re λ_i / Σ |λ_i| over the eigenvalues of a head's full OV circuit ``ov: (V, V)``.

    In [−1, 1]: 1 when every eigenvalue is positive (the identity, a pure copier), −1 when every one
    is negative; NaN for the zero matrix.
    """
    if ov.ndim != 2 or ov.shape[0] != ov.shape[1]:
        raise ValueError(f"ov.shape = {tuple(ov.shape)}: must be square (vocab, vocab)")
    lam = torch.linalg.eigvals(ov.detach().double())
    den = float(lam.abs().sum())
    return float(lam.real.sum()) / den if den > 0 else float("nan")
