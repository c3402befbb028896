"""Closed forms of fmtheory.theory.lsa against Monte Carlo simulation in plain numpy.

Every simulation SAMPLES prompts (w, x_1..x_n, labels, x_q, y_q), forms the LSA prediction
ŷ = x_qᵀ Γ (1/n) Σ y_i x_i with numpy, and averages (ŷ − y_q)².  Tolerance, fixed before running:
|closed form − simulation| <= 4 standard errors of the simulated mean (closed forms are exact).
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from fmtheory.theory import evaluate, get_formula
from fmtheory.theory.lsa import (
    lsa_covariate_scaling_risk,
    lsa_gamma_iso,
    lsa_gd_step_size,
    lsa_optimal_gamma,
    lsa_optimal_risk,
    lsa_orthogonal_query_risk,
    lsa_predict,
    lsa_risk_of_gamma,
)

Z = 4.0
N_SIM = 100_000


def _simulate(gamma, *, n, ctx_std, q_std, w_std=None, w_mask_k=None, sigma=0.0, seed=0,
              n_sim=N_SIM):  # fmt: skip
    """Mean and standard error of (ŷ − y_q)² over n_sim prompts; x ~ N(0, diag(std²))."""
    rng = np.random.default_rng(seed)
    d = gamma.shape[0]
    w = rng.standard_normal((n_sim, d)) * (1.0 if w_std is None else w_std)
    if w_mask_k is not None:  # k uniformly chosen non-zero coordinates
        keep = np.argsort(rng.random((n_sim, d)), axis=1)[:, :w_mask_k]
        mask = np.zeros((n_sim, d))
        np.put_along_axis(mask, keep, 1.0, axis=1)
        w = w * mask
    x = rng.standard_normal((n_sim, n, d)) * ctx_std
    y = np.einsum("bnd,bd->bn", x, w) + sigma * rng.standard_normal((n_sim, n))
    xq = rng.standard_normal((n_sim, d)) * q_std
    yq = np.einsum("bd,bd->b", xq, w) + sigma * rng.standard_normal(n_sim)
    err = (lsa_predict(gamma, x, y, xq) - yq) ** 2
    return err.mean(), err.std(ddof=1) / math.sqrt(n_sim)


@pytest.mark.parametrize(("d", "n", "sigma"), [(3, 5, 0.0), (5, 20, 0.5), (2, 1, 1.0)])
def test_lsa_risk_matches_simulation(d, n, sigma):
    gamma = lsa_gamma_iso(d=d, n=n, sigma=sigma) * np.eye(d)
    mc, se = _simulate(gamma, n=n, ctx_std=1.0, q_std=1.0, sigma=sigma, seed=d * 100 + n)
    closed = evaluate("lsa-risk", d=d, n=n, sigma=sigma).value
    assert abs(closed - mc) <= Z * se, (closed, mc, se)
    assert closed == pytest.approx(lsa_optimal_risk(d=d, n=n, sigma=sigma))
    # the general formula (3) at Γ* = γI gives the same number
    assert closed == pytest.approx(lsa_risk_of_gamma(gamma=gamma, n=n, ctx_cov=np.ones(d),
                                                     sigma=sigma), rel=1e-12)  # fmt: skip


def test_lsa_risk_known_values_and_limits():
    # d = 5, n = 20, σ = 0: d(1 + d)/(n + 1 + d) = 30/26
    assert evaluate("lsa-risk", d=5, n=20, sigma=0).value == pytest.approx(30 / 26)
    assert lsa_optimal_risk(d=4, n=10**9, sigma=0.7) == pytest.approx(0.49, rel=1e-6)
    assert lsa_gamma_iso(d=5, n=20) == pytest.approx(20 / 26)
    assert lsa_gd_step_size(d=5, n=20) == pytest.approx(1 / 26)


def test_general_risk_matches_simulation_with_shifted_moments():
    """Any Γ (non-symmetric), context ≠ query covariance, sparse scaled w, noise: eq. (3)."""
    d, n, sigma = 3, 4, 0.3
    rng = np.random.default_rng(7)
    gamma = 0.3 * np.eye(d) + 0.1 * rng.standard_normal((d, d))
    ctx_std, q_std = np.array([1.0, 0.5, 2.0]), np.array([1.5, 1.0, 0.7])
    w_std, k = 1.7, 2
    mc, se = _simulate(gamma, n=n, ctx_std=ctx_std, q_std=q_std, w_std=w_std, w_mask_k=k,
                       sigma=sigma, seed=3)  # fmt: skip
    w_cov = w_std**2 * (k / d) * np.eye(d)  # independent mask: off-diagonal E[w_i w_j] = 0
    closed = lsa_risk_of_gamma(gamma=gamma, n=n, ctx_cov=ctx_std**2, query_cov=q_std**2,
                               w_cov=w_cov, sigma=sigma)  # fmt: skip
    assert abs(closed - mc) <= Z * se, (closed, mc, se)


def test_optimal_gamma_is_the_least_squares_minimiser():
    """Γ* (anisotropic Λ, noise) equals the least-squares fit of y_q on the features vec(x_q hᵀ).

    ŷ is linear in Γ, so the population minimiser is a linear regression; the fit's
    heteroscedasticity-robust (HC0) standard errors set the tolerance: 4 s.e. per entry.
    """
    d, n, sigma, n_sim = 3, 6, 0.5, 200_000
    lam = np.array([2.0, 1.0, 0.25])
    rng = np.random.default_rng(11)
    w = rng.standard_normal((n_sim, d))
    x = rng.standard_normal((n_sim, n, d)) * np.sqrt(lam)
    y = np.einsum("bnd,bd->bn", x, w) + sigma * rng.standard_normal((n_sim, n))
    xq = rng.standard_normal((n_sim, d)) * np.sqrt(lam)
    yq = np.einsum("bd,bd->b", xq, w) + sigma * rng.standard_normal(n_sim)
    h = np.einsum("bn,bnd->bd", y, x) / n
    feats = np.einsum("bi,bj->bij", xq, h).reshape(n_sim, d * d)  # ŷ = Σ_ij Γ_ij x_qi h_j
    gram = feats.T @ feats
    beta = np.linalg.solve(gram, feats.T @ yq)
    resid = yq - feats @ beta
    ginv = np.linalg.inv(gram)
    cov = ginv @ (feats.T * resid**2) @ feats @ ginv
    se = np.sqrt(np.diag(cov))
    star = lsa_optimal_gamma(cov=lam, n=n, sigma=sigma).ravel()
    assert np.all(np.abs(beta - star) <= Z * se), (beta, star, se)
    # the closed form of the docstring, eq. (4)
    expect = np.diag(1.0 / ((1 + 1 / n) * lam + lam.sum() / n + sigma**2 / n))
    np.testing.assert_allclose(star.reshape(d, d), expect, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("c", [0.5, 2.0])
def test_covariate_scaling_risk_matches_simulation(c):
    d, n, sigma = 4, 10, 0.2
    gamma = lsa_gamma_iso(d=d, n=n, sigma=sigma) * np.eye(d)
    mc, se = _simulate(gamma, n=n, ctx_std=c, q_std=c, sigma=sigma, seed=int(10 * c))
    closed = evaluate("lsa-covariate-scale-risk", d=d, n=n, sigma=sigma, c=c).value
    assert abs(closed - mc) <= Z * se, (closed, mc, se)
    same = lsa_risk_of_gamma(gamma=gamma, n=n, ctx_cov=c**2 * np.ones(d), sigma=sigma)
    assert closed == pytest.approx(same, rel=1e-12)
    # c = 1 is the in-distribution risk
    assert lsa_covariate_scaling_risk(d=d, n=n, sigma=sigma, c=1.0) == pytest.approx(
        lsa_optimal_risk(d=d, n=n, sigma=sigma), rel=1e-12
    )


def test_orthogonal_query_prediction_is_zero_and_its_risk():
    d, n, B = 6, 3, 2000
    rng = np.random.default_rng(5)
    x = rng.standard_normal((B, n, d))
    w = rng.standard_normal((B, d))
    y = np.einsum("bnd,bd->bn", x, w)
    q, _ = np.linalg.qr(np.transpose(x, (0, 2, 1)))  # (B, d, n)
    g = rng.standard_normal((B, d))
    xq = g - np.einsum("bdn,bn->bd", q, np.einsum("bdn,bd->bn", q, g))
    xq *= math.sqrt(d / (d - n))
    pred = lsa_predict(lsa_gamma_iso(d=d, n=n) * np.eye(d), x, y, xq)
    assert np.abs(pred).max() <= 1e-12 * np.abs(y).max()
    err = (np.einsum("bd,bd->b", xq, w) - pred) ** 2
    closed = lsa_orthogonal_query_risk(query_second_moment=np.eye(d))
    assert abs(err.mean() - closed) <= Z * err.std(ddof=1) / math.sqrt(B)


def test_one_gd_step_is_the_isotropic_optimum():
    """ŷ of Γ* = γI equals one GD step w₁ = η Σ y_i x_i from 0 (step η = 1/(n+1+d+σ²))."""
    d, n, sigma = 4, 7, 0.5
    rng = np.random.default_rng(2)
    x, y, xq = (
        rng.standard_normal((50, n, d)),
        rng.standard_normal((50, n)),
        rng.standard_normal((50, d)),
    )
    w1 = lsa_gd_step_size(d=d, n=n, sigma=sigma) * np.einsum("bn,bnd->bd", y, x)
    np.testing.assert_allclose(
        lsa_predict(lsa_optimal_gamma(cov=np.ones(d), n=n, sigma=sigma), x, y, xq),
        np.einsum("bd,bd->b", xq, w1), rtol=1e-12,
    )  # fmt: skip


def test_bad_input_names_the_parameter():
    f = get_formula("lsa-risk")
    for params, name in [({"d": 3, "n": 0}, "n"), ({"d": 0, "n": 3}, "d"),
                         ({"d": 3, "n": 3, "sigma": -1}, "sigma")]:  # fmt: skip
        with pytest.raises(ValueError, match=f"'{name}'"):
            f.resolve(params)
    with pytest.raises(ValueError, match="'c'"):
        get_formula("lsa-covariate-scale-risk").resolve({"d": 3, "n": 3, "c": 0})
    with pytest.raises(ValueError, match="n = 0"):
        lsa_optimal_risk(d=3, n=0)
    with pytest.raises(ValueError, match="c = -1"):
        lsa_covariate_scaling_risk(d=3, n=3, c=-1.0)
