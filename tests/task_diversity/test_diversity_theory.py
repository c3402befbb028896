"""dmmse-risk against exact cases and against an independent simulation (torch dMMSE estimator).

Tolerances: |a − b| <= 4 · (combined Monte Carlo standard error) + 1e-9.
"""

import math

import numpy as np
import pytest
import torch

from fmtheory.estimators import create_estimator
from fmtheory.tasks.regression import RegressionSpec, make_generator, sample_regression
from fmtheory.tasks.task_pool import sample_pool_regression, sample_task_pool
from fmtheory.theory import evaluate, get_formula
from fmtheory.theory.task_diversity import dmmse_risk, dmmse_risk_curve, dmmse_risk_exact

Z = 4.0


@pytest.mark.parametrize("tasks", ["pool", "fresh"])
def test_monte_carlo_matches_exact_k0_and_m1(tasks):
    d, m, sigma, tau = 3, 5, 0.5, 1.3
    c = dmmse_risk_curve(d=d, n=3, m=m, sigma=sigma, prior_scale=tau, tasks=tasks, n_mc=6000,
                         seed=1)  # fmt: skip
    exact = dmmse_risk_exact(d=d, k=0, m=m, sigma=sigma, prior_scale=tau, tasks=tasks)
    assert abs(c.risk[0] - exact) <= Z * c.stderr[0] + 1e-9
    one = dmmse_risk_curve(d=d, n=4, m=1, sigma=sigma, prior_scale=tau, tasks=tasks, n_mc=6000,
                           seed=2)  # fmt: skip
    exact1 = dmmse_risk_exact(d=d, k=3, m=1, sigma=sigma, prior_scale=tau, tasks=tasks)
    for k in range(4):
        assert abs(one.risk[k] - exact1) <= Z * one.stderr[k] + 1e-9


def test_exact_values_by_hand():
    # k = 0: τ²d(1 ± 1/M) + σ²;  M = 1: σ² on the pool, 2τ²d + σ² fresh.
    assert dmmse_risk_exact(d=4, k=0, m=4, sigma=0.5, tasks="pool") == pytest.approx(3.25)
    assert dmmse_risk_exact(d=4, k=0, m=4, sigma=0.5, tasks="fresh") == pytest.approx(5.25)
    assert dmmse_risk_exact(d=4, k=7, m=1, sigma=0.5, tasks="pool") == pytest.approx(0.25)
    assert dmmse_risk_exact(d=4, k=7, m=1, sigma=0.5, tasks="fresh") == pytest.approx(8.25)
    assert dmmse_risk_exact(d=4, k=2, m=3, sigma=0.5) is None


def _simulate(d, k, m, sigma, tasks, n_pools, per_pool, seed):
    """Independent path: torch sampler + the registered DMMSE estimator, one pool per block."""
    errs = []
    spec = RegressionSpec(dim=d, noise_std=sigma)
    for p in range(n_pools):
        g = make_generator(seed + p)
        pool = sample_task_pool(spec, n_tasks=m, generator=g, dtype=torch.float64)
        if tasks == "pool":
            b = sample_pool_regression(spec, pool, batch=per_pool, n_points=k + 1, generator=g,
                                       dtype=torch.float64)  # fmt: skip
        else:
            b = sample_regression(spec, batch=per_pool, n_points=k + 1, generator=g,
                                  dtype=torch.float64)  # fmt: skip
        pred = create_estimator("dmmse", pool=pool, noise_std=sigma).predict_prefixes(b.x, b.y)
        errs.append(((pred[:, k] - b.y[:, k]) ** 2).numpy())
    e = np.concatenate(errs)
    return e.mean(), e.std(ddof=1) / math.sqrt(e.size)


@pytest.mark.parametrize("tasks", ["pool", "fresh"])
def test_formula_matches_independent_simulation(tasks):
    d, k, m, sigma = 3, 4, 8, 0.5
    th = evaluate("dmmse-risk", d=d, k=k, m=m, sigma=sigma, fresh=int(tasks == "fresh"),
                  n_mc=8000, seed=3)  # fmt: skip
    # one pool per prompt: the same pool-averaged expectation as the formula
    sim, se = _simulate(d, k, m, sigma, tasks, n_pools=4000, per_pool=1, seed=10)
    assert th.stderr is not None and th.stderr > 0
    assert abs(th.value - sim) <= Z * math.hypot(th.stderr, se) + 1e-9


