"""Every estimator against a plain numpy / scikit-learn reference, at every prefix length.

For each case, the reference refits on each prefix ``(x[b, :k], y[b, :k])`` in a Python loop and
predicts at ``x[b, k]``; the batched ``predict_prefixes`` and ``fit(prefix).predict(query)`` must
match it.  Cases: ``(B, n, d) = (4, 8, 3)`` (k runs from below to above d), ``(4, 5, 6)`` (every
k < d) and ``(3, 12, 5)``.  Tolerance: 1e-9 absolute + 1e-9 relative for direct solvers (float64
round-off on well-conditioned 3-12 point problems is ~1e-13); 1e-7 for iterative solvers run to
tight tolerances.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.special import softmax
from sklearn.linear_model import Lasso as SkLasso
from sklearn.linear_model import Ridge as SkRidge
from sklearn.neighbors import KNeighborsRegressor

from fmtheory.estimators import create_estimator

CASES = [(4, 8, 3), (4, 5, 6), (3, 12, 5)]
TIGHT = {"rtol": 1e-9, "atol": 1e-9}


def make_data(batch: int, n: int, d: int, seed: int = 0, noise: float = 0.3):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, n, d, generator=g, dtype=torch.float64)
    w = torch.randn(batch, d, generator=g, dtype=torch.float64)
    y = torch.einsum("bnd,bd->bn", x, w) + noise * torch.randn(
        batch, n, generator=g, dtype=torch.float64
    )
    return x, y


def reference_prefixes(x: torch.Tensor, y: torch.Tensor, fit_predict) -> np.ndarray:
    """Loop: ``out[b, k] = fit_predict(X_k, y_k, x_query)``; 0 handled by ``fit_predict`` itself."""
    xn, yn = x.numpy(), y.numpy()
    batch, n, _ = xn.shape
    out = np.zeros((batch, n))
    for b in range(batch):
        for k in range(n):
            out[b, k] = fit_predict(xn[b, :k], yn[b, :k], xn[b, k])
    return out


def fit_each_prefix(est, x: torch.Tensor, y: torch.Tensor) -> np.ndarray:
    """``fit(x[:, :k], y[:, :k]).predict(x[:, k:k+1])`` for every k, as (B, n)."""
    cols = [est.fit(x[:, :k], y[:, :k]).predict(x[:, k : k + 1])[:, 0] for k in range(x.shape[1])]
    return torch.stack(cols, 1).numpy()


def assert_matches(est, x, y, ref, tol=TIGHT):
    np.testing.assert_allclose(est.predict_prefixes(x, y).numpy(), ref, **tol)
    np.testing.assert_allclose(fit_each_prefix(est, x, y), ref, **tol)


# ----------------------------------------------------------------------------- references


def ref_ols(xk, yk, q):
    return float(q @ np.linalg.pinv(xk) @ yk) if len(yk) else 0.0


def ref_lstsq(xk, yk, q):
    return float(q @ np.linalg.lstsq(xk, yk, rcond=None)[0]) if len(yk) else 0.0


def ref_ridge(alpha):
    def f(xk, yk, q):
        if not len(yk):
            return 0.0
        return float(SkRidge(alpha=alpha, fit_intercept=False).fit(xk, yk).predict(q[None])[0])

    return f


def ref_bayes_bishop(mean, cov, noise_std):
    """Bishop 2006 eqs. (3.50)-(3.51): S_N⁻¹ = S_0⁻¹ + XᵀX/σ², m_N = S_N(S_0⁻¹m_0 + Xᵀy/σ²)."""
    prec0 = np.linalg.inv(cov)
    beta = 1.0 / noise_std**2

    def f(xk, yk, q):
        s_inv = prec0 + beta * xk.T @ xk
        m = np.linalg.solve(s_inv, prec0 @ mean + beta * xk.T @ yk)
        return float(q @ m)

    return f


def ref_bayes_kernel(mean, cov, noise_std):
    """μ + ΣXᵀ(XΣXᵀ + σ²I)⁺(y − Xμ) (pinv covers σ = 0 and singular Σ)."""

    def f(xk, yk, q):
        if not len(yk):
            return float(q @ mean)
        a = xk @ cov @ xk.T + noise_std**2 * np.eye(len(yk))
        m = mean + cov @ xk.T @ np.linalg.pinv(a) @ (yk - xk @ mean)
        return float(q @ m)

    return f


def ref_knn(nn):
    def f(xk, yk, q):
        if not len(yk):
            return 0.0
        reg = KNeighborsRegressor(n_neighbors=min(nn, len(yk)), algorithm="brute")
        return float(reg.fit(xk, yk).predict(q[None])[0])

    return f


def ref_averaging(xk, yk, q):
    return float(q @ (xk.T @ yk) / len(yk)) if len(yk) else 0.0


def ref_gd(steps, lr):
    def f(xk, yk, q):
        w = np.zeros(q.shape[0])
        if not len(yk):
            return 0.0
        for _ in range(steps):
            w = w - lr * xk.T @ (xk @ w - yk) / len(yk)
        return float(q @ w)

    return f


def ref_lasso(alpha):
    def f(xk, yk, q):
        if not len(yk):
            return 0.0
        m = SkLasso(alpha=alpha, fit_intercept=False, tol=1e-14, max_iter=1_000_000)
        return float(m.fit(xk, yk).predict(q[None])[0])

    return f


def ref_dmmse(pool, noise_std):
    def f(xk, yk, q):
        sse = ((yk[:, None] - xk @ pool.T) ** 2).sum(0)  # (M,)
        weights = softmax(-sse / (2 * noise_std**2))
        return float(q @ (weights @ pool))

    return f


# ----------------------------------------------------------------------------- tests


@pytest.mark.parametrize("shape", CASES)
def test_zero(shape):
    x, y = make_data(*shape)
    assert_matches(create_estimator("zero"), x, y, np.zeros(shape[:2]), tol={"rtol": 0, "atol": 0})


@pytest.mark.parametrize("shape", CASES)
def test_averaging(shape):
    x, y = make_data(*shape)
    assert_matches(create_estimator("averaging"), x, y, reference_prefixes(x, y, ref_averaging))


@pytest.mark.parametrize("shape", CASES)
def test_ols_vs_pinv_and_lstsq(shape):
    x, y = make_data(*shape, seed=1)
    ref = reference_prefixes(x, y, ref_ols)
    np.testing.assert_allclose(ref, reference_prefixes(x, y, ref_lstsq), rtol=1e-8, atol=1e-8)
    assert_matches(create_estimator("ols"), x, y, ref, tol={"rtol": 1e-8, "atol": 1e-8})


def test_ols_rank_deficient_zero_columns_and_duplicate_rows():
    # curriculum-style inactive dims (exact zero columns) and a repeated point (a dependent row in
    # the under-determined phase, which the kernel Cholesky flags and the SVD fallback handles)
    x, y = make_data(4, 9, 6, seed=2)
    x[..., 4:] = 0.0
    x[:, 3] = x[:, 1]
    x[1, 5] = 2.0 * x[1, 0]
    ref = reference_prefixes(x, y, ref_ols)
    assert_matches(create_estimator("ols"), x, y, ref, tol={"rtol": 1e-8, "atol": 1e-8})


@pytest.mark.parametrize("shape", CASES)
@pytest.mark.parametrize("alpha", [0.01, 0.7])
def test_ridge_vs_sklearn(shape, alpha, gp_path):
    x, y = make_data(*shape, seed=3)
    assert_matches(
        create_estimator("ridge", alpha=alpha), x, y, reference_prefixes(x, y, ref_ridge(alpha))
    )


@pytest.mark.parametrize("name", ["ridge", "bayes"])
def test_long_prompts_primal_form_vs_sklearn(name, gp_path):
    # n = 40 > 16·d = 32: the primal (p×p per prefix) form instead of the n×n kernel form
    x, y = make_data(2, 40, 2, seed=17)
    est = create_estimator(name, **({"alpha": 0.5} if name == "ridge" else {"noise_std": 0.5**0.5}))
    assert_matches(est, x, y, reference_prefixes(x, y, ref_ridge(0.5)))


def test_ridge_alpha_zero_is_min_norm_least_squares():
    x, y = make_data(4, 8, 3, seed=4)
    ref = reference_prefixes(x, y, ref_ols)
    assert_matches(
        create_estimator("ridge", alpha=0.0), x, y, ref, tol={"rtol": 1e-8, "atol": 1e-8}
    )


def _spd(d: int, seed: int) -> np.ndarray:
    a = np.random.default_rng(seed).standard_normal((d, d))
    return a @ a.T / d + 0.2 * np.eye(d)


@pytest.mark.parametrize("shape", CASES)
def test_bayes_general_prior_vs_bishop(shape, gp_path):
    x, y = make_data(*shape, seed=5)
    d = shape[2]
    mean = np.linspace(-0.5, 0.5, d)
    cov = _spd(d, seed=d)
    est = create_estimator(
        "bayes", prior_mean=torch.tensor(mean), prior_cov=torch.tensor(cov), noise_std=0.4
    )
    assert_matches(est, x, y, reference_prefixes(x, y, ref_bayes_bishop(mean, cov, 0.4)))


@pytest.mark.parametrize("shape", CASES)
def test_bayes_noiseless_interpolating_posterior_mean(shape):
    x, y = make_data(*shape, seed=6, noise=0.0)
    d = shape[2]
    mean = np.full(d, 0.3)
    cov = _spd(d, seed=10 + d)
    est = create_estimator("bayes", prior_mean=0.3, prior_cov=torch.tensor(cov), noise_std=0.0)
    ref = reference_prefixes(x, y, ref_bayes_kernel(mean, cov, 0.0))
    assert_matches(est, x, y, ref, tol={"rtol": 1e-8, "atol": 1e-8})


@pytest.mark.parametrize("noise_std", [0.0, 0.5])
def test_bayes_singular_and_diagonal_prior(noise_std, gp_path):
    # rank-2 prior covariance in d = 4 (w confined to a plane), and the same as a (d,) diagonal
    x, y = make_data(4, 7, 4, seed=7)
    u = np.random.default_rng(0).standard_normal((4, 2))
    cov = u @ u.T
    mean = np.array([0.1, -0.2, 0.3, 0.0])
    est = create_estimator(
        "bayes", prior_mean=torch.tensor(mean), prior_cov=torch.tensor(cov), noise_std=noise_std
    )
    ref = reference_prefixes(x, y, ref_bayes_kernel(mean, cov, noise_std))
    assert_matches(est, x, y, ref, tol={"rtol": 1e-8, "atol": 1e-8})
    diag = np.array([2.0, 0.0, 0.5, 1.0])
    est = create_estimator(
        "bayes", prior_mean=torch.tensor(mean), prior_cov=torch.tensor(diag), noise_std=noise_std
    )
    ref = reference_prefixes(x, y, ref_bayes_kernel(mean, np.diag(diag), noise_std))
    assert_matches(est, x, y, ref, tol={"rtol": 1e-8, "atol": 1e-8})


def test_bayes_isotropic_equals_ridge(gp_path):
    # prior N(0, τ²I), noise σ: posterior mean = ridge with α = σ²/τ² (Bishop 2006 eq. 3.55)
    x, y = make_data(4, 8, 3, seed=8)
    bayes = create_estimator("bayes", prior_cov=2.0, noise_std=0.5)
    ridge = create_estimator("ridge", alpha=0.25 / 2.0)
    np.testing.assert_allclose(
        bayes.predict_prefixes(x, y).numpy(), ridge.predict_prefixes(x, y).numpy(), **TIGHT
    )


@pytest.mark.parametrize("shape", CASES)
@pytest.mark.parametrize("nn", [1, 3])
def test_knn_vs_sklearn(shape, nn):
    x, y = make_data(*shape, seed=9)
    ref = reference_prefixes(x, y, ref_knn(nn))
    assert_matches(create_estimator("knn", n_neighbors=nn), x, y, ref)


@pytest.mark.parametrize("shape", [(4, 8, 3), (4, 5, 6), (3, 12, 2)])  # dual and Gram forms
@pytest.mark.parametrize(("steps", "lr"), [(1, 1.0), (5, 0.3)])
def test_gd_vs_numpy_loop(shape, steps, lr):
    x, y = make_data(*shape, seed=10)
    ref = reference_prefixes(x, y, ref_gd(steps, lr))
    assert_matches(create_estimator("gd", steps=steps, lr=lr), x, y, ref)


def test_one_gd_step_with_unit_rate_is_averaging():
    x, y = make_data(4, 8, 3, seed=11)
    a = create_estimator("gd", steps=1, lr=1.0).predict_prefixes(x, y)
    b = create_estimator("averaging").predict_prefixes(x, y)
    np.testing.assert_allclose(a.numpy(), b.numpy(), **TIGHT)


@pytest.mark.parametrize("shape", CASES)
def test_lasso_vs_sklearn(shape):
    x, y = make_data(*shape, seed=12)
    est = create_estimator("lasso", alpha=0.1, tol=1e-10, max_iter=100_000)
    ref = reference_prefixes(x, y, ref_lasso(0.1))
    assert_matches(est, x, y, ref, tol={"rtol": 1e-7, "atol": 1e-7})


def test_lasso_sparse_task_recovers_support():
    # Garg et al.'s sparse linear functions: with k = 3d noiseless points lasso zeroes the off-support
    g = torch.Generator().manual_seed(13)
    x = torch.randn(2, 30, 10, generator=g, dtype=torch.float64)
    w = torch.zeros(2, 10, dtype=torch.float64)
    w[:, :2] = torch.tensor([[1.5, -2.0], [2.0, 1.0]], dtype=torch.float64)
    y = torch.einsum("bnd,bd->bn", x, w)
    est = create_estimator("lasso", alpha=0.01, tol=1e-10, max_iter=10_000).fit(x, y)
    assert torch.all(est.coef_[:, 2:].abs() < 1e-12)
    assert torch.allclose(est.coef_[:, :2], w[:, :2], atol=0.02)


@pytest.mark.parametrize("shape", CASES)
def test_dmmse_vs_numpy(shape):
    x, y = make_data(*shape, seed=14)
    pool = torch.randn(
        32, shape[2], generator=torch.Generator().manual_seed(1), dtype=torch.float64
    )
    est = create_estimator("dmmse", pool=pool, noise_std=0.5)
    assert_matches(est, x, y, reference_prefixes(x, y, ref_dmmse(pool.numpy(), 0.5)))


def test_dmmse_is_stable_for_large_residuals_and_picks_the_true_task():
    # residuals of order 1e3 with σ = 0.1 overflow a naive exp; log-sum-exp must not
    g = torch.Generator().manual_seed(15)
    pool = 100.0 * torch.randn(8, 3, generator=g, dtype=torch.float64)
    x = torch.randn(2, 6, 3, generator=g, dtype=torch.float64)
    y = torch.einsum("bnd,d->bn", x, pool[5])
    est = create_estimator("dmmse", pool=pool, noise_std=0.1)
    out = est.predict_prefixes(x, y)
    assert torch.isfinite(out).all()
    np.testing.assert_allclose(out[:, 1:].numpy(), y[:, 1:].numpy(), rtol=1e-9, atol=1e-9)
    assert torch.allclose(est.fit(x, y).coef_, pool[5].expand(2, 3))


@pytest.mark.parametrize("name", ["ols", "ridge", "bayes", "gd", "averaging"])
def test_float32_input_is_accurate(name):
    x, y = make_data(4, 8, 3, seed=16)
    est = create_estimator(name)
    ref = est.predict_prefixes(x, y)
    out = est.predict_prefixes(x.float(), y.float())
    assert out.dtype == torch.float32
    np.testing.assert_allclose(out.double().numpy(), ref.numpy(), rtol=1e-4, atol=1e-5)


def test_lasso_duplicate_columns_match_sklearn_predictions():
    # identical columns 0 and 1: coefficients are not unique, fitted values and these predictions
    # are (x_q0 = x_q1); the homotopy skips the twin's zero-denominator event, KKT verifies
    x, y = make_data(3, 9, 4, seed=18)
    x[..., 1] = x[..., 0]
    est = create_estimator("lasso", alpha=0.05)
    ref = reference_prefixes(x, y, ref_lasso(0.05))
    np.testing.assert_allclose(est.predict_prefixes(x, y).numpy(), ref, rtol=1e-7, atol=1e-7)


def test_lasso_falls_back_to_coordinate_descent_where_the_path_fails(monkeypatch):
    from fmtheory.estimators import iterative

    real = iterative.lasso_homotopy
    failed = []

    def flaky(g, b, pen, *, max_steps):  # pretend every third problem's path broke down
        sol = real(g, b, pen, max_steps=max_steps)
        bad = torch.arange(sol.exact.numel()) % 3 == 1
        sol.exact[bad], sol.converged[bad] = False, False
        sol.coef[bad] = float("nan")
        failed.append(int(bad.sum()))
        return sol

    monkeypatch.setattr(iterative, "lasso_homotopy", flaky)
    x, y = make_data(3, 8, 3, seed=19)
    est = create_estimator("lasso", alpha=0.1, tol=1e-10, max_iter=100_000)
    ref = reference_prefixes(x, y, ref_lasso(0.1))
    np.testing.assert_allclose(est.predict_prefixes(x, y).numpy(), ref, rtol=1e-7, atol=1e-7)
    assert failed and failed[0] > 0
