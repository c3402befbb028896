"""Probes on attention patterns and residual streams (read from a ``run_with_cache`` cache).

* :func:`attention_entropy` — entropy of each query's attention distribution (Zhai et al. 2023,
  "Stabilizing Transformer Training by Preventing Attention Entropy Collapse", ICML:
  Ent(A_i) = -Σ_j A_ij log A_ij).
* :func:`rank_collapse_residual` — relative distance of a token matrix from rank one (Dong, Cordonnier
  & Loukas 2021, "Attention is not all you need: pure attention loses rank doubly exponentially with
  depth", ICML: res(X) = X - 1 xᵀ).
"""

from __future__ import annotations

import torch

__all__ = ["attention_entropy", "rank_collapse_residual"]


def attention_entropy(pattern: torch.Tensor, *, atol: float = 1e-4) -> torch.Tensor:
    """Entropy in nats of each query's attention row: ``pattern: (B, H, T, S) -> (B, H, T)``.

    H_t = -Σ_s p_ts log p_ts with 0 log 0 = 0 (Zhai et al. 2023).  Ranges from 0 (one key) to
    log(number of attended keys) (uniform).  Only defined for probability rows: raises ValueError if an
    entry is negative or a row does not sum to 1 within ``atol`` (e.g. a linear-attention pattern).
    """
    if pattern.ndim != 4:
        raise ValueError(f"pattern.shape = {tuple(pattern.shape)}: must be (batch, heads, T, S)")
    if not pattern.is_floating_point():
        raise ValueError(f"pattern.dtype = {pattern.dtype}: must be a floating dtype")
    if pattern.numel():
        if bool((pattern < 0).any()):
            raise ValueError("pattern has negative entries: entropy needs probability rows")
        row_err = float((pattern.sum(dim=-1) - 1.0).abs().max())
        if row_err > atol:
            raise ValueError(
                f"pattern rows sum to 1 only within {row_err:.3g} > atol = {atol}: entropy needs "
                f"probability rows (softmax attention)"
            )
    plogp = torch.where(pattern > 0, pattern * torch.log(pattern), torch.zeros_like(pattern))
    return -plogp.sum(dim=-1)  # (B, H, T)


def rank_collapse_residual(resid: torch.Tensor) -> torch.Tensor:
    """Relative residual from rank one: ``resid: (B, T, C) -> (B,)``.

    r(X) = ||X - 1 x̄ᵀ||_F / ||X||_F with x̄ = mean over tokens, the Frobenius minimiser of
    ||X - 1 xᵀ|| over x (Dong et al. 2021 define res(X) = X - 1 xᵀ with x = argmin; they bound its
    composite ℓ1,∞ norm, here the Frobenius norm is used).  0 = all tokens equal (rank collapse); at most
    1.  A zero matrix gives 0.
    """
    if resid.ndim != 3:
        raise ValueError(f"resid.shape = {tuple(resid.shape)}: must be (batch, T, C)")
    if not resid.is_floating_point():
        raise ValueError(f"resid.dtype = {resid.dtype}: must be a floating dtype")
    centred = resid - resid.mean(dim=1, keepdim=True)  # X - 1 x̄ᵀ, (B, T, C)
    num = torch.linalg.vector_norm(centred, dim=(1, 2))  # (B,)
    den = torch.linalg.vector_norm(resid, dim=(1, 2))  # (B,)
    return torch.where(den > 0, num / den.clamp_min(torch.finfo(resid.dtype).tiny), 0.0)  # (B,)
