"""The GPT backbone: config validation, masks, linear attention, LayerNorm switch, init."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from fmtheory.models import GPT, GPTConfig, run_with_cache
from fmtheory.models.gpt import Attention, attention_mask


def _cfg(**overrides) -> GPTConfig:
    cfg = dict(n_layer=1, n_head=2, n_embd=8, n_positions=8)
    cfg.update(overrides)
    return GPTConfig(**cfg)


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        (dict(n_embd=10, n_head=4), "n_embd"),
        (dict(n_layer=0), "n_layer"),
        (dict(dropout=1.0), "dropout"),
        (dict(attention="relu"), "attention"),
        (dict(mask="banded"), "mask"),
        (dict(mask="sliding"), "window"),
        (dict(mask="sliding", window=0), "window"),
        (dict(mask="causal", window=3), "window"),
    ],
)
def test_config_validation_names_the_field(overrides, field):
    with pytest.raises(ValueError, match=field):
        _cfg(**overrides)


def test_forward_shape_and_length_validation():
    model = GPT(_cfg())
    assert model(torch.randn(3, 5, 8)).shape == (3, 5, 8)
    with pytest.raises(ValueError, match="n_positions"):
        model(torch.randn(3, 9, 8))
    with pytest.raises(ValueError, match="n_embd"):
        model(torch.randn(3, 5, 7))


def _influence(model: GPT, T: int) -> torch.Tensor:
    """influence[t, s] = True when perturbing input token s changes output token t (float64)."""
    g = torch.Generator().manual_seed(0)
    e = torch.randn(1, T, model.config.n_embd, generator=g, dtype=torch.float64)
    base = model(e)
    out = torch.zeros(T, T, dtype=torch.bool)
    for s in range(T):
        e2 = e.clone()
        e2[0, s] += 3.0 * torch.randn(model.config.n_embd, generator=g, dtype=torch.float64)
        out[:, s] = (model(e2) - base)[0].abs().amax(dim=-1) > 1e-9
    return out


@pytest.mark.parametrize("attention", ["softmax", "linear"])
@pytest.mark.parametrize(("mask", "window"), [("causal", None), ("sliding", 3), ("none", None)])
def test_one_layer_influence_is_exactly_the_mask(attention, mask, window):
    """One layer: token s influences token t iff the mask lets t attend to s.

    mask='none' must let the future in, 'sliding' must cut tokens further back than the window:
    this would fail if the mask were ignored (or always causal).
    """
    torch.manual_seed(0)
    T = 7
    cfg = _cfg(attention=attention, mask=mask, window=window)
    model = GPT(cfg).double().eval()
    expected = attention_mask(cfg, T)
    if mask == "none":
        assert bool(expected.all())
    if mask == "sliding":
        assert not bool(expected[6, 3]) and bool(expected[6, 4])  # window 3: keys 4, 5, 6
    assert torch.equal(_influence(model, T), expected)


def test_two_sliding_layers_widen_the_receptive_field():
    torch.manual_seed(0)
    cfg = _cfg(n_layer=2, mask="sliding", window=3)
    model = GPT(cfg).double().eval()
    t, s = torch.meshgrid(torch.arange(8), torch.arange(8), indexing="ij")
    expected = (t - s >= 0) & (t - s < 2 * (3 - 1) + 1)  # two hops of at most window - 1 back
    assert torch.equal(_influence(model, 8), expected)


@pytest.mark.parametrize("mask", ["causal", "none"])
def test_linear_attention_matches_hand_computation(mask):
    """q = k = v = x and identity projections: pattern = (x xᵀ ⊙ M) / n_attended, out = pattern @ x."""
    cfg = GPTConfig(n_layer=1, n_head=1, n_embd=2, n_positions=3, attention="linear", mask=mask)
    attn = Attention(cfg)
    with torch.no_grad():
        attn.c_attn.weight.copy_(torch.cat([torch.eye(2)] * 3))  # (6, 2)
        attn.c_attn.bias.zero_()
        attn.c_proj.weight.copy_(torch.eye(2))
        attn.c_proj.bias.zero_()
    x = torch.tensor([[[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]])  # x xᵀ = [[1,0,1],[0,1,1],[1,1,2]]
    if mask == "causal":  # rows divided by 1, 2, 3 attended keys
        pattern = [[1.0, 0.0, 0.0], [0.0, 0.5, 0.0], [1 / 3, 1 / 3, 2 / 3]]
        out = [[1.0, 0.0], [0.0, 0.5], [1.0, 1.0]]
    else:  # every row divided by 3
        pattern = [[1 / 3, 0.0, 1 / 3], [0.0, 1 / 3, 1 / 3], [1 / 3, 1 / 3, 2 / 3]]
        out = [[2 / 3, 1 / 3], [1 / 3, 2 / 3], [1.0, 1.0]]
    res = run_with_cache(attn, x, names=["hook_pattern"])
    torch.testing.assert_close(res.cache["hook_pattern"][0, 0], torch.tensor(pattern))
    torch.testing.assert_close(res.output[0], torch.tensor(out))
    # No softmax: rows do not sum to one.
    assert not torch.allclose(res.cache["hook_pattern"].sum(-1), torch.ones(1, 1, 3))


def test_linear_attention_pattern_rows_need_not_sum_to_one_in_a_model():
    torch.manual_seed(0)
    model = GPT(_cfg(attention="linear"))
    res = run_with_cache(model, torch.randn(2, 6, 8), names=["blocks.0.attn.hook_pattern"])
    rows = res.cache["blocks.0.attn.hook_pattern"].sum(-1)
    assert (rows - 1).abs().max() > 0.1
    assert bool((res.cache["blocks.0.attn.hook_pattern"] < 0).any())  # signed, not a distribution


def test_layernorm_switch():
    on = GPT(_cfg(n_layer=3))
    off = GPT(_cfg(n_layer=3, layernorm=False))
    assert sum(isinstance(m, nn.LayerNorm) for m in on.modules()) == 2 * 3 + 1
    assert not any(isinstance(m, nn.LayerNorm) for m in off.modules())
    assert off(torch.randn(2, 5, 8)).shape == (2, 5, 8)


def test_no_bias_option():
    model = GPT(_cfg(bias=False))
    assert all(m.bias is None for m in model.modules() if isinstance(m, nn.Linear | nn.LayerNorm))


def test_init_is_deterministic_under_manual_seed():
    torch.manual_seed(123)
    a = GPT(_cfg(n_layer=2)).state_dict()
    torch.manual_seed(123)
    b = GPT(_cfg(n_layer=2)).state_dict()
    torch.manual_seed(124)
    c = GPT(_cfg(n_layer=2)).state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not all(torch.equal(a[k], c[k]) for k in a)


def test_gpt2_init_scales():
    """N(0, 0.02²) weights, N(0, (0.02/sqrt(2L))²) residual projections, zero biases.

    Tolerance: the sample std of N iid normals has relative stderr 1/sqrt(2N) (<= 1.2% here);
    we allow 6%, i.e. > 5 standard errors.
    """
    torch.manual_seed(0)
    L = 4
    model = GPT(GPTConfig(n_layer=L, n_head=4, n_embd=64, n_positions=32))
    attn = model.blocks[0].attn
    assert abs(attn.c_attn.weight.std().item() / 0.02 - 1) < 0.06
    assert abs(model.wpe.weight.std().item() / 0.02 - 1) < 0.06
    for w in (attn.c_proj.weight, model.blocks[1].mlp.c_proj.weight):
        assert abs(w.std().item() / (0.02 / math.sqrt(2 * L)) - 1) < 0.06
    assert torch.equal(attn.c_attn.bias, torch.zeros_like(attn.c_attn.bias))


def test_dropout_only_in_training():
    torch.manual_seed(0)
    model = GPT(_cfg(dropout=0.5))
    e = torch.randn(2, 5, 8)
    model.eval()
    torch.testing.assert_close(model(e), model(e), rtol=0, atol=0)
    model.train()
    assert not torch.allclose(model(e), model(e))
