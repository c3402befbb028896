"""Probes against plain numpy references."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from fmtheory.models import GPT, GPTConfig, run_with_cache
from fmtheory.probes import attention_entropy, rank_collapse_residual


def _np_entropy(p: np.ndarray) -> np.ndarray:
    out = np.zeros(p.shape[:-1])
    for idx in np.ndindex(*p.shape[:-1]):
        row = p[idx]
        nz = row[row > 0]
        out[idx] = -np.sum(nz * np.log(nz))
    return out


def _np_rank_residual(x: np.ndarray) -> np.ndarray:
    return np.array(
        [np.linalg.norm(m - m.mean(axis=0), "fro") / np.linalg.norm(m, "fro") for m in x]
    )


def test_attention_entropy_matches_numpy_on_masked_softmax():
    g = torch.Generator().manual_seed(0)
    scores = torch.randn(2, 3, 5, 5, generator=g, dtype=torch.float64)
    causal = torch.ones(5, 5, dtype=torch.bool).tril()
    p = torch.softmax(scores.masked_fill(~causal, float("-inf")), dim=-1)  # exact zeros above diag
    got = attention_entropy(p)
    assert got.shape == (2, 3, 5)
    np.testing.assert_allclose(got.numpy(), _np_entropy(p.numpy()), rtol=1e-12, atol=1e-14)
    assert torch.equal(got[..., 0], torch.zeros(2, 3, dtype=torch.float64))  # one key: 0 nats


def test_attention_entropy_uniform_is_log_k():
    T = 6
    p = torch.ones(T, T, dtype=torch.float64).tril()
    p = (p / p.sum(-1, keepdim=True)).expand(1, 1, T, T)
    expected = torch.log(torch.arange(1, T + 1, dtype=torch.float64))
    torch.testing.assert_close(attention_entropy(p)[0, 0], expected, rtol=1e-12, atol=1e-14)


def test_attention_entropy_rejects_non_distributions():
    with pytest.raises(ValueError, match="sum to 1"):
        attention_entropy(torch.full((1, 1, 2, 2), 0.3))
    with pytest.raises(ValueError, match="negative"):
        attention_entropy(torch.tensor([[[[1.5, -0.5], [0.5, 0.5]]]]))
    with pytest.raises(ValueError, match="pattern.shape"):
        attention_entropy(torch.ones(2, 2))


def test_attention_entropy_on_a_cached_model_pattern():
    torch.manual_seed(0)
    model = GPT(GPTConfig(n_layer=1, n_head=2, n_embd=8, n_positions=6))
    name = "blocks.0.attn.hook_pattern"
    p = run_with_cache(model, torch.randn(3, 6, 8), names=[name]).cache[name]
    ent = attention_entropy(p)
    bound = torch.log(torch.arange(1, 7, dtype=ent.dtype))  # query t attends to t + 1 keys
    assert bool((ent <= bound + 1e-5).all()) and bool((ent >= 0).all())
    np.testing.assert_allclose(ent.numpy(), _np_entropy(p.double().numpy()), rtol=1e-4, atol=1e-5)


def test_rank_collapse_residual_matches_numpy():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(4, 7, 5, generator=g, dtype=torch.float64) + 2.0
    got = rank_collapse_residual(x)
    assert got.shape == (4,)
    np.testing.assert_allclose(got.numpy(), _np_rank_residual(x.numpy()), rtol=1e-12)
    assert bool((got > 0).all()) and bool((got <= 1).all())


def test_rank_collapse_residual_extremes_and_minimiser():
    g = torch.Generator().manual_seed(1)
    row = torch.randn(1, 1, 5, generator=g, dtype=torch.float64)
    rank_one = row.expand(2, 6, 5)  # every token the same: collapsed
    torch.testing.assert_close(
        rank_collapse_residual(rank_one), torch.zeros(2, dtype=torch.float64)
    )
    assert torch.equal(rank_collapse_residual(torch.zeros(1, 3, 4)), torch.zeros(1))
    centred = torch.randn(1, 6, 5, generator=g, dtype=torch.float64)
    centred = centred - centred.mean(1, keepdim=True)  # mean token 0: residual = ||X|| / ||X|| = 1
    torch.testing.assert_close(rank_collapse_residual(centred), torch.ones(1, dtype=torch.float64))
    # The mean token minimises ||X - 1 xᵀ||_F: any other x gives a larger residual.
    x = torch.randn(1, 6, 5, generator=g, dtype=torch.float64)
    best = rank_collapse_residual(x) * torch.linalg.vector_norm(x)
    for _ in range(5):
        other = x.mean(1, keepdim=True) + 0.1 * torch.randn(1, 1, 5, generator=g, dtype=x.dtype)
        assert torch.linalg.vector_norm(x - other) > best
    assert not math.isnan(float(rank_collapse_residual(x)))


def test_rank_collapse_residual_validation():
    with pytest.raises(ValueError, match="resid.shape"):
        rank_collapse_residual(torch.ones(3, 4))
    with pytest.raises(ValueError, match="dtype"):
        rank_collapse_residual(torch.ones(1, 3, 4, dtype=torch.long))
