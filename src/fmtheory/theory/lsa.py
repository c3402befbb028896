"""Single-layer linear self-attention (LSA) trained on in-context linear regression: its optimum,
its risk, and its behaviour under distribution shift, in closed form.

Model (Zhang, Frei & Bartlett 2024, "Trained transformers learn linear models in-context", JMLR
25(49), §2-§4; von Oswald et al. 2023 §2; Ahn et al. 2023, "Transformers learn to implement
preconditioned gradient descent for in-context learning", §2).  A prompt holds n context pairs and a
query::

    x_i ~ N(0, Λ),  w ~ N(0, τ² I),  y_i = <w, x_i> + ε_i,  ε_i ~ N(0, σ²),   i = 1..n, and x_q.

One LSA layer in the parameterisation of ZFB reads (after its nuisance blocks vanish, see below)

    ŷ = x_qᵀ Γ h,      h = (1/n) Σ_i y_i x_i,                                          (1)

i.e. one step of gradient descent from w = 0 on (1/2n) Σ (y_i − wᵀx_i)², preconditioned by Γ
(von Oswald et al. 2023, Prop. 1; Ahn et al. 2023, Thm 1).

**Risk of any Γ** (derived here; the moment identity is Isserlis 1918).  With S = (1/n) Σ x_i x_iᵀ
and w independent of the x's, h = S w + (1/n) Σ ε_i x_i, so with W₂ = E[wwᵀ], context covariance
Λ_c, query covariance Λ_q (x_q independent of the context)::

    E[h hᵀ] = E[S W₂ S] + (σ²/n) Λ_c,   E[S W₂ S] = (1 + 1/n) Λ_c W₂ Λ_c + (tr(W₂Λ_c)/n) Λ_c,   (2)
    E[h wᵀ] = Λ_c W₂,
    R(Γ) = E(ŷ − y_q)² = tr(Λ_q Γ E[hhᵀ] Γᵀ) − 2 tr(Λ_q Γ Λ_c W₂) + tr(Λ_q W₂) + σ_q²,        (3)

where (2) uses the Gaussian fourth moment E[x xᵀ A x xᵀ] = 2 Λ A Λ + tr(AΛ) Λ for symmetric A
(Isserlis' theorem).  Only second moments of w enter, so (3) holds for sparse or scaled w too.

**The optimum** (ZFB Thm 4.1 for σ = 0; the σ > 0 case follows from (3) the same way).  Setting the
gradient of (3) in Γ to zero at Λ_c = Λ_q = Λ, W₂ = τ² I gives

    Γ* = ((1 + 1/n) Λ + (tr Λ / n + σ² / (n τ²)) I)⁻¹,                                   (4)
    R* = σ² + τ² (tr Λ − tr(Λ Γ* Λ)) = σ² + τ² Σ_j λ_j (1 − λ_j γ_j),

with λ_j, γ_j the eigenvalues of Λ and Γ* (same eigenvectors).

For Λ = I, τ = 1:  Γ* = γ I with γ = n / (n + 1 + d + σ²) — one plain GD step from w = 0 with step
1/(n + 1 + d + σ²) on the unnormalised loss (1/2) Σ (y_i − wᵀx_i)² — and

    R* = σ² + d (1 + d + σ²) / (n + 1 + d + σ²)                                             (5)

(the registered ``lsa-risk``; not divided by d).

**Covariate scaling** (derived here from (3); ZFB §4 discuss the brittleness of the trained LSA to
covariate shift).  Train at Λ = I, evaluate with context AND query inputs scaled by c (Λ_c = Λ_q =
c² I):

    R(c) = σ² + d c² (γ² c² a − 2 γ c² + 1),   a = (1 + 1/n) c² + (d c² + σ²) / n,          (6)

which equals (5) at c = 1 and grows like γ d c⁶ for large c (the LSA never re-normalises by S⁻¹).

**Orthogonal query.**  h lies in span{x_i}; if Γ ∝ I (the optimum for isotropic Λ) and x_q ⊥
span{x_i}, then ŷ = γ x_qᵀ h = 0 exactly, whatever the labels (ZFB §4, query shift), and the risk is
E(wᵀx_q)² + σ² = tr(W₂ E[x_q x_qᵀ]) + σ².

The optimal Γ* only involves the noise through σ²/(nτ²): with label noise the LSA shrinks more.
"""

