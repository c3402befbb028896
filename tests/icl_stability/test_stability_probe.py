"""Prompt-sensitivity and label-corruption probes against exact cases and a numpy reference;
Γ from the weights against the logits a GPT actually computes."""

import math

import numpy as np
import pytest
import torch

from fmtheory.models.gpt import GPT, GPTConfig
from fmtheory.models.hooks import run_with_cache
from fmtheory.probes.stability import attention_logit_bound, label_corruption, prompt_sensitivity
from fmtheory.tasks.regression import make_generator


def running_mean(x, y):
    """Prediction at k = mean of y_0..y_{k-1} (0 at k = 0): a causal predictor with known
    sensitivity."""
    c = torch.cumsum(y, 1) - y
    k = torch.arange(y.shape[1], dtype=y.dtype)
    return torch.where(k > 0, c / k.clamp(min=1), torch.zeros_like(c))


class Spy:
    """Records every (x, y) it is called with, then applies ``fn``."""

    def __init__(self, fn):
        self.fn, self.calls = fn, []

    def __call__(self, x, y):
        self.calls.append((x.clone(), y.clone()))
        return self.fn(x, y)


def numpy_ridge_query(x, y, alpha):
    """Per prompt: solve (XᵀX + αI) w = Xᵀy on the context, predict the last x (plain loop)."""
    out = []
    for xb, yb in zip(x.numpy().astype(np.float64), y.numpy().astype(np.float64), strict=True):
        X, Y, q = xb[:-1], yb[:-1], xb[-1]
        w = np.linalg.solve(X.T @ X + alpha * np.eye(X.shape[1]), X.T @ Y)
        out.append(q @ w)
    return np.array(out)


def test_replacement_on_constant_labels_moves_a_running_mean_by_exactly_one_over_n():
    B, N, d = 64, 9, 2
    x = torch.randn(B, N, d, generator=make_generator(0))
    y = torch.full((B, N), 2.0)
    res = prompt_sensitivity({"mean": running_mean}, x, y, context_lengths=range(1, N),
                             generator=make_generator(1), x_new=torch.zeros(B, d),
                             y_new=torch.full((B,), 3.0))  # fmt: skip
    c = res.curves["mean"]
    assert np.allclose(c.mean_abs, 1.0 / np.arange(1, N)) and np.allclose(c.stderr, 0.0)
    assert np.allclose(c.rms, c.mean_abs)


def test_replacement_touches_one_context_pair_and_matches_a_numpy_ridge():
    B, N, d, alpha = 40, 8, 3, 0.3
    g = make_generator(2)
    x, y = torch.randn(B, N, d, generator=g), torch.randn(B, N, generator=g)
    x_new, y_new = torch.randn(B, d, generator=g), torch.randn(B, generator=g)

    def ridge_prefix(xx, yy):  # only the query column is read by the probe
        out = torch.zeros(yy.shape, dtype=torch.float64)
        out[:, -1] = torch.from_numpy(numpy_ridge_query(xx, yy, alpha))
        return out

    spy = Spy(ridge_prefix)
    ks = [2, 5, 7]
    res = prompt_sensitivity({"ridge": spy}, x, y, context_lengths=ks, generator=make_generator(3),
                             x_new=x_new, y_new=y_new)  # fmt: skip
    assert len(spy.calls) == len(ks)
    for (xx, yy), k, m in zip(spy.calls, ks, res.curves["ridge"].mean_abs, strict=True):
        clean_x, pert_x, clean_y, pert_y = xx[:B], xx[B:], yy[:B], yy[B:]
        assert torch.equal(clean_x, x[:, : k + 1]) and torch.equal(clean_y, y[:, : k + 1])
        changed = (pert_x != clean_x).any(-1) | (pert_y != clean_y)  # (B, k+1)
        assert torch.equal(changed.sum(1), torch.ones(B, dtype=torch.long))
        assert not changed[:, k].any()  # the query is never perturbed
        j = changed.int().argmax(1)
        assert torch.equal(pert_x[torch.arange(B), j], x_new)
        assert torch.equal(pert_y[torch.arange(B), j], y_new)
        ref = np.abs(numpy_ridge_query(pert_x, pert_y, alpha) - numpy_ridge_query(clean_x, clean_y,
                                                                                   alpha))  # fmt: skip
        assert m == pytest.approx(ref.mean(), rel=1e-10)


def test_noise_mode_adds_exactly_epsilon_to_one_pair():
    B, N, d, eps = 30, 6, 2, 0.37
    x = torch.randn(B, N, d, generator=make_generator(4), dtype=torch.float64)
    y = torch.randn(B, N, generator=make_generator(5), dtype=torch.float64)
    spy = Spy(running_mean)
    res = prompt_sensitivity({"m": spy}, x, y, context_lengths=[3], generator=make_generator(6),
                             mode="noise", epsilon=eps)  # fmt: skip
    ((xx, yy),) = spy.calls
    dz = torch.cat([xx[B:] - xx[:B], (yy[B:] - yy[:B]).unsqueeze(-1)], -1)  # (B, 4, d + 1)
    norms = dz.norm(dim=-1)
    assert (
        torch.allclose(norms.sum(1), torch.full((B,), eps, dtype=torch.float64))
        and (norms > 0).sum() == B
    )
    # running mean of 3 labels: the change is (Δy_j) / 3
    assert res.curves["m"].mean_abs[0] == pytest.approx(float(dz[..., -1].sum(1).abs().mean() / 3))
    assert res.epsilon == eps and res.mode == "noise"


