"""models/dp_icl.py: the batch-position backbone equals GPT's, and Opacus's per-example gradients of
it equal those of a loop over single examples and of torch.func."""

from __future__ import annotations

import copy
import warnings

import pytest
import torch

from fmtheory.models.dp_icl import BatchPositionGPT, build_dp_regression_transformer
from fmtheory.models.icl import build_regression_transformer
from fmtheory.sections import GPTSection
from fmtheory.train.fit import seeded

B, N, D = 4, 5, 3


def _data() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    return torch.randn(B, N, D, generator=g), torch.randn(B, N, generator=g)


def _loss(net: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Per-example loss = mean over positions; batch loss = mean over examples (Opacus "mean")."""
    return ((net(x, y) - y) ** 2).mean(1).mean()


def _opacus_grad_samples(net: torch.nn.Module) -> dict[str, torch.Tensor]:
    from opacus import GradSampleModule

    x, y = _data()
    gs = GradSampleModule(copy.deepcopy(net), loss_reduction="mean")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        _loss(gs, x, y).backward()
    out = {n: p.grad_sample.detach().clone() for n, p in gs._module.named_parameters()}
    gs._close()
    return out


def _loop_grad_samples(net: torch.nn.Module) -> dict[str, torch.Tensor]:
    x, y = _data()
    names, params = zip(*net.named_parameters(), strict=True)
    per = [torch.autograd.grad(_loss(net, x[i : i + 1], y[i : i + 1]), params) for i in range(B)]
    return {n: torch.stack([g[j] for g in per]) for j, n in enumerate(names)}


def _func_grad_samples(net: torch.nn.Module) -> dict[str, torch.Tensor]:
    from torch.func import functional_call, grad

    x, y = _data()
    params = {n: p.detach() for n, p in net.named_parameters()}

    def one(p: dict[str, torch.Tensor], xi: torch.Tensor, yi: torch.Tensor) -> torch.Tensor:
        pred = functional_call(net, p, (xi[None], yi[None]))
        return ((pred - yi[None]) ** 2).mean()

    # grad per example (the read-in builds tokens in place, which vmap does not allow)
    per = [grad(one)(params, x[i], y[i]) for i in range(B)]
    return {n: torch.stack([g[n] for g in per]) for n in params}


@pytest.mark.parametrize("attention", ["linear", "softmax"])
def test_same_weights_and_predictions(attention: str) -> None:
    s = GPTSection(n_layer=2, n_head=2, n_embd=8, attention=attention)
    a = seeded(lambda: build_regression_transformer(s, dim=D, n_points=N), 0)
    b = seeded(lambda: build_dp_regression_transformer(s, dim=D, n_points=N), 0)
    assert isinstance(b.backbone, BatchPositionGPT) and not isinstance(a.backbone, BatchPositionGPT)
    for (na, pa), (nb, pb) in zip(a.named_parameters(), b.named_parameters(), strict=True):
        assert na == nb and torch.equal(pa, pb)
    x, y = _data()
    assert torch.equal(a(x, y), b(x, y))


@pytest.mark.parametrize("attention", ["linear", "softmax"])
def test_opacus_per_example_gradients(attention: str) -> None:
    s = GPTSection(n_layer=2, n_head=2, n_embd=8, attention=attention)
    net = seeded(lambda: build_dp_regression_transformer(s, dim=D, n_points=N), 0)
    ops, loop = _opacus_grad_samples(net), _loop_grad_samples(net)
    assert ops.keys() == loop.keys()
    for n in loop:
        assert ops[n].shape == loop[n].shape, n
        torch.testing.assert_close(ops[n], loop[n], rtol=1e-4, atol=1e-6, msg=n)
    assert ops["backbone.wpe.weight"].shape == (B, N, 8)
    fn = _func_grad_samples(net)
    for n in loop:
        torch.testing.assert_close(ops[n], fn[n], rtol=1e-4, atol=1e-6, msg=n)


def test_original_backbone_has_the_wrong_shape() -> None:
    """The defect the variant removes: GPT's wpe per-example gradient has T as its batch axis."""
    s = GPTSection(n_layer=1, n_head=2, n_embd=8, attention="linear")
    net = seeded(lambda: build_regression_transformer(s, dim=D, n_points=N), 0)
    assert _opacus_grad_samples(net)["backbone.wpe.weight"].shape[0] == N != B
