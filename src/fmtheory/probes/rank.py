"""Rank-collapse residual of padded token batches (the batched form of
:func:`fmtheory.probes.attention.rank_collapse_residual`).

μ(X) = ‖X − 1 x̄ᵀ‖_F / ‖X‖_F over the real tokens of each sequence, x̄ their mean (Dong, Cordonnier &
Loukas 2021, "Attention is not all you need", ICML, §2: res(X) = X − 1xᵀ; the Frobenius form follows
Wu et al. 2024, "On the role of attention masks and LayerNorm in transformers", eq. 2).
"""

from __future__ import annotations

import torch

from fmtheory.probes.attention import rank_collapse_residual

__all__ = ["masked_rank_collapse_residual"]


def masked_rank_collapse_residual(
    resid: torch.Tensor, mask: torch.Tensor | None = None
) -> torch.Tensor:
    """μ of each sequence over its real tokens: ``resid: (B, T, C)``, ``mask: (B, T)`` -> ``(B,)``.

    ``mask[b, t]`` is True (or 1) for a real token, False for padding; ``None`` means every token is
    real (then this is :func:`rank_collapse_residual`).  A sequence without real tokens gives 0.
    """
    if mask is None:
        return rank_collapse_residual(resid)
    if resid.ndim != 3:
        raise ValueError(f"resid.shape = {tuple(resid.shape)}: must be (batch, T, C)")
    if mask.shape != resid.shape[:2]:
        raise ValueError(
            f"mask.shape = {tuple(mask.shape)}: must be (batch, T) = {tuple(resid.shape[:2])}"
        )
    if not resid.is_floating_point():
        raise ValueError(f"resid.dtype = {resid.dtype}: must be a floating dtype")
    w = mask.to(resid.dtype)[..., None]  # (B, T, 1)
    xw = resid * w  # padding zeroed, (B, T, C)
    mean = xw.sum(dim=1, keepdim=True) / w.sum(dim=1, keepdim=True).clamp_min(1.0)  # (B, 1, C)
    num = torch.linalg.vector_norm(torch.addcmul(xw, mean, w, value=-1.0), dim=(1, 2))  # (B,)
    den = torch.linalg.vector_norm(xw, dim=(1, 2))  # (B,)
    return torch.where(den > 0, num / den.clamp_min(torch.finfo(resid.dtype).tiny), 0.0)
