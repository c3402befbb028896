"""Fourier probes for modular arithmetic (Nanda, Chan, Lieberum, Smith & Steinhardt 2023, "Progress
measures for grokking via mechanistic interpretability", ICLR, §4 and Fig. 3: the embedding of a
network that groks addition mod p is sparse in the Fourier basis over Z_p).

For a matrix ``W: (p, d)`` whose row a is the embedding of residue a, the power at frequency
k ∈ {1, …, ⌊p/2⌋} is ``‖Σ_a W_a cos(2πka/p)‖² + ‖Σ_a W_a sin(2πka/p)‖²`` (the squared norm of the
discrete Fourier coefficient, both phases); the constant k = 0 carries no information about a and is
left out.
"""

from __future__ import annotations

import torch

__all__ = ["fourier_power", "fourier_sparsity"]


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
