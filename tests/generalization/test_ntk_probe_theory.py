"""The empirical NTK probe against finite differences; the analytic ReLU NTK against Monte Carlo.

Tolerances, fixed before running: the torch.func Jacobian within 1e-6 (relative, float64) of a
central finite-difference Jacobian (step 1e-6, error O(h²)); the two-layer analytic kernel within
4 s.e. of the Monte Carlo mean of finite-width kernels (the finite-width kernel is an average of m
i.i.d. terms whose expectation is the analytic one, at any width); deeper kernels layer by layer
against Gaussian Monte Carlo of the arc-cosine expectations (4 s.e.), and the composed kernel
within 5% (relative Frobenius) of the probe's kernel averaged over four width-2048 networks (one
network fluctuates by ~5% at this width).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from fmtheory.models.gpt import GPT, GPTConfig
from fmtheory.models.wide_mlp import WideMLP
from fmtheory.probes.ntk import empirical_ntk, parameter_jacobian
from fmtheory.theory import evaluate
from fmtheory.theory.ntk import arccos_step, relu_ntk


def _fd_jacobian(model, x, eps=1e-6):
    params = list(model.parameters())
    cols = []
    with torch.no_grad():
        for p in params:
            flat = p.view(-1)
            for j in range(flat.numel()):
                old = float(flat[j])
                flat[j] = old + eps
                up = model(x).reshape(x.shape[0], -1).clone()
                flat[j] = old - eps
                down = model(x).reshape(x.shape[0], -1).clone()
                flat[j] = old
                cols.append((up - down) / (2 * eps))
    return torch.stack(cols, dim=-1)  # (n, out, P)


class _TinyTransformer(nn.Module):
    """A 1-layer GPT backbone with a read-in and a mean-pooled scalar read-out."""

    def __init__(self):
        super().__init__()
        self.read_in = nn.Linear(3, 8)
        self.gpt = GPT(GPTConfig(n_layer=1, n_head=2, n_embd=8, n_positions=4))
        self.read_out = nn.Linear(8, 1)

    def forward(self, x):  # x: (B, 4, 3)
        return self.read_out(self.gpt(self.read_in(x)).mean(1))[:, 0]


@pytest.mark.parametrize("kind", ["mlp", "mlp-2out", "transformer"])
def test_probe_jacobian_matches_finite_differences(kind):
    torch.manual_seed(0)
    if kind == "mlp":
        model, x = WideMLP(3, 7, depth=2), torch.randn(5, 3)
    elif kind == "mlp-2out":
        model, x = nn.Sequential(nn.Linear(3, 6), nn.Tanh(), nn.Linear(6, 2)), torch.randn(4, 3)
    else:
        model, x = _TinyTransformer(), torch.randn(3, 4, 3)
    model = model.double().eval()
    x = x.double()
    jac = parameter_jacobian(model, x)
    ref = _fd_jacobian(model, x)
    assert jac.shape == ref.shape
    assert torch.linalg.norm(jac - ref) <= 1e-6 * torch.linalg.norm(ref)
    k = empirical_ntk(model, x)
    gram = torch.einsum("iap,kbp->ikab", ref, ref)
    gram = gram[..., 0, 0] if gram.shape[-1] == 1 else gram
    assert torch.allclose(k, gram, rtol=1e-5, atol=1e-8)


def test_probe_cross_kernel_and_chunks():
    torch.manual_seed(1)
    model = WideMLP(4, 16).double()
    a, b = torch.randn(6, 4).double(), torch.randn(3, 4).double()
    full = empirical_ntk(model, torch.cat([a, b]))
    cross = empirical_ntk(model, a, b, chunk=2)
    assert cross.shape == (6, 3)
    assert torch.allclose(cross, full[:6, 6:])


def _unit(n, d, rng):
    x = rng.normal(size=(n, d))
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_two_layer_ntk_matches_monte_carlo_over_random_networks():
    # Θ_m(x, x') = x·x' (2/m) Σ_j a_j² 1[w_j·x > 0] 1[w_j·x' > 0] + (2/m) Σ_j σ(w_j·x) σ(w_j·x'):
    # an average of m i.i.d. terms with mean Θ_∞, at any width m (numpy, independent of the probe)
    rng = np.random.default_rng(0)
    x = _unit(5, 3, rng) * rng.uniform(0.5, 2.0, size=(5, 1))
    th = relu_ntk(x, depth=1).ntk
    m, draws = 64, 4000
    terms = np.empty((draws, 5, 5))
    for s in range(draws):
        w, a = rng.normal(size=(m, 3)), rng.normal(size=m)
        pre = x @ w.T
        act, step = np.maximum(pre, 0), (pre > 0).astype(float)
        terms[s] = (x @ x.T) * (2 / m) * ((step * a**2) @ step.T) + (2 / m) * act @ act.T
    mean, se = terms.mean(0), terms.std(0, ddof=1) / math.sqrt(draws)
    assert np.all(np.abs(mean - th) <= 4 * se + 1e-12)


def test_arccos_step_matches_gaussian_monte_carlo():
    rng = np.random.default_rng(1)
    lam = np.array([[1.3, 0.4], [0.4, 0.7]])
    uv = rng.multivariate_normal(np.zeros(2), lam, size=400_000)
    relu = np.maximum(uv, 0)
    step = (uv > 0).astype(float)
    s_mc, d_mc = 2 * relu[:, 0] * relu[:, 1], 2 * step[:, 0] * step[:, 1]
    sigma, dot, _, _ = arccos_step(np.array([[0.4]]), np.array([1.3]), np.array([0.7]))
    for th, mc in ((sigma[0, 0], s_mc), (dot[0, 0], d_mc)):
        assert abs(th - mc.mean()) <= 4 * mc.std() / math.sqrt(mc.size)


def test_deep_ntk_matches_a_wide_network():
    rng = np.random.default_rng(2)
    x = _unit(6, 4, rng)
    th = relu_ntk(x, depth=2).ntk
    torch.manual_seed(3)
    emp = np.mean([empirical_ntk(WideMLP(4, 2048, depth=2).double(), torch.as_tensor(x)).numpy()
                   for _ in range(4)], axis=0)  # fmt: skip
    assert np.linalg.norm(emp - th) <= 0.05 * np.linalg.norm(th)


def test_registered_relu_ntk():
    # at angle 0 and unit norms: Θ⁽¹⁾ = 1·1 + 1 = 2; Θ⁽²⁾ = 2·1 + 1 = 3
    assert evaluate("relu-ntk", angle=0.0, depth=1).value == pytest.approx(2.0)
    assert evaluate("relu-ntk", angle=0.0, depth=2).value == pytest.approx(3.0)
    # orthogonal unit inputs, one layer: 0·½ + 1/π
    assert evaluate("relu-ntk", angle=math.pi / 2).value == pytest.approx(1 / math.pi)