from __future__ import annotations

import math

import numpy as np

from fmtheory.theory.registry import Param, TheoryValue, register_formula

__all__ = [
    "lsa_gamma_iso",
    "lsa_gd_step_size",
    "lsa_optimal_gamma",
    "lsa_h_second_moment",
    "lsa_risk_of_gamma",
    "lsa_optimal_risk",
    "lsa_covariate_scaling_risk",
    "lsa_orthogonal_query_risk",
    "lsa_predict",
]

_SOURCE = (
    "Zhang, Frei & Bartlett 2024, JMLR 25(49), Thm 4.1 (global minimum Γ*); von Oswald et al. "
    "2023 Prop. 1 and Ahn et al. 2023 Thm 1 (one preconditioned GD step); risk derived with "
    "Isserlis' theorem (see fmtheory.theory.lsa)"
)


def _as_cov(cov: np.ndarray | float, d: int | None = None) -> np.ndarray:
    """A covariance as a (d, d) float64 matrix from a scalar (needs d), a (d,) diagonal or (d, d)."""
    a = np.asarray(cov, dtype=np.float64)
    if a.ndim == 0:
        if d is None:
            raise ValueError("a scalar covariance needs the dimension d")
        return float(a) * np.eye(d)
    if a.ndim == 1:
        return np.diag(a)
    if a.ndim != 2 or a.shape[0] != a.shape[1]:
        raise ValueError(f"cov.shape = {a.shape}: expected (d,) or (d, d)")
    return a


def _check_n(n: int) -> int:
    if isinstance(n, bool) or int(n) != n or n < 1:
        raise ValueError(f"n = {n!r}: the number of context pairs must be an integer >= 1")
    return int(n)


def _check_sigma(sigma: float, name: str = "sigma") -> float:
    if not (math.isfinite(sigma) and sigma >= 0):
        raise ValueError(f"{name} = {sigma!r}: must be a finite number >= 0")
    return float(sigma)


def lsa_gamma_iso(*, d: int, n: int, sigma: float = 0.0) -> float:
    """γ with Γ* = γ I for Λ = I, w ~ N(0, I): γ = n / (n + 1 + d + σ²)  (eq. (4) at Λ = I)."""
    n = _check_n(n)
    s2 = _check_sigma(sigma) ** 2
    return n / (n + 1.0 + d + s2)


def lsa_gd_step_size(*, d: int, n: int, sigma: float = 0.0) -> float:
    """Step η = 1/(n + 1 + d + σ²) of the single GD step w₁ = η Σ y_i x_i (unnormalised loss
    (1/2) Σ (y_i − wᵀx_i)², from w = 0) that the isotropic LSA optimum computes (= γ / n)."""
    return lsa_gamma_iso(d=d, n=n, sigma=sigma) / _check_n(n)


def lsa_h_second_moment(
    *, ctx_cov: np.ndarray, n: int, sigma: float = 0.0, w_cov: np.ndarray | None = None
) -> np.ndarray:
    """E[h hᵀ], h = (1/n) Σ y_i x_i, for x_i ~ N(0, Λ_c), E[wwᵀ] = W₂, noise σ: eq. (2); (d, d).

    E[S W₂ S] = (1 + 1/n) Λ W₂ Λ + tr(W₂Λ)/n · Λ (Isserlis 1918: E[x xᵀ A x xᵀ] = 2ΛAΛ + tr(AΛ)Λ).
    """
    n = _check_n(n)
    lam = _as_cov(ctx_cov)
    d = lam.shape[0]
    w2 = np.eye(d) if w_cov is None else _as_cov(w_cov, d)
    w2 = (w2 + w2.T) / 2
    s2 = _check_sigma(sigma) ** 2
    return (1 + 1 / n) * lam @ w2 @ lam + (np.trace(w2 @ lam) / n + s2 / n) * lam


