"""Samplers of fmtheory.tasks.generative against plain numpy / scipy references."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import stats

from fmtheory.tasks.generative import (
    GaussianSpec,
    GaussianStats,
    ZipfSpec,
    make_mixture_data,
    regression_labels,
    sample_bartlett_factor,
    sample_design,
    sample_gaussian,
    sample_gaussian_stats,
    sample_scatter,
    sample_zipf_tokens,
)


def _close(mc: np.ndarray, theory: np.ndarray, se: np.ndarray, z: float = 4.0) -> None:
    assert (np.abs(mc - theory) <= z * se + 1e-12).all(), (mc, theory, se)


@pytest.mark.parametrize("dof", [2, 5])  # 2 < dim: the singular path; 5 ≥ dim: Bartlett
def test_sample_scatter_moments(dof):
    """E[W] = dof·I and Var[W_11] = 2·dof, Var[W_12] = dof for W ~ Wishart_3(I, dof)."""
    rng = np.random.default_rng(0)
    r = 40_000
    w = sample_scatter(np.full(r, dof), 3, rng)
    assert w.shape == (r, 3, 3)
    assert np.allclose(w, np.swapaxes(w, 1, 2))
    _close(w.mean(0), dof * np.eye(3), w.std(0) / math.sqrt(r))
    _close(np.array(w[:, 0, 0].var()), np.array(2.0 * dof), np.array(0.05 * 2 * dof))
    _close(np.array(w[:, 0, 1].var()), np.array(float(dof)), np.array(0.05 * dof))
    rank = np.linalg.matrix_rank(w[:10])
    assert (rank == min(dof, 3)).all()
    assert (sample_scatter(np.zeros(3, dtype=int), 3, rng) == 0).all()


def test_sample_scatter_matches_scipy_wishart_logdet():
    rng = np.random.default_rng(1)
    w = sample_scatter(np.full(20_000, 6), 2, rng)
    ref = stats.wishart(df=6, scale=np.eye(2)).rvs(size=20_000, random_state=2)
    a, b = np.linalg.slogdet(w)[1], np.linalg.slogdet(ref)[1]
    se = math.sqrt(a.var() / a.size + b.var() / b.size)
    assert abs(a.mean() - b.mean()) <= 4 * se


def test_bartlett_factor():
    rng = np.random.default_rng(3)
    a = sample_bartlett_factor(np.full(30_000, 4), 3, rng)
    assert np.allclose(np.triu(a, 1), 0.0)
    w = a @ np.swapaxes(a, 1, 2)
    _close(w.mean(0), 4 * np.eye(3), w.std(0) / math.sqrt(w.shape[0]))
    with pytest.raises(ValueError, match="dof"):
        sample_bartlett_factor(np.array([2]), 3, rng)


def test_sample_gaussian_stats_distribution():
    """Sample mean ~ N(μ, Σ/n), scatter ~ Wishart(Σ, n − 1): checked against raw samples."""
    rng = np.random.default_rng(4)
    r, n, d = 20_000, 7, 2
    mu = np.array([1.0, -2.0])
    chol = np.array([[1.5, 0.0], [0.6, 0.5]])
    cov = chol @ chol.T
    s = sample_gaussian_stats(
        np.broadcast_to(mu, (r, d)), np.broadcast_to(chol, (r, d, d)), np.full(r, n), rng
    )
    raw = mu + rng.standard_normal((r, n, d)) @ chol.T
    raw_mean = raw.mean(1)
    raw_scatter = np.einsum("rni,rnj->rij", raw - raw_mean[:, None], raw - raw_mean[:, None])
    for a, b in [(s.mean, raw_mean), (s.scatter, raw_scatter)]:
        se = np.sqrt(a.var(0) / r + b.var(0) / r)
        _close(a.mean(0), b.mean(0), se)
        _close(a.var(0), b.var(0), 0.06 * b.var(0))
    assert np.allclose(s.scatter.mean(0), (n - 1) * cov, rtol=0.05)
    zero = sample_gaussian_stats(mu[None], chol[None], np.array([0]), rng)
    assert (zero.mean == 0).all() and (zero.scatter == 0).all()


def test_gaussian_stats_merge_equals_numpy_on_concatenation():
    rng = np.random.default_rng(5)
    a, b = rng.standard_normal((3, 5, 2)), rng.standard_normal((3, 8, 2)) + 1.0

    def stats_of(x):
        m = x.mean(1)
        c = x - m[:, None]
        return GaussianStats(m, np.einsum("rni,rnj->rij", c, c), np.full(3, float(x.shape[1])))

    merged = stats_of(a).merge(stats_of(b))
    both = np.concatenate([a, b], axis=1)
    assert np.allclose(merged.mean, both.mean(1))
    for i in range(3):
        assert np.allclose(merged.scatter[i] / 12, np.cov(both[i].T, ddof=1))
    empty = GaussianStats(np.zeros((3, 2)), np.zeros((3, 2, 2)), np.zeros(3))
    assert np.allclose(empty.merge(stats_of(a)).scatter, stats_of(a).scatter)


def test_sample_gaussian_shape_and_moments():
    rng = np.random.default_rng(6)
    x = sample_gaussian(GaussianSpec(dim=3, mean=2.0, std=0.5), n=4000, replicates=5, rng=rng)
    assert x.shape == (5, 4000, 3)
    assert abs(x.mean() - 2.0) < 4 * 0.5 / math.sqrt(x.size)
    with pytest.raises(ValueError, match="std"):
        GaussianSpec(std=0.0)


def test_zipf_tokens_frequencies_and_determinism():
    spec = ZipfSpec(vocab=50, exponent=1.2)
    g = torch.Generator().manual_seed(0)
    tok = sample_zipf_tokens(spec, batch=20_000, seq_len=5, generator=g)
    assert tok.shape == (20_000, 5) and tok.dtype == torch.long
    counts = np.bincount(tok.numpy().ravel(), minlength=50)
    expected = spec.probs() * tok.numel()
    assert stats.chisquare(counts, expected).pvalue > 1e-3
    g2 = torch.Generator().manual_seed(0)
    assert torch.equal(tok, sample_zipf_tokens(spec, batch=20_000, seq_len=5, generator=g2))
    p = spec.probs()
    assert p.sum() == pytest.approx(1.0) and (np.diff(p) < 0).all()
    with pytest.raises(ValueError, match="vocab"):
        ZipfSpec(vocab=1)


def test_regression_labels_copies_and_per_row_weights():
    rng = np.random.default_rng(7)
    x = sample_design(replicates=2000, rows=6, dim=3, rng=rng)
    w = rng.standard_normal((2000, 3))
    y = regression_labels(x, w, noise_std=2.0, rng=rng, copies=4)
    resid = y - np.einsum("rtd,rd->rt", x, w)
    assert resid.var() == pytest.approx(4.0 / 4, rel=0.05)  # σ²/copies
    w_rows = np.broadcast_to(w[:, None, :], x.shape)
    y2 = regression_labels(x, w_rows, noise_std=0.0, rng=rng)
    assert np.allclose(y2, np.einsum("rtd,rd->rt", x, w))
    with pytest.raises(ValueError, match="copies"):
        regression_labels(x, w, noise_std=1.0, rng=rng, copies=0)


@pytest.mark.parametrize("name", ["trimodal-1d", "ring-2d", "digits-2d"])
def test_mixture_data_density_and_moments(name):
    data = make_mixture_data(name)
    grid, cell = data.grid(120 if data.dim == 1 else 60)
    mass = data.density(grid).sum() * cell
    assert mass == pytest.approx(1.0, abs=0.01)
    rng = np.random.default_rng(8)
    x = data.sample(50_000, rng)
    assert x.shape == (50_000, data.dim)
    assert x.var(axis=0).mean() == pytest.approx(data.variance(), rel=0.03)


def test_mixture_density_matches_scipy():
    data = make_mixture_data("trimodal-1d")
    pts = np.linspace(-5, 6, 23)[:, None]
    ref = sum(
        w * stats.norm(m[0], s).pdf(pts[:, 0])
        for w, m, s in zip(data.weights, data.means, data.stds, strict=True)
    )
    assert np.allclose(data.density(pts), ref)
    with pytest.raises(ValueError, match="mixture data"):
        make_mixture_data("nope")  # type: ignore[arg-type]
