"""run_with_cache: the requested activations with their shapes, and no hook left behind."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from fmtheory.models import GPTConfig, HookPoint, RegressionTransformer, hook_points, run_with_cache

B, N, D = 3, 5, 4


def _model(**overrides) -> RegressionTransformer:
    torch.manual_seed(0)
    cfg = dict(n_layer=2, n_head=2, n_embd=16, n_positions=2 * N)
    cfg.update(overrides)
    return RegressionTransformer(D, N, GPTConfig(**cfg), layout="interleaved")


def _prompt() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    return torch.randn(B, N, D, generator=g), torch.randn(B, N, generator=g)


def _assert_no_hooks(model: nn.Module) -> None:
    for name, m in model.named_modules():
        assert not m._forward_hooks, f"forward hook left on {name!r}"
        assert not m._forward_pre_hooks, f"forward-pre hook left on {name!r}"


def test_requested_names_and_shapes():
    model = _model()
    x, y = _prompt()
    T, H, C = 2 * N, 2, 16
    wanted = {
        "backbone.hook_embed": (B, T, C),
        "backbone.blocks.0.hook_resid_pre": (B, T, C),
        "backbone.blocks.1.attn.hook_q": (B, H, T, C // H),
        "backbone.blocks.1.attn.hook_k": (B, H, T, C // H),
        "backbone.blocks.1.attn.hook_v": (B, H, T, C // H),
        "backbone.blocks.0.attn.hook_pattern": (B, H, T, T),
        "backbone.blocks.0.hook_attn_out": (B, T, C),
        "backbone.blocks.1.hook_mlp_out": (B, T, C),
        "backbone.blocks.1.hook_resid_post": (B, T, C),
        "backbone.hook_final": (B, T, C),
    }
    res = run_with_cache(model, x, y, names=list(wanted))
    assert set(res.cache) == set(wanted)  # exactly the requested names, nothing more
    for name, shape in wanted.items():
        assert tuple(res.cache[name].shape) == shape, name
        assert not res.cache[name].requires_grad  # detached
    assert res.output.shape == (B, N)
    assert res.output.requires_grad  # the output is left attached to the graph
    torch.testing.assert_close(res.output, model(x, y), rtol=0, atol=1e-5)
    _assert_no_hooks(model)


def test_cache_values_are_consistent_with_the_residual_stream():
    model = _model()
    x, y = _prompt()
    c = run_with_cache(model, x, y).cache  # names=None: every hook point
    assert set(c) == set(hook_points(model))
    pre = "backbone.blocks.0."
    torch.testing.assert_close(
        c[pre + "hook_resid_post"],
        c[pre + "hook_resid_pre"] + c[pre + "hook_attn_out"] + c[pre + "hook_mlp_out"],
    )
    torch.testing.assert_close(
        c["backbone.blocks.0.hook_resid_pre"],
        c["backbone.hook_embed"] + c["backbone.hook_pos_embed"],
    )
    torch.testing.assert_close(c["backbone.blocks.1.hook_resid_pre"], c[pre + "hook_resid_post"])


def test_predicate_and_single_string_selection():
    model = _model()
    x, y = _prompt()
    res = run_with_cache(model, x, y, names=lambda n: n.endswith("hook_pattern"))
    assert sorted(res.cache) == [
        "backbone.blocks.0.attn.hook_pattern",
        "backbone.blocks.1.attn.hook_pattern",
    ]
    res = run_with_cache(model, x, y, names="backbone.hook_final")
    assert list(res.cache) == ["backbone.hook_final"]
    _assert_no_hooks(model)


def test_unknown_name_raises_listing_valid_names():
    model = _model()
    x, y = _prompt()
    with pytest.raises(ValueError, match="blocks.9.hook_nope") as info:
        run_with_cache(model, x, y, names=["backbone.hook_final", "blocks.9.hook_nope"])
    assert "backbone.blocks.0.attn.hook_pattern" in str(info.value)
    _assert_no_hooks(model)


def test_hooks_removed_when_forward_raises():
    model = _model()
    x, y = _prompt()
    # float64 input: hook_tokens fires, then the float32 read-in raises mid-forward.
    with pytest.raises(RuntimeError):
        run_with_cache(model, x.double(), y.double())
    _assert_no_hooks(model)
    assert not any(hp.has_hooks for hp in hook_points(model).values())


def test_hook_point_reached_twice_raises():
    hp = HookPoint()
    model = nn.Sequential(hp, hp)
    with pytest.raises(RuntimeError, match="twice"):
        run_with_cache(model, torch.zeros(2))
    _assert_no_hooks(model)


@pytest.mark.parametrize("mask", ["causal", "sliding", "none"])
def test_explicit_pattern_path_equals_sdpa_fast_path(mask, monkeypatch):
    model = _model(mask=mask, window=3 if mask == "sliding" else None).eval()
    x, y = _prompt()
    calls = []
    sdpa = F.scaled_dot_product_attention

    def counting_sdpa(*args, **kwargs):
        calls.append(1)
        return sdpa(*args, **kwargs)

    monkeypatch.setattr(F, "scaled_dot_product_attention", counting_sdpa)
    fast = model(x, y)
    assert len(calls) == 2  # both layers took the fused path
    names = ["backbone.blocks.0.attn.hook_pattern", "backbone.blocks.1.attn.hook_pattern"]
    res = run_with_cache(model, x, y, names=names)
    assert len(calls) == 2  # the hooked forward did not call SDPA: the explicit path ran
    torch.testing.assert_close(res.output, fast, rtol=0, atol=1e-5)
    # The pattern is a probability distribution over the allowed keys only.
    pattern = res.cache[names[0]]
    torch.testing.assert_close(pattern.sum(-1), torch.ones(B, 2, 2 * N))
    allowed = model.backbone.blocks[0].attn.mask[: 2 * N, : 2 * N]
    assert bool((pattern[..., ~allowed] == 0).all())
    assert bool((pattern[..., allowed] > 0).all())


def test_pattern_matches_softmax_of_cached_queries_and_keys():
    model = _model().eval()
    x, y = _prompt()
    p = "backbone.blocks.1.attn."
    c = run_with_cache(model, x, y, names=[p + s for s in ("hook_q", "hook_k", "hook_v")]).cache
    c.update(run_with_cache(model, x, y, names=[p + "hook_pattern", p + "hook_z"]).cache)
    q, k, v = c[p + "hook_q"], c[p + "hook_k"], c[p + "hook_v"]
    T = q.shape[2]
    scores = q @ k.transpose(-2, -1) / q.shape[-1] ** 0.5
    scores = scores.masked_fill(~torch.ones(T, T, dtype=torch.bool).tril(), float("-inf"))
    expected = torch.softmax(scores, dim=-1)
    torch.testing.assert_close(c[p + "hook_pattern"], expected, rtol=0, atol=1e-6)
    torch.testing.assert_close(c[p + "hook_z"], expected @ v, rtol=0, atol=1e-6)
