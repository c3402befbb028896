"""Spectral contrastive learning on a finite augmentation graph (pure numpy).

HaoChen, Wei, Gaidon & Ma 2021, "Provable guarantees for self-supervised deep learning with spectral
contrastive loss", NeurIPS:

* the population augmentation graph has weights w_xx' = P(two augmentations of one datum are x and
  x'), total mass 1, vertex weights w_x = Σ_x' w_xx';
* the spectral contrastive loss L(f) = −2 Σ w_xx' f(x)ᵀf(x') + Σ w_x w_x' (f(x)ᵀf(x'))² equals
  ‖Ā − F Fᵀ‖_F² + const with Ā = D^(−1/2) W D^(−1/2) and F_x = √w_x f(x) (§3.1, Lemma 3.2), so its
  minimisers span the top-k eigenvectors of Ā (Eckart–Young–Mirsky);
* a linear probe on such features has error at most 2φ/λ_{k+1} (§3.2, Thm 3.8 in its simplest
  population form): φ = Σ w_xx' 1[y(x) ≠ y(x')] is the labels' disagreement with the graph and
  λ_{k+1} the (k+1)-th smallest eigenvalue of the normalised Laplacian I − Ā.  Derivation used here:
  for a one-hot label vector y_c the weighted regression residual onto the span is ≤
  y_cᵀ(D − W)y_c / λ_{k+1}; summed over classes this is φ/λ_{k+1}, and a misclassified vertex has
  squared error ≥ 1/2, so the w-weighted error of the argmax probe is ≤ 2φ/λ_{k+1}.

The graph here comes from Gaussian augmentations: datum i has a latent z_i and its augmentations are
z_i + s·N(0, I); the overlap of the views of i and j is ∝ exp(−‖z_i − z_j‖²/(4s²)), and s = 0
means no augmentation (each datum is paired only with itself).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from fmtheory.theory.registry import Param, TheoryValue, formula

__all__ = [
    "gaussian_augmentation_graph",
    "SpectralSolution",
    "spectral_solution",
    "label_disagreement",
    "probe_error_bound",
]


def gaussian_augmentation_graph(z: np.ndarray, scale: float) -> np.ndarray:
    """W: (n, n), symmetric, total mass 1, w_ij ∝ exp(−‖z_i − z_j‖² / (4 s²)); s = 0 gives I/n.

    z: (n, q) latent points.  scale: s ≥ 0, the augmentation noise standard deviation.
    """
    z = np.asarray(z, dtype=float)
    if z.ndim != 2:
        raise ValueError(f"z.shape = {z.shape}: must be (n, q)")
    if not scale >= 0:
        raise ValueError(f"scale = {scale}: must be >= 0")
    n = z.shape[0]
    if scale == 0:
        return np.eye(n) / n
    d2 = ((z[:, None, :] - z[None, :, :]) ** 2).sum(-1)
    w = np.exp(-d2 / (4 * scale**2))
    return w / w.sum()


@dataclass(frozen=True)
class SpectralSolution:
    """The spectral contrastive optimum of a graph.

    eigenvalues: (n,) of Ā in descending order.  basis: (n, k) its top-k eigenvectors (the span
    every minimiser's √w-weighted features reach).  weights: (n,) vertex weights w_x.
    lam_k1: λ_{k+1} = 1 − eigenvalues[k], the (k+1)-th smallest Laplacian eigenvalue.
    gap: eigenvalues[k−1] − eigenvalues[k], which makes the span unique when > 0.
    """

    eigenvalues: np.ndarray
    basis: np.ndarray
    weights: np.ndarray
    lam_k1: float
    gap: float

    def features(self) -> np.ndarray:
        """One minimiser of the loss: f(x) = w_x^(−1/2) (U_k diag(√λ))_x, shape (n, k)."""
        lam = np.clip(self.eigenvalues[: self.basis.shape[1]], 0.0, None)
        return self.basis * np.sqrt(lam)[None, :] / np.sqrt(self.weights)[:, None]


def spectral_solution(w: np.ndarray, k: int) -> SpectralSolution:
    """Top-k eigenspace of Ā = D^(−1/2) W D^(−1/2) (HaoChen et al. 2021, §3.1); 1 ≤ k < n."""
    w = np.asarray(w, dtype=float)
    n = w.shape[0]
    if w.shape != (n, n) or not np.allclose(w, w.T):
        raise ValueError(f"w.shape = {w.shape}: must be a symmetric (n, n) matrix")
    if not 1 <= k < n:
        raise ValueError(f"k = {k}: must be in [1, {n - 1}]")
    deg = w.sum(axis=1)
    a = w / np.sqrt(deg[:, None] * deg[None, :])
    vals, vecs = np.linalg.eigh(a)
    vals, vecs = vals[::-1], vecs[:, ::-1]
    return SpectralSolution(vals, vecs[:, :k], deg, float(1.0 - vals[k]),
                            float(vals[k - 1] - vals[k]))  # fmt: skip


def label_disagreement(w: np.ndarray, y: np.ndarray) -> float:
    """φ = Σ_ij w_ij 1[y_i ≠ y_j] for a graph of total mass 1: the chance that two augmentations of
    one datum carry different labels (HaoChen et al. 2021, §3.2)."""
    y = np.asarray(y)
    return float((np.asarray(w) * (y[:, None] != y[None, :])).sum())


def probe_error_bound(phi: float, lam_k1: float) -> float:
    """2φ / λ_{k+1}; inf when λ_{k+1} = 0 and φ > 0, nan when both are 0 (the bound says nothing)."""
    if phi < 0 or lam_k1 < -1e-12:
        raise ValueError(f"phi = {phi}, lam_k1 = {lam_k1}: both must be >= 0")
    if lam_k1 <= 1e-12:
        return math.nan if phi <= 0 else math.inf
    return 2.0 * phi / lam_k1


@formula(
    "contrastive-probe-bound",
    params=[
        Param("phi", float, 0.05, 0.0, 1.0, "label disagreement of the augmentation graph"),
        Param("lam", float, 0.5, 1e-12, 2.0, "(k+1)-th smallest normalised-Laplacian eigenvalue"),
    ],
    source="HaoChen, Wei, Gaidon & Ma 2021, NeurIPS, §3.2 (Thm 3.8, population form)",
    summary="linear-probe error of the spectral contrastive optimum ≤ 2 phi / lambda_{k+1}",
)
def _bound(*, phi: float, lam: float) -> TheoryValue:
    return TheoryValue(probe_error_bound(phi, lam))