def lsa_optimal_gamma(
    *, cov: np.ndarray, n: int, sigma: float = 0.0, w_cov: np.ndarray | None = None
) -> np.ndarray:
    """Γ* minimising the population ICL loss (3) of one LSA layer (Λ_c = Λ_q = Λ); shape (d, d).

    Γ* = W₂ Λ E[hhᵀ]⁻¹; for W₂ = τ²I this is ((1 + 1/n)Λ + (trΛ/n + σ²/(nτ²)) I)⁻¹, which for σ = 0
    is Zhang, Frei & Bartlett 2024, Thm 4.1 (the LSA's global minimum, reached by gradient flow).
    ``cov``: Λ as (d,) diagonal or (d, d); ``w_cov``: E[wwᵀ] (default I).
    """
    lam = _as_cov(cov)
    d = lam.shape[0]
    w2 = np.eye(d) if w_cov is None else _as_cov(w_cov, d)
    h = lsa_h_second_moment(ctx_cov=lam, n=n, sigma=sigma, w_cov=w2)
    # Γ H = W₂ Λ  =>  Γ = W₂ Λ H⁻¹ (H symmetric positive definite)
    return np.linalg.solve(h, (w2 @ lam).T).T


def lsa_risk_of_gamma(
    *,
    gamma: np.ndarray,
    n: int,
    ctx_cov: np.ndarray,
    query_cov: np.ndarray | None = None,
    w_cov: np.ndarray | None = None,
    sigma: float = 0.0,
    query_sigma: float | None = None,
) -> float:
    """E(ŷ − y_q)² of the predictor ŷ = x_qᵀ Γ (1/n) Σ y_i x_i: eq. (3), not divided by d.

    ``gamma: (d, d)`` (any, need not be symmetric); ``ctx_cov`` Λ_c of the context inputs;
    ``query_cov`` Λ_q of the query (default Λ_c); ``w_cov`` E[wwᵀ] (default I); ``sigma`` noise on
    the context labels; ``query_sigma`` noise on y_q (default ``sigma``).  Gaussian inputs, the query
    independent of the context, w independent of all inputs.
    """
    g = np.asarray(gamma, dtype=np.float64)
    if g.ndim != 2 or g.shape[0] != g.shape[1]:
        raise ValueError(f"gamma.shape = {g.shape}: expected (d, d)")
    d = g.shape[0]
    lc = _as_cov(ctx_cov, d)
    lq = lc if query_cov is None else _as_cov(query_cov, d)
    w2 = np.eye(d) if w_cov is None else _as_cov(w_cov, d)
    sq = _check_sigma(sigma if query_sigma is None else query_sigma, "query_sigma")
    h = lsa_h_second_moment(ctx_cov=lc, n=n, sigma=sigma, w_cov=w2)
    value = np.trace(lq @ g @ h @ g.T) - 2 * np.trace(lq @ g @ lc @ w2) + np.trace(lq @ w2) + sq**2
    return float(value)


def lsa_optimal_risk(*, d: int, n: int, sigma: float = 0.0) -> float:
    """R* = σ² + d(1 + d + σ²)/(n + 1 + d + σ²): eq. (5), the risk of the isotropic LSA optimum.

    x ~ N(0, I_d), w ~ N(0, I_d), noise σ on the context labels and on y_q; not divided by d.
    """
    n = _check_n(n)
    s2 = _check_sigma(sigma) ** 2
    return s2 + d * (1.0 + d + s2) / (n + 1.0 + d + s2)


def lsa_covariate_scaling_risk(
    *, d: int, n: int, sigma: float = 0.0, c: float, gamma: float | None = None
) -> float:
    """Eq. (6): the risk when context and query inputs are scaled by c (x ~ N(0, c² I)).

    ``gamma``: the scalar of Γ = γ I; default the optimum γ = n/(n + 1 + d + σ²) trained at c = 1.
    R(c) = σ² + d c² (γ² c² a − 2γ c² + 1), a = (1 + 1/n) c² + (d c² + σ²)/n.  Derived from eq. (3)
    with Λ_c = Λ_q = c² I, W₂ = I; for σ = 0 it reduces to d c² (1 − γ c² (2 − c²) ) at γ optimal.
    """
    n = _check_n(n)
    if not (math.isfinite(c) and c > 0):
        raise ValueError(f"c = {c!r}: the covariate scale must be a finite number > 0")
    s2 = _check_sigma(sigma) ** 2
    g = lsa_gamma_iso(d=d, n=n, sigma=sigma) if gamma is None else float(gamma)
    a = (1 + 1 / n) * c**2 + (d * c**2 + s2) / n
    return s2 + d * c**2 * (g**2 * c**2 * a - 2 * g * c**2 + 1)


