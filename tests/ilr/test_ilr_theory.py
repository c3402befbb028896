"""Theory of inverse linear regression (fmtheory.theory.ilr) against Monte Carlo simulation.

Every comparison uses a tolerance derived from the Monte Carlo standard errors:
|analytic − simulated| <= 4 · sqrt(se_analytic² + se_simulated²) (+ 1e-12).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

from fmtheory.theory import evaluate, get_formula
from fmtheory.theory.ilr import (
    best_ridge_mse,
    conditional_bound,
    conditional_mse,
    expected_posterior_cov,
    floor_mse,
    haar_basis,
    high_snr_mse,
    min_gram_eigenvalue,
    oracle_forward_risk,
    oracle_mse,
    relative_floor,
    ridge_mse,
    spectral_gap_rank,
)
from fmtheory.theory.linear_regression import x_variances

Z = 4.0


@pytest.fixture(autouse=True, scope="module")
def _one_blas_thread():
    """Batched small-matrix LAPACK is fastest (and fair to a shared machine) on one thread."""
    with threadpool_limits(limits=1, user_api="blas"):
        yield


def _close(a: float, se_a: float, b: float, se_b: float) -> bool:
    return abs(a - b) <= Z * math.hypot(se_a, se_b) + 1e-12


def simulate_oracle(*, d, r, n, sigma, lam, x_var, basis=None, T=20000, seed=1):
    """Plain numpy: tasks w = w0 + U v, the posterior mean in v-coordinates, its errors.

    Returns (per-task ‖ŵ − w‖², per-task forward error, ŵ: (T, d), U).  basis=None: Haar U per task.
    """
    rng = np.random.default_rng(seed)
    u = haar_basis(rng, d, r, size=T) if basis is None else np.broadcast_to(basis, (T, d, r))
    w0 = rng.standard_normal(d)
    v = rng.standard_normal((T, r)) * np.sqrt(lam)
    w = w0 + np.einsum("tdr,tr->td", u, v)
    x = rng.standard_normal((T, n + 1, d)) * np.sqrt(x_var)
    y = np.einsum("tnd,td->tn", x, w) + sigma * rng.standard_normal((T, n + 1))
    xc, yc = x[:, :n], y[:, :n]
    z = xc @ u  # (T, n, r)
    zl = z * lam
    k = zl @ z.transpose(0, 2, 1) + sigma**2 * np.eye(n)
    resid = yc - xc @ w0
    v_hat = np.einsum("tnr,tn->tr", zl, np.linalg.solve(k, resid[..., None])[..., 0])
    w_hat = w0 + np.einsum("tdr,tr->td", u, v_hat)
    err = ((w_hat - w) ** 2).sum(1)
    fwd = (np.einsum("td,td->t", x[:, n], w_hat) - y[:, n]) ** 2
    return err, fwd, w_hat, u


def _mse(values: np.ndarray) -> tuple[float, float]:
    return float(values.mean()), float(values.std(ddof=1) / math.sqrt(values.size))


CASES = [
    # (d, r, n, sigma, lam, cond, fixed basis?)
    (6, 2, 5, 0.3, [1.0, 1.0], 1.0, True),  # isotropic, tridiagonal fast path
    (6, 4, 2, 0.2, [1.0] * 4, 1.0, True),  # n < r, fast path
    (6, 3, 7, 0.5, [2.0, 1.0, 0.5], 5.0, True),  # anisotropic, Wishart path
    (6, 3, 2, 0.0, [2.0, 1.0, 0.5], 5.0, True),  # n < r, σ = 0, Woodbury path
    (6, 2, 4, 0.3, [1.0, 1.0], 8.0, False),  # Haar-averaged U
]


@pytest.mark.parametrize(("d", "r", "n", "sigma", "lam", "cond", "fixed"), CASES)
def test_oracle_mse_matches_simulated_posterior_mean(d, r, n, sigma, lam, cond, fixed):
    lam = np.array(lam)
    x_var = x_variances(d=d, cond=cond)
    basis = haar_basis(np.random.default_rng(7), d, r) if fixed else None
    err, fwd, _, _ = simulate_oracle(d=d, r=r, n=n, sigma=sigma, lam=lam, x_var=x_var, basis=basis)
    th = oracle_mse(n=n, sigma=sigma, spectrum=lam, x_var=x_var, basis=basis, d=d, n_mc=20000)
    m, se = _mse(err)
    assert _close(th.value, th.stderr or 0.0, m, se), (th, m, se)
    fw = oracle_forward_risk(n=n, sigma=sigma, spectrum=lam, x_var=x_var, basis=basis, d=d,
                             n_mc=20000)  # fmt: skip
    mf, sef = _mse(fwd)
    assert _close(fw.value, fw.stderr or 0.0, mf, sef), (fw, mf, sef)


def test_oracle_mse_exact_cases():
    assert oracle_mse(n=5, sigma=0.0, spectrum=np.ones(3)).value == 0.0  # n >= r, noiseless
    v = oracle_mse(n=2, sigma=0.0, spectrum=np.full(5, 0.7))  # isotropic, n < r: λ (r − n)
    assert v.value == pytest.approx(0.7 * 3) and v.stderr is None
    assert oracle_mse(n=0, sigma=0.3, spectrum=np.array([1.0, 2.0])).value == 3.0


def test_fast_path_equals_general_path_within_mc_error():
    # a spectrum that differs in the 12th digit takes the general (Wishart) path
    a = oracle_mse(n=6, sigma=0.3, spectrum=np.ones(3), n_mc=20000)
    b = oracle_mse(n=6, sigma=0.3, spectrum=np.array([1.0, 1.0, 1 + 1e-12]), n_mc=20000)
    assert _close(a.value, a.stderr, b.value, b.stderr)


def test_expected_posterior_cov_closes_the_law_of_total_covariance():
    d, r, n, sigma, lam = 5, 2, 3, 0.4, np.array([1.5, 0.5])
    x_var = x_variances(d=d, cond=3.0)
    u = haar_basis(np.random.default_rng(3), d, r)
    _, _, w_hat, _ = simulate_oracle(d=d, r=r, n=n, sigma=sigma, lam=lam, x_var=x_var, basis=u,
                                     T=40000)  # fmt: skip
    post = expected_posterior_cov(n=n, sigma=sigma, spectrum=lam, basis=u, x_var=x_var,
                                  n_mc=40000)  # fmt: skip
    c = w_hat - w_hat.mean(0)
    prod = c[:, :, None] * c[:, None, :]  # per-task contributions to Cov(ŵ)
    se = prod.std(0, ddof=1) / math.sqrt(c.shape[0])
    lhs = np.cov(w_hat, rowvar=False) + post
    sigma_w = (u * lam) @ u.T
    # the MC error of E[Post] is far below that of Cov(ŵ) here (posterior covariances vary little)
    assert np.all(np.abs(lhs - sigma_w) <= Z * se + 2e-3), np.abs(lhs - sigma_w) / se


def test_conditional_bound_holds_for_every_design():
    rng = np.random.default_rng(0)
    r, n, sigma = 3, 8, 0.3
    lam = np.array([2.0, 1.0, 0.3])
    z = rng.standard_normal((500, n, r)) * np.array([1.0, 0.5, 2.0])
    mse = conditional_mse(z=z, spectrum=lam, sigma=sigma)
    b = min_gram_eigenvalue(z)
    bound = np.array([conditional_bound(r=r, n=n, sigma=sigma, b=float(bi)) for bi in b])
    assert np.all(mse <= bound * (1 + 1e-12))
    assert np.all(mse > 0)
    # the conditional MMSE is exact: it matches the inverse computed directly
    g = z[0].T @ z[0]
    direct = np.trace(np.linalg.inv(np.diag(1 / lam) + g / sigma**2))
    assert mse[0] == pytest.approx(direct, rel=1e-10)


def test_high_snr_is_the_inverse_wishart_mean():
    # σ² E tr (ZᵀZ)⁻¹ for Z: (n, r) Gaussian, simulated
    rng = np.random.default_rng(1)
    r, n, sigma = 2, 12, 0.7
    z = rng.standard_normal((40000, n, r))
    vals = sigma**2 * np.trace(np.linalg.inv(z.transpose(0, 2, 1) @ z), axis1=1, axis2=2)
    m, se = _mse(vals)
    assert _close(high_snr_mse(r=r, n=n, sigma=sigma), 0.0, m, se)
    assert high_snr_mse(r=4, n=5, sigma=1.0) == math.inf


@pytest.mark.parametrize(("r", "n", "sigma"), [(2, 8, 0.3), (3, 6, 1.0), (1, 4, 0.1)])
def test_high_snr_bounds_the_oracle_and_is_tight_at_high_snr(r, n, sigma):
    th = oracle_mse(n=n, sigma=sigma, spectrum=np.ones(r), n_mc=20000)
    assert th.value <= high_snr_mse(r=r, n=n, sigma=sigma) + Z * th.stderr
    tiny = oracle_mse(n=n, sigma=1e-3, spectrum=np.ones(r), n_mc=20000)
    ratio = tiny.value / high_snr_mse(r=r, n=n, sigma=1e-3)
    assert 0.99 <= ratio <= 1.0 + Z * tiny.stderr / high_snr_mse(r=r, n=n, sigma=1e-3)


def test_floor_no_estimator_beats_it():
    lam = np.array([3.0, 1.0, 0.5, 0.2])
    assert floor_mse(spectrum=lam, n=1) == pytest.approx(1.7)
    assert floor_mse(spectrum=lam, n=4) == 0.0
    assert relative_floor(r=8, n=2) == pytest.approx(0.75) and relative_floor(r=2, n=8) == 0.0
    x_var = x_variances(d=6, cond=4.0)
    for sigma in (0.0, 0.5):
        th = oracle_mse(n=2, sigma=sigma, spectrum=lam, x_var=x_var, d=6, n_mc=20000)
        assert th.value >= floor_mse(spectrum=lam, n=2) - Z * th.stderr
    # at σ = 0, Λ = λI and isotropic x the floor is attained exactly
    assert oracle_mse(n=2, sigma=0.0, spectrum=np.full(5, 0.4)).value == pytest.approx(
        floor_mse(spectrum=np.full(5, 0.4), n=2)
    )


def simulate_ridge(*, d, n, sigma, alpha, mean, cov, x_var, T=20000, seed=2):
    rng = np.random.default_rng(seed)
    w = rng.multivariate_normal(mean, cov, size=T)
    x = rng.standard_normal((T, n, d)) * np.sqrt(x_var)
    y = np.einsum("tnd,td->tn", x, w) + sigma * rng.standard_normal((T, n))
    g = x.transpose(0, 2, 1) @ x + alpha * np.eye(d)
    w_hat = np.linalg.solve(g, np.einsum("tnd,tn->td", x, y)[..., None])[..., 0]
    return ((w_hat - w) ** 2).sum(1)


@pytest.mark.parametrize("n", [3, 9])
def test_ridge_mse_matches_simulated_ridge(n):
    d, r = 6, 2
    u = haar_basis(np.random.default_rng(4), d, r)
    cov = (u * np.array([1.5, 0.5])) @ u.T
    mean = np.linspace(-0.5, 0.5, d)
    x_var = x_variances(d=d, cond=4.0)
    th = ridge_mse(n=n, sigma=0.3, alpha=0.7, cov=cov, mean=mean, x_var=x_var, n_mc=20000)
    m, se = _mse(simulate_ridge(d=d, n=n, sigma=0.3, alpha=0.7, mean=mean, cov=cov, x_var=x_var))
    assert _close(th.mse, th.stderr, m, se), (th, m, se)


def test_best_ridge_isotropic_closed_form_is_the_best_penalty():
    d, n, sigma = 8, 5, 0.4
    u = haar_basis(np.random.default_rng(5), d, 3)
    cov = (u * 0.9) @ u.T
    best = best_ridge_mse(n=n, sigma=sigma, cov=cov, n_mc=20000)
    tau2 = np.trace(cov) / d
    assert best.alpha == pytest.approx(sigma**2 / tau2)
    at = ridge_mse(n=n, sigma=sigma, alpha=best.alpha, cov=cov, n_mc=20000, seed=1)
    assert _close(best.mse, best.stderr, at.mse, at.stderr)
    for factor in (0.1, 10.0):  # any other penalty is worse
        other = ridge_mse(n=n, sigma=sigma, alpha=best.alpha * factor, cov=cov, n_mc=20000)
        assert other.mse > best.mse - Z * math.hypot(best.stderr, other.stderr)
    # the grid search (anisotropic path) agrees when κ is 1 + tiny
    x_var = np.ones(d) + np.eye(d)[0] * 1e-12  # not exactly isotropic: the grid path
    grid = best_ridge_mse(n=n, sigma=sigma, cov=cov, x_var=x_var, n_mc=5000)
    assert _close(grid.mse, grid.stderr, best.mse, best.stderr)


def test_spectral_gap_rank():
    assert spectral_gap_rank([5.0, 4.8, 0.1, 0.05]) == 2
    assert spectral_gap_rank([1.0, 1.0, 1.0]) == 3  # full rank: the gap to the floor
    assert spectral_gap_rank([0.01, 3.0, 0.02]) == 1  # any order
    assert spectral_gap_rank([2.0, 1.9, -0.01, 0.0005]) == 2  # below the floor counts as 0
    assert spectral_gap_rank([4.0, 1.0, 0.49, 1e-16, -1e-16]) == 3  # unequal variances kept
    assert (
        spectral_gap_rank([4.0, 1.0, 0.49, 1e-16], rel_floor=0.2) == 1
    )  # 4 → 1 is the biggest ratio
    with pytest.raises(ValueError):
        spectral_gap_rank([])


def test_haar_basis_is_orthonormal():
    u = haar_basis(np.random.default_rng(0), 7, 3, size=5)
    assert np.allclose(u.transpose(0, 2, 1) @ u, np.eye(3), atol=1e-12)


def test_registered_formulas():
    v = evaluate("ilr-oracle-mse", d=6, n=5, r=2, sigma=0.3)
    ref = oracle_mse(n=5, sigma=0.3, spectrum=np.ones(2), x_var=np.ones(6), d=6)
    assert v.value == ref.value and v.stderr is not None and v.stderr > 0
    scaled = evaluate("ilr-oracle-mse", d=6, n=5, r=2, sigma=0.6, prior_scale=2.0)
    assert scaled.value == pytest.approx(4 * v.value, rel=1e-10)  # 2-homogeneous in (σ, scale)
    assert evaluate("ilr-high-snr-mse", r=2, n=8, sigma=0.5).value == pytest.approx(0.25 * 2 / 5)
    assert evaluate("ilr-floor", r=5, n=2, prior_scale=2.0).value == pytest.approx(12.0)
    assert evaluate("ilr-conditional-bound", r=2, n=4, sigma=1.0, b=0.5).value == 1.0
    f = get_formula("ilr-oracle-mse")
    assert [p.name for p in f.params][:6] == ["d", "n", "r", "sigma", "prior_scale", "cond"]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        (dict(d=3, n=5, r=4, sigma=0.1), "r"),
        (dict(d=3, n=0, r=2, sigma=0.1), "n"),
        (dict(d=3, n=5, r=2, sigma=-0.1), "sigma"),
        (dict(d=3, n=5, r=2, sigma=0.1, cond=0.5), "cond"),
        (dict(d=3, n=5, r=2, sigma=0.1, prior_scale=0.0), "prior_scale"),
    ],
)
def test_registered_oracle_rejects_bad_parameters(params, field):
    with pytest.raises(ValueError, match=field):
        evaluate("ilr-oracle-mse", **params)


def test_forward_risk_without_context_is_the_prior_predictive_variance():
    rng = np.random.default_rng(8)
    d, lam, sigma = 6, np.array([2.0, 1.0]), 0.3
    x_var = x_variances(d=d, cond=5.0)
    u = haar_basis(rng, d, 2)
    exact = oracle_forward_risk(n=0, sigma=sigma, spectrum=lam, x_var=x_var, basis=u)
    assert exact.stderr is None
    v = rng.standard_normal((40000, 2)) * np.sqrt(lam)
    x = rng.standard_normal((40000, d)) * np.sqrt(x_var)
    err = (np.einsum("td,td->t", x, v @ u.T) + sigma * rng.standard_normal(40000)) ** 2
    m, se = _mse(err)  # the prediction <w0, x> misses x·Uv + ε
    assert _close(exact.value, 0.0, m, se)
    haar = oracle_forward_risk(n=0, sigma=sigma, spectrum=lam, x_var=x_var, d=d)
    assert haar.value == pytest.approx(lam.sum() * x_var.mean() + sigma**2)
