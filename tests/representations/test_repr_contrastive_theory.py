"""Spectral contrastive theory (theory/contrastive.py) against exact solutions and simulations."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.linalg import subspace_angles

from fmtheory.models.contrastive import info_nce_loss, spectral_contrastive_loss
from fmtheory.probes.linear_probe import weighted_probe_error
from fmtheory.theory import evaluate
from fmtheory.theory.contrastive import (
    gaussian_augmentation_graph,
    label_disagreement,
    probe_error_bound,
    spectral_solution,
)

# two pairs of vertices joined strongly, the pairs joined weakly; total mass 1
TINY = np.array([[0.0, 4, 1, 0], [4, 0, 0, 1], [1, 0, 0, 4], [0, 1, 4, 0]]) + np.eye(4) * 2
TINY = TINY / TINY.sum()


def _population_loss(f: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """HaoChen et al. eq. (4) on the whole graph: −2 Σ w_xx' fᵀf' + Σ w_x w_x' (fᵀf')²."""
    deg = w.sum(1)
    g = f @ f.T
    return -2 * (w * g).sum() + (deg[:, None] * deg[None, :] * g**2).sum()


@pytest.mark.parametrize("k", [1, 2])
def test_minimiser_of_the_loss_spans_the_predicted_eigenspace(k: int) -> None:
    w = torch.tensor(TINY, dtype=torch.float64)
    f = torch.randn(4, k, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    f.requires_grad_(True)
    opt = torch.optim.LBFGS([f], lr=1, max_iter=500, tolerance_grad=1e-14, tolerance_change=1e-16)

    def closure():
        opt.zero_grad()
        loss = _population_loss(f, w)
        loss.backward()
        return loss

    opt.step(closure)
    sol = spectral_solution(TINY, k)
    fw = np.sqrt(sol.weights)[:, None] * f.detach().numpy()
    assert np.degrees(subspace_angles(fw, sol.basis).max()) < 1e-4
    # the closed-form minimiser reaches the same loss value
    best = _population_loss(torch.tensor(sol.features()), w).item()
    assert _population_loss(f.detach(), w).item() == pytest.approx(best, rel=1e-8)


def test_tiny_graph_by_hand() -> None:
    sol = spectral_solution(TINY, 2)
    # rows sum to 7 of a total 28 (degree 1/4): Ā = 4W, eigenvalues (2+4+1, 2+4−1, 2−4+1, 2−4−1)/7
    np.testing.assert_allclose(sol.eigenvalues, np.array([7, 5, -1, -3]) / 7, atol=1e-12)
    assert sol.lam_k1 == pytest.approx(1 + 1 / 7) and sol.gap == pytest.approx(6 / 7)
    y = np.array([0, 0, 1, 1])
    assert label_disagreement(TINY, y) == pytest.approx(4 / 28)


def test_bound_holds_for_the_exact_optimum_on_random_graphs() -> None:
    rng = np.random.default_rng(0)
    for _ in range(200):
        n, k = rng.integers(6, 20), rng.integers(1, 4)
        y = rng.integers(0, 3, size=n)
        z = rng.standard_normal((n, 3)) + 2 * np.eye(3)[y]
        w = gaussian_augmentation_graph(z, rng.uniform(0.2, 3))
        sol = spectral_solution(w, int(k))
        b = probe_error_bound(label_disagreement(w, y), sol.lam_k1)
        err = weighted_probe_error(sol.features(), y, sol.weights)
        assert err <= b + 1e-9


def test_graph_and_bound_edge_cases() -> None:
    z = np.arange(6.0).reshape(3, 2)
    np.testing.assert_allclose(gaussian_augmentation_graph(z, 0.0), np.eye(3) / 3)
    w = gaussian_augmentation_graph(z, 1.0)
    assert w.sum() == pytest.approx(1) and np.allclose(w, w.T)
    assert math.isnan(probe_error_bound(0.0, 0.0)) and math.isinf(probe_error_bound(0.1, 0.0))
    assert evaluate("contrastive-probe-bound", phi=0.1, lam=0.5).value == pytest.approx(0.4)
    with pytest.raises(ValueError, match="k ="):
        spectral_solution(w, 3)


def test_probe_and_losses_by_hand() -> None:
    x = np.array([[1.0, 0], [0.9, 0.1], [0, 1.0], [0.1, 0.9]])
    assert weighted_probe_error(x, np.array([0, 0, 1, 1])) == 0.0
    assert (
        weighted_probe_error(np.ones((4, 1)), np.array([0, 0, 0, 1]), np.array([1, 1, 1, 5.0]))
        == 0.375
    )
    fa = torch.tensor([[1.0, 0.0], [0.0, 2.0]])
    fb = torch.tensor([[1.0, 1.0], [0.0, 1.0]])
    # diag fa·fb = (1, 2): −2·1.5; off-diagonal products (0, 2): (0 + 4)/2
    assert spectral_contrastive_loss(fa, fb).item() == pytest.approx(-3.0 + 2.0)
    za, zb = torch.nn.functional.normalize(fa, dim=1), torch.nn.functional.normalize(fb, dim=1)
    logits = za @ zb.T / 0.5
    want = -(logits.diagonal() - logits.logsumexp(dim=1)).mean()
    assert info_nce_loss(fa, fb, 0.5).item() == pytest.approx(want.item())
