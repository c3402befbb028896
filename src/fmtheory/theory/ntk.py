"""The infinite-width neural tangent kernel of a fully-connected ReLU network in NTK
parameterisation, by the arc-cosine recursion.  Pure numpy.

The network (Arora, Du, Hu, Li, Salakhutdinov & Wang 2019, "On exact computation with an infinitely
wide neural net", NeurIPS, §3, eq. 3-4), all weights i.i.d. N(0, 1), c_σ = 2 for ReLU:

    f⁽ʰ⁾ = W⁽ʰ⁾ g⁽ʰ⁻¹⁾,  g⁽⁰⁾ = x,  g⁽ʰ⁾ = √(c_σ / d_h) σ(f⁽ʰ⁾)  (h = 1..L),  f(x) = W⁽ᴸ⁺¹⁾ g⁽ᴸ⁾.

As every width d_h → ∞ its tangent kernel at initialisation tends to (Jacot, Gabriel & Hongler
2018, Thm 1; Arora et al. 2019, Thm 3.1)

    Θ⁽ᴸ⁾(x, x') = Σ_{h=1}^{L+1} Σ⁽ʰ⁻¹⁾(x, x') ∏_{h'=h}^{L} Σ̇⁽ʰ'⁾(x, x'),

with Σ⁽⁰⁾ = xᵀx' and, for Λ the 2×2 covariance of (Σ⁽ʰ⁻¹⁾(x,x), Σ⁽ʰ⁻¹⁾(x,x'), Σ⁽ʰ⁻¹⁾(x',x')) and
cos θ = Λ₁₂ / √(Λ₁₁Λ₂₂), the arc-cosine kernels of degree 1 and 0 (Cho & Saul 2009, NeurIPS, eq. 6):

    Σ⁽ʰ⁾  = c_σ E[σ(u)σ(v)]   = √(Λ₁₁Λ₂₂) (sin θ + (π − θ) cos θ) / π,
    Σ̇⁽ʰ⁾ = c_σ E[σ'(u)σ'(v)] = (π − θ) / π.

Registered formula: ``relu-ntk`` (the kernel between two inputs at a given angle and norms).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from fmtheory.theory.registry import Param, TheoryValue, register_formula

__all__ = ["NTKResult", "relu_ntk", "arccos_step"]


@dataclass(frozen=True)
class NTKResult:
    """ntk: Θ⁽ᴸ⁾, (n1, n2).  nngp: Σ⁽ᴸ⁾ (the output-layer input covariance), (n1, n2)."""

    ntk: np.ndarray
    nngp: np.ndarray


def arccos_step(
    cov: np.ndarray, var1: np.ndarray, var2: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """One ReLU layer (c_σ = 2): Σ⁽ʰ⁻¹⁾ → (Σ⁽ʰ⁾, Σ̇⁽ʰ⁾) for the cross entries ``cov`` (n1, n2)
    and the diagonals var1 (n1,), var2 (n2,); returns (Σ, Σ̇, new var1, new var2).  Under this
    scaling the diagonal is preserved: Σ⁽ʰ⁾(x, x) = Σ⁽ʰ⁻¹⁾(x, x)."""
    norm = np.sqrt(np.outer(var1, var2))
    with np.errstate(invalid="ignore", divide="ignore"):
        cos = np.where(norm > 0, cov / np.where(norm > 0, norm, 1.0), 0.0)
    cos = np.clip(cos, -1.0, 1.0)
    theta = np.arccos(cos)
    sigma = norm * (np.sin(theta) + (math.pi - theta) * cos) / math.pi
    dot = (math.pi - theta) / math.pi
    return sigma, dot, var1.copy(), var2.copy()


def relu_ntk(x1: np.ndarray, x2: np.ndarray | None = None, *, depth: int = 1) -> NTKResult:
    """Θ⁽ᴸ⁾ between the rows of x1 (n1, d) and x2 (n2, d) for L = ``depth`` hidden ReLU layers
    (depth = 1: the two-layer network), every layer trained (Arora et al. 2019, Thm 3.1)."""
    if depth < 1:
        raise ValueError(f"depth = {depth}: must be >= 1")
    x1 = np.asarray(x1, dtype=float)
    x2 = x1 if x2 is None else np.asarray(x2, dtype=float)
    cov = x1 @ x2.T
    v1, v2 = (x1**2).sum(1), (x2**2).sum(1)
    theta = cov.copy()  # Θ after layer 1's weights: Σ⁽⁰⁾
    for _ in range(depth):
        sigma, dot, v1, v2 = arccos_step(cov, v1, v2)
        theta = theta * dot + sigma
        cov = sigma
    return NTKResult(theta, cov)


def _relu_ntk_formula(*, angle: float, norm1: float, norm2: float, depth: int) -> TheoryValue:
    x1 = np.array([[norm1, 0.0]])
    x2 = np.array([[norm2 * math.cos(angle), norm2 * math.sin(angle)]])
    return TheoryValue(float(relu_ntk(x1, x2, depth=depth).ntk[0, 0]))


register_formula(
    "relu-ntk",
    _relu_ntk_formula,
    params=[
        Param("angle", float, 0.0, 0.0, math.pi, "angle between x and x' (radians)"),
        Param("norm1", float, 1.0, 0.0, 1e6, "‖x‖"),
        Param("norm2", float, 1.0, 0.0, 1e6, "‖x'‖"),
        Param("depth", int, 1, 1, 1000, "hidden ReLU layers L"),
    ],
    source="Jacot, Gabriel & Hongler 2018, Thm 1; Arora et al. 2019, Thm 3.1; Cho & Saul 2009",
    summary="infinite-width NTK Θ⁽ᴸ⁾(x, x') of a ReLU MLP in NTK parameterisation (c_σ = 2)",
)
