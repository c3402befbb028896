"""Fourier probes for modular arithmetic (Nanda, Chan, Lieberum, Smith & Steinhardt 2023, "Progress
measures for grokking via mechanistic interpretability", ICLR, §4 and Fig. 3: the embedding of a
network that groks addition mod p is sparse in the Fourier basis over Z_p).

For a matrix ``W: (p, d)`` whose row a is the embedding of residue a, the power at frequency
k ∈ {1, …, ⌊p/2⌋} is ``‖Σ_a W_a cos(2πka/p)‖² + ‖Σ_a W_a sin(2πka/p)‖²`` (the squared norm of the
discrete Fourier coefficient, both phases); the constant k = 0 carries no information about a and is
left out.

:func:`key_frequency_losses` gives Nanda et al.'s §5.1 progress measures on the logits over the whole
table: the *restricted* loss keeps only the components of each output's logits along the key
frequencies' directions cos(ω_k(a + b)), sin(ω_k(a + b)) over the p² pairs (plus each output's mean),
the *excluded* loss removes those components.
"""

from __future__ import annotations

import math

import torch

__all__ = ["fourier_power", "fourier_sparsity", "key_frequencies", "key_frequency_losses"]


def fourier_power(weight: torch.Tensor) -> torch.Tensor:
    """Power of each non-constant frequency: ``weight (p, d) -> (p // 2,)`` for k = 1 .. p // 2.

    Uses ``torch.fft.rfft`` over the residue axis: |DFT_k|² summed over the d columns.  For even p
    the Nyquist term k = p/2 (a cosine only) is included as is.
    """
    if weight.ndim != 2 or weight.shape[0] < 3:
        raise ValueError(f"weight.shape = {tuple(weight.shape)}: must be (p, d) with p >= 3")
    spec = torch.fft.rfft(weight.detach().double(), dim=0)  # (p // 2 + 1, d)
    return spec[1:].abs().pow(2).sum(dim=1)  # (p // 2,)


def fourier_sparsity(weight: torch.Tensor, *, top: int) -> float:
    """Fraction of the non-constant Fourier power carried by the ``top`` strongest frequencies.

    In [top / (p // 2), 1] for a flat to a ``top``-sparse spectrum: 1 when ``weight`` is a sum of at
    most ``top`` frequencies, ``top / (p // 2)`` when every frequency carries the same power (e.g. the
    identity for odd p).  NaN when the non-constant power is zero (below 1e-12 of the total).
    """
    power = fourier_power(weight)
    if not 1 <= top <= power.numel():
        raise ValueError(
            f"top = {top}: must be in [1, {power.numel()}] (frequencies of p = {weight.shape[0]})"
        )
    total = float(power.sum())
    scale = weight.shape[0] * float(weight.detach().double().pow(2).sum())  # Parseval: all power
    if total <= 1e-12 * scale or total == 0:
        return float("nan")
    return float(power.topk(top).values.sum()) / total


def key_frequencies(weight: torch.Tensor, *, top: int) -> list[int]:
    """The ``top`` frequencies k ∈ {1, …, p // 2} carrying the most power of ``weight (p, d)``."""
    power = fourier_power(weight)
    if not 1 <= top <= power.numel():
        raise ValueError(f"top = {top}: must be in [1, {power.numel()}]")
    return sorted(int(i) + 1 for i in power.topk(top).indices)


def key_frequency_losses(
    logits: torch.Tensor, *, freqs: list[int], mask: torch.Tensor | None = None
) -> tuple[float, float]:
    """(restricted loss, excluded loss) of ``logits (p, p, p)`` indexed [a, b, c], labels (a + b) mod p.

    For each output c, the logits over the p² pairs are split into their projection on
    span{1, cos(ω_k(a + b)), sin(ω_k(a + b)) : k ∈ freqs} (ω_k = 2πk/p; these 2|freqs| + 1 vectors
    are orthogonal over Z_p²) and the rest.  The restricted loss is the cross-entropy of the
    projection, the excluded loss that of the logits minus the key-frequency part (the constant
    kept), both averaged over the pairs where ``mask (p, p)`` is true (default: all) (Nanda et al.
    2023, §5.1).  A logit table Σ_k α cos(ω_k(a + b − c)) has restricted loss equal to its own loss
    and excluded loss ln p.
    """
    if logits.ndim != 3 or len(set(logits.shape)) != 1:
        raise ValueError(f"logits.shape = {tuple(logits.shape)}: must be (p, p, p)")
    p = logits.shape[0]
    if not freqs or any(not 1 <= k <= p // 2 for k in freqs) or len(set(freqs)) != len(freqs):
        raise ValueError(f"freqs = {freqs}: must be distinct integers in [1, {p // 2}]")
    x = logits.detach().double().reshape(p * p, p)  # (pairs, outputs)
    a = torch.arange(p, dtype=torch.float64, device=x.device)
    s = (a[:, None] + a[None, :]).reshape(-1)  # a + b for each pair
    basis = [torch.ones_like(s)]
    for k in freqs:
        w = 2 * math.pi * k / p
        basis += [torch.cos(w * s), torch.sin(w * s)]
    q = torch.stack(basis, dim=1)  # (pairs, 2|freqs| + 1), orthogonal columns
    q = q / q.norm(dim=0, keepdim=True)
    mean_part = q[:, :1] @ (q[:, :1].T @ x)
    key_part = q[:, 1:] @ (q[:, 1:].T @ x)
    y = ((a[:, None] + a[None, :]) % p).reshape(-1).long()
    keep = (
        torch.ones(p * p, dtype=torch.bool, device=x.device) if mask is None else mask.reshape(-1)
    )
    if not bool(keep.any()):
        raise ValueError("mask selects no pair")

    def ce(z: torch.Tensor) -> float:
        return float(torch.nn.functional.cross_entropy(z[keep], y[keep]))

    return ce(mean_part + key_part), ce(x - key_part)
