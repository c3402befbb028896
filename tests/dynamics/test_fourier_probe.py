"""Fourier probes on hand-built embeddings whose spectrum is known exactly."""

from __future__ import annotations

import math

import pytest
import torch

from fmtheory.probes.fourier import fourier_power, fourier_sparsity


def _wave(p: int, k: int, phase: float = 0.0) -> torch.Tensor:
    a = torch.arange(p, dtype=torch.float64)
    return torch.cos(2 * math.pi * k * a / p + phase)


def test_single_frequencies_are_fully_sparse():
    p = 13
    w = torch.stack([_wave(p, 3), _wave(p, 3, 0.7), 2.0 + 0 * _wave(p, 1)], dim=1)  # (p, 3)
    power = fourier_power(w)
    assert power.shape == (6,)
    assert int(power.argmax()) == 2  # k = 3
    assert fourier_sparsity(w, top=1) == pytest.approx(1.0)
    # two frequencies with power 1 : 4  (amplitudes 1 and 2)
    w2 = torch.stack([_wave(p, 2), 2 * _wave(p, 5)], dim=1)
    assert fourier_sparsity(w2, top=1) == pytest.approx(0.8)
    assert fourier_sparsity(w2, top=2) == pytest.approx(1.0)


def test_identity_has_a_flat_spectrum():
    p = 11  # odd: every frequency 1..5 carries the same power for the identity
    power = fourier_power(torch.eye(p))
    assert torch.allclose(power, power[0].expand_as(power))
    for top in (1, 2, 5):
        assert fourier_sparsity(torch.eye(p), top=top) == pytest.approx(top / 5)


def test_errors_and_degenerate_input():
    assert math.isnan(fourier_sparsity(torch.ones(7, 2), top=1))
    with pytest.raises(ValueError, match="top = 4"):
        fourier_sparsity(torch.eye(7), top=4)
    with pytest.raises(ValueError, match="weight.shape"):
        fourier_power(torch.ones(2, 2))
