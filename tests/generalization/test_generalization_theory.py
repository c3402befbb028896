"""The bounds of theory/generalization.py against references and simulations.

Tolerances, fixed before running: kl inversion within 1e-9 of a plain bisection; a bound that must
hold with probability ≥ 1 − δ fails in at most δ + 4 s.e. of the simulated draws (binomial s.e. of
the failure frequency); a closed-form KL within 4 s.e. of its Monte Carlo estimate.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import stats

from fmtheory.experiments._generalization_nets import GaussianPosterior
from fmtheory.theory import evaluate
from fmtheory.theory.generalization import (
    heldout_bound,
    kl_bernoulli,
    kl_inverse_upper,
    mc_risk_upper,
    pac_bayes_kl_bound,
    rademacher_complexity_frobenius,
    sgd_stability_gap,
    spectral_complexity,
    vc_bound,
)


def _bisect(f, lo, hi, iters=200):
    for _ in range(iters):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if f(mid) else (lo, mid)
    return lo


@pytest.mark.parametrize("q", [0.0, 0.01, 0.1, 0.37, 0.9])
@pytest.mark.parametrize("c", [1e-4, 0.01, 0.3, 2.0])
def test_kl_inverse_matches_bisection(q, c):
    ref = _bisect(lambda p: kl_bernoulli(q, p) <= c, q, 1.0)
    assert kl_inverse_upper(q, c) == pytest.approx(ref, abs=1e-9)
    assert evaluate("kl-inverse", q=q, c=c).value == pytest.approx(ref, abs=1e-9)


def test_kl_inverse_edges():
    assert kl_inverse_upper(0.2, 0.0) == 0.2
    assert kl_inverse_upper(0.0, 50.0) == 1.0
    with pytest.raises(ValueError, match="c = "):
        kl_inverse_upper(0.1, -1.0)


@pytest.mark.parametrize(("k", "n"), [(0, 50), (3, 50), (40, 300), (50, 50)])
def test_test_set_bound_is_the_binomial_tail_inversion(k, n):
    delta = 0.025
    ub = heldout_bound(errors=k, n=n, delta=delta)
    if k == n:
        assert ub == 1.0
        return
    ref = _bisect(lambda p: stats.binom.cdf(k, n, p) >= delta, k / n, 1.0)
    assert ub == pytest.approx(ref, abs=1e-8)


def _failure_rate_ok(failures: int, draws: int, delta: float) -> bool:
    return failures / draws <= delta + 4 * math.sqrt(delta * (1 - delta) / draws)


def test_test_set_bound_covers_the_risk_in_simulation():
    rng = np.random.default_rng(0)
    p, n, delta, draws = 0.08, 200, 0.05, 4000
    ks = rng.binomial(n, p, size=draws)
    bounds = {k: heldout_bound(errors=int(k), n=n, delta=delta) for k in np.unique(ks)}
    fails = sum(bounds[k] < p for k in ks)
    assert _failure_rate_ok(fails, draws, delta)
    assert fails / draws > 0.005  # the bound is tight: it does fail near rate δ


def test_pac_bayes_with_posterior_equal_to_prior():
    # KL = 0: the bound is kl⁻¹(q, ln(2√n/δ)/n), and Q = P gives KL exactly 0
    n, delta, q = 1000, 0.025, 0.1
    expected = kl_inverse_upper(q, math.log(2 * math.sqrt(n) / delta) / n)
    assert pac_bayes_kl_bound(emp_risk=q, kl=0.0, n=n, delta=delta) == pytest.approx(expected)
    w = [torch.randn(4, 3), torch.randn(2, 4)]
    post = GaussianPosterior(w, w, init_std=0.1, prior_std=0.1)
    assert float(post.kl().detach()) == pytest.approx(0.0, abs=1e-5)  # float32 parameters
    # the union over J priors and the MC correction only loosen it
    assert pac_bayes_kl_bound(emp_risk=q, kl=0.0, n=n, delta=delta, n_priors=20) > expected
    assert pac_bayes_kl_bound(emp_risk=q, kl=0.0, n=n, delta=delta, n_mc=500) > expected


def test_pac_bayes_bound_covers_the_risk_in_simulation():
    # posterior = prior = a point mass on one classifier of risk p: the bound holds w.p. ≥ 1 − δ
    rng = np.random.default_rng(1)
    p, n, delta, draws = 0.15, 300, 0.1, 3000
    ks = rng.binomial(n, p, size=draws)
    fails = sum(pac_bayes_kl_bound(emp_risk=k / n, kl=0.0, n=n, delta=delta) < p for k in ks)
    assert _failure_rate_ok(fails, draws, delta)


def test_mc_correction_covers_the_gibbs_risk_in_simulation():
    rng = np.random.default_rng(2)
    e, m, delta, draws = 0.2, 400, 0.05, 3000
    ks = rng.binomial(m, e, size=draws)
    fails = sum(mc_risk_upper(mc_risk=k / m, n_mc=m, delta_mc=delta) < e for k in ks)
    assert _failure_rate_ok(fails, draws, delta)
    assert mc_risk_upper(mc_risk=0.3, n_mc=0, delta_mc=delta) == 0.3


def test_gaussian_kl_matches_monte_carlo():
    g = torch.Generator().manual_seed(0)
    mean = [torch.randn(3, 2, generator=g, dtype=torch.float64)]
    prior = [torch.randn(3, 2, generator=g, dtype=torch.float64)]
    post = GaussianPosterior(mean, prior, init_std=0.5, prior_std=0.8).double()
    with torch.no_grad():
        post.log_std[0].add_(0.3 * torch.randn(3, 2, generator=g, dtype=torch.float64))
        w = post.sample(200_000, g)[0].reshape(200_000, -1)
        q = torch.distributions.Normal(post.mean[0].reshape(-1), post.log_std[0].exp().reshape(-1))
        pr = torch.distributions.Normal(
            prior[0].reshape(-1), torch.tensor(0.8, dtype=torch.float64)
        )
        logr = (q.log_prob(w) - pr.log_prob(w)).sum(1)
        mc, se = float(logr.mean()), float(logr.std()) / math.sqrt(w.shape[0])
        assert abs(float(post.kl()) - mc) <= 4 * se


def test_vc_bound_by_hand():
    n, h, delta = 1000, 10, 0.05
    expected = 0.1 + 2 * math.sqrt(2 * (h * math.log(2 * math.e * n / h) + math.log(2 / delta)) / n)
    assert vc_bound(train_error=0.1, vc_dim=h, n=n, delta=delta) == pytest.approx(expected)
    # h ≥ 2n: the growth function is 2^(2n); the bound exceeds 1
    assert vc_bound(train_error=0.0, vc_dim=5000, n=1000, delta=delta) > 1.0
    assert evaluate("vc-bound", vc_dim=10, n=1000, delta=0.05, train_error=0.1).value == (
        pytest.approx(expected)
    )


def test_stability_bound_on_a_hand_computed_run():
    # n = 4, B = 1, L = 1, β = 2, α = (0.1, 0.2):
    # δ1 = ¼·(2·0.1·1) = 0.05; δ2 = ¾·1.4·0.05 + ¼·(0.05 + 2·0.2) = 0.0525 + 0.1125 = 0.165
    eps = sgd_stability_gap([0.1, 0.2], lipschitz=1.0, smoothness=2.0, n=4, batch=1)
    assert eps == pytest.approx(0.165)
    # B = 2: δ1 = ½·(2·0.1/2) = 0.05; δ2 = ½·(1.2·0.05 + 0.2) + ½·1.4·0.05 = 0.165
    assert sgd_stability_gap([0.1, 0.2], lipschitz=1.0, smoothness=2.0, n=4, batch=2) == (
        pytest.approx(0.165)
    )
    # convex-free limit β = 0: ε = 2L²Σα/n (HRS Thm 3.8's sum)
    assert sgd_stability_gap([0.1] * 10, lipschitz=3.0, smoothness=0.0, n=50) == pytest.approx(
        2 * 9 * 1.0 / 50
    )
    v = evaluate("sgd-stability", lr=0.1, steps=2, lipschitz=1, smoothness=2, n=4, batch=1)
    assert v.value == pytest.approx(0.1 * 2 / 4 * 0.75 * 1.2 + 0.25 * (0.05 + 0.2))


def test_spectral_complexity_of_one_layer_is_the_sum_of_row_norms():
    a = np.array([[3.0, 4.0], [0.0, 1.0]])
    assert spectral_complexity([a]) == pytest.approx(6.0)
    b = np.eye(2) * 2.0
    # two layers 2I: ‖·‖_σ = 2, row-norm sum 4: (2·2)·(2·(4/2)^(2/3))^(3/2) = 4·2^(3/2)·2
    assert spectral_complexity([b, b]) == pytest.approx(8 * 2**1.5)


def test_rademacher_bound_exceeds_the_simulated_complexity():
    # linear class {x → w·x : ‖w‖ ≤ M}: R̂ = M E‖Σσ_i x_i‖/n exactly; GRS's bound with d = 1 ≥ it
    rng = np.random.default_rng(3)
    x = rng.normal(size=(50, 5))
    m = 2.0
    sig = rng.choice([-1.0, 1.0], size=(20000, 50))
    sim = m * np.linalg.norm(sig @ x, axis=1).mean() / 50
    bound = rademacher_complexity_frobenius([np.full((1, 5), m / math.sqrt(5))],
                                            x_norm=float(np.linalg.norm(x)), n=50)  # fmt: skip
    assert bound >= sim
    assert bound <= 3 * sim  # and not absurdly loose for one layer


def test_formula_inputs_are_checked():
    with pytest.raises(ValueError, match="delta"):
        evaluate("pac-bayes-kl", emp_risk=0.1, kl=1, n=10, delta=1.0)
    with pytest.raises(ValueError, match="errors"):
        evaluate("test-set-bound", errors=11, n=10)
    with pytest.raises(ValueError, match="batch"):
        evaluate("sgd-stability", lr=0.1, steps=2, lipschitz=1, smoothness=1, n=4, batch=8)