def test_conditional_on_a_pool_matches_estimator():
    d, n, m, sigma = 2, 5, 16, 0.4
    spec = RegressionSpec(dim=d, noise_std=sigma)
    g = make_generator(5)
    pool = sample_task_pool(spec, n_tasks=m, generator=g, dtype=torch.float64)
    c = dmmse_risk_curve(d=d, n=n, m=m, sigma=sigma, tasks="pool", n_mc=6000, seed=7,
                         pool=pool.numpy())  # fmt: skip
    b = sample_pool_regression(spec, pool, batch=6000, n_points=n, generator=g, dtype=torch.float64)
    pred = create_estimator("dmmse", pool=pool, noise_std=sigma).predict_prefixes(b.x, b.y)
    e = ((pred - b.y) ** 2).numpy()
    for k in range(n):
        se = math.hypot(c.stderr[k], e[:, k].std(ddof=1) / math.sqrt(e.shape[0]))
        assert abs(c.risk[k] - e[:, k].mean()) <= Z * se + 1e-9


def test_risk_decreases_with_context_on_pool_tasks():
    c = dmmse_risk_curve(d=2, n=8, m=4, sigma=0.5, tasks="pool", n_mc=3000, seed=0)
    assert c.risk[-1] < c.risk[0] - 10 * c.stderr[0]


def test_registry_entry_and_bad_input():
    f = get_formula("dmmse-risk")
    assert {p.name for p in f.params} >= {"d", "k", "m", "sigma", "fresh"}
    exact = evaluate("dmmse-risk", d=4, k=0, m=4, sigma=0.5)
    assert exact.stderr is None and exact.value == pytest.approx(3.25)
    for bad, name in [({"m": 0}, "m"), ({"sigma": -1.0}, "sigma"), ({"d": 0}, "d")]:
        params = {**dict(d=2, k=1, m=2, sigma=0.5), **bad}
        with pytest.raises(ValueError, match=name):
            evaluate("dmmse-risk", **params)
    with pytest.raises(ValueError, match="tasks"):
        dmmse_risk_curve(d=2, n=2, m=2, sigma=0.5, tasks="other")
    with pytest.raises(ValueError, match="pool.shape"):
        dmmse_risk_curve(d=2, n=2, m=2, sigma=0.5, pool=np.zeros((3, 5)))
    assert dmmse_risk(d=2, k=0, m=1, sigma=0.5).value == pytest.approx(0.25)


def test_vectorised_curve_equals_a_plain_loop_on_the_same_draws():
    """Same random stream (task index, x, noise in that order): the per-draw, per-prefix numpy loop
    must give the identical per-k average."""
    d, n, m, sigma, n_mc = 2, 4, 8, 0.3, 50
    pool = np.random.default_rng(9).standard_normal((m, d))
    c = dmmse_risk_curve(d=d, n=n, m=m, sigma=sigma, tasks="pool", n_mc=n_mc, seed=4, pool=pool)
    rng = np.random.default_rng(4)
    idx = rng.integers(0, m, size=n_mc)
    x = rng.standard_normal((n_mc, n, d))
    noise = rng.standard_normal((n_mc, n))
    err = np.zeros((n_mc, n))
    for i in range(n_mc):
        w = pool[idx[i]]
        y = x[i] @ w + sigma * noise[i]
        for k in range(n):
            logit = np.array(
                [-((y[:k] - x[i, :k] @ wm) ** 2).sum() / (2 * sigma**2) for wm in pool]
            )
            p = np.exp(logit - logit.max())
            err[i, k] = (((p / p.sum()) @ pool - w) ** 2).sum() + sigma**2
    assert np.allclose(c.risk, err.mean(0), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("tasks", ["fresh", "pool"])
@pytest.mark.parametrize("m", [1, 3])
def test_risk_given_pool_matches_an_independent_simulation(tasks, m):
    """Exact conditional risk at k = 0 (and every k when M = 1) vs a direct simulation that draws
    tasks, queries and noise and predicts with the pool mean (the dMMSE estimate without context)."""
    from fmtheory.theory.task_diversity import dmmse_risk_given_pool

    rng = np.random.default_rng(5)
    d, sigma, tau, n = 3, 0.5, 1.3, 400_000
    pool = rng.standard_normal((m, d)) * tau
    w = pool[rng.integers(0, m, n)] if tasks == "pool" else rng.standard_normal((n, d)) * tau
    x = rng.standard_normal((n, d))
    y = (x * w).sum(1) + sigma * rng.standard_normal(n)
    err = ((x @ pool.mean(0)) - y) ** 2
    exact = dmmse_risk_given_pool(pool, k=0, sigma=sigma, prior_scale=tau, tasks=tasks)
    assert abs(err.mean() - exact) <= 4 * err.std() / np.sqrt(n)
    later = dmmse_risk_given_pool(pool, k=5, sigma=sigma, prior_scale=tau, tasks=tasks)
    assert (later == exact) if m == 1 else later is None
