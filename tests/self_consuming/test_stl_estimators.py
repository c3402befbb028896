"""The learners and measurements of the self-consuming loop against numpy / scipy / scikit-learn
references: Gaussian refits, OLS, GMM / KDE densities and variances, sample Wasserstein distances,
grid TV, token metrics, the contraction regression."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import optimize, stats

from fmtheory.experiments.self_consuming.loops_density import (
    fit_density,
    grid_tv,
    sample_wasserstein,
)
from fmtheory.experiments.self_consuming.loops_exact import fit_gaussian_stats, ols_projector
from fmtheory.experiments.self_consuming.loops_neural import (
    NeuralLoopSpec,
    run_categorical_loop,
    token_metrics,
)
from fmtheory.experiments.self_consuming.regimes import ContractionSums, make_regime
from fmtheory.models.token_lm import TokenLMConfig
from fmtheory.tasks.generative import GaussianStats, ZipfSpec


def test_fit_gaussian_stats_equals_numpy_cov():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((4, 9, 3)) @ np.diag([1.0, 2.0, 0.5])
    m = x.mean(1)
    c = x - m[:, None]
    st = GaussianStats(m, np.einsum("rni,rnj->rij", c, c), np.full(4, 9.0))
    for est, ddof in (("unbiased", 1), ("mle", 0)):
        mean, cov = fit_gaussian_stats(st, est)
        assert np.allclose(mean, x.mean(1))
        for i in range(4):
            assert np.allclose(cov[i], np.cov(x[i].T, ddof=ddof))


def test_ols_projector_equals_lstsq():
    rng = np.random.default_rng(1)
    x, y = rng.standard_normal((5, 20, 4)), rng.standard_normal((5, 20))
    w = (ols_projector(x) @ y[..., None])[..., 0]
    for i in range(5):
        assert np.allclose(w[i], np.linalg.lstsq(x[i], y[i], rcond=None)[0])


def test_kde_density_and_variance_against_numpy():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((60, 1)) * 2.0
    kde = fit_density("kde", x, components=1, bandwidth=0.4, seed=0)
    pts = np.linspace(-6, 6, 15)[:, None]
    ref = stats.norm.pdf((pts - x.T) / 0.4).mean(1) / 0.4
    assert np.allclose(kde.density(pts), ref, rtol=1e-5)
    assert kde.variance() == pytest.approx(x.var() + 0.16)
    draws = kde.sample(200_000, rng)
    assert draws.var() == pytest.approx(kde.variance(), rel=0.02)


def test_gmm_density_variance_sample_against_scipy():
    rng = np.random.default_rng(3)
    x = np.concatenate([rng.normal(-2, 0.5, (300, 2)), rng.normal(2, 1.0, (300, 2))])
    gmm = fit_density("gmm", x, components=2, bandwidth=1.0, seed=0)
    m = gmm.model
    pts = rng.standard_normal((10, 2)) * 2
    ref = sum(
        w * stats.multivariate_normal(mu, c).pdf(pts)
        for w, mu, c in zip(m.weights_, m.means_, m.covariances_, strict=True)
    )
    assert np.allclose(gmm.density(pts), ref, rtol=1e-8)
    draws = gmm.sample(100_000, rng)
    assert draws.var(axis=0).mean() == pytest.approx(gmm.variance(), rel=0.03)
    assert gmm.sample(0, rng).shape == (0, 2)


def test_sample_wasserstein_references():
    rng = np.random.default_rng(4)
    x, y = rng.standard_normal((300, 1)), rng.standard_normal((300, 1)) * 2 + 1
    assert sample_wasserstein(x, y, p=1) == pytest.approx(
        stats.wasserstein_distance(x[:, 0], y[:, 0])
    )
    w2_sorted = math.sqrt(((np.sort(x[:, 0]) - np.sort(y[:, 0])) ** 2).mean())
    assert sample_wasserstein(x, y, p=2) == pytest.approx(w2_sorted)
    # 2-D, equal sizes, uniform weights: optimal transport = optimal assignment
    a, b = rng.standard_normal((40, 2)), rng.standard_normal((40, 2)) + 0.5
    cost = np.linalg.norm(a[:, None] - b[None], axis=-1)
    for p in (1, 2):
        r, c = optimize.linear_sum_assignment(cost**p)
        ref = ((cost[r, c] ** p).mean()) ** (1 / p)
        assert sample_wasserstein(a, b, p=p) == pytest.approx(ref, rel=1e-9)


def test_grid_tv():
    # densities on cells of width 2 (each integrates to 1): half the mass moves one cell
    p = np.array([0.25, 0.25, 0.0, 0.0])
    q = np.array([0.0, 0.25, 0.25, 0.0])
    assert grid_tv(p, q, cell=2.0) == pytest.approx(0.5)
    assert grid_tv(p, p, cell=1.0) == 0.0


def test_token_metrics_against_direct_computation():
    p = np.array([0.4, 0.3, 0.2, 0.1])
    q = np.array([[0.5, 0.5, 0.0, 0.0], [0.4, 0.3, 0.2, 0.1]])
    m = token_metrics(q, p, head=2, tokens=np.array([10.0, 10.0]))
    assert m["distance"].tolist() == pytest.approx([0.3, 0.0])
    assert m["missing_mass"].tolist() == pytest.approx([0.3, 0.0])
    assert m["lost_head"].tolist() == [0.0, 0.0]
    assert m["lost_tail"].tolist() == [1.0, 0.0]
    assert m["tail_ratio"].tolist() == pytest.approx([0.0, 1.0])
    floor = 0.1 / 10
    assert m["log_ratio_tail"][0] == pytest.approx((np.log(floor / 0.2) + np.log(floor / 0.1)) / 2)
    assert m["log_ratio_head"][0] == pytest.approx((np.log(0.5 / 0.4) + np.log(0.5 / 0.3)) / 2)
    assert m["log_ratio_head"][1] == m["log_ratio_tail"][1] == 0.0


def test_categorical_loop_generation_one_is_the_empirical_distribution():
    spec = NeuralLoopSpec(
        zipf=ZipfSpec(vocab=30, exponent=1.1),
        seq_len=3,
        n0=40,
        generations=3,
        replicates=50,
        head=5,
        model=TokenLMConfig(vocab=30),
        steps=1,
        lr=1e-3,
        batch_size=8,
    )
    reg = make_regime(mode="replace", real_fraction=0.0, gamma=0.0, schedule="constant", power=0)
    out = run_categorical_loop(spec, reg, np.random.default_rng(5))
    counts = np.random.default_rng(5).multinomial(120, spec.zipf.probs(), size=50)
    p = spec.zipf.probs()
    assert np.allclose(out.metrics["missing_mass"][0], ((counts == 0) * p).sum(-1))
    assert np.allclose(out.metrics["distance"][0], 0.5 * np.abs(counts / 120 - p).sum(-1))


def test_contraction_regression_against_numpy():
    rng = np.random.default_rng(6)
    sums = ContractionSums()
    prev_all, next_all = [], []
    for _ in range(3):
        e0 = rng.standard_normal((200, 2))
        e1 = 0.6 * e0 + rng.standard_normal((200, 2)) * (0.5 + np.abs(e0))
        sums.add(e0, e1)
        prev_all.append(e0)
        next_all.append(e1)
    e0, e1 = np.concatenate(prev_all), np.concatenate(next_all)
    a, b = (e0 * e1).sum(-1), (e0 * e0).sum(-1)
    k_ref = np.linalg.lstsq(e0.reshape(-1, 1), e1.reshape(-1), rcond=None)[0][0]
    se_ref = math.sqrt(((a - k_ref * b) ** 2).sum()) / b.sum()
    k, se = sums.estimate()
    assert k == pytest.approx(k_ref) and se == pytest.approx(se_ref)
    assert abs(k - 0.6) <= 4 * se
