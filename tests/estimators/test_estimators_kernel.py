"""The compiled (numba) CPU kernel of the all-prefix ridge / GP predictions.

Reference: the plain loop over prompts and prefixes with ``numpy.linalg.solve`` (the benchmark's
reference), and the batched-torch path it replaces on CPU.
"""

from __future__ import annotations

import sys

import numpy as np
import pytest
import torch

from fmtheory.estimators import _linalg as la

kernels = pytest.importorskip("fmtheory.estimators._kernels")


def rand(*shape, seed=0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, generator=g, dtype=torch.float64).to(dtype)


def ridge_loop(x: np.ndarray, y: np.ndarray, alpha: float) -> np.ndarray:
    """Per prompt and prefix k: ``x_kᵀ solve(X_kᵀX_k + αI, X_kᵀy_k)``."""
    batch, n, d = x.shape
    out = np.zeros((batch, n))
    for b in range(batch):
        for k in range(n):
            xk = x[b, :k]
            out[b, k] = x[b, k] @ np.linalg.solve(xk.T @ xk + alpha * np.eye(d), xk.T @ y[b, :k])
    return out


@pytest.mark.parametrize(("n", "d"), [(1, 1), (1, 4), (7, 1), (5, 12), (12, 5), (8, 8), (40, 20)])
@pytest.mark.parametrize("alpha", [1e-4, 0.25, 30.0])
def test_kernel_matches_the_numpy_loop(n, d, alpha):
    x, y = rand(9, n, d), rand(9, n, seed=1)
    out, bad = kernels.gp_innovations(x, y, alpha)
    assert out.dtype == torch.float64 and out.shape == (9, n)
    assert not bool(bad.any())
    ref = ridge_loop(x.numpy(), y.numpy(), alpha)
    # both are backward stable: they agree to ~ eps · cond(X_kᵀX_k + αI), which reaches ~1e7 for
    # α = 1e-4 at k = d (the interpolation threshold); 1e4 · eps · cond leaves room for rounding
    cond = max(
        np.linalg.cond(x[b, :k].T @ x[b, :k] + alpha * torch.eye(d, dtype=x.dtype))
        for b in range(9)
        for k in range(n)
    )
    tol = max(1e-9, 1e4 * np.finfo(np.float64).eps * cond)
    np.testing.assert_allclose(out.numpy(), ref, rtol=tol, atol=tol * np.abs(ref).max())


def test_float32_input_is_computed_in_float64():
    x, y = rand(6, 10, 4, dtype=torch.float32), rand(6, 10, seed=2, dtype=torch.float32)
    out, _ = kernels.gp_innovations(x, y, 0.1)
    ref = ridge_loop(
        x.double().numpy(), y.double().numpy(), 0.1
    )  # same float32 values, float64 math
    np.testing.assert_allclose(out.numpy(), ref, rtol=1e-10, atol=1e-12)


def test_non_contiguous_and_mixed_dtype_inputs():
    base = rand(5, 4, 9)  # (batch, d, n) -> a transposed view (batch, n, d)
    x, y = base.transpose(1, 2), rand(5, 9, seed=3, dtype=torch.float32)
    out, _ = kernels.gp_innovations(x, y, 0.5)
    np.testing.assert_allclose(
        out.numpy(), ridge_loop(x.numpy(), y.double().numpy(), 0.5), rtol=1e-6, atol=1e-7
    )


def test_threads_split_the_batch_without_changing_a_bit():
    x, y = rand(1100, 6, 3), rand(1100, 6, seed=4)
    previous = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one, _ = kernels.gp_innovations(x, y, 0.3)
        torch.set_num_threads(3)  # 3 threads of >= 256 prompts each
        three, _ = kernels.gp_innovations(x, y, 0.3)
    finally:
        torch.set_num_threads(previous)
    assert torch.equal(one, three)


def test_non_positive_pivot_flags_only_that_prompt():
    # s < 0 is not a valid noise variance; it is the simplest way to make a pivot negative:
    # one point per prompt, pivot = ‖x_0‖² + s = 9 − 0.5, 0.01 − 0.5 < 0, 4 − 0.5
    x = torch.tensor([[[3.0, 0.0]], [[0.1, 0.0]], [[0.0, 2.0]]], dtype=torch.float64)
    _, bad = kernels.gp_innovations(x, torch.ones(3, 1, dtype=torch.float64), -0.5)
    assert bad.tolist() == [False, True, False]
    x, y = rand(3, 4, 2), rand(3, 4, seed=5)
    x[2, 2, 1] = float("nan")  # a NaN pivot (at point 2 of prompt 2) is flagged too
    _, bad = kernels.gp_innovations(x, y, 0.5)
    assert bad.tolist() == [False, False, True]


