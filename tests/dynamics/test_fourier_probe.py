"""Fourier probes on hand-built embeddings whose spectrum is known exactly."""

from __future__ import annotations

import math

import pytest
import torch

from fmtheory.probes.fourier import (
    fourier_power,
    fourier_sparsity,
    key_frequencies,
    key_frequency_losses,
)


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


# ---------------------------------------------------------------- restricted / excluded losses
def _circuit(p: int, freqs: list[int], alpha: float) -> torch.Tensor:
    a = torch.arange(p, dtype=torch.float64)
    s = a[:, None, None] + a[None, :, None] - a[None, None, :]  # a + b − c, (p, p, p)
    return alpha * sum(torch.cos(2 * math.pi * k * s / p) for k in freqs)


def _loss(logits: torch.Tensor) -> float:
    p = logits.shape[0]
    a = torch.arange(p)
    y = ((a[:, None] + a[None, :]) % p).reshape(-1)
    return float(torch.nn.functional.cross_entropy(logits.reshape(p * p, p), y))


def test_key_frequency_losses_on_a_hand_built_circuit():
    p, key = 13, [2, 5]
    logits = _circuit(p, key, 3.0)
    restricted, excluded = key_frequency_losses(logits, freqs=key)
    assert restricted == pytest.approx(_loss(logits), abs=1e-10)
    assert restricted < 0.5
    assert excluded == pytest.approx(math.log(p), abs=1e-10)
    # other frequencies carry nothing: restricted is chance, excluded the full loss
    r2, e2 = key_frequency_losses(logits, freqs=[1, 3])
    assert r2 == pytest.approx(math.log(p), abs=1e-10)
    assert e2 == pytest.approx(_loss(logits), abs=1e-10)


def test_key_frequency_losses_keep_a_memorising_part_out_of_the_restriction():
    p, key = 11, [3]
    g = torch.Generator().manual_seed(0)
    noise = torch.randn(p, p, p, generator=g, dtype=torch.float64)
    logits = _circuit(p, key, 2.0) + noise
    mask = torch.zeros(p, p, dtype=torch.bool)
    mask[:5] = True
    restricted, excluded = key_frequency_losses(logits, freqs=key, mask=mask)
    assert restricted < math.log(p) < excluded + 2.0
    assert key_frequencies(_circuit(p, key, 1.0)[:, :, 0], top=1) == key


def test_key_frequency_losses_reject_bad_input():
    with pytest.raises(ValueError, match="freqs"):
        key_frequency_losses(torch.zeros(7, 7, 7), freqs=[4])
    with pytest.raises(ValueError, match="shape"):
        key_frequency_losses(torch.zeros(7, 7, 6), freqs=[1])
