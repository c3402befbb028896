"""The random attention stack of models/attention_stack.py: shapes, masks, determinism, bad input."""

from __future__ import annotations

import pytest
import torch

from fmtheory.models.attention_stack import AttentionStack, StackConfig
from fmtheory.models.hooks import run_with_cache


def _stack(seed: int = 0, **kw) -> AttentionStack:
    cfg = StackConfig(**{"depth": 3, "width": 8, "n_tokens": 6, **kw})
    return AttentionStack(cfg, generator=torch.Generator().manual_seed(seed))


def test_shape_hooks_and_determinism() -> None:
    x = torch.randn(2, 6, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    a = run_with_cache(_stack(), x, names=lambda n: n.endswith("hook_resid_post"))
    b = _stack()(x)
    assert sorted(a.cache) == [f"blocks.{i}.hook_resid_post" for i in range(3)]
    assert a.output.shape == (2, 6, 8)
    torch.testing.assert_close(a.output, b, rtol=0, atol=0)
    assert not torch.equal(_stack(seed=1)(x), b)


@pytest.mark.parametrize(("mask", "window"), [("causal", None), ("sliding", 2)])
def test_masks_do_not_leak_future_tokens(mask: str, window: int | None) -> None:
    m = _stack(mask=mask, window=window, mlp=True, residual=True, layernorm=True)
    x = torch.randn(1, 6, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    y = x.clone()
    y[:, 4:] += 10.0  # change only the last two tokens
    torch.testing.assert_close(m(x)[:, :4], m(y)[:, :4])


def test_sliding_window_one_keeps_tokens_apart() -> None:
    # each token sees only itself: attention is the identity, no mixing, no collapse
    m = _stack(mask="sliding", window=1, value="orthogonal")
    x = torch.randn(1, 6, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    w = torch.eye(8, dtype=torch.float64)
    for block in m.blocks:
        w = w @ block.w_v
    torch.testing.assert_close(m(x), x @ w)


def test_orthogonal_values_are_orthogonal() -> None:
    w = _stack(value="orthogonal").blocks[0].w_v.detach()
    torch.testing.assert_close(w.T @ w, torch.eye(8, dtype=torch.float64))


@pytest.mark.parametrize(
    ("kw", "field"),
    [({"depth": 0}, "depth"), ({"mask": "sliding", "window": 0}, "window"),
     ({"mask": "diagonal"}, "mask"), ({"value": "unit"}, "value"),
     ({"window": 3}, "window"), ({"branch_scale": 0.0}, "branch_scale")],
)  # fmt: skip
def test_bad_config_names_the_field(kw: dict, field: str) -> None:
    with pytest.raises(ValueError, match=field):
        StackConfig(**{"depth": 2, "width": 4, "n_tokens": 4, **kw})