def test_flagged_prompts_are_recomputed_by_the_primal_form(monkeypatch):
    x, y = rand(4, 7, 3), rand(4, 7, seed=6)
    ref = la.ridge_prefix_gram(x, y, 0.2)

    def flaky(xx, rr, s, **prior):  # report prompt 2 as failed, with garbage in its row
        out, bad = kernels.gp_innovations(xx, rr, s, **prior)
        out[2] = float("nan")
        bad[2] = True
        return out, bad

    monkeypatch.setattr(la, "compiled_kernel", lambda: flaky)
    out = la.sequential_gp_predictions(x, y, 0.2)
    assert torch.allclose(out, ref, rtol=1e-9, atol=1e-10)
    mu, c = rand(3, seed=8), rand(3, seed=9).abs()  # and with a prior mean and scale
    out = la.sequential_gp_predictions(x, y, 0.2, shift=mu, scale=c)
    np.testing.assert_allclose(
        out.numpy(), bayes_loop(x.numpy(), y.numpy(), mu.numpy(), c.numpy(), 0.2), rtol=1e-9
    )


def bayes_loop(x, y, mu, c, s):
    """Bishop 2006 eqs. (3.50)-(3.51): ``m = S(Σ⁻¹μ + Xᵀy/s)``, ``S⁻¹ = Σ⁻¹ + XᵀX/s``, Σ = diag(c²)."""
    batch, n, _ = x.shape
    prec0 = np.diag(1.0 / c**2)
    out = np.zeros((batch, n))
    for b in range(batch):
        for k in range(n):
            xk = x[b, :k]
            m = np.linalg.solve(prec0 + xk.T @ xk / s, prec0 @ mu + xk.T @ y[b, :k] / s)
            out[b, k] = x[b, k] @ m
    return out


@pytest.mark.parametrize(("n", "d"), [(1, 3), (6, 3), (3, 6), (40, 20)])
def test_prior_mean_and_scale_match_the_bayes_loop(n, d):
    x, y = rand(7, n, d), rand(7, n, seed=10) + 0.5
    mu, c = rand(d, seed=11), 0.3 + rand(d, seed=12).abs()
    out, bad = kernels.gp_innovations(x, y, 0.3, shift=mu, scale=c)
    assert not bool(bad.any())
    ref = bayes_loop(x.numpy(), y.numpy(), mu.numpy(), c.numpy(), 0.3)
    np.testing.assert_allclose(out.numpy(), ref, rtol=1e-9, atol=1e-11)
    torch_path = la._gp_torch(x, y, 0.3, mu, c, primal=False)
    np.testing.assert_allclose(torch_path.numpy(), ref, rtol=1e-9, atol=1e-11)


def test_cuda_tensors_are_refused():
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    with pytest.raises(ValueError, match="CPU tensors"):
        kernels.gp_innovations(rand(2, 3, 2).cuda(), rand(2, 3).cuda(), 0.1)


class _Broken:
    """Stands in for the kernel module when numba cannot set it up (no cache location, ...)."""

    def __getattr__(self, name):
        if name == "gp_innovations":
            raise RuntimeError("cannot cache function '_innovations': no locator available")
        raise AttributeError(name)


@pytest.mark.parametrize("how", ["environment", "missing", "broken"])
def test_kernel_switched_off_falls_back_to_torch(monkeypatch, how):
    # FMTHEORY_NUMBA=0; numba not installed (None in sys.modules makes the import raise
    # ImportError); numba failing to set the kernel up (a warning says so)
    if how == "environment":
        monkeypatch.setenv("FMTHEORY_NUMBA", "0")
    else:
        stub = None if how == "missing" else _Broken()
        monkeypatch.setitem(sys.modules, "fmtheory.estimators._kernels", stub)
    la.compiled_kernel.cache_clear()
    try:
        if how == "broken":
            with pytest.warns(UserWarning, match="numba kernel unavailable"):
                assert la.compiled_kernel() is None
        else:
            assert la.compiled_kernel() is None
        x, y = rand(3, 6, 2), rand(3, 6, seed=13)
        np.testing.assert_allclose(
            la.sequential_gp_predictions(x, y, 0.4).numpy(),
            ridge_loop(x.numpy(), y.numpy(), 0.4),
            rtol=1e-9,
            atol=1e-11,
        )
    finally:
        monkeypatch.undo()
        la.compiled_kernel.cache_clear()
    assert la.compiled_kernel() is kernels.gp_innovations