def test_sign_flip_corruption_on_constant_labels_is_exact_and_nested():
    B, N, d, c = 50, 11, 2, 1.5
    x = torch.randn(B, N, d, generator=make_generator(7))
    y = torch.full((B, N), c)
    spy = Spy(running_mean)
    n = 10
    ks = [0, 1, 3, 6]
    res = label_corruption({"mean": spy}, x, y, n_context=n, n_corrupt=ks,
                           generator=make_generator(8), kind="sign_flip")  # fmt: skip
    cur = res.curves["mean"]
    k = np.array(ks)
    assert np.allclose(cur.change, 2 * c * k / n) and np.allclose(cur.mse, (2 * c * k / n) ** 2)
    assert np.allclose(cur.fraction, k / n)
    flipped = [(yy[:, :n] < 0) for _, yy in spy.calls[: len(ks)]]
    assert [int(f.sum(1).unique()) for f in flipped] == ks
    for a, b in zip(flipped, flipped[1:], strict=False):
        assert bool((a <= b).all())  # corrupted sets are nested in k
    assert all(bool((yy[:, n] == c).all()) for _, yy in spy.calls)  # query label untouched


def test_resample_corruption_uses_the_label_scale():
    B, N, d = 4000, 5, 1
    x = torch.randn(B, N, d, generator=make_generator(9))
    y = torch.zeros(B, N)
    res = label_corruption({"mean": running_mean}, x, y, n_context=4, n_corrupt=[4],
                           generator=make_generator(10), kind="resample", label_scale=2.0)  # fmt: skip
    # mean of 4 N(0, 4) draws: variance 1, so E[pred²] = 1 (4 s.e. of a χ² mean ≈ 4·sqrt(2/4000))
    assert abs(res.curves["mean"].mse[0] - 1.0) <= 4 * math.sqrt(2 / B)


def test_probes_reject_bad_input():
    x, y = torch.randn(3, 5, 2), torch.randn(3, 5)
    g = make_generator(0)
    with pytest.raises(ValueError, match="context_lengths"):
        prompt_sensitivity({"m": running_mean}, x, y, context_lengths=[5], generator=g,
                           x_new=torch.zeros(3, 2), y_new=torch.zeros(3))  # fmt: skip
    with pytest.raises(ValueError, match="epsilon"):
        prompt_sensitivity({"m": running_mean}, x, y, context_lengths=[2], generator=g,
                           mode="noise", epsilon=-0.1)  # fmt: skip
    with pytest.raises(ValueError, match="x_new"):
        prompt_sensitivity({"m": running_mean}, x, y, context_lengths=[2], generator=g)
    with pytest.raises(ValueError, match="n_corrupt"):
        label_corruption({"m": running_mean}, x, y, n_context=3, n_corrupt=[4], generator=g)
    with pytest.raises(ValueError, match="n_context"):
        label_corruption({"m": running_mean}, x, y, n_context=0, n_corrupt=[0], generator=g)
    with pytest.raises(ValueError, match="kind"):
        label_corruption({"m": running_mean}, x, y, n_context=3, n_corrupt=[1], generator=g,
                         kind="typo")  # fmt: skip


def _random_gpt(seed: int) -> GPT:
    torch.manual_seed(seed)
    gpt = GPT(GPTConfig(n_layer=2, n_head=2, n_embd=8, n_positions=16))
    with torch.no_grad():  # non-trivial weights, biases and LayerNorm affine parameters
        for p in gpt.parameters():
            p.add_(0.5 * torch.randn_like(p))
    return gpt


def test_logit_bound_dominates_the_logits_the_model_computes():
    gpt = _random_gpt(0)
    lb = attention_logit_bound(gpt)
    cache = run_with_cache(gpt, 10.0 * torch.randn(64, 16, 8),
                           names=lambda n: n.endswith("hook_q") or n.endswith("hook_k")).cache  # fmt: skip
    for i in range(2):
        q, k = cache[f"blocks.{i}.attn.hook_q"], cache[f"blocks.{i}.attn.hook_k"]
        logits = (q @ k.transpose(-2, -1)) / math.sqrt(q.shape[-1])
        observed = float(logits.abs().max())
        assert observed <= lb.per_layer[i] * (1 + 1e-6)
        assert observed >= 0.05 * lb.per_layer[i]  # not absurdly loose on random weights
    assert lb.gamma == pytest.approx(lb.per_layer.max()) and lb.depth == 2
    assert attention_logit_bound(gpt, temperature=4.0).gamma == pytest.approx(lb.gamma / 4)


def test_logit_bound_refuses_linear_attention_and_bad_temperature():
    lin = GPT(GPTConfig(n_layer=1, n_head=1, n_embd=4, n_positions=4, attention="linear"))
    with pytest.raises(ValueError, match="softmax"):
        attention_logit_bound(lin)
    with pytest.raises(ValueError, match="temperature"):
        attention_logit_bound(_random_gpt(1), temperature=0.0)
    nolN = GPT(GPTConfig(n_layer=1, n_head=1, n_embd=4, n_positions=4, layernorm=False))
    assert attention_logit_bound(nolN).gamma == math.inf
