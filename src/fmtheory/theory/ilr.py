"""Inverse linear regression with a low-rank cross-task prior: what the ideal learner can reach.

Model (Lu & Yu 2025, "Transformer learns the cross-task prior and regularization for in-context
learning", arXiv:2505.12138, §2: inverse linear regression, ILR)::

    w = w0 + U v,   U: (d, r) orthonormal (shared by all tasks),   v ~ N(0, Λ),   Λ = diag(λ_1..λ_r),
    x ~ N(0, Σx),   y = <w, x> + ε,   ε ~ N(0, σ²).

A context holds n pairs ``X: (n, d)``, ``Y: (n,)``; the *inverse* target is w itself, the *forward*
target is y at a fresh query x.  Σx is diagonal with eigenvalues geometric from 1 to 1/cond, rescaled
to trace d (:func:`~fmtheory.theory.linear_regression.x_variances`, the convention of every sampler).

Everything the ideal (oracle) learner does happens in the r-dimensional coordinates v: with
``Z = X U: (n, r)`` and ``G = Zᵀ Z`` the posterior of v is Gaussian with covariance

    Post(X) = (Λ⁻¹ + σ⁻² G)⁻¹                          (Bishop 2006, PRML eqs. 3.50-3.51),

and ``w - ŵ_oracle = U (v - E[v | X, Y])``, so the oracle's error is

    MMSE(n) = E‖ŵ - w‖² = E_X tr Post(X),       forward risk = E_X tr(Σx U Post Uᵀ) + σ².

The functions below are this expectation (:func:`oracle_mse`, Monte Carlo over X with its standard
error), its high-SNR approximation (:func:`high_snr_mse`), the floor that no estimator beats when
r > n (:func:`floor_mse`), the conditional bound (:func:`conditional_bound`), the mean posterior
covariance used by the learned-prior check (:func:`expected_posterior_cov`), the error of ridge
regression under this prior (:func:`ridge_mse`, :func:`best_ridge_mse`) and the spectral-gap rank
rule (:func:`spectral_gap_rank`).  None of the values is divided by d.

Registered formulas: ``ilr-oracle-mse``, ``ilr-high-snr-mse``, ``ilr-floor``,
``ilr-conditional-bound``.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np

from fmtheory.theory.linear_regression import _iso_traces, _positive, _wishart, x_variances
from fmtheory.theory.registry import Param, TheoryValue, register_formula

__all__ = [
    "haar_basis",
    "oracle_mse",
    "oracle_forward_risk",
    "expected_posterior_cov",
    "conditional_mse",
    "conditional_bound",
    "min_gram_eigenvalue",
    "high_snr_mse",
    "floor_mse",
    "relative_floor",
    "spectral_gap_rank",
    "ridge_mse",
    "best_ridge_mse",
    "RidgeValue",
    "SOURCE",
]

SOURCE = "Lu & Yu 2025, arXiv:2505.12138 (inverse linear regression, low-rank task prior)"

# float64 entries per Monte Carlo chunk (~16 MB), as in linear_regression: memory stays bounded
# and the chunking is a fixed function of the sizes, so results are a function of the seed.
_CHUNK_FLOATS = 2_000_000


# ----------------------------------------------------------------------------- validation


def _as_spectrum(spectrum: Any, name: str = "spectrum") -> np.ndarray:
    lam = np.atleast_1d(np.asarray(spectrum, dtype=float))
    if lam.ndim != 1 or lam.shape[0] < 1:
        raise ValueError(f"{name} = {spectrum!r}: expected r >= 1 prior variances")
    if not (np.all(np.isfinite(lam)) and np.all(lam > 0)):
        raise ValueError(f"{name} = {spectrum!r}: every prior variance must be finite and > 0")
    return lam


def _check_int(name: str, value: Any, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise ValueError(f"{name} = {value!r} is invalid: must be an integer >= {low}")
    return int(value)


def _check_sigma(sigma: Any) -> float:
    s = float(sigma)
    if not (math.isfinite(s) and s >= 0):
        raise ValueError(f"sigma = {sigma!r} is invalid: must be a finite number >= 0")
    return s


def _check_basis(basis: Any, d: int | None, r: int) -> np.ndarray:
    u = np.asarray(basis, dtype=float)
    if u.ndim != 2 or u.shape[1] != r or (d is not None and u.shape[0] != d):
        raise ValueError(f"basis.shape = {u.shape}: expected (d, r = {r})")
    if not np.allclose(u.T @ u, np.eye(r), atol=1e-6):
        raise ValueError("basis: columns must be orthonormal (Uᵀ U = I)")
    return u


def _x_var(x_var: Any, d: int) -> np.ndarray:
    v = np.ones(d) if x_var is None else np.asarray(x_var, dtype=float)
    if v.shape != (d,) or not (np.all(np.isfinite(v)) and np.all(v > 0)):
        raise ValueError(f"x_var = {x_var!r}: expected {d} positive variances (diagonal of Σx)")
    return v


def _infer_dim(d: int | None, r: int, x_var: Any, basis: Any) -> int:
    """d from ``d``, else from ``basis`` or ``x_var``, else r (isotropic x: U does not matter)."""
    if d is not None:
        return _check_int("d", d, 1)
    if basis is not None:
        return int(np.asarray(basis).shape[0])
    if x_var is not None:
        return int(np.asarray(x_var).shape[0])
    return r


@contextmanager
def _one_blas_thread() -> Iterator[None]:
    """Run batched small-matrix LAPACK on one thread.

    numpy loops over the matrices of a batch, one LAPACK call each; a threaded BLAS gains nothing
    there and, on a shared machine, spin-waiting threads made a batch of 1000 eigh(50×50) 25×
    slower (measured: 42 s vs 1.6 s).  threadpoolctl ships with scikit-learn; without it, no-op.
    """
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover
        yield
        return
    with threadpool_limits(limits=1, user_api="blas"):
        yield


def _mean_se(values: np.ndarray) -> tuple[float, float]:
    return float(values.mean()), float(values.std(ddof=1) / math.sqrt(values.shape[0]))


def haar_basis(rng: np.random.Generator, d: int, r: int, size: int | None = None) -> np.ndarray:
    """A uniformly random (Haar) orthonormal basis ``(d, r)`` (``(size, d, r)`` if ``size``).

    QR of a Gaussian matrix with the signs of diag(R) made positive (Mezzadri 2007, "How to generate
    random matrices from the classical compact groups", Notices AMS 54, §5).
    """
    shape = (d, r) if size is None else (size, d, r)
    q, rr = np.linalg.qr(rng.standard_normal(shape))
    sign = np.sign(np.diagonal(rr, axis1=-2, axis2=-1))
    sign[sign == 0] = 1.0
    return q * sign[..., None, :]


# ----------------------------------------------------------------------------- the posterior


def _chunk_sizes(n_mc: int, per_draw: int) -> list[int]:
    size = max(1, _CHUNK_FLOATS // max(1, per_draw))
    return [min(size, n_mc - s) for s in range(0, n_mc, size)]


def _posterior_draws(
    rng: np.random.Generator,
    *,
    n: int,
    sigma: float,
    lam: np.ndarray,
    x_var: np.ndarray,
    basis: np.ndarray | None,
    n_mc: int,
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Chunks of (Post: (c, r, r), S: (c, r, r)) for ``n_mc`` designs X: (n, d), rows N(0, Σx).

    ``S = Uᵀ Σx U`` is the covariance of the rows of Z = X U; ``basis=None`` draws a Haar U per
    design.  n >= r and σ > 0: G = Zᵀ Z = L W Lᵀ with L Lᵀ = S, W ~ Wishart_r(n, I) by Bartlett's
    decomposition (O(r²) draws, whatever n); Post = (Λ⁻¹ + σ⁻² G)⁻¹.  n < r (any σ >= 0): Z is
    drawn and Woodbury gives Post = Λ - Λ Zᵀ (σ² I_n + Z Λ Zᵀ)⁻¹ Z Λ (σ = 0: the projection of
    Λ^{1/2} off the row space of Z Λ^{1/2}).  n >= r with σ = 0: Post = 0 (Z has full column rank
    almost surely).
    """
    with _one_blas_thread():
        yield from _posterior_chunks(rng, n=n, sigma=sigma, lam=lam, x_var=x_var, basis=basis,
                                     n_mc=n_mc)  # fmt: skip


def _posterior_chunks(
    rng: np.random.Generator,
    *,
    n: int,
    sigma: float,
    lam: np.ndarray,
    x_var: np.ndarray,
    basis: np.ndarray | None,
    n_mc: int,
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    r, d = lam.shape[0], x_var.shape[0]
    for c in _chunk_sizes(n_mc, 4 * r * r + d * r + n * r):
        u = haar_basis(rng, d, r, size=c) if basis is None else np.broadcast_to(basis, (c, d, r))
        s = (u * x_var[:, None]).transpose(0, 2, 1) @ u  # Uᵀ Σx U, (c, r, r)
        chol = np.linalg.cholesky(s)
        if n >= r:
            if sigma == 0:
                yield np.zeros((c, r, r)), s
                continue
            w = _wishart(rng, c, r, n)
            g = chol @ w @ chol.transpose(0, 2, 1)
            a = g / sigma**2
            a[:, np.arange(r), np.arange(r)] += 1.0 / lam
            yield np.linalg.inv(a), s
        else:
            z = rng.standard_normal((c, n, r)) @ chol.transpose(0, 2, 1)  # rows ~ N(0, S)
            zl = z * lam  # Z Λ, (c, n, r)
            k = zl @ z.transpose(0, 2, 1)  # Z Λ Zᵀ, (c, n, n)
            k[:, np.arange(n), np.arange(n)] += sigma**2
            post = np.diag(lam) - zl.transpose(0, 2, 1) @ np.linalg.solve(k, zl)
            yield (post + post.transpose(0, 2, 1)) / 2, s


def _iso_constant(lam: np.ndarray, x_var: np.ndarray) -> bool:
    return bool(np.all(lam == lam[0]) and np.all(x_var == x_var[0]))


def oracle_mse(
    *,
    n: int,
    sigma: float,
    spectrum: Any,
    x_var: Any = None,
    basis: Any = None,
    d: int | None = None,
    n_mc: int = 2000,
    seed: int = 0,
) -> TheoryValue:
    """Oracle (Bayes) error E‖ŵ - w‖² = E_X tr (Λ⁻¹ + σ⁻² Uᵀ Xᵀ X U)⁻¹ from n pairs (not / d).

    ``spectrum``: the prior variances λ_1..λ_r of v (a float broadcasts to r = 1: pass an array).
    ``x_var``: diagonal of Σx, shape (d,) (None: identity, then ``d`` is needed only to size U).
    ``basis``: U, (d, r) orthonormal; None averages over a Haar-random U per design (the prior
    of the pretraining run is random; with isotropic x the value does not depend on U).

    Lu & Yu 2025 (oracle Bayes estimator of ILR); Bishop 2006 eqs. 3.50-3.51 (Gaussian posterior).
    Exact cases (``stderr=None``): σ = 0 and n >= r gives 0; isotropic x with Λ = λI and σ = 0
    gives λ (r - n)⁺.  Isotropic x = c·I with Λ = λI: Post = (σ²/c)(W + μI)⁻¹ over the n∧r
    non-zero eigenvalues of W ~ Wishart_r(n, I) (μ = σ²/(cλ)) plus λ per null direction, from
    the tridiagonal Laguerre model (Dumitriu & Edelman 2002), O(n_mc·r).  Otherwise
    :func:`_posterior_draws`.
    """
    lam = _as_spectrum(spectrum)
    r = lam.shape[0]
    n = _check_int("n", n, 0)
    sigma = _check_sigma(sigma)
    n_mc = _check_int("n_mc", n_mc, 2)
    d = _infer_dim(d, r, x_var, basis)
    if r > d:
        raise ValueError(f"r = {r} is invalid: the rank must be <= d = {d}")
    v = _x_var(x_var, d)
    u = None if basis is None else _check_basis(basis, d, r)
    if u is None and r == d and bool(np.all(lam == lam[0])):
        u = np.eye(d)  # tr (λ⁻¹I + σ⁻²UᵀGU)⁻¹ is the same for every orthogonal U: no Haar draw
    if n == 0:
        return TheoryValue(float(lam.sum()), None)
    if sigma == 0 and n >= r:
        return TheoryValue(0.0, None)
    if _iso_constant(lam, v):
        c, lam0 = float(v[0]), float(lam[0])
        if sigma == 0:
            return TheoryValue(lam0 * (r - n), None)
        tr, _ = _iso_traces(seed=seed, n_mc=n_mc, ks=[n], d=r, lam=sigma**2 / (c * lam0))
        vals = lam0 * (r - min(n, r)) + sigma**2 / c * tr[0]
        return TheoryValue(*_mean_se(vals))
    rng = np.random.default_rng(seed)
    vals = np.concatenate(
        [
            np.trace(p, axis1=1, axis2=2)
            for p, _ in _posterior_draws(
                rng, n=n, sigma=sigma, lam=lam, x_var=v, basis=u, n_mc=n_mc
            )
        ]
    )
    return TheoryValue(*_mean_se(vals))


def oracle_forward_risk(
    *,
    n: int,
    sigma: float,
    spectrum: Any,
    x_var: Any = None,
    basis: Any = None,
    d: int | None = None,
    n_mc: int = 2000,
    seed: int = 0,
) -> TheoryValue:
    """Oracle prediction risk at a fresh query, E(<ŵ, x_q> - y_q)² = E_X tr(S Post) + σ² (not / d).

    S = Uᵀ Σx U (Bishop 2006 eq. 3.59, predictive variance, averaged over X and x_q).  Same
    arguments and Monte Carlo as :func:`oracle_mse`; isotropic x = c·I gives c·MMSE + σ².
    """
    lam = _as_spectrum(spectrum)
    r = lam.shape[0]
    d = _infer_dim(d, r, x_var, basis)
    v = _x_var(x_var, d)
    if np.all(v == v[0]):
        m = oracle_mse(n=n, sigma=sigma, spectrum=lam, x_var=v, basis=basis, d=d, n_mc=n_mc,
                       seed=seed)  # fmt: skip
        se = None if m.stderr is None else v[0] * m.stderr
        return TheoryValue(float(v[0] * m.value + sigma**2), se)
    n = _check_int("n", n, 0)
    sigma = _check_sigma(sigma)
    u = None if basis is None else _check_basis(basis, d, r)
    if sigma == 0 and n >= r:
        return TheoryValue(0.0, None)
    if n == 0:  # prior predictive: tr(S Λ) + σ², E_U S = (tr Σx / d) I for a Haar U
        s = (u * v[:, None]).T @ u if u is not None else np.eye(r) * v.mean()
        return TheoryValue(float(np.trace(s * lam)) + sigma**2, None)
    rng = np.random.default_rng(seed)
    vals = np.concatenate(
        [
            np.einsum("cij,cji->c", s, p)
            for p, s in _posterior_draws(
                rng, n=n, sigma=sigma, lam=lam, x_var=v, basis=u, n_mc=_check_int("n_mc", n_mc, 2)
            )
        ]
    )
    mean, se = _mean_se(vals)
    return TheoryValue(mean + sigma**2, se)


def expected_posterior_cov(
    *,
    n: int,
    sigma: float,
    spectrum: Any,
    basis: Any,
    x_var: Any = None,
    n_mc: int = 2000,
    seed: int = 0,
) -> np.ndarray:
    """E_X[U Post(X) Uᵀ] = σ² C, C = U E_X[(σ² Λ⁻¹ + Uᵀ Xᵀ X U)⁻¹] Uᵀ; shape (d, d).

    Law of total covariance (the learned-prior identity of Lu & Yu 2025): for the posterior mean
    ŵ = E[w | X, Y], Cov(w) = Cov(ŵ) + E[Cov(w | X, Y)], i.e. Σw = Cov(ŵ) + σ² C with
    Σw = U Λ Uᵀ.  Monte Carlo mean over ``n_mc`` designs (fixed ``basis``).
    """
    lam = _as_spectrum(spectrum)
    u = np.asarray(basis, dtype=float)
    u = _check_basis(u, u.shape[0] if u.ndim == 2 else None, lam.shape[0])
    v = _x_var(x_var, u.shape[0])
    n, sigma = _check_int("n", n, 0), _check_sigma(sigma)
    if n == 0:
        return u @ np.diag(lam) @ u.T
    rng = np.random.default_rng(seed)
    total = np.zeros((lam.shape[0],) * 2)
    for p, _ in _posterior_draws(
        rng, n=n, sigma=sigma, lam=lam, x_var=v, basis=u, n_mc=_check_int("n_mc", n_mc, 2)
    ):
        total += p.sum(0)
    return u @ (total / n_mc) @ u.T


# ----------------------------------------------------------------------------- limits and bounds


def conditional_mse(*, z: Any, spectrum: Any, sigma: float) -> np.ndarray:
    """The oracle's error given the design, tr (Λ⁻¹ + σ⁻² Zᵀ Z)⁻¹, for Z = X U: (..., n, r).

    Shape ``z.shape[:-2]``.  σ = 0 uses the Woodbury form (finite when n < r).
    """
    lam = _as_spectrum(spectrum)
    z = np.asarray(z, dtype=float)
    sigma = _check_sigma(sigma)
    r, n = lam.shape[0], z.shape[-2]
    if z.shape[-1] != r:
        raise ValueError(f"z.shape = {z.shape}: last axis must be r = {r}")
    zl = z * lam
    k = zl @ np.swapaxes(z, -1, -2)
    k = k + sigma**2 * np.eye(n)
    post = np.diag(lam) - np.swapaxes(zl, -1, -2) @ np.linalg.solve(k, zl)
    return np.trace(post, axis1=-2, axis2=-1)


def min_gram_eigenvalue(z: Any) -> np.ndarray:
    """b = λ_min((1/n) Zᵀ Z) for Z: (..., n, r); shape ``z.shape[:-2]`` (0 when n < r)."""
    z = np.asarray(z, dtype=float)
    n = z.shape[-2]
    return np.linalg.eigvalsh(np.swapaxes(z, -1, -2) @ z / n)[..., 0]


def conditional_bound(*, r: int, n: int, sigma: float, b: float) -> float:
    """σ² r / (n b): bound on the oracle error given X when (1/n) Uᵀ Xᵀ X U ⪰ b I (b > 0).

    Lu & Yu 2025 (conditional error bound).  Proof: Post = (Λ⁻¹ + σ⁻² G)⁻¹ ⪯ σ² G⁻¹ and
    G ⪰ n b I, so tr Post <= σ² tr G⁻¹ <= σ² r / (n b).  Valid for any prior spectrum and any Σx.
    """
    r, n = _check_int("r", r, 1), _check_int("n", n, 1)
    sigma = _check_sigma(sigma)
    if not b > 0:
        raise ValueError(f"b = {b!r} is invalid: the smallest eigenvalue bound must be > 0")
    return sigma**2 * r / (n * b)


def high_snr_mse(*, r: int, n: int, sigma: float) -> float:
    """σ² r / (n - r - 1): the oracle error at high SNR, isotropic x (Σx = I), r < n - 1.

    It is E tr(σ² G⁻¹) with G ~ Wishart_r(n, I), the mean of an inverse Wishart matrix
    (Anderson 2003, Thm 7.7.1: E W⁻¹ = I / (n - r - 1)): the error of least squares in the known
    subspace.  Since Post ⪯ σ² G⁻¹ it is an upper bound on :func:`oracle_mse` for every Λ, and
    their ratio tends to 1 as σ²/λ_min → 0 (Lu & Yu 2025, high-SNR approximation).  Returns inf
    for r >= n - 1 (the inverse-Wishart mean is infinite).
    """
    r, n = _check_int("r", r, 1), _check_int("n", n, 1)
    sigma = _check_sigma(sigma)
    if r >= n - 1:
        return math.inf
    return sigma**2 * r / (n - r - 1)


def floor_mse(*, spectrum: Any, n: int) -> float:
    """The floor for r > n: no estimator's E‖ŵ - w‖² is below the sum of the r - n smallest λ_i.

    (r - n)λ when Λ = λI; 0 when n >= r.  Lu & Yu 2025 (fundamental limit).  Proof: extra noise
    cannot lower the MMSE, and at σ = 0 the posterior covariance is Λ^{1/2}(I - P)Λ^{1/2} with P
    a projection of rank <= n (onto the row space of X U Λ^{1/2}), whose trace is at least the
    sum of the r - n smallest eigenvalues of Λ (Ky Fan's minimum principle).  Any Σx, any σ.
    """
    lam = np.sort(_as_spectrum(spectrum))
    n = _check_int("n", n, 0)
    return float(lam[: max(lam.shape[0] - n, 0)].sum())


def relative_floor(*, r: int, n: int) -> float:
    """1 - n/r (0 when n >= r): the floor of E‖ŵ - w‖² / E‖w - w0‖² for Λ = λI (Lu & Yu 2025)."""
    r, n = _check_int("r", r, 1), _check_int("n", n, 0)
    return max(1.0 - n / r, 0.0)


def spectral_gap_rank(eigenvalues: Any, *, rel_floor: float = 1e-3) -> int:
    """Rank at the largest spectral gap on a log scale: argmax_k log(e_k / e_{k+1}), k = 1..d.

    ``eigenvalues`` of an estimated prior covariance, any order.  Each is first raised to the floor
    ``rel_floor · e_1`` (estimates below it, negative ones included, count as zero variance) and
    e_{d+1} = that floor, so a full-rank prior (no gap inside the spectrum) returns d.  The ratio,
    not the difference, lets a prior with unequal variances (e.g. 4, 1, 0.5, then zeros) keep its
    small directions.
    """
    e = np.sort(np.asarray(eigenvalues, dtype=float).ravel())[::-1]
    if e.shape[0] < 1 or not np.all(np.isfinite(e)):
        raise ValueError(f"eigenvalues = {eigenvalues!r}: expected >= 1 finite values")
    if not 0 < rel_floor < 1:
        raise ValueError(f"rel_floor = {rel_floor!r}: must be in (0, 1)")
    if not e[0] > 0:
        return 1
    floor = rel_floor * e[0]
    logs = np.log(np.append(np.maximum(e, floor), floor))
    return int(np.argmax(logs[:-1] - logs[1:])) + 1


# ----------------------------------------------------------------------------- ridge


@dataclass(frozen=True)
class RidgeValue:
    """Ridge error at penalty ``alpha``: ``mse`` = E‖ŵ_α - w‖² with Monte Carlo ``stderr``."""

    alpha: float
    mse: float
    stderr: float


def _ridge_curves(
    *,
    n: int,
    sigma: float,
    second_moment: np.ndarray,
    x_var: np.ndarray,
    alphas: np.ndarray,
    n_mc: int,
    seed: int,
) -> np.ndarray:
    """Per-design errors of ridge, shape (n_mc, len(alphas)); see :func:`ridge_mse`.

    With the m = min(n, d) non-zero eigenpairs (e_i, q_i) of XᵀX (from the n×n kernel X Xᵀ when
    n < d), the d - m null directions each cost the bias α²/α² = 1 times their share of M:
    error = Σ_i [α² q_iᵀMq_i + σ² e_i] / (e_i + α)² + (tr M - Σ_i q_iᵀMq_i).
    """
    d = x_var.shape[0]
    rng = np.random.default_rng(seed)
    sq = np.sqrt(x_var)
    tr_m = float(np.trace(second_moment))
    out = []
    for c in _chunk_sizes(n_mc, 3 * d * d + n * d):
        if n >= d:
            g = sq[:, None] * _wishart(rng, c, d, n) * sq[None, :]  # XᵀX, X rows N(0, Σx)
            e, q = np.linalg.eigh(g)  # (c, d), (c, d, d)
        else:
            x = rng.standard_normal((c, n, d)) * sq  # (c, n, d)
            e, p = np.linalg.eigh(x @ x.transpose(0, 2, 1))  # kernel X Xᵀ, (c, n)
            e = np.clip(e, 1e-300, None)
            q = x.transpose(0, 2, 1) @ p / np.sqrt(e)[:, None, :]  # q_i = Xᵀ p_i / √e_i
        e = np.clip(e, 0.0, None)
        m = np.einsum("cdi,cdi->ci", q, second_moment @ q)  # q_iᵀ M q_i, (c, m)
        den = (e[:, :, None] + alphas) ** 2  # (c, m, A)
        err = ((alphas**2 * m[:, :, None] + sigma**2 * e[:, :, None]) / den).sum(1)
        out.append(err + (tr_m - m.sum(1))[:, None])
    return np.concatenate(out)


def _second_moment(mean: Any, cov: Any) -> np.ndarray:
    c = np.asarray(cov, dtype=float)
    d = c.shape[0] if c.ndim == 2 else -1
    if c.ndim != 2 or c.shape != (d, d) or not np.all(np.isfinite(c)):
        raise ValueError(f"cov.shape = {c.shape}: expected a finite square matrix (d, d)")
    mu = np.zeros(d) if mean is None else np.asarray(mean, dtype=float)
    if mu.shape != (d,) or not np.all(np.isfinite(mu)):
        raise ValueError(f"mean.shape = {mu.shape}: expected ({d},) finite entries")
    return np.outer(mu, mu) + (c + c.T) / 2


def ridge_mse(
    *,
    n: int,
    sigma: float,
    alpha: float,
    cov: Any,
    mean: Any = None,
    x_var: Any = None,
    n_mc: int = 1000,
    seed: int = 0,
) -> RidgeValue:
    """E‖ŵ_α - w‖² of ridge ŵ_α = (XᵀX + αI)⁻¹ Xᵀ Y (shrinks to 0) for w with mean μ, cov Σw.

    Bias-variance decomposition given X (Hastie, Montanari, Rosset & Tibshirani 2022, §2;
    Dobriban & Wager 2018, §2), averaged over w and ε with M = μμᵀ + Σw and R = (XᵀX + αI)⁻¹:

        E[‖ŵ_α - w‖² | X] = α² tr(R M R) + σ² tr(XᵀX R²),   α > 0,

    then a Monte Carlo mean over ``n_mc`` designs (one eigendecomposition each, of XᵀX or of the
    n×n kernel X Xᵀ when n < d).  The ILR prior has Σw = U Λ Uᵀ, μ = w0: ridge does not know that
    w lives near an r-dimensional affine subspace.  ``x_var``: diagonal of Σx (None: identity).
    """
    sigma = _check_sigma(sigma)
    n = _check_int("n", n, 1)
    if not (math.isfinite(alpha) and alpha > 0):
        raise ValueError(f"alpha = {alpha!r} is invalid: must be a finite number > 0")
    m2 = _second_moment(mean, cov)
    with _one_blas_thread():
        vals = _ridge_curves(n=n, sigma=sigma, second_moment=m2, x_var=_x_var(x_var, m2.shape[0]),
                             alphas=np.array([float(alpha)]), n_mc=_check_int("n_mc", n_mc, 2),
                             seed=seed)[:, 0]  # fmt: skip
    m, se = _mean_se(vals)
    return RidgeValue(float(alpha), m, se)


def best_ridge_mse(
    *,
    n: int,
    sigma: float,
    cov: Any,
    mean: Any = None,
    x_var: Any = None,
    n_alphas: int = 41,
    n_mc: int = 1000,
    seed: int = 0,
) -> RidgeValue:
    """The error of ridge at its best penalty α (an "oracle-tuned" ridge), with α.

    Isotropic x (Σx = c·I): XᵀX has Haar eigenvectors independent of its eigenvalues, so the error
    depends on M = μμᵀ + Σw only through τ² = tr(M)/d; it is the ridge risk of the isotropic model
    w ~ N(0, τ²I), minimised exactly at α* = σ²/(c τ²) where ridge is that model's posterior mean
    (Dobriban & Wager 2018, Thm 2.1): with XᵀX = c·W, W ~ Wishart_d(n, I), value = τ²(d - m) +
    (σ²/c) E tr(W + (α*/c) I)⁻¹ over the m = min(n, d) non-zero eigenvalues of W (tridiagonal
    Laguerre model, as ``icl-bayes-risk``).
    Otherwise: the minimum of :func:`ridge_mse` over α = s·10^t, t ∈ linspace(-4, 4,
    ``n_alphas``), s = max(σ²/τ², 10⁻⁶), every α on the same designs (common random numbers).
    This is the best a per-prompt tuner such as GCV (Golub, Heath & Wahba 1979) can hope for.
    """
    sigma = _check_sigma(sigma)
    n = _check_int("n", n, 1)
    n_mc = _check_int("n_mc", n_mc, 2)
    m2 = _second_moment(mean, cov)
    d = m2.shape[0]
    v = _x_var(x_var, d)
    tau2 = float(np.trace(m2)) / d
    if not tau2 > 0:
        raise ValueError("cov, mean: E‖w‖² must be > 0")
    if np.all(v == v[0]):
        c = float(v[0])
        if sigma == 0:  # α → 0⁺: minimum-norm least squares, exact
            return RidgeValue(0.0, tau2 * max(d - n, 0), 0.0)
        alpha = sigma**2 / tau2
        tr, _ = _iso_traces(seed=seed, n_mc=n_mc, ks=[n], d=d, lam=alpha / c)
        vals = tau2 * (d - min(n, d)) + sigma**2 / c * tr[0]
        m, se = _mean_se(vals)
        return RidgeValue(float(alpha), m, se)
    alphas = max(sigma**2 / tau2, 1e-6) * np.logspace(-4, 4, _check_int("n_alphas", n_alphas, 1))
    with _one_blas_thread():
        vals = _ridge_curves(n=n, sigma=sigma, second_moment=m2, x_var=v, alphas=alphas,
                             n_mc=n_mc, seed=seed)  # fmt: skip
    j = int(np.argmin(vals.mean(0)))
    m, se = _mean_se(vals[:, j])
    return RidgeValue(float(alphas[j]), m, se)


# ----------------------------------------------------------------------------- registry


def _rank_le_dim(p: dict[str, Any]) -> None:
    if p["r"] > p["d"]:
        raise ValueError(
            f"parameter 'r' = {p['r']} is out of range: the rank must be <= d = {p['d']}"
        )
    if not p["prior_scale"] > 0:
        raise ValueError(
            f"parameter 'prior_scale' = {p['prior_scale']!r} is out of range: must be > 0"
        )


_ORACLE_PARAMS = (
    Param("d", int, None, 1, None, "dimension of x and w"),
    Param("n", int, None, 1, None, "context length (number of (x, y) pairs)"),
    Param("r", int, None, 1, None, "rank of the task prior (w = w0 + U v, v ∈ R^r), <= d"),
    Param("sigma", float, None, 0, None, "noise standard deviation σ"),
    Param("prior_scale", float, 1.0, 0, None, "std of each coordinate of v: Λ = prior_scale² I"),
    Param("cond", float, 1.0, 1, None, "condition number κ of the diagonal Σx (trace d)"),
    Param("n_mc", int, 2000, 2, 200_000, "Monte Carlo designs X for E_X"),
    Param("seed", int, 0, 0, None, "seed of the Monte Carlo designs"),
)


def _f_oracle(
    *, d: int, n: int, r: int, sigma: float, prior_scale: float, cond: float, n_mc: int, seed: int
) -> TheoryValue:
    var = x_variances(d=d, cond=cond)
    return oracle_mse(n=n, sigma=sigma, spectrum=np.full(r, prior_scale**2), x_var=var, d=d,
                      n_mc=n_mc, seed=seed)  # fmt: skip


register_formula(
    "ilr-oracle-mse",
    _f_oracle,
    params=_ORACLE_PARAMS,
    source=f"{SOURCE}; Bishop 2006 eqs. 3.50-3.51 (Gaussian posterior)",
    summary="oracle (Bayes) error E‖ŵ - w‖² = E_X tr(Λ⁻¹ + σ⁻²UᵀXᵀXU)⁻¹ of inverse linear "
    "regression, w = w0 + Uv, from n pairs; cond > 1 also averages over a Haar-random U",
    check=_rank_le_dim,
)


def _f_high_snr(*, r: int, n: int, sigma: float) -> TheoryValue:
    return TheoryValue(high_snr_mse(r=r, n=n, sigma=sigma), None)


register_formula(
    "ilr-high-snr-mse",
    _f_high_snr,
    params=(_ORACLE_PARAMS[2], _ORACLE_PARAMS[1], _ORACLE_PARAMS[3]),
    source=f"{SOURCE}; Anderson 2003 Thm 7.7.1 (inverse Wishart mean)",
    summary="σ² r / (n - r - 1): high-SNR approximation of (and upper bound on) the oracle "
    "error, isotropic x; inf for r >= n - 1",
)


def _f_floor(*, r: int, n: int, prior_scale: float) -> TheoryValue:
    return TheoryValue(floor_mse(spectrum=np.full(r, prior_scale**2), n=n), None)


register_formula(
    "ilr-floor",
    _f_floor,
    params=(
        _ORACLE_PARAMS[2],
        Param("n", int, None, 0, None, "context length"),
        _ORACLE_PARAMS[4],
    ),  # fmt: skip
    source=f"{SOURCE}; Ky Fan's minimum principle",
    summary="(r - n)⁺ λ: no estimator's E‖ŵ - w‖² is lower when r > n (Λ = λI, λ = prior_scale²)",
    check=_positive("prior_scale"),
)


def _f_cond_bound(*, r: int, n: int, sigma: float, b: float) -> TheoryValue:
    return TheoryValue(conditional_bound(r=r, n=n, sigma=sigma, b=b), None)


register_formula(
    "ilr-conditional-bound",
    _f_cond_bound,
    params=(
        _ORACLE_PARAMS[2],
        _ORACLE_PARAMS[1],
        _ORACLE_PARAMS[3],
        Param("b", float, None, 0, None, "lower bound on λ_min((1/n) UᵀXᵀXU), > 0"),
    ),
    source=SOURCE,
    summary="σ² r / (n b): bound on the oracle error given X when (1/n)UᵀXᵀXU ⪰ bI",
    check=_positive("b"),
)