def lsa_orthogonal_query_risk(
    *, query_second_moment: np.ndarray, w_cov: np.ndarray | None = None, sigma: float = 0.0
) -> float:
    """Risk when the prediction is exactly 0 (Γ ∝ I and x_q ⊥ span{x_i}): tr(W₂ E[x_q x_qᵀ]) + σ².

    ``query_second_moment``: E[x_q x_qᵀ] as (d,) diagonal or (d, d); ``w_cov``: E[wwᵀ] (default I).
    """
    q = _as_cov(query_second_moment)
    w2 = np.eye(q.shape[0]) if w_cov is None else _as_cov(w_cov, q.shape[0])
    return float(np.trace(w2 @ q)) + _check_sigma(sigma) ** 2


def lsa_predict(
    gamma: np.ndarray, x_ctx: np.ndarray, y_ctx: np.ndarray, x_q: np.ndarray
) -> np.ndarray:
    """ŷ = x_qᵀ Γ (1/n) Σ_i y_i x_i, batched: ``x_ctx: (B, n, d)``, ``y_ctx: (B, n)``, ``x_q: (B, d)``
    -> ``(B,)`` (eq. (1)).  A numpy reference for the torch models."""
    n = _check_n(x_ctx.shape[1])
    h = np.einsum("bn,bnd->bd", y_ctx, x_ctx) / n
    return np.einsum("bd,de,be->b", x_q, np.asarray(gamma, dtype=np.float64), h)


# --------------------------------------------------------------------------- registered formulas


def _lsa_risk(*, d: int, n: int, sigma: float) -> TheoryValue:
    return TheoryValue(lsa_optimal_risk(d=d, n=n, sigma=sigma))


def _lsa_gamma(*, d: int, n: int, sigma: float) -> TheoryValue:
    return TheoryValue(lsa_gamma_iso(d=d, n=n, sigma=sigma))


def _lsa_cov_scale(*, d: int, n: int, sigma: float, c: float) -> TheoryValue:
    return TheoryValue(lsa_covariate_scaling_risk(d=d, n=n, sigma=sigma, c=c))


def _c_positive(p: dict) -> None:
    if not p["c"] > 0:
        raise ValueError(f"parameter 'c' = {p['c']!r} is out of range: must be > 0")


_D = Param("d", int, None, 1, None, "dimension of x and w")
_N = Param("n", int, None, 1, None, "number of context pairs (the LSA divides by n)")
_SIGMA = Param("sigma", float, 0.0, 0, None, "label noise σ (context labels and y_q)")

register_formula(
    "lsa-risk",
    _lsa_risk,
    params=(_D, _N, _SIGMA),
    source=_SOURCE,
    summary="E(ŷ − y_q)² of the single-layer LSA optimum, x ~ N(0, I), w ~ N(0, I) (not / d): "
    "σ² + d(1 + d + σ²)/(n + 1 + d + σ²)",
)
register_formula(
    "lsa-gamma",
    _lsa_gamma,
    params=(_D, _N, _SIGMA),
    source=_SOURCE,
    summary="γ of the LSA optimum Γ* = γ I for x ~ N(0, I), w ~ N(0, I): n/(n + 1 + d + σ²)",
)
register_formula(
    "lsa-covariate-scale-risk",
    _lsa_cov_scale,
    params=(_D, _N, _SIGMA, Param("c", float, None, 0, None, "scale of context and query x (> 0)")),
    source="derived from eq. (3) of fmtheory.theory.lsa (Isserlis' theorem); Zhang, Frei & "
    "Bartlett 2024 §4 (covariate shift)",
    summary="E(ŷ − y_q)² of the LSA optimum trained at x ~ N(0, I) when x ~ N(0, c² I) at test",
    check=_c_positive,
)
