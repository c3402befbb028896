"""The batched kernels of ``fmtheory.estimators._linalg`` / ``iterative``: each against an
independent computation, including the fallback branches and chunking."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from fmtheory.estimators import ConvergenceWarning, create_estimator
from fmtheory.estimators import _linalg as la
from fmtheory.estimators.iterative import (
    gd_prefix_predictions_dual,
    gd_prefix_predictions_gram,
    lasso_coordinate_descent,
)


def rand(*shape, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def pinv_prefixes(x, y):
    xn, yn = x.numpy(), y.numpy()
    out = np.zeros(yn.shape)
    for b in range(xn.shape[0]):
        for k in range(1, xn.shape[1]):
            out[b, k] = xn[b, k] @ np.linalg.pinv(xn[b, :k]) @ yn[b, :k]
    return out


def test_exclusive_cumsum_and_chunks():
    t = torch.arange(1.0, 5.0).reshape(1, 4)
    assert la.exclusive_cumsum(t, 1).tolist() == [[0.0, 1.0, 3.0, 6.0]]
    sl = la.chunks(10, 3, budget=7)  # 2 prompts per chunk
    assert [(s.start, s.stop) for s in sl] == [(0, 2), (2, 4), (4, 6), (6, 8), (8, 10)]
    assert la.chunks(3, 10**9, budget=1) == [slice(0, 1), slice(1, 2), slice(2, 3)]


def test_prefix_grams_are_sums_over_earlier_points():
    x, y = rand(2, 5, 3), rand(2, 5, seed=1)
    g, b = la.prefix_grams(x, y)
    for k in range(5):
        assert torch.allclose(g[:, k], x[:, :k].transpose(1, 2) @ x[:, :k])
        assert torch.allclose(b[:, k], torch.einsum("bkd,bk->bd", x[:, :k], y[:, :k]))


@pytest.mark.parametrize(("n", "d"), [(9, 4), (4, 9), (6, 6)])
def test_kernel_innovations_equal_primal_ridge(n, d, gp_path):
    # the one-Cholesky identity f_k = r_k − L_kk z_k against p×p solves per prefix
    x, y = rand(6, n, d), rand(6, n, seed=1)
    for alpha in (1e-3, 0.5, 10.0):
        a = la.sequential_gp_predictions(x, y, alpha)
        b = la.ridge_prefix_gram(x, y, alpha)
        assert torch.allclose(a, b, rtol=1e-9, atol=1e-10)


def test_sequential_gp_many_chunks_and_float32_input(gp_path):
    # 4,100 prompts of 8 points: more than one chunk of 2**18 elements
    x, y = rand(4100, 8, 3), rand(4100, 8, seed=2)
    ref = la.ridge_prefix_gram(x, y, 0.3)
    assert torch.allclose(la.sequential_gp_predictions(x, y, 0.3), ref, rtol=1e-9, atol=1e-10)
    out32 = la.sequential_gp_predictions(x.float(), y.float(), 0.3)
    assert out32.dtype == torch.float64
    assert torch.allclose(out32, ref, rtol=1e-4, atol=1e-5)


def test_failed_cholesky_falls_back_to_the_primal_form(monkeypatch):
    # the torch path (CUDA, or no numba); the compiled kernel's fallback: test_estimators_kernel.py
    monkeypatch.setattr(la, "compiled_kernel", lambda: None)
    x, y = rand(4, 7, 3), rand(4, 7, seed=3)
    ref = la.sequential_gp_predictions(x, y, 0.2)
    real = torch.linalg.cholesky_ex
    calls = []

    def flaky(a, *args, **kwargs):  # report prompt 1 as "not positive definite"
        chol, info = real(a, *args, **kwargs)
        calls.append(a.shape)
        if a.ndim == 3 and a.shape[0] == 4:
            info = info.clone()
            info[1] = 2
            chol = chol.clone()
            chol[1] = float("nan")
        return chol, info

    monkeypatch.setattr(torch.linalg, "cholesky_ex", flaky)
    out = la.sequential_gp_predictions(x, y, 0.2)
    assert len(calls) >= 2  # the fallback factorised again
    assert torch.allclose(out, ref, rtol=1e-9, atol=1e-10)


def test_minnorm_fit_all_regimes_against_pinv():
    for k, d in [(2, 5), (5, 5), (9, 5)]:
        x, y = rand(3, k, d, seed=k), rand(3, k, seed=k + 1)
        w = la.minnorm_fit(x, y)
        ref = np.stack([np.linalg.pinv(x[b].numpy()) @ y[b].numpy() for b in range(3)])
        np.testing.assert_allclose(w.numpy(), ref, rtol=1e-9, atol=1e-10)


def test_minnorm_ill_conditioned_prefix_uses_svd():
    # x_3 nearly parallel to x_2 (angle 1e-6, pivot² ~1e-12 < PIVOT_RTOL): the normal equations
    # would lose ~12 digits; the flagged prefix is redone by SVD and matches numpy's pinv.
    x, y = rand(2, 8, 4, seed=4), rand(2, 8, seed=5)
    x[:, 3] = x[:, 2] + 1e-6 * rand(2, 4, seed=6)
    np.testing.assert_allclose(
        la.minnorm_prefix_predictions(x, y).numpy(), pinv_prefixes(x, y), rtol=1e-6, atol=1e-6
    )


def test_minnorm_all_zero_inputs_predict_zero():
    x = torch.zeros(2, 5, 3, dtype=torch.float64)
    y = rand(2, 5)
    assert torch.equal(la.minnorm_prefix_predictions(x, y), torch.zeros(2, 5, dtype=torch.float64))
    assert torch.equal(la.minnorm_fit(x, y), torch.zeros(2, 3, dtype=torch.float64))


@pytest.mark.parametrize(("n", "d"), [(6, 4), (20, 3)])
def test_gd_dual_and_primal_forms_agree(n, d):
    x, y = rand(3, n, d, seed=7), rand(3, n, seed=8)
    a = gd_prefix_predictions_dual(x, y, steps=6, lr=0.2)
    b = gd_prefix_predictions_gram(x, y, steps=6, lr=0.2)
    assert torch.allclose(a, b, rtol=1e-10, atol=1e-12)


def test_lasso_cd_reports_convergence_and_warns():
    x, y = rand(3, 6, 4, seed=9), rand(3, 6, seed=10)
    g = x.transpose(1, 2) @ x
    b = torch.einsum("bkd,bk->bd", x, y)
    lam = torch.full((3,), 6 * 0.05, dtype=torch.float64)
    sol = lasso_coordinate_descent(g, b, lam, max_iter=10_000, tol=1e-10)
    assert bool(sol.converged.all()) and bool((sol.n_iter >= 2).all())
    # KKT conditions of ½wᵀGw − bᵀw + λ‖w‖₁: |b − Gw|_j <= λ, with equality and sign where w_j ≠ 0
    grad = b - (g @ sol.coef.unsqueeze(-1)).squeeze(-1)
    assert bool((grad.abs() <= lam[:, None] + 1e-8).all())
    nz = sol.coef.abs() > 0
    assert torch.allclose(grad[nz], (lam[:, None] * sol.coef.sign()).expand_as(grad)[nz], atol=1e-8)
    short = lasso_coordinate_descent(g, b, lam, max_iter=1, tol=1e-10)
    assert not bool(short.converged.any())
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        create_estimator("lasso", alpha=0.05, max_iter=1).predict_prefixes(x, y)
    assert any(issubclass(c.category, ConvergenceWarning) for c in caught)
