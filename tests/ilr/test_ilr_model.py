"""The linear transformer of Lu & Yu 2025 (fmtheory.models.linear_transformer)."""

from __future__ import annotations

import pytest
import torch

from fmtheory.models.hooks import run_with_cache
from fmtheory.models.linear_transformer import (
    LinearTransformer,
    LinearTransformerConfig,
    supervised_loss,
    unsupervised_loss,
)
from fmtheory.tasks.ilr import ILRSpec, sample_ilr, sample_ilr_prior
from fmtheory.tasks.regression import make_generator
from fmtheory.train import TrainSpec, train


def _model(**kw) -> LinearTransformer:
    torch.manual_seed(0)
    return LinearTransformer(LinearTransformerConfig(dim=4, n_layer=2, n_head=2, n_embd=8, **kw))


def test_shapes_any_context_length_and_order_invariance():
    m = _model(init_std=0.3)
    g = torch.Generator().manual_seed(0)
    for n in (1, 3, 9):
        x, y = torch.randn(5, n, 4, generator=g), torch.randn(5, n, generator=g)
        w = m(x, y)
        assert w.shape == (5, 4) and bool(torch.isfinite(w).all())
    perm = torch.randperm(9, generator=g)
    assert torch.allclose(m(x[:, perm], y[:, perm]), m(x, y), atol=1e-5)
    # prompts do not interact
    x2 = x.clone()
    x2[0] += 1.0
    assert torch.allclose(m(x2, y)[1:], m(x, y)[1:], atol=1e-6)
    assert not torch.allclose(m(x2, y)[0], m(x, y)[0])


def test_linear_attention_is_q_times_kv_over_n():
    m = _model(init_std=0.3)
    g = torch.Generator().manual_seed(1)
    x, y = torch.randn(2, 5, 4, generator=g), torch.randn(2, 5, generator=g)
    names = ["blocks.0.attn.hook_q", "blocks.0.attn.hook_k", "blocks.0.attn.hook_v",
             "blocks.0.attn.hook_z", "hook_w"]  # fmt: skip
    res = run_with_cache(m, x, y, names=names)
    c = res.cache
    q, k, v = c[names[0]], c[names[1]], c[names[2]]
    explicit = (q @ k.transpose(-2, -1)) @ v / 5  # no softmax: pattern = q kᵀ / n
    assert torch.allclose(c[names[3]], explicit, atol=1e-6)
    assert torch.allclose(c["hook_w"], res.output)


def test_losses():
    w_hat = torch.tensor([[1.0, 0.0], [0.0, 2.0]])
    x = torch.tensor([[[1.0, 1.0]], [[1.0, 1.0]]])
    y = torch.tensor([[0.0], [1.0]])
    assert float(unsupervised_loss(w_hat, x, y)) == pytest.approx((1.0 + 1.0) / 2)
    assert float(supervised_loss(w_hat, torch.zeros(2, 2))) == pytest.approx((1.0 + 4.0) / 2)


def test_bad_config_and_inputs():
    with pytest.raises(ValueError, match="n_embd"):
        LinearTransformerConfig(dim=3, n_head=3, n_embd=8)
    with pytest.raises(ValueError, match="dim"):
        LinearTransformerConfig(dim=0)
    m = _model()
    with pytest.raises(ValueError, match="x.shape"):
        m(torch.zeros(2, 3, 5), torch.zeros(2, 3))
    with pytest.raises(ValueError, match="y.shape"):
        m(torch.zeros(2, 3, 4), torch.zeros(2, 4))


def test_tiny_training_learns_the_prior_mean():
    """40 steps of the unsupervised loss move ŵ from 0 towards w0 (the cross-task prior mean)."""
    spec = ILRSpec(dim=4, rank=1, noise_std=0.1, w0_norm=2.0)
    prior = sample_ilr_prior(spec, generator=make_generator(0))
    m = _model()

    def loss_fn(model, step, g):
        b = sample_ilr(spec, prior, batch=64, n_points=3, generator=g)
        return unsupervised_loss(model(b.x, b.y), b.x, b.y)

    b = sample_ilr(spec, prior, batch=500, n_points=3, generator=make_generator(9))
    with torch.no_grad():
        before = float((m(b.x, b.y) - b.w).pow(2).sum(-1).mean())
    res = train(m, loss_fn=loss_fn, spec=TrainSpec(steps=40, lr=1e-2, log_every=10),
                generator=make_generator(1))  # fmt: skip
    with torch.no_grad():
        after = float((m(b.x, b.y) - b.w).pow(2).sum(-1).mean())
    assert res.losses[-1] < res.losses[0]
    assert after < 0.5 * before  # from ‖w‖² ≈ 5 towards the prior's ≈ 1
