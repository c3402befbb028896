"""A Gaussian refitted on its own samples: Wishart log-determinants, the collapse of the variance, the drift of the mean, exact W2 (Shumailov et al. 2024; survey §5.4).

Conventions: see :mod:`fmtheory.theory.self_consuming`.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.special import digamma, gammaln, polygamma

from fmtheory.theory.self_consuming.schedule import schedule_sizes

__all__ = [
    "wishart_logdet_mean",
    "wishart_logdet_variance",
    "gaussian_logvar_mean",
    "gaussian_logvar_variance",
    "gaussian_mle_variance",
    "gaussian_mean_drift",
    "gaussian_expected_w2sq",
    "gaussian_w2",
    "gaussian_w2_squared_batched",
]

# --------------------------------------------------------------------------------------------
# Gaussian refitted on its own samples
# --------------------------------------------------------------------------------------------


def wishart_logdet_mean(dof: np.ndarray | float, dim: int) -> np.ndarray:
    """``E[ln det W] = Σ_{j=1}^{dim} ψ((dof − j + 1)/2) + dim ln 2``, ``W ~ Wishart_dim(I, dof)``.

    Standard (e.g. Bishop 2006, PRML eq. B.81).  Requires ``dof > dim − 1``.
    """
    dof = np.asarray(dof, dtype=np.float64)
    j = np.arange(1, dim + 1, dtype=np.float64)
    return digamma((dof[..., None] - j + 1.0) / 2.0).sum(-1) + dim * math.log(2.0)


def wishart_logdet_variance(dof: np.ndarray | float, dim: int) -> np.ndarray:
    """``Var[ln det W]`` for ``W ~ Wishart_dim(I, dof)``: ``Σ_j ψ'((dof − j + 1)/2)``.

    Bartlett decomposition: ``det W = Π_j χ²_{dof−j+1}`` with independent factors, and
    ``Var[ln χ²_k] = ψ'(k/2)``.
    """
    dof = np.asarray(dof, dtype=np.float64)
    j = np.arange(1, dim + 1, dtype=np.float64)
    return polygamma(1, (dof[..., None] - j + 1.0) / 2.0).sum(-1)


def _check_gaussian_sizes(sizes: np.ndarray, dim: int) -> None:
    if sizes.size and sizes.min() <= dim:
        raise ValueError(
            f"M = {int(sizes.min())}: the log-determinant needs more samples than dimensions "
            f"(M > dim = {dim})"
        )


def gaussian_logvar_mean(
    *, M: int, generation: int, dim: int = 1, power: float = 0.0, mle: bool = False
) -> float:
    """``E[ln det(Σ_n Σ^{-1})]`` after ``n = generation`` fully synthetic refits (replace, α = 0).

    Each generation draws ``n_i`` points from ``N(μ_{i−1}, Σ_{i−1})`` and refits ``Σ_i = S_i / k_i``
    with ``S_i ~ Wishart(Σ_{i−1}, n_i − 1)`` and ``k_i = n_i − 1`` (unbiased) or ``n_i`` (MLE), so
    ``ln det Σ_n − ln det Σ = Σ_i [ln det W_i − dim ln k_i]`` with independent ``W_i ~ Wishart(I,
    n_i − 1)``.  For ``dim = 1`` and the unbiased estimator this is the survey's (§5.4)
    ``n[ψ((M−1)/2) − ln((M−1)/2)] ≈ −n/(M−1)``: ``σ_n² → 0`` almost surely although
    ``E[σ_n²] = σ²`` (Shumailov et al. 2024, Nature, "AI models collapse when trained on
    recursively generated data", Gaussian case; Bertrand et al. 2024, Gaussian warm-up).
    """
    sizes = schedule_sizes(M, generation, power=power)
    _check_gaussian_sizes(sizes, dim)
    k = sizes if mle else sizes - 1.0
    return float((wishart_logdet_mean(sizes - 1.0, dim) - dim * np.log(k)).sum())


def gaussian_logvar_variance(*, M: int, generation: int, dim: int = 1, power: float = 0.0) -> float:
    """``Var[ln det(Σ_n Σ^{-1})] = Σ_i Σ_j ψ'((n_i − j)/2)`` (the loop of
    :func:`gaussian_logvar_mean`; the normalisation ``k_i`` is a constant and does not enter)."""
    sizes = schedule_sizes(M, generation, power=power)
    _check_gaussian_sizes(sizes, dim)
    return float(wishart_logdet_variance(sizes - 1.0, dim).sum())


def gaussian_mle_variance(*, sigma: float, M: int, generation: int, power: float = 0.0) -> float:
    """``E[σ_n²] = σ² Π_{i≤n} (n_i − 1)/n_i`` for the MLE refit (``= σ²((M−1)/M)^n`` for constant
    ``M``); survey §5.4.  Per coordinate for ``Σ = σ² I``:
    ``E[Σ_i | Σ_{i−1}] = (n_i−1)/n_i Σ_{i−1}``.
    """
    sizes = schedule_sizes(M, generation, power=power)
    return float(sigma**2 * np.prod((sizes - 1.0) / sizes))


def _expected_variances(sigma: float, sizes: np.ndarray, mle: bool) -> np.ndarray:
    """``E[σ_{i}²]`` for ``i = 0..n−1`` (``σ_0² = σ²``), replace mode, fully synthetic."""
    if not mle:
        return np.full(sizes.size, sigma**2)
    ratios = (sizes - 1.0) / sizes
    return sigma**2 * np.concatenate([[1.0], np.cumprod(ratios)[:-1]])


def gaussian_mean_drift(
    *,
    sigma: float,
    M: int,
    generation: int,
    dim: int = 1,
    power: float = 0.0,
    mle: bool = False,
    accumulate: bool = False,
) -> float:
    """``E||μ_n − μ||²`` for ``N(μ, σ² I_dim)`` refitted on its own samples (α = 0, γ = 0).

    replace: ``μ_i = μ_{i−1} + Σ_{i−1}^{1/2} z / √n_i`` so
    ``E||μ_n − μ||² = dim Σ_{i≤n} E[σ_{i−1}²]/n_i`` with ``E[σ_i²] = σ²`` (unbiased: a martingale)
    or ``σ² Π_{j≤i}(n_j−1)/n_j`` (MLE).  For constant ``M`` this is ``n σ² dim / M`` (unbiased),
    the survey's ``nσ²/M``.

    accumulate (valid when the covariance is *not* refitted, i.e. stays ``σ² I``): with
    ``N_k = Σ_{j≤k} n_j`` the error obeys ``e_k = e_{k−1} + (n_k/N_k) z̄_k`` (the recursion of
    Gerstgrasser et al. 2024 applied to the mean), so ``E||μ_n − μ||² = dim σ² Σ_k n_k / N_k²``,
    bounded by ``dim σ² π²/6 / M`` for constant ``M``.
    """
    sizes = schedule_sizes(M, generation, power=power)
    if accumulate:
        cum = np.cumsum(sizes)
        return float(dim * sigma**2 * (sizes / cum**2).sum())
    return float(dim * (_expected_variances(sigma, sizes, mle) / sizes).sum())


def _mean_sqrt_ratio(sizes: np.ndarray, mle: bool) -> np.ndarray:
    """``E[sqrt(χ²_{n−1} / k)]`` with ``k = n − 1`` (unbiased) or ``n`` (MLE)."""
    dof = sizes - 1.0
    k = sizes if mle else dof
    return np.exp(0.5 * np.log(2.0 / k) + gammaln((dof + 1.0) / 2.0) - gammaln(dof / 2.0))


def gaussian_expected_w2sq(
    *, sigma: float, M: int, generation: int, power: float = 0.0, mle: bool = False
) -> float:
    """Exact ``E[W2²(N(μ_n, σ_n²), N(μ, σ²))]`` in one dimension (α = 0, γ = 0, replace).

    ``W2² = (μ_n − μ)² + (σ_n − σ)²`` between 1-D Gaussians (Dowson & Landau 1982), so
    ``E[W2²] = E[(μ_n−μ)²] + E[σ_n²] − 2σ E[σ_n] + σ²`` with
    ``E[σ_n] = σ Π_i E[sqrt(χ²_{n_i−1}/k_i)]`` and
    ``E[sqrt(χ²_m / k)] = sqrt(2/k) Γ((m+1)/2) / Γ(m/2)``.
    """
    sizes = schedule_sizes(M, generation, power=power)
    _check_gaussian_sizes(sizes, 1)
    drift = gaussian_mean_drift(sigma=sigma, M=M, generation=generation, power=power, mle=mle)
    var = (
        gaussian_mle_variance(sigma=sigma, M=M, generation=generation, power=power)
        if mle
        else (sigma**2)
    )
    std = sigma * float(np.prod(_mean_sqrt_ratio(sizes, mle)))
    return float(drift + var - 2.0 * sigma * std + sigma**2)


def gaussian_w2(*, mu1: float, sigma1: float, mu2: float, sigma2: float) -> float:
    """``W2(N(μ1, σ1²), N(μ2, σ2²)) = sqrt((μ1−μ2)² + (σ1−σ2)²)`` (Dowson & Landau 1982)."""
    return math.sqrt((mu1 - mu2) ** 2 + (sigma1 - sigma2) ** 2)


def _sqrtm_psd(a: np.ndarray) -> np.ndarray:
    w, v = np.linalg.eigh(a)
    w = np.sqrt(np.clip(w, 0.0, None))
    return (v * w[..., None, :]) @ np.swapaxes(v, -1, -2)


def gaussian_w2_squared_batched(
    mean1: np.ndarray, cov1: np.ndarray, mean2: np.ndarray, cov2: np.ndarray
) -> np.ndarray:
    """Exact squared 2-Wasserstein distance between Gaussians, batched.

    ``W2² = ||m1 − m2||² + tr(Σ1 + Σ2 − 2 (Σ2^{1/2} Σ1 Σ2^{1/2})^{1/2})`` (Dowson & Landau 1982;
    Givens & Shortt 1984).  Shapes: ``mean: (..., d)``, ``cov: (..., d, d)`` (broadcast); returns
    ``(...)``.
    """
    mean1, mean2 = np.asarray(mean1, np.float64), np.asarray(mean2, np.float64)
    cov1, cov2 = np.asarray(cov1, np.float64), np.asarray(cov2, np.float64)
    r2 = _sqrtm_psd(cov2)
    cross = np.linalg.eigvalsh(r2 @ cov1 @ r2)
    cross_tr = np.sqrt(np.clip(cross, 0.0, None)).sum(-1)
    tr = np.trace(cov1, axis1=-2, axis2=-1) + np.trace(cov2, axis1=-2, axis2=-1)
    d2 = ((mean1 - mean2) ** 2).sum(-1)
    return np.clip(d2 + tr - 2.0 * cross_tr, 0.0, None)
