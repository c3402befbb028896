"""Bayes-optimal in-context linear regression: the error an ideal learner makes from k examples.

Model (Raventós et al. 2023, "Pretraining task diversity and the emergence of non-Bayesian
in-context learning for regression", §2; Garg et al. 2022 §2)::

    w ~ N(0, τ² I_d)   (τ = prior_scale),   x ~ N(0, Σx),   y = <w, x> + ε,   ε ~ N(0, σ²).

A prompt holds k pairs ``X: (k, d)``, ``y: (k,)`` and one query ``x_q`` drawn like the others.  Σx
is diagonal with eigenvalues geometric from 1 to 1/cond rescaled to trace d (:func:`x_variances`;
the same Σx as the regression sampler in ``fmtheory.tasks.regression``); cond = 1 is the identity.

The Bayes predictor of y_q is the posterior mean <E[w | X, y], x_q>, and its risk is

    R(k) = E_X tr(Σx · Post(X)) + σ²,     Post(X) = (τ⁻² I + σ⁻² XᵀX)⁻¹        (σ > 0),

(Bishop 2006, *Pattern Recognition and Machine Learning*, §3.3.1-3.3.2, eqs. 3.53-3.54, 3.58-3.59).
For σ = 0, Post(X) = τ² · (projection onto the null space of X).  All risks here are of predicting
the noisy y_q and are NOT divided by d (figures that show the error per dimension divide
themselves).

Registered formulas: ``icl-bayes-risk`` (exact, expectation over X by Monte Carlo where no closed
form exists), ``icl-bayes-risk-limit`` (its proportional limit d, k → ∞, k/d → γ) and ``ols-risk``
(minimum-norm least squares, exact).  The ridge risk is in :mod:`fmtheory.theory.ridge_risk`.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from fmtheory.theory.registry import Param, TheoryValue, register_formula

__all__ = [
    "x_variances",
    "bayes_risk",
    "bayes_risk_curve",
    "marchenko_pastur_stieltjes",
    "bayes_risk_limit",
    "ols_risk",
    "ols_risk_curve",
]

# Largest number of float64 entries one Monte Carlo chunk may hold (~32 MB); draws are processed
# in chunks of this size so memory stays bounded for any (n_mc, k, d).  The chunking is a fixed
# function of (n_mc, k, d), so results stay a deterministic function of the seed.
_CHUNK_FLOATS = 4_000_000


def x_variances(*, d: int, cond: float = 1.0) -> np.ndarray:
    """Diagonal of Σx, shape ``(d,)``: geometric from 1 to 1/cond, rescaled to sum to d.

    Same convention as ``RegressionSpec.x_variances`` (reimplemented here: theory imports no other
    layer).  cond = 1 (or d = 1) gives ones.
    """
    if d < 1:
        raise ValueError(f"d = {d!r} is invalid: must be an integer >= 1")
    if not cond >= 1:
        raise ValueError(f"cond = {cond!r} is invalid: must be >= 1")
    if d == 1 or cond == 1.0:
        return np.ones(d)
    e = np.logspace(0.0, -math.log10(cond), d)
    return e * d / e.sum()


def _chunks(n_mc: int, per_draw: int) -> list[int]:
    """Sizes of the chunks the n_mc draws are split into (each holds <= _CHUNK_FLOATS floats)."""
    size = max(1, _CHUNK_FLOATS // max(1, per_draw))
    return [min(size, n_mc - s) for s in range(0, n_mc, size)]


def _wishart(rng: np.random.Generator, n: int, m: int, dof: int) -> np.ndarray:
    """``n`` draws of W ~ Wishart_m(dof, I), shape ``(n, m, m)``, ``dof >= m``.

    Bartlett decomposition (Bartlett 1933; Anderson 2003, *An Introduction to Multivariate
    Statistical Analysis*, Thm 7.2.1): W = L Lᵀ, L lower triangular, L_ii = sqrt(χ²_{dof-i}), L_ij ~
    N(0, 1) below the diagonal.  Costs m(m+1)/2 draws instead of the dof·m of sampling Z and forming
    ZᵀZ.
    """
    rows, cols = np.tril_indices(m, k=-1)
    low = np.zeros((n, m * m))
    low[:, rows * m + cols] = rng.standard_normal((n, rows.shape[0]))
    low[:, np.arange(m) * (m + 1)] = np.sqrt(rng.chisquare(dof - np.arange(m), size=(n, m)))
    low = low.reshape(n, m, m)
    return low @ low.transpose(0, 2, 1)


def _laguerre_tridiag(
    rng: np.random.Generator, *, n_mc: int, k: int, d: int
) -> tuple[np.ndarray, np.ndarray]:
    """Tridiagonal T with the non-zero spectrum of XᵀX, X: (k, d) with N(0, 1) entries; n_mc draws.

    Returns (diagonal ``(n_mc, m)``, sub-diagonal ``(n_mc, m - 1)``), m = min(k, d); the other d - m
    eigenvalues of XᵀX are zero.  The non-zero spectrum of XᵀX is that of W ~ Wishart_m(max(k, d),
    I), whose eigenvalues have the law of those of T = B Bᵀ with B lower bidiagonal, B_ii =
    χ_{dof-i}, B_{i,i-1} = χ_{m-i} (Dumitriu & Edelman 2002, "Matrix models for beta ensembles", J.
    Math. Phys. 43, Thm 3.4, β = 1; Householder bidiagonalisation of the Gaussian matrix).  O(n_mc ·
    m) draws. Shared by the Bayes and ridge risks so that equal seeds give common random numbers.
    """
    m, dof = min(k, d), max(k, d)
    alpha = np.sqrt(rng.chisquare(dof - np.arange(m), size=(n_mc, m)))
    beta = np.sqrt(rng.chisquare(m - np.arange(1, m), size=(n_mc, m - 1)))
    diag = alpha**2
    diag[:, 1:] += beta**2
    return diag, beta * alpha[:, :-1]


def _resolvent_traces(
    diag: np.ndarray, sub: np.ndarray, lam: float, size: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """(tr R, tr R²), R = (T + λI)⁻¹, for batched symmetric tridiagonal T ≻ -λI; each ``(batch,)``.

    ``diag: (batch, m)``, ``sub: (batch, m - 1)``.  ``size: (batch,)`` (optional): row b is a
    smaller matrix of size size[b] padded to m with a decoupled block (sub-diagonal 0 at the seam);
    the traces then sum over its first size[b] entries only.

    O(m) per matrix: with the top-down pivots p_i = t_ii + λ - t_{i,i-1}² / p_{i-1} and the
    bottom-up pivots q_i = t_ii + λ - t_{i+1,i}² / q_{i+1} of the LDLᵀ / UDUᵀ factorisations, 1 /
    R_ii = p_i + q_i - (t_ii + λ), the Schur complement of entry i (see Meurant 1992, "A review on
    the inverse of symmetric tridiagonal and block tridiagonal matrices", SIAM J. Matrix Anal. Appl.
    13, §3); tr R² = -d/dλ tr R, with the pivots differentiated along the same recursions.
    """
    m = diag.shape[1]
    t = np.ascontiguousarray(diag.T) + lam  # (m, batch): one contiguous row per index i
    sq = np.ascontiguousarray((sub**2).T)  # (m - 1, batch)
    p, dp = np.empty_like(t), np.ones_like(t)
    q, dq = np.empty_like(t), np.ones_like(t)
    p[0], q[m - 1] = t[0], t[m - 1]
    for i in range(1, m):
        r = sq[i - 1] / p[i - 1]
        p[i] = t[i] - r
        dp[i] += r * dp[i - 1] / p[i - 1]
    for i in range(m - 2, -1, -1):
        r = sq[i] / q[i + 1]
        q[i] = t[i] - r
        dq[i] += r * dq[i + 1] / q[i + 1]
    s = p + q - t  # 1 / R_ii
    ds = dp + dq - 1.0
    if size is not None:
        keep = np.arange(m)[:, None] < size
        s, ds = np.where(keep, s, np.inf), np.where(keep, ds, 0.0)
    return (1.0 / s).sum(axis=0), (ds / s**2).sum(axis=0)


def _iso_traces(
    *, seed: int, n_mc: int, ks: list[int], d: int, lam: float
) -> tuple[np.ndarray, np.ndarray]:
    """(tr R, tr R²) over the non-zero spectrum of XᵀX, R = (XᵀX + λI)⁻¹, for each k in ``ks``.

    Shapes ``(len(ks), n_mc)``.  The draws for each k come from a fresh generator seeded with
    ``seed`` (:func:`_laguerre_tridiag`), so a k gets the same numbers alone or within a list, and
    the Bayes and ridge risks share them (common random numbers).  All k >= 1.
    """
    m_max = min(max(ks), d)
    group = max(1, _CHUNK_FLOATS // (8 * n_mc * m_max))  # ks handled together, bounded memory
    out_r, out_r2 = [], []
    for g in range(0, len(ks), group):
        part = ks[g : g + group]
        diag = np.ones((len(part), n_mc, m_max))
        sub = np.zeros((len(part), n_mc, m_max - 1))
        for i, k in enumerate(part):
            a, b = _laguerre_tridiag(np.random.default_rng(seed), n_mc=n_mc, k=k, d=d)
            diag[i, :, : a.shape[1]], sub[i, :, : b.shape[1]] = a, b
        size = np.repeat([min(k, d) for k in part], n_mc)
        rows = len(part) * n_mc
        r, r2 = _resolvent_traces(diag.reshape(rows, -1), sub.reshape(rows, m_max - 1), lam, size)
        out_r.append(r.reshape(len(part), n_mc))
        out_r2.append(r2.reshape(len(part), n_mc))
    return np.concatenate(out_r), np.concatenate(out_r2)


def _aniso_post_trace(
    rng: np.random.Generator, *, n_mc: int, k: int, var: np.ndarray, sigma: float, tau: float
) -> np.ndarray:
    """tr(Σx · Post(X)) for ``n_mc`` designs X = Z Σx^{1/2}, Z: (k, d) standard normal; ``(n_mc,)``.

    k >= d, σ > 0: with W = ZᵀZ ~ Wishart_d(k, I), tr(Σx Post) = tr(A⁻¹), A = τ⁻² Σx⁻¹ + σ⁻² W
    (substitute XᵀX = Σx^{1/2} W Σx^{1/2} into Post).  k < d (any σ >= 0), Woodbury:
    tr(Σx Post) = τ² tr Σx - τ⁴ tr[(σ² I_k + τ² X Xᵀ)⁻¹ X Σx Xᵀ].
    """
    d = var.shape[0]
    out = []
    if k >= d:
        inv_prior = np.diag(1.0 / (tau**2 * var))
        for c in _chunks(n_mc, 2 * d * d):
            a = inv_prior + _wishart(rng, c, d, k) / sigma**2
            out.append((1.0 / np.linalg.eigvalsh(a)).sum(axis=1))
    else:
        for c in _chunks(n_mc, k * d + 2 * k * k):
            z = rng.standard_normal((c, k, d))
            gram = (z * var) @ z.transpose(0, 2, 1)  # X Xᵀ = Z Σx Zᵀ, (c, k, k)
            cross = (z * var**2) @ z.transpose(0, 2, 1)  # X Σx Xᵀ = Z Σx² Zᵀ
            lhs = sigma**2 * np.eye(k) + tau**2 * gram
            sub = np.trace(np.linalg.solve(lhs, cross), axis1=1, axis2=2)
            out.append(tau**2 * var.sum() - tau**4 * sub)
    return np.concatenate(out)


def _mean_and_stderr(values: np.ndarray) -> tuple[float, float]:
    return float(values.mean()), float(values.std(ddof=1) / math.sqrt(values.shape[0]))


def _positive(*names: str):  # a registry `check`: the named parameters must be > 0
    def check(p: dict[str, Any]) -> None:
        for n in names:
            if not p[n] > 0:
                raise ValueError(f"parameter '{n}' = {p[n]!r} is out of range: must be > 0")

    return check


_SOURCE_BAYES = (
    "Bishop 2006, PRML §3.3.1-3.3.2 eqs. 3.53-3.59 (posterior and predictive distribution of "
    "Bayesian linear regression); Raventós et al. 2023 §2 (the ICL regression task and its Bayes predictor)"
)

_BAYES_PARAMS = (
    Param("d", int, None, 1, None, "dimension of x and w"),
    Param("k", int, None, 0, None, "number of (x, y) pairs in the context"),
    Param("sigma", float, None, 0, None, "noise standard deviation σ"),
    Param("prior_scale", float, 1.0, 0, None, "τ: w ~ N(0, τ² I) (must be > 0)"),
    Param("cond", float, 1.0, 1, None, "condition number of the diagonal Σx (trace d)"),
    # isotropic memory ~ 64 · n_mc · min(k, d) bytes per context length: n_mc is capped
    Param("n_mc", int, 2000, 2, 100_000, "Monte Carlo designs X for E_X"),
    Param("seed", int, 0, 0, None, "seed of the Monte Carlo designs"),
)


def bayes_risk(
    *,
    d: int,
    k: int,
    sigma: float,
    prior_scale: float = 1.0,
    cond: float = 1.0,
    n_mc: int = 2000,
    seed: int = 0,
) -> TheoryValue:
    """Bayes risk E(y_q - E[y_q | X, y, x_q])² of in-context regression from k pairs (not / d).

    R = E_X tr(Σx Post(X)) + σ², Post(X) = (τ⁻² I + σ⁻² XᵀX)⁻¹ (Bishop 2006 eqs. 3.53-3.54, 3.59;
    the ICL task of Raventós et al. 2023 §2).  Exact closed forms, ``stderr=None``: k = 0 gives τ² d
    + σ² (tr Σx = d); σ = 0 gives τ² E tr(Σx P_null(X)), which is τ² (d - k)⁺ for isotropic x and 0
    for k >= d.  Otherwise the expectation over the design X is a Monte Carlo mean over ``n_mc``
    designs, with its standard error.  Isotropic x: tr Post = τ² (d - m) + σ² tr(T + λI)⁻¹, λ =
    σ²/τ², with T the m × m tridiagonal Laguerre model of the non-zero spectrum of XᵀX, m = min(k,
    d) (Dumitriu & Edelman 2002), O(n_mc · m).  Anisotropic x: batched solves of size min(k, d),
    O(n_mc · min(k,d)³).
    """
    p = _BAYES.resolve(
        dict(d=d, k=k, sigma=sigma, prior_scale=prior_scale, cond=cond, n_mc=n_mc, seed=seed)
    )
    d, k, sigma, tau, cond = p["d"], p["k"], p["sigma"], p["prior_scale"], p["cond"]
    if k == 0:
        return TheoryValue(tau**2 * d + sigma**2, None)
    iso = cond == 1.0 or d == 1
    if sigma == 0 and (iso or k >= d):
        return TheoryValue(tau**2 * max(d - k, 0), None)
    if iso:  # tr Post = τ² (d - m) + σ² tr (T + λI)⁻¹ over the m non-zero eigenvalues, λ = σ²/τ²
        tr_r, _ = _iso_traces(seed=p["seed"], n_mc=p["n_mc"], ks=[k], d=d, lam=sigma**2 / tau**2)
        tr = tau**2 * (d - min(k, d)) + sigma**2 * tr_r[0]
    else:
        var = x_variances(d=d, cond=cond)
        rng = np.random.default_rng(p["seed"])
        tr = _aniso_post_trace(rng, n_mc=p["n_mc"], k=k, var=var, sigma=sigma, tau=tau)
    mean, se = _mean_and_stderr(tr)
    return TheoryValue(mean + sigma**2, se)


_BAYES = register_formula(
    "icl-bayes-risk",
    bayes_risk,
    params=_BAYES_PARAMS,
    source=_SOURCE_BAYES,
    summary="Bayes risk E(y_q - ŷ_Bayes)² from k in-context pairs, x ~ N(0, Σx), w ~ N(0, τ²I) "
    "(not divided by d)",
    check=_positive("prior_scale"),
)


def bayes_risk_curve(
    *,
    d: int,
    n: int,
    sigma: float,
    prior_scale: float = 1.0,
    cond: float = 1.0,
    n_mc: int = 2000,
    seed: int = 0,
) -> np.ndarray:
    """Bayes risk at every context length k = 0, ..., n-1, shape ``(n,)`` (not divided by d).

    Isotropic x: entry k equals ``bayes_risk(d=d, k=k, ..., seed=seed).value`` (the designs for each
    k are drawn afresh from the same seed; O(n · n_mc · d), batched over k).  Anisotropic x (cond >
    1): each of the ``n_mc`` Monte Carlo prompts is ONE sequence of n - 1 rows and entry k uses its
    first k rows, so the same random designs are reused across k (errors correlated across k; each
    entry is an unbiased estimate of :func:`bayes_risk`).  The posterior covariance is then updated
    one row at a time by Sherman-Morrison, the recursive least-squares form of Bishop 2006 eqs.
    3.50-3.51: Post ← Post - (Post x)(Post x)ᵀ / (σ² + xᵀ Post x), batched over prompts, O(n · n_mc
    · d²).  With σ = 0 the same update projects onto the null space of the rows seen so far, and the
    risk is exactly 0 from k = d on.  Isotropic x with σ = 0 returns the closed form τ² (d - k)⁺.
    """
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"n = {n!r} is invalid: must be an integer >= 1")
    p = _BAYES.resolve(
        dict(d=d, k=n - 1, sigma=sigma, prior_scale=prior_scale, cond=cond, n_mc=n_mc, seed=seed)
    )
    d, sigma, tau, cond = p["d"], p["sigma"], p["prior_scale"], p["cond"]
    ks = np.arange(n)
    if cond == 1.0 or d == 1:
        if sigma == 0:
            return tau**2 * np.maximum(d - ks, 0).astype(float)
        out = np.full(n, tau**2 * d + sigma**2)  # k = 0
        if n > 1:
            lam = sigma**2 / tau**2
            tr_r, _ = _iso_traces(seed=p["seed"], n_mc=p["n_mc"], ks=list(ks[1:]), d=d, lam=lam)
            out[1:] = tau**2 * np.maximum(d - ks[1:], 0) + sigma**2 * tr_r.mean(axis=1) + sigma**2
        return out
    var = x_variances(d=d, cond=cond)
    rng = np.random.default_rng(p["seed"])
    total = np.zeros(n)  # sum over prompts of tr(Σx Post_k)
    for c in _chunks(p["n_mc"], 3 * d * d + n * d):
        x = rng.standard_normal((c, n - 1, d)) * np.sqrt(var)  # (c, n-1, d)
        post = np.broadcast_to(tau**2 * np.eye(d), (c, d, d)).copy()  # (c, d, d)
        risk = np.full(c, tau**2 * var.sum())  # tr(Σx Post), (c,)
        total[0] += risk.sum()
        for j in range(min(n - 1, d) if sigma == 0 else n - 1):  # σ = 0: risk 0 from k = d on
            v = (post @ x[:, j, :, None])[..., 0]  # Post x, (c, d)
            v /= np.sqrt(sigma**2 + np.einsum("bi,bi->b", x[:, j], v))[:, None]
            post -= v[:, :, None] * v[:, None, :]
            risk -= v**2 @ var
            total[j + 1] += risk.sum()
    return total / p["n_mc"] + sigma**2


def marchenko_pastur_stieltjes(*, mu: float, ratio: float) -> float:
    """Stieltjes transform m(-μ) = ∫ dF(t) / (t + μ) of the Marchenko-Pastur law, μ > 0.

    F is the limit spectrum of S = XᵀX / k for X: (k, d) with N(0, 1) entries and d / k → ``ratio``
    = c (mass 1 - 1/c at 0 when c > 1).  m solves c z m² - (1 - c - z) m + 1 = 0 at z = -μ
    (Marchenko & Pastur 1967; Bai & Silverstein 2010, *Spectral Analysis of Large Dimensional Random
    Matrices*, eq. 3.1.1 / Lemma 3.11); the positive root is
    m = [sqrt((1 - c + μ)² + 4cμ) - (1 - c + μ)] / (2cμ), evaluated without cancellation.
    """
    if not mu > 0:
        raise ValueError(f"mu = {mu!r} is invalid: must be > 0")
    if not ratio > 0:
        raise ValueError(f"ratio = {ratio!r} is invalid: must be > 0")
    b = 1.0 - ratio + mu
    root = math.sqrt(b * b + 4.0 * ratio * mu)
    return 2.0 / (root + b) if b > 0 else (root - b) / (2.0 * ratio * mu)


_SOURCE_LIMIT = (
    "Dobriban & Wager 2018, 'High-dimensional asymptotics of prediction: ridge regression and "
    "classification', Ann. Statist., Thm 2.1 (limiting risk of ridge, optimal at "
    "λ* = γσ²/α², where ridge is the posterior mean); Dicker 2016, 'Ridge regression and "
    "asymptotic minimax estimation over spheres of growing dimension', Bernoulli; "
    "Marchenko & Pastur 1967"
)


def bayes_risk_limit(*, gamma: float, sigma: float, prior_scale: float = 1.0) -> TheoryValue:
    """Proportional limit of the Bayes risk per dimension, isotropic x, d, k → ∞ with k / d → γ.

    Scaling (stated precisely): τ² per coordinate of w is fixed and the noise variance per sample is
    σ² · d, so the noise-to-signal ratio σ² d / Var<w, x> = σ² / τ² stays fixed as d grows.  Then

        value = lim_{d→∞} bayes_risk(d=d, k=γd, sigma=σ·√d, prior_scale=τ) / d
              = lim_{d→∞} bayes_risk(d=d, k=γd, sigma=σ, prior_scale=τ/√d)     (risk is
              2-homogeneous) = σ² + (σ² / γ) · m_c(-μ),   c = 1/γ,   μ = σ² / (τ² γ),

    with m_c the Marchenko-Pastur Stieltjes transform (:func:`marchenko_pastur_stieltjes`).
    Derivation: Post = s²(XᵀX + λI)⁻¹ with s² = σ²d and λ = s²/τ², so tr(Post)/d = σ² · (1/k)
    tr(XᵀX/k + μ I)⁻¹ → σ² c m_c(-μ); this is Dobriban & Wager's σ²γ m(-λ*) with their γ = d/k = c,
    λ* = cσ²/τ². (With σ fixed and not scaled, bayes_risk/d → τ²(1 - γ)⁺ only: the noise term
    vanishes.) σ = 0 gives τ² (1 - γ)⁺ exactly; as γ → ∞, value → σ² + σ²/(γ - 1) ~ OLS.  Finite-d
    corrections are O(1/d) (the real-Gaussian mean term of the CLT for linear spectral statistics,
    Bai & Silverstein 2004).  Exact, ``stderr=None``.
    """
    p = _LIMIT.resolve(dict(gamma=gamma, sigma=sigma, prior_scale=prior_scale))
    g, s, tau = p["gamma"], p["sigma"], p["prior_scale"]
    if s == 0:
        return TheoryValue(tau**2 * max(1.0 - g, 0.0), None)
    m = marchenko_pastur_stieltjes(mu=s**2 / (tau**2 * g), ratio=1.0 / g)
    return TheoryValue(s**2 + s**2 / g * m, None)


_LIMIT = register_formula(
    "icl-bayes-risk-limit",
    bayes_risk_limit,
    params=(
        Param("gamma", float, None, 0, None, "k / d (must be > 0)"),
        Param("sigma", float, None, 0, None, "noise std per √d: noise variance per sample is σ² d"),
        Param("prior_scale", float, 1.0, 0, None, "τ: w ~ N(0, τ² I) (must be > 0)"),
    ),
    source=_SOURCE_LIMIT,
    summary="lim bayes_risk(d, γd, σ√d, τ) / d as d → ∞ (isotropic x); Marchenko-Pastur",
    check=_positive("gamma", "prior_scale"),
)


# --- minimum-norm least squares (isotropic x) ----------------------------------------------------


def _ols_value(d: int, k: int, sigma: float, tau: float) -> float:
    if k == 0:
        return tau**2 * d + sigma**2
    if sigma == 0:
        return tau**2 * max(d - k, 0)
    if k <= d - 2:
        return tau**2 * (d - k) + sigma**2 * k / (d - k - 1) + sigma**2
    if k >= d + 2:
        return sigma**2 * d / (k - d - 1) + sigma**2
    return math.inf


def ols_risk(*, d: int, k: int, sigma: float, prior_scale: float = 1.0) -> TheoryValue:
    """Prediction risk of minimum-norm least squares ŵ = X⁺y, isotropic x (exact, not / d).

    Belkin, Hsu & Xu 2020, "Two models of double descent for weak features", SIAM J. Math. Data
    Sci., Thm 1 (and Hastie, Montanari, Rosset & Tibshirani 2022, Ann. Statist., §2), averaged over
    w ~ N(0, τ² I) so that E‖w‖² = τ² d:

        E‖ŵ - w‖² = τ² d (1 - k/d) + σ² k / (d - k - 1)    for k <= d - 2,
        E‖ŵ - w‖² = σ² d / (k - d - 1)                       for k >= d + 2,

    and the prediction risk is E‖ŵ - w‖² + σ².  The variance terms are the means of inverse Wishart
    matrices, E tr W⁻¹ = m / (n - m - 1) for W ~ Wishart_m(n, I).  For σ > 0 and k ∈ {d-1, d, d+1}
    that mean is infinite and the value is ``inf`` (the double-descent peak at k = d).  k = 0 gives
    τ² d + σ²; σ = 0 gives τ² (d - k)⁺ for every k.
    """
    p = _OLS.resolve(dict(d=d, k=k, sigma=sigma, prior_scale=prior_scale))
    return TheoryValue(_ols_value(p["d"], p["k"], p["sigma"], p["prior_scale"]), None)


_OLS = register_formula(
    "ols-risk",
    ols_risk,
    params=(*_BAYES_PARAMS[:4],),
    source="Belkin, Hsu & Xu 2020, 'Two models of double descent for weak features', Thm 1; "
    "Hastie, Montanari, Rosset & Tibshirani 2022, 'Surprises in high-dimensional ridgeless least "
    "squares interpolation', §2",
    summary="prediction risk E(<X⁺y, x_q> - y_q)² of min-norm least squares, isotropic x "
    "(not divided by d; inf at k ∈ {d-1, d, d+1} when σ > 0)",
    check=_positive("prior_scale"),
)


def ols_risk_curve(*, d: int, n: int, sigma: float, prior_scale: float = 1.0) -> np.ndarray:
    """:func:`ols_risk` at every context length k = 0, ..., n-1, shape ``(n,)`` (inf at peak)."""
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"n = {n!r} is invalid: must be an integer >= 1")
    p = _OLS.resolve(dict(d=d, k=n - 1, sigma=sigma, prior_scale=prior_scale))
    return np.array([_ols_value(p["d"], k, p["sigma"], p["prior_scale"]) for k in range(n)])
