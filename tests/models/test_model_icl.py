"""Readers: RegressionTransformer (both layouts) and TokenTransformer."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from fmtheory.models import GPTConfig, RegressionTransformer, TokenTransformer

D, N = 3, 6


def _reg(layout: str, *, attention: str = "softmax", **overrides) -> RegressionTransformer:
    torch.manual_seed(0)
    cfg = dict(n_layer=2, n_head=2, n_embd=16, n_positions=2 * N, attention=attention)
    cfg.update(overrides)
    return RegressionTransformer(D, N, GPTConfig(**cfg), layout=layout)


def _prompt(batch: int = 4, n: int = N, seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(batch, n, D, generator=g), torch.randn(batch, n, generator=g)


@pytest.mark.parametrize("layout", ["carry", "pairs", "interleaved"])
def test_regression_shapes(layout):
    model = _reg(layout)
    x, y = _prompt()
    assert model(x, y).shape == (4, N)
    xs, ys = _prompt(n=2)  # shorter prompts (curricula) are accepted
    assert model(xs, ys).shape == (4, 2)
    want = {"carry": (4, N, 2 * D + 2), "pairs": (4, N, D + 2), "interleaved": (4, 2 * N, D)}
    assert model.tokens(x, y).shape == want[layout]


def test_token_layouts_by_hand():
    x = torch.tensor([[[0.0, 1, 2], [6, 7, 8]]])  # x_0, x_1
    y = torch.tensor([[10.0, 20.0]])
    pairs = _reg("pairs").tokens(x, y)
    torch.testing.assert_close(
        pairs, torch.tensor([[[0.0, 1, 2, 0, 0], [6, 7, 8, 10, 1]]])
    )  # [x_k, y_{k-1}, 1{k>0}]
    inter = _reg("interleaved").tokens(x, y)
    torch.testing.assert_close(
        inter, torch.tensor([[[0.0, 1, 2], [10, 0, 0], [6, 7, 8], [20, 0, 0]]])
    )  # x_0, (y_0,0,0), x_1, (y_1,0,0)
    carry = _reg("carry").tokens(x, y)
    torch.testing.assert_close(
        carry, torch.tensor([[[0.0, 0, 0, 0, 0, 0, 1, 2], [0, 1, 2, 10, 1, 6, 7, 8]]])
    )  # [x_{k-1}, y_{k-1}, 1{k>0}, x_k]


@pytest.mark.parametrize("attention", ["softmax", "linear"])
@pytest.mark.parametrize("layout", ["carry", "pairs", "interleaved"])
def test_prediction_k_ignores_later_pairs(layout, attention):
    """Prediction k is unchanged (1e-6) when y_j (j >= k) and x_j (j > k) change, but does move when
    x_k or y_{k-1} changes (so the test is not vacuous)."""
    model = _reg(layout, attention=attention).eval()
    x, y = _prompt()
    base = model(x, y)
    g = torch.Generator().manual_seed(7)
    for k in range(N):
        x2, y2 = x.clone(), y.clone()
        x2[:, k + 1 :] += 5.0 * torch.randn(x2[:, k + 1 :].shape, generator=g)
        y2[:, k:] += 5.0 * torch.randn(y2[:, k:].shape, generator=g)
        out = model(x2, y2)
        assert (out[:, k] - base[:, k]).abs().max() <= 1e-6, k
        assert k == N - 1 or (out[:, k + 1 :] - base[:, k + 1 :]).abs().max() > 1e-4
        x3 = x.clone()
        x3[:, k] += 5.0
        assert (model(x3, y)[:, k] - base[:, k]).abs().min() > 1e-5
        if k > 0:
            y3 = y.clone()
            y3[:, k - 1] += 5.0
            assert (model(x, y3)[:, k] - base[:, k]).abs().min() > 1e-6


def test_n_positions_must_cover_the_layout():
    cfg = GPTConfig(n_layer=1, n_head=1, n_embd=8, n_positions=N)
    RegressionTransformer(D, N, cfg, layout="pairs")  # N tokens: fits
    with pytest.raises(ValueError, match="n_positions"):
        RegressionTransformer(D, N, cfg, layout="interleaved")  # 2N tokens: does not


def test_regression_input_validation():
    model = _reg("pairs")
    x, y = _prompt()
    with pytest.raises(ValueError, match="layout"):
        RegressionTransformer(D, N, model.config, layout="columns")
    with pytest.raises(ValueError, match="dim"):
        model(torch.randn(4, N, D + 1), y)
    with pytest.raises(ValueError, match="y.shape"):
        model(x, y[:, :-1])
    xl, yl = _prompt(n=N + 1)
    with pytest.raises(ValueError, match="n_points"):
        model(xl, yl)


def test_regression_overfits_a_fixed_batch():
    torch.manual_seed(0)
    model = _reg("pairs")
    x, y = _prompt(batch=16)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(60):
        loss = F.mse_loss(model(x, y), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0], losses


def _tok(**kw) -> TokenTransformer:
    torch.manual_seed(0)
    return TokenTransformer(11, 8, GPTConfig(n_layer=2, n_head=2, n_embd=16, n_positions=8), **kw)


def test_token_model_shapes_and_tying():
    ids = torch.randint(0, 11, (3, 8), generator=torch.Generator().manual_seed(0))
    untied, tied = _tok(), _tok(tie_weights=True)
    assert untied(ids).shape == (3, 8, 11)
    assert tied(ids).shape == (3, 8, 11)
    assert tied.lm_head.weight is tied.wte.weight
    n_untied = sum(p.numel() for p in untied.parameters())
    assert n_untied - sum(p.numel() for p in tied.parameters()) == 11 * 16


def test_token_model_is_causal():
    model = _tok().eval()
    ids = torch.randint(0, 11, (2, 8), generator=torch.Generator().manual_seed(0))
    ids2 = ids.clone()
    ids2[:, 5:] = (ids2[:, 5:] + 3) % 11
    a, b = model(ids), model(ids2)
    assert (a[:, :5] - b[:, :5]).abs().max() <= 1e-6
    assert (a[:, 5:] - b[:, 5:]).abs().max() > 1e-4


def test_token_model_validation():
    model = _tok()
    with pytest.raises(ValueError, match="must be in"):
        model(torch.tensor([[0, 11]]))
    with pytest.raises(ValueError, match="n_positions"):
        model(torch.zeros(1, 9, dtype=torch.long))
    with pytest.raises(ValueError, match="int64"):
        model(torch.zeros(1, 4))
    with pytest.raises(ValueError, match="n_positions"):
        TokenTransformer(11, 9, GPTConfig(n_layer=1, n_head=1, n_embd=8, n_positions=8))


def test_token_model_overfits_a_fixed_batch():
    model = _tok()
    ids = torch.randint(0, 11, (8, 8), generator=torch.Generator().manual_seed(0))
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(40):
        logits = model(ids[:, :-1])
        loss = F.cross_entropy(logits.reshape(-1, 11), ids[:, 1:].reshape(-1))
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.7 * losses[0], losses


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_device_follows_the_input_on_cuda():
    model = _reg("interleaved").cuda()
    x, y = _prompt()
    out = model(x.cuda(), y.cuda())
    assert out.device.type == "cuda"
    torch.testing.assert_close(out.cpu(), model.cpu()(x, y), rtol=1e-4, atol=1e-5)
