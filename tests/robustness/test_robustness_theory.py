"""Closed forms of robustness against simulation: the Gaussian model's robust error, the
Clopper–Pearson bound, and the smoothing radius on a linear model whose p_A is known exactly."""

import math

import numpy as np
import pytest
import torch
from scipy import stats

from fmtheory.probes.adversarial import certify
from fmtheory.theory import evaluate
from fmtheory.theory.robustness import (
    abs_mean,
    clopper_pearson_lower,
    gmm_robust_error_limit,
    linear_robust_error,
)


def test_abs_mean_against_monte_carlo():
    z = np.random.default_rng(0).standard_normal(2_000_000)
    for s in (0.3, 1.0, 2.5):
        assert abs_mean(s) == pytest.approx(np.abs(1 + s * z).mean(), abs=3e-3)


@pytest.mark.parametrize("eps", [0.0, 0.3])
def test_linear_robust_error_against_simulation(eps):
    """Formula (1) against test points drawn from the model, attacked by δ = −ε y sign(w)."""
    rng = np.random.default_rng(1)
    d, sigma, m = 50, 3.0, 200_000
    w = 1 + rng.normal(0, 1.5, d)
    y = rng.choice([-1.0, 1.0], m)
    x = y[:, None] + sigma * rng.standard_normal((m, d))
    adv = x - eps * y[:, None] * np.sign(w)[None, :]
    measured = ((adv @ w) * y <= 0).mean()
    p = float(linear_robust_error(w, sigma=sigma, eps=eps))
    assert measured == pytest.approx(p, abs=4 * math.sqrt(p * (1 - p) / m) + 1e-4)


def test_large_d_limit_against_exact_error_of_sampled_estimators():
    """Formula (2) is the d → ∞ limit of (1) at ŵ ~ N(1, σ²/n I): close at d = 2^16 (tolerance 0.01)."""
    rng = np.random.default_rng(2)
    d, n, eps = 2**16, 8, 0.5
    sigma = d**0.25
    w = 1 + sigma / math.sqrt(n) * rng.standard_normal((8, d))
    exact = linear_robust_error(w, sigma=sigma, eps=eps).mean()
    assert gmm_robust_error_limit(d=d, n=n, sigma=sigma, eps=eps) == pytest.approx(exact, abs=0.01)
    assert evaluate("gmm-robust-error", d=d, n=n, sigma=sigma, eps=eps).value == pytest.approx(
        gmm_robust_error_limit(d=d, n=n, sigma=sigma, eps=eps)
    )


@pytest.mark.parametrize(("k", "n"), [(0, 10), (5, 10), (990, 1000), (1000, 1000)])
def test_clopper_pearson_against_scipy_exact_interval(k, n):
    alpha = 0.01
    ref = stats.binomtest(k, n).proportion_ci(confidence_level=1 - 2 * alpha, method="exact").low
    assert clopper_pearson_lower(k, n, alpha) == pytest.approx(ref, abs=1e-9)


def test_certified_radius_of_a_linear_model_is_its_distance_to_the_boundary():
    """For f(x) = 1{w·x + b > 0}, p_A = Φ(|w·x + b| / (σ‖w‖)), so σ Φ⁻¹(p_A) is the exact ℓ2
    distance to the boundary; CERTIFY's radius is a lower bound that approaches it as n grows."""
    g = torch.Generator().manual_seed(0)
    w = torch.tensor([3.0, -4.0])  # ‖w‖ = 5
    x = torch.tensor([[0.3, 0.1], [-0.2, 0.2], [0.2, -0.1]])
    dist = (x @ w).abs() / 5

    def model(z):
        s = z @ w
        return torch.stack([-s, s], -1)

    pred, radius = certify(model, x, sigma=0.5, n0=100, n=200_000, alpha=0.001, n_classes=2,
                           generator=g)  # fmt: skip
    assert torch.equal(pred, (x @ w > 0).long())
    assert torch.all(radius <= dist.double() + 1e-9)
    assert torch.allclose(radius, dist.double(), atol=0.02)
    assert evaluate("smoothing-radius", sigma=0.5, p_a=stats.norm.cdf(1.2)).value == pytest.approx(
        0.6
    )
    assert evaluate("smoothing-radius", sigma=0.5, p_a=0.4).value == 0.0
