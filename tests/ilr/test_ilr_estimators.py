"""RE / TRE / ORE (fmtheory.estimators.ilr) against plain numpy references."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from fmtheory.estimators import create_estimator, get_estimator_class
from fmtheory.estimators.ilr import estimate_task_prior, gcv_ridge_fit
from fmtheory.tasks.ilr import ILRSpec, sample_ilr, sample_ilr_prior
from fmtheory.tasks.regression import make_generator


def _data(b=6, k=5, d=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(b, k, d, generator=g, dtype=torch.float64)
    w = torch.randn(b, d, generator=g, dtype=torch.float64)
    y = torch.einsum("bkd,bd->bk", x, w) + 0.3 * torch.randn(b, k, generator=g, dtype=torch.float64)
    return x, y


def gcv_reference(x: np.ndarray, y: np.ndarray, alphas: np.ndarray) -> tuple[np.ndarray, float]:
    """One prompt, textbook GCV: hat matrix by explicit inverse, loop over α."""
    k, d = x.shape
    best = (math.inf, None, None)
    for a in alphas:
        h = x @ np.linalg.solve(x.T @ x + a * np.eye(d), x.T)
        res = y - h @ y
        g = (res @ res / k) / (1 - np.trace(h) / k) ** 2
        if g < best[0]:
            best = (g, a, np.linalg.solve(x.T @ x + a * np.eye(d), x.T @ y))
    return best[2], best[1]


@pytest.mark.parametrize(("k", "d"), [(8, 3), (3, 6), (5, 5)])
def test_ridge_gcv_matches_textbook_gcv(k, d):
    x, y = _data(b=5, k=k, d=d, seed=k + d)
    est = create_estimator("ridge_gcv", alpha_min=1e-4, alpha_max=1e2, n_alphas=25)
    est.fit(x, y)
    for b in range(5):
        xb, yb = x[b].numpy(), y[b].numpy()
        alphas = (xb**2).sum() / d * np.logspace(-4, 2, 25)
        w_ref, a_ref = gcv_reference(xb, yb, alphas)
        assert float(est.alpha_[b]) == pytest.approx(a_ref, rel=1e-9)
        assert np.allclose(est.coef_[b].numpy(), w_ref, rtol=1e-8, atol=1e-10)


def test_ridge_gcv_empty_context_and_prefixes():
    x, y = _data(b=3, k=4, d=3)
    w, a = gcv_ridge_fit(x[:, :0], y[:, :0], alpha_min=1e-3, alpha_max=1e3, n_alphas=5)
    assert torch.equal(w, torch.zeros(3, 3)) and bool(a.isnan().all())
    est = create_estimator("ridge_gcv")
    pre = est.predict_prefixes(x, y)
    for k in range(4):
        ref = est.fit(x[:, :k], y[:, :k]).predict(x[:, k : k + 1])[:, 0]
        assert torch.allclose(pre[:, k], ref, rtol=1e-12, atol=1e-12)


def _prior(d=6, r=2, sigma=0.2, cond=1.0, seed=0):
    spec = ILRSpec(dim=d, rank=r, noise_std=sigma, x_cond=cond)
    return spec, sample_ilr_prior(spec, generator=make_generator(seed))


def test_ore_equals_numpy_posterior_mean():
    spec, prior = _prior(d=6, r=2, sigma=0.3, cond=4.0)
    b = sample_ilr(spec, prior, batch=50, n_points=4, generator=make_generator(1),
                   dtype=torch.float64)  # fmt: skip
    lam = torch.tensor([2.0, 0.5], dtype=torch.float64)
    est = create_estimator("ore", w0=prior.w0, basis=prior.basis, spectrum=lam, noise_std=0.3)
    w_hat = est.fit(b.x, b.y).coef_.numpy()
    u, w0, L = prior.basis.numpy(), prior.w0.numpy(), np.diag(lam.numpy())
    for i in range(50):
        x, y = b.x[i].numpy(), b.y[i].numpy()
        z = x @ u
        post = np.linalg.inv(np.linalg.inv(L) + z.T @ z / 0.09)
        ref = w0 + u @ post @ z.T @ (y - x @ w0) / 0.09  # Bishop eq. 3.50 in v-coordinates
        assert np.allclose(w_hat[i], ref, rtol=1e-9, atol=1e-11)
    # and its error equals the theory's within Monte Carlo error is checked in test_ilr_theory


def test_ore_noiseless_interpolates_inside_the_subspace():
    spec, prior = _prior(d=6, r=3, sigma=0.0)
    b = sample_ilr(spec, prior, batch=20, n_points=4, generator=make_generator(2),
                   dtype=torch.float64)  # fmt: skip
    est = create_estimator("ore", w0=prior.w0, basis=prior.basis, spectrum=1.0, noise_std=0.0)
    w_hat = est.fit(b.x, b.y).coef_
    assert torch.allclose(w_hat, b.w, atol=1e-8)  # n = 4 >= r = 3 pairs identify w exactly


@pytest.mark.parametrize(("m", "method"), [(10, "least_squares"), (4, "moments")])
def test_tre_stage_one_recovers_the_prior(m, method):
    d, r, sigma = 6, 2, 0.2
    spec, prior = _prior(d=d, r=r, sigma=sigma, cond=3.0 if method == "moments" else 1.0)
    tasks = sample_ilr(spec, prior, batch=40000, n_points=m, generator=make_generator(3),
                       dtype=torch.float64)  # fmt: skip
    est = estimate_task_prior(tasks.x, tasks.y)
    assert est.method == method and est.rank == r
    # reference: the same moments from the true task vectors (what stage 1 estimates unbiasedly)
    w = tasks.w.numpy()
    se_mean = w.std(0, ddof=1) * math.sqrt(1 + 4 / m) / math.sqrt(w.shape[0])  # ~ s.e. of w̃ mean
    assert np.all(np.abs(est.mean.numpy() - prior.w0.numpy()) <= 6 * se_mean + 0.02)
    cov_err = np.linalg.norm(est.prior_cov.numpy() - prior.cov.numpy()) / np.linalg.norm(prior.cov)
    assert cov_err < 0.06  # measured 0.009 (least squares), 0.017 (moments)
    assert est.noise_std == pytest.approx(sigma, rel=0.05)
    # subspace recovered: principal angles small
    s = np.linalg.svd(est.basis.numpy().T @ prior.basis.numpy(), compute_uv=False)
    assert s.min() > 0.999


def test_tre_is_the_posterior_mean_under_its_estimated_prior():
    spec, prior = _prior(d=5, r=2, sigma=0.2)
    tasks = sample_ilr(spec, prior, batch=2000, n_points=8, generator=make_generator(4),
                       dtype=torch.float64)  # fmt: skip
    b = sample_ilr(spec, prior, batch=30, n_points=3, generator=make_generator(5),
                   dtype=torch.float64)  # fmt: skip
    tre = create_estimator("tre", tasks_x=tasks.x, tasks_y=tasks.y).fit(b.x, b.y)
    p = tre.prior_
    bayes = create_estimator("bayes", prior_mean=p.mean, prior_cov=p.prior_cov,
                             noise_std=p.noise_std).fit(b.x, b.y)  # fmt: skip
    assert torch.allclose(tre.coef_, bayes.coef_, rtol=1e-10, atol=1e-12)
    fixed = create_estimator("tre", tasks_x=tasks.x, tasks_y=tasks.y, rank=3, noise_std=0.5)
    fixed.fit(b.x, b.y)
    assert fixed.prior_.rank == 3 and fixed.prior_.noise_std == 0.5


def test_tre_beats_ridge_and_approaches_the_oracle():
    spec, prior = _prior(d=8, r=2, sigma=0.1)
    tasks = sample_ilr(spec, prior, batch=5000, n_points=10, generator=make_generator(6),
                       dtype=torch.float64)  # fmt: skip
    b = sample_ilr(spec, prior, batch=1000, n_points=4, generator=make_generator(7),
                   dtype=torch.float64)  # fmt: skip
    err = {}
    for name, est in (
        ("tre", create_estimator("tre", tasks_x=tasks.x, tasks_y=tasks.y)),
        ("ore", create_estimator("ore", w0=prior.w0, basis=prior.basis, noise_std=0.1)),
        ("re", create_estimator("ridge_gcv")),
    ):
        err[name] = float(((est.fit(b.x, b.y).coef_ - b.w) ** 2).sum(-1).mean())
    assert err["ore"] <= err["tre"] < 2.0 * err["ore"] < err["re"]


INVALID = [
    ("ridge_gcv", {"alpha_min": 0.0}, "alpha_min"),
    ("ridge_gcv", {"alpha_max": float("inf")}, "alpha_max"),
    ("ridge_gcv", {"alpha_min": 10.0, "alpha_max": 1.0}, "alpha_max"),
    ("ridge_gcv", {"n_alphas": 0}, "n_alphas"),
    ("tre", {"tasks_x": torch.zeros(4, 3)}, "tasks_x"),
    ("tre", {"tasks_y": torch.zeros(5, 5)}, "tasks_y"),
    ("tre", {"rank": 0}, "rank"),
    ("tre", {"rank": 4}, "rank"),
    ("tre", {"noise_std": -1.0}, "noise_std"),
    ("ore", {"basis": torch.ones(3, 2, dtype=torch.float64)}, "basis"),
    ("ore", {"w0": torch.zeros(4, dtype=torch.float64)}, "basis"),
    ("ore", {"spectrum": -1.0}, "spectrum"),
    ("ore", {"spectrum": torch.tensor([1.0, 0.0], dtype=torch.float64)}, "spectrum"),
    ("ore", {"noise_std": float("nan")}, "noise_std"),
]


@pytest.mark.parametrize(("name", "params", "field"), INVALID)
def test_invalid_hyperparameters_raise_naming_the_field(name, params, field):
    cls = get_estimator_class(name)
    with pytest.raises(ValueError, match=field):
        cls(**{**cls.example_params(), **params})
