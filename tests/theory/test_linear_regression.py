"""Bayes, least-squares and ridge risks of in-context linear regression vs Monte Carlo simulation.

Every simulation below SAMPLES w ~ N(0, τ²I), X: (k, d) with rows N(0, Σx), ε, computes the
estimator's weights with plain numpy (posterior mean by solve, min-norm least squares by pinv, ridge
by solve), and averages the squared error of its prediction at a fresh query (x_q, y_q).  Tolerance,
fixed before running: |theory - simulation| <= 4 * sqrt(se_theory² + se_simulation²), the standard
errors of the two independent Monte Carlo means (se_theory = 0 for closed forms).  Least-squares
comparisons use |k - d| >= 4, where the squared error has a finite variance (inverse-Wishart second
moments need n - m - 3 > 0), so that a standard error means something; k = d ± 2 is checked exactly.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import integrate

from fmtheory.theory import evaluate, get_formula
from fmtheory.theory.linear_regression import (
    bayes_risk,
    bayes_risk_curve,
    bayes_risk_limit,
    marchenko_pastur_stieltjes,
    ols_risk,
    ols_risk_curve,
    x_variances,
)
from fmtheory.theory.ridge_risk import ridge_risk

N_SIM = 20_000  # simulated prompts per comparison


def _simulate(estimator, *, d, k, sigma, tau=1.0, cond=1.0, n=N_SIM, seed=0):
    """Mean and standard error of (<ŵ, x_q> - y_q)² over n sampled prompts."""
    rng = np.random.default_rng(seed)
    std = np.sqrt(x_variances(d=d, cond=cond))
    w = tau * rng.standard_normal((n, d))
    x = rng.standard_normal((n, k, d)) * std  # (n, k, d)
    y = np.einsum("nkd,nd->nk", x, w) + sigma * rng.standard_normal((n, k))
    x_q = rng.standard_normal((n, d)) * std
    y_q = np.einsum("nd,nd->n", x_q, w) + sigma * rng.standard_normal(n)
    w_hat = estimator(x, y)  # (n, d)
    err = (np.einsum("nd,nd->n", x_q, w_hat) - y_q) ** 2
    return err.mean(), err.std(ddof=1) / math.sqrt(n)


def _ridge(lam):
    def fit(x, y):
        d = x.shape[2]
        gram = x.transpose(0, 2, 1) @ x + lam * np.eye(d)
        return np.linalg.solve(gram, np.einsum("nkd,nk->nd", x, y)[..., None])[..., 0]

    return fit


def _min_norm(x, y):
    return np.einsum("ndk,nk->nd", np.linalg.pinv(x), y)


def _assert_close(theory, stderr_theory, sim_mean, sim_se):
    tol = 4 * math.sqrt((stderr_theory or 0.0) ** 2 + sim_se**2)
    assert abs(theory - sim_mean) <= tol, (theory, sim_mean, tol)


# --- Σx ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("d", "cond"), [(1, 5.0), (4, 1.0), (5, 10.0), (20, 100.0)])
def test_x_variances_match_the_regression_sampler(d, cond):
    import torch

    from fmtheory.tasks.regression import RegressionSpec

    ref = RegressionSpec(dim=d, x_cond=cond).x_variances(torch.float64).numpy()
    got = x_variances(d=d, cond=cond)
    np.testing.assert_allclose(got, ref, rtol=1e-12)
    assert got.sum() == pytest.approx(d, rel=1e-12)


# --- Bayes risk -----------------------------------------------------------------------------------


def test_bayes_risk_exact_cases():
    # k = 0: predict 0, risk = τ² tr Σx + σ² = τ² d + σ² (any Σx).
    v = bayes_risk(d=7, k=0, sigma=0.3, prior_scale=2.0, cond=10.0)
    assert v.value == pytest.approx(4 * 7 + 0.09) and v.stderr is None
    # σ = 0, isotropic: τ² (d - k)⁺.
    for k, want in [(3, 2.0 * 4), (7, 0.0), (12, 0.0)]:
        v = bayes_risk(d=7, k=k, sigma=0.0, prior_scale=math.sqrt(2.0))
        assert v.value == pytest.approx(want) and v.stderr is None
    # σ = 0, anisotropic, k >= d: w is identified, risk 0.
    assert bayes_risk(d=5, k=5, sigma=0.0, cond=10.0).value == 0.0


@pytest.mark.parametrize("cond", [1.0, 10.0])
@pytest.mark.parametrize("k", [1, 3, 5, 7, 12])
def test_bayes_risk_matches_posterior_mean_simulation(k, cond):
    d, sigma, tau = 5, 0.5, 1.3
    theory = bayes_risk(d=d, k=k, sigma=sigma, prior_scale=tau, cond=cond, n_mc=4000, seed=1)
    assert theory.stderr is not None and theory.stderr > 0
    sim = _simulate(_ridge(sigma**2 / tau**2), d=d, k=k, sigma=sigma, tau=tau, cond=cond, seed=k)
    _assert_close(theory.value, theory.stderr, *sim)


@pytest.mark.parametrize(
    ("k", "cond", "sigma"),
    [(3, 1.0, 0.5), (9, 1.0, 0.5), (3, 10.0, 0.5), (5, 10.0, 0.5), (9, 10.0, 0.5), (3, 10.0, 0.0)],
)
def test_bayes_risk_matches_plain_posterior_covariance(k, cond, sigma):
    # A tighter check of the vectorised E_X (tridiagonal / Wishart / Woodbury paths): average
    # tr(Σx Post(X)) + σ² over sampled X with Post from a plain inverse (σ > 0) or the null-space
    # projection (σ = 0).  Conditioning on X removes the (w, ε, x_q) noise, so se is ~10x smaller.
    d, tau, n = 5, 1.3, 20_000
    var = x_variances(d=d, cond=cond)
    x = np.random.default_rng(50 + k).standard_normal((n, k, d)) * np.sqrt(var)
    if sigma > 0:
        post = np.linalg.inv(np.eye(d) / tau**2 + x.transpose(0, 2, 1) @ x / sigma**2)
    else:
        post = tau**2 * (np.eye(d) - np.linalg.pinv(x) @ x)
    per_design = np.einsum("bii,i->b", post, var) + sigma**2
    theory = bayes_risk(d=d, k=k, sigma=sigma, prior_scale=tau, cond=cond, n_mc=4000, seed=9)
    _assert_close(
        theory.value, theory.stderr, per_design.mean(), per_design.std(ddof=1) / math.sqrt(n)
    )
    assert theory.stderr < 0.01 * theory.value  # the MC error it reports is small and > 0


@pytest.mark.parametrize("k", [2, 4])
def test_noiseless_anisotropic_bayes_risk_matches_min_norm_simulation(k):
    # σ = 0: the posterior mean is the min-norm interpolant X⁺y (the prior is isotropic).
    d, cond = 5, 10.0
    theory = bayes_risk(d=d, k=k, sigma=0.0, cond=cond, n_mc=4000, seed=2)
    sim = _simulate(_min_norm, d=d, k=k, sigma=0.0, cond=cond, seed=10 + k)
    _assert_close(theory.value, theory.stderr, *sim)


def test_bayes_risk_curve_isotropic_equals_pointwise_risk():
    curve = bayes_risk_curve(d=6, n=15, sigma=0.4, prior_scale=1.5, n_mc=500, seed=3)
    assert curve.shape == (15,)
    point = [
        bayes_risk(d=6, k=k, sigma=0.4, prior_scale=1.5, n_mc=500, seed=3).value for k in range(15)
    ]
    np.testing.assert_allclose(curve, point, rtol=1e-12)
    # monotone: more context never hurts the Bayes predictor (holds per design, so also in mean)
    assert np.all(np.diff(curve) < 0)


@pytest.mark.parametrize("sigma", [0.3, 0.0])
def test_bayes_risk_curve_anisotropic_equals_direct_posterior(sigma):
    # Reproduce the documented draws (one chunk: rows x ~ N(0, Σx), shape (n_mc, n-1, d)), compute
    # tr(Σx Post_k) with a plain inverse (σ > 0) or projection (σ = 0) for every prefix length k.
    d, n, n_mc, seed, tau, cond = 4, 9, 40, 5, 1.2, 10.0
    curve = bayes_risk_curve(
        d=d, n=n, sigma=sigma, prior_scale=tau, cond=cond, n_mc=n_mc, seed=seed
    )
    var = x_variances(d=d, cond=cond)
    x = np.random.default_rng(seed).standard_normal((n_mc, n - 1, d)) * np.sqrt(var)
    want = []
    for k in range(n):
        xk = x[:, :k]
        if sigma > 0:
            post = np.linalg.inv(np.eye(d) / tau**2 + xk.transpose(0, 2, 1) @ xk / sigma**2)
        else:
            post = tau**2 * (np.eye(d) - np.linalg.pinv(xk) @ xk)
        want.append(np.einsum("bii,i->b", post, var).mean() + sigma**2)
    np.testing.assert_allclose(curve, want, rtol=1e-9, atol=1e-12)


def test_bayes_risk_curve_anisotropic_matches_bayes_risk():
    # Independent Monte Carlo estimates of the same means; the curve's entries have the same
    # per-draw distribution and n_mc as bayes_risk, so its stderr is taken equal to bayes_risk's.
    d, n, sigma, cond = 5, 11, 0.5, 10.0
    curve = bayes_risk_curve(d=d, n=n, sigma=sigma, cond=cond, n_mc=4000, seed=7)
    assert curve[0] == pytest.approx(d + sigma**2)
    for k in (2, 5, 10):
        ref = bayes_risk(d=d, k=k, sigma=sigma, cond=cond, n_mc=4000, seed=8)
        assert abs(curve[k] - ref.value) <= 4 * math.sqrt(2) * ref.stderr


def test_tridiagonal_resolvent_traces_are_exact():
    # The O(m) kernel behind the isotropic risks, against eigenvalues of the assembled matrices,
    # including rows padded with a decoupled block (``size``).
    from fmtheory.theory.linear_regression import _laguerre_tridiag, _resolvent_traces

    rng = np.random.default_rng(0)
    diag, sub = _laguerre_tridiag(rng, n_mc=50, k=9, d=6)
    t = np.zeros((50, 6, 6))
    i = np.arange(6)
    t[:, i, i], t[:, i[1:], i[:-1]], t[:, i[:-1], i[1:]] = diag, sub, sub
    e = np.linalg.eigvalsh(t)
    assert e.min() > 0
    for lam in (0.0, 0.3, 5.0):
        r, r2 = _resolvent_traces(diag, sub, lam)
        np.testing.assert_allclose(r, (1 / (e + lam)).sum(axis=1), rtol=1e-10)
        np.testing.assert_allclose(r2, (1 / (e + lam) ** 2).sum(axis=1), rtol=1e-10)
    # the first 4 x 4 blocks, padded to 6 with a decoupled identity block
    pad_d, pad_s = diag.copy(), sub.copy()
    pad_d[:, 4:], pad_s[:, 3:] = 1.0, 0.0
    e4 = np.linalg.eigvalsh(t[:, :4, :4])
    r, r2 = _resolvent_traces(pad_d, pad_s, 0.3, np.full(50, 4))
    np.testing.assert_allclose(r, (1 / (e4 + 0.3)).sum(axis=1), rtol=1e-10)
    np.testing.assert_allclose(r2, (1 / (e4 + 0.3) ** 2).sum(axis=1), rtol=1e-10)
    # Wishart_m(n, I) moments (m = 6, n = 9): E tr W = m n, E tr W² = m n (n + m + 1); 4 se.
    diag, sub = _laguerre_tridiag(rng, n_mc=4000, k=9, d=6)
    for stat, want in [
        (diag.sum(axis=1), 6 * 9),
        ((diag**2).sum(axis=1) + 2 * (sub**2).sum(axis=1), 6 * 9 * (9 + 6 + 1)),
    ]:
        assert abs(stat.mean() - want) <= 4 * stat.std(ddof=1) / math.sqrt(stat.shape[0])


# --- proportional limit ---------------------------------------------------------------------------


@pytest.mark.parametrize(("mu", "ratio"), [(0.1, 0.5), (1.0, 0.5), (0.3, 2.0), (2.0, 1.0)])
def test_marchenko_pastur_stieltjes_matches_density_integral(mu, ratio):
    c = ratio
    lo, hi = (1 - math.sqrt(c)) ** 2, (1 + math.sqrt(c)) ** 2

    def density(t):
        return math.sqrt(max((hi - t) * (t - lo), 0.0)) / (2 * math.pi * c * t)

    bulk, _ = integrate.quad(lambda t: density(t) / (t + mu), lo, hi, epsabs=1e-12, epsrel=1e-12)
    atom = max(0.0, 1 - 1 / c) / mu  # the mass at 0 when d > k
    assert marchenko_pastur_stieltjes(mu=mu, ratio=ratio) == pytest.approx(bulk + atom, rel=1e-7)


def test_bayes_risk_limit_noiseless_and_golden_ratio():
    assert bayes_risk_limit(gamma=0.25, sigma=0.0, prior_scale=2.0).value == pytest.approx(3.0)
    assert bayes_risk_limit(gamma=3.0, sigma=0.0).value == 0.0
    # γ = 1, σ = τ = 1: m solves μ m² + μ m - 1 = 0 at μ = 1, risk = 1 + m = (1 + √5)/2.
    assert bayes_risk_limit(gamma=1.0, sigma=1.0).value == pytest.approx((1 + math.sqrt(5)) / 2)


@pytest.mark.parametrize("gamma", [0.5, 1.0, 2.0])
def test_bayes_risk_limit_matches_finite_d_monte_carlo(gamma):
    # value = lim bayes_risk(d, γd, σ√d, τ)/d.  Finite-d corrections are O(1/d) (real-Gaussian mean
    # term of linear spectral statistics).  Check 1: at d = 200 the gap is <= 4 se + 1/d.  Check 2:
    # Richardson extrapolation 2 R(400)/400 - R(200)/200 cancels the 1/d term: gap <= 4 se + 1/200².
    s, tau = 0.5, 1.0
    limit = bayes_risk_limit(gamma=gamma, sigma=s, prior_scale=tau).value
    r = {}
    for d in (200, 400):
        v = bayes_risk(d=d, k=int(gamma * d), sigma=s * math.sqrt(d), prior_scale=tau, seed=d)
        r[d] = (v.value / d, v.stderr / d)
    assert abs(r[200][0] - limit) <= 4 * r[200][1] + 1 / 200
    extrap = 2 * r[400][0] - r[200][0]
    se = math.sqrt((2 * r[400][1]) ** 2 + r[200][1] ** 2)
    assert abs(extrap - limit) <= 4 * se + 1 / 200**2


# --- minimum-norm least squares -------------------------------------------------------------------


@pytest.mark.parametrize("k", [2, 4, 12, 16])
def test_ols_risk_matches_pinv_simulation(k):
    d, sigma, tau = 8, 0.5, 0.8
    theory = ols_risk(d=d, k=k, sigma=sigma, prior_scale=tau)
    assert theory.stderr is None
    sim = _simulate(_min_norm, d=d, k=k, sigma=sigma, tau=tau, seed=100 + k)
    _assert_close(theory.value, None, *sim)


def test_ols_risk_exact_small_cases():
    s2 = 0.7**2
    # d = 1: ŵ - w = Σ x_i ε_i / Σ x_i², E = σ² E[1/χ²_k] = σ²/(k - 2); k = 3 is k = d + 2.
    for k in (3, 4, 9):
        assert ols_risk(d=1, k=k, sigma=0.7).value == pytest.approx(s2 / (k - 2) + s2)
    # k = 1: bias τ²(d - 1), variance σ² E[1/‖x‖²] = σ²/(d - 2); d = 3 is k = d - 2.
    for d in (3, 6):
        v = ols_risk(d=d, k=1, sigma=0.7, prior_scale=2.0).value
        assert v == pytest.approx(4.0 * (d - 1) + s2 / (d - 2) + s2)
    assert ols_risk(d=5, k=0, sigma=0.7).value == pytest.approx(5 + s2)
    for k in (4, 5, 6):  # the interpolation peak
        assert ols_risk(d=5, k=k, sigma=0.7).value == math.inf
    assert ols_risk(d=5, k=5, sigma=0.0).value == 0.0
    assert ols_risk(d=5, k=2, sigma=0.0, prior_scale=3.0).value == pytest.approx(27.0)


def test_ols_risk_curve():
    curve = ols_risk_curve(d=5, n=12, sigma=0.5)
    assert curve.shape == (12,)
    want = [ols_risk(d=5, k=k, sigma=0.5).value for k in range(12)]
    np.testing.assert_array_equal(curve, want)
    assert np.isinf(curve[4:7]).all() and np.isfinite(np.delete(curve, [4, 5, 6])).all()


# --- ridge ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("k", [2, 5, 9])
def test_ridge_risk_matches_ridge_simulation(k):
    d, sigma, tau, lam = 5, 0.5, 1.0, 1.5  # λ far from the Bayes value σ²/τ² = 0.25
    theory = ridge_risk(d=d, k=k, sigma=sigma, lam=lam, prior_scale=tau, n_mc=4000, seed=3)
    sim = _simulate(_ridge(lam), d=d, k=k, sigma=sigma, tau=tau, seed=200 + k)
    _assert_close(theory.value, theory.stderr, *sim)


@pytest.mark.parametrize(("k", "lam"), [(3, 1.5), (5, 0.05), (9, 1.5), (9, 0.0), (20, 4.0)])
def test_ridge_risk_matches_plain_conditional_risk(k, lam):
    # Tighter check of the E_X machinery: the conditional risk given X from explicit matrices,
    # τ²λ² tr A⁻² + σ² tr XᵀX A⁻² + σ², A = XᵀX + λI, averaged over sampled X.
    d, sigma, tau, n = 5, 0.5, 1.2, 20_000
    x = np.random.default_rng(70 + k).standard_normal((n, k, d))
    gram = x.transpose(0, 2, 1) @ x
    a_inv = np.linalg.inv(gram + lam * np.eye(d))
    a_inv2 = a_inv @ a_inv
    per_design = (
        tau**2 * lam**2 * np.trace(a_inv2, axis1=1, axis2=2)
        + sigma**2 * np.trace(gram @ a_inv2, axis1=1, axis2=2)
        + sigma**2
    )
    theory = ridge_risk(d=d, k=k, sigma=sigma, lam=lam, prior_scale=tau, n_mc=4000, seed=12)
    se = per_design.std(ddof=1) / math.sqrt(n)
    _assert_close(theory.value, theory.stderr, per_design.mean(), se)


@pytest.mark.parametrize("k", [1, 4, 6, 15])
def test_ridge_at_bayes_lambda_equals_bayes_risk(k):
    # Common random numbers: same seed, same designs; the conditional risks coincide draw by draw.
    d, sigma, tau = 6, 0.6, 1.4
    b = bayes_risk(d=d, k=k, sigma=sigma, prior_scale=tau, n_mc=1000, seed=11)
    r = ridge_risk(
        d=d, k=k, sigma=sigma, lam=sigma**2 / tau**2, prior_scale=tau, n_mc=1000, seed=11
    )
    assert r.value == pytest.approx(b.value, rel=1e-12)
    # any other λ is worse: the posterior mean minimises the risk given X, so draw by draw too
    worse = ridge_risk(
        d=d, k=k, sigma=sigma, lam=4 * sigma**2 / tau**2, prior_scale=tau, n_mc=1000, seed=11
    )
    assert worse.value > b.value


@pytest.mark.parametrize("k", [4, 12])
def test_ridgeless_limit_matches_ols_formula(k):
    d, sigma = 8, 0.5
    r = ridge_risk(d=d, k=k, sigma=sigma, lam=0.0, n_mc=4000, seed=4)
    _assert_close(ols_risk(d=d, k=k, sigma=sigma).value, None, r.value, r.stderr)
    assert ridge_risk(d=d, k=d, sigma=sigma, lam=0.0).value == math.inf
    assert ridge_risk(d=d, k=0, sigma=sigma, lam=2.0).value == pytest.approx(d + sigma**2)


# --- registry -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "params"),
    [
        ("icl-bayes-risk", {"d", "k", "sigma", "prior_scale", "cond", "n_mc", "seed"}),
        ("icl-bayes-risk-limit", {"gamma", "sigma", "prior_scale"}),
        ("ols-risk", {"d", "k", "sigma", "prior_scale"}),
        ("ridge-risk", {"d", "k", "sigma", "lam", "prior_scale", "n_mc", "seed"}),
    ],
)
def test_formulas_are_registered(name, params):
    f = get_formula(name)
    assert {p.name for p in f.params} == params
    assert f.source and f.summary


def test_evaluate_matches_functions():
    v = evaluate("ols-risk", d=5, k=20, sigma=0.5)
    assert v.value == pytest.approx(0.25 * 5 / 14 + 0.25)
    assert evaluate("icl-bayes-risk", d=4, k=6, sigma=0.5, seed=2) == bayes_risk(
        d=4, k=6, sigma=0.5, seed=2
    )
    assert evaluate("icl-bayes-risk-limit", gamma=2, sigma=0.5) == bayes_risk_limit(
        gamma=2.0, sigma=0.5
    )


@pytest.mark.parametrize(
    ("name", "params", "bad"),
    [
        ("ols-risk", {"d": 5, "k": 2, "sigma": 0.5, "alpha": 1}, "alpha"),
        ("ols-risk", {"d": 0, "k": 2, "sigma": 0.5}, "d"),
        ("icl-bayes-risk", {"d": 5, "k": 2, "sigma": -1}, "sigma"),
        ("icl-bayes-risk", {"d": 5, "k": 2, "sigma": 1, "prior_scale": 0}, "prior_scale"),
        ("icl-bayes-risk", {"d": 5, "k": -1, "sigma": 1}, "k"),
        ("icl-bayes-risk", {"d": 5, "k": 2, "sigma": 1, "cond": 0.5}, "cond"),
        ("icl-bayes-risk-limit", {"gamma": 0, "sigma": 1}, "gamma"),
        ("ridge-risk", {"d": 5, "k": 2, "sigma": 1, "lam": -0.1}, "lam"),
    ],
)
def test_bad_parameters_raise_naming_the_parameter(name, params, bad):
    with pytest.raises(ValueError, match=f"'{bad}'"):
        evaluate(name, **params)


def test_direct_calls_validate_too():
    with pytest.raises(ValueError, match="'d'"):
        bayes_risk(d=0, k=2, sigma=0.5)
    with pytest.raises(ValueError, match="'sigma'"):
        ols_risk(d=3, k=2, sigma=-1.0)
    with pytest.raises(ValueError, match="n = 0"):
        bayes_risk_curve(d=3, n=0, sigma=0.5)
