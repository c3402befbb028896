"""Closed forms for self-consuming training loops (model collapse), survey §5.4.

Conventions shared by every function here:

* **generation** ``n`` counts fits: generation 1 is the first fit, on real data only; generation
  ``n`` is the ``n``-th fit of the chain.  Generation 0 is the real distribution itself.
* **sample-size schedule**: generation ``i`` fits ``n_i = n0 * c_i`` points with
  ``c_i = max(1, round(i ** power))``: ``power = 0`` is the constant schedule, ``1`` linear, ``k``
  the polynomial ``i^k`` (Fu et al. 2024).  :func:`schedule_sizes` is the single definition; the
  experiment imports it, so the simulated loop and the formulas use the same ``n_i``.
* **replace**: generation ``i+1`` fits ``n_{i+1}`` fresh samples of model ``i`` only;
  **accumulate**: it fits every dataset drawn so far (the real one included) plus ``n_{i+1}`` fresh
  samples of model ``i`` (Gerstgrasser et al. 2024).
* **correction of strength γ**: every synthetic sample is replaced, independently with probability
  ``γ/(1+γ)``, by a fresh sample of the real distribution.  The synthetic part is then an exact draw
  from ``π_γ(p_θ) = (p_θ + γ p_data)/(1+γ)``, the idealized self-correction of Gillman et al. 2024
  (their correction towards ``p_θ*``, with ``p_θ* = p_data`` because the families here that carry a
  closed form are well specified).

Pure numpy/scipy: nothing of fmtheory is imported except the registry.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.special import digamma, gammaln, polygamma

from fmtheory.theory.registry import Param, TheoryValue, formula

__all__ = [
    "schedule_multipliers",
    "schedule_sizes",
    "wishart_logdet_mean",
    "wishart_logdet_variance",
    "gaussian_logvar_mean",
    "gaussian_logvar_variance",
    "gaussian_mle_variance",
    "gaussian_mean_drift",
    "gaussian_expected_w2sq",
    "gaussian_w2",
    "gaussian_w2_squared_batched",
    "linreg_replace_error",
    "linreg_accumulate_error",
    "mix_contraction",
    "gaussian_mix_mean_mse",
    "StabilityCondition",
    "bertrand_stability",
    "kde_model_variance",
    "zipf_probs",
    "zipf_tail_mass",
    "zipf_missing_mass",
    "inverse_wishart_trace_mean",
]


# --------------------------------------------------------------------------------------------
# the sample-size schedule
# --------------------------------------------------------------------------------------------


def schedule_multipliers(generation: int, *, power: float = 0.0) -> np.ndarray:
    """``c_i = max(1, round(i ** power))`` for ``i = 1..generation``, shape ``(generation,)``.

    ``round`` is half-up (``floor(x + 1/2)``), so ``c_1 = 1`` for every power.  Fu et al. 2024
    ("A theoretical perspective: how to prevent model collapse in self-consuming training loops",
    survey Cor 5.8): with no real data the per-generation sample size must grow for the error to
    stay bounded; ``power > 1`` makes ``Σ 1/c_i`` finite.
    """
    if generation < 0:
        raise ValueError(f"generation = {generation}: must be >= 0")
    if power < 0 or not math.isfinite(power):
        raise ValueError(f"power = {power}: must be a finite number >= 0")
    i = np.arange(1, generation + 1, dtype=np.float64)
    return np.maximum(1.0, np.floor(i**power + 0.5))


def schedule_sizes(
    n0: int, generation: int, *, power: float = 0.0, max_n: int | None = None
) -> np.ndarray:
    """Sample sizes ``n_i = min(n0 * c_i, max_n)`` (float64, exact integers), ``i = 1..generation``.

    ``max_n`` (None: no cap) bounds the growth for families whose cost grows with ``n_i``.
    """
    if n0 < 1:
        raise ValueError(f"n0 = {n0}: must be >= 1")
    sizes = float(n0) * schedule_multipliers(generation, power=power)
    if max_n is not None:
        if max_n < n0:
            raise ValueError(f"max_n = {max_n}: must be >= n0 = {n0}")
        sizes = np.minimum(sizes, float(max_n))
    return sizes


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


# --------------------------------------------------------------------------------------------
# linear regression with a fixed design (Gerstgrasser et al. 2024)
# --------------------------------------------------------------------------------------------


def inverse_wishart_trace_mean(*, d: int, T: int) -> float:
    """``E[tr((XᵀX)^{-1})] = d/(T − d − 1)`` for ``X`` with ``T`` i.i.d. ``N(0, I_d)`` rows
    (mean of the inverse Wishart, e.g. Mardia, Kent & Bibby 1979, §3.8); needs ``T > d + 1``."""
    if d + 1 >= T:
        raise ValueError(f"T = {T}: the inverse-Wishart mean needs T > d + 1 = {d + 1}")
    return d / (T - d - 1.0)


def linreg_replace_error(
    *, d: int, T: int, sigma: float, generation: int, power: float = 0.0
) -> float:
    """``E||ŵ_n − w*||²`` when each generation relabels the fixed design with the previous model.

    ``ŵ_{i+1} = ŵ_i + (XᵀX)^{-1}Xᵀ ε̄_i``, the label noise of generation ``i`` averaged over its
    ``c_i`` copies of the design (variance ``σ²/c_i``), hence
    ``E||ŵ_n − w*||² = σ² E tr((XᵀX)^{-1}) Σ_{i≤n} 1/c_i = n σ² d/(T − d − 1)`` for the constant
    schedule (Dohmatob, Feng & Kempe 2024, "Model collapse demystified", replacement case, as
    restated by Gerstgrasser et al. 2024, "Is model collapse inevitable?"; survey §5.4).  With
    isotropic rows this is also the excess test error.
    """
    c = schedule_multipliers(generation, power=power)
    return float(sigma**2 * inverse_wishart_trace_mean(d=d, T=T) * (1.0 / c).sum())


def linreg_accumulate_error(
    *, d: int, T: int, sigma: float, generation: int, power: float = 0.0
) -> float:
    """``E||ŵ_n − w*||²`` when every generation refits all labels drawn so far (accumulate).

    Stacking ``C_k = Σ_{j≤k} c_j`` copies of the design gives ``e_k = e_{k−1} + (c_k/C_k) u_k`` with
    ``Cov u_k = σ²(XᵀX)^{-1}/c_k``, so ``E||e_n||² = σ² d/(T−d−1) Σ_k c_k/C_k²``
    ``= σ² d/(T−d−1) Σ_{k≤n} 1/k²`` (constant schedule) ``≤ π²/6`` times the first generation's
    (Gerstgrasser et al. 2024, accumulation theorem for linear regression; survey §5.4).
    """
    c = schedule_multipliers(generation, power=power)
    cum = np.cumsum(c)
    return float(sigma**2 * inverse_wishart_trace_mean(d=d, T=T) * (c / cum**2).sum())


# --------------------------------------------------------------------------------------------
# mixing with real data, correction, stability
# --------------------------------------------------------------------------------------------


def _real_count(n: int, real_fraction: float) -> int:
    return int(math.floor(real_fraction * n + 0.5))


def mix_contraction(*, real_fraction: float, gamma: float = 0.0, n: int = 0) -> float:
    """Exact factor ``κ`` of ``E[μ_{t+1} − μ* | μ_t] = κ (μ_t − μ*)`` for a refitted mean.

    With ``λ = (1−α)/α`` synthetic samples per real one, maximum likelihood of the mean gives
    ``μ_{t+1} = (μ* + λ μ_t)/(1+λ)`` in expectation: ``κ = λ/(1+λ) = 1 − α`` (the Gaussian example
    of Bertrand et al. 2024; survey §5.4).  The correction keeps each synthetic sample with
    probability ``1/(1+γ)``, so ``κ = (1 − α)/(1 + γ)``.  With ``n > 0`` the real count is rounded
    as in the simulation: ``κ = (n − round(α n))/n / (1+γ)``.  Holds whether or not the covariance
    is refitted (the synthetic sample mean is conditionally unbiased for ``μ_t``), and for OLS on a
    fixed design whose rows are split at random (``E[X_sᵀX_s] = (n_s/T) XᵀX``).
    """
    synth = (n - _real_count(n, real_fraction)) / n if n > 0 else 1.0 - real_fraction
    return synth / (1.0 + gamma)


def gaussian_mix_mean_mse(
    *, sigma: float, n: int, real_fraction: float, gamma: float, generation: int, dim: int = 1
) -> float:
    """``E||μ_n − μ*||²`` with a real share and correction, covariance *fixed* at ``σ² I``.

    Each generation fits the mean of ``n`` points: ``n_r = round(αn)`` fresh real ones and
    ``n_s = n − n_r`` synthetic ones of which ``K ~ Bin(n_s, γ/(1+γ))`` are replaced by real ones.
    Then ``e_{t+1} = ((n_s − K)/n) e_t + σ z̄`` with ``Var z̄ = 1/n`` per coordinate, so
    ``E||e_{t+1}||² = c E||e_t||² + dim σ²/n`` with ``c = E[(n_s − K)²]/n²
    = ((n_s q)² + n_s p q)/n²`` (``p = γ/(1+γ)``, ``q = 1 − p``) and ``E||e_1||² = dim σ²/n``.
    The exact finite-sample version of Bertrand et al. 2024's Gaussian example; constant schedule.
    """
    n_s = n - _real_count(n, real_fraction)
    p = gamma / (1.0 + gamma)
    q = 1.0 - p
    c = ((n_s * q) ** 2 + n_s * p * q) / n**2
    noise = dim * sigma**2 / n
    if generation <= 0:
        return 0.0
    # geometric sum: E||e_n||² = noise * Σ_{j<n} c^j
    if abs(1.0 - c) < 1e-15:
        return noise * generation
    return noise * (1.0 - c**generation) / (1.0 - c)


@dataclass(frozen=True)
class StabilityCondition:
    """Bertrand et al.'s contraction constant ``κ = λ_eff (1 + Lε/α)`` (stable iff ``κ < 1``)."""

    kappa: float
    lambda_eff: float
    stable: bool


def bertrand_stability(
    *, lam: float, lipschitz: float, eps: float, strong_concavity: float, gamma: float = 0.0
) -> StabilityCondition:
    """Sufficient stability condition of iterative retraining on mixed data.

    Bertrand et al. 2024 ("On the stability of iterative retraining of generative models on their
    own data", ICLR; survey Thm 5.4): retraining ``θ_{t+1} = argmax E_data[log p_θ] + λ
    E_{p_θt}[log p_θ]`` (``λ`` synthetic samples per real one) is stable around ``θ*`` when
    ``λ(1 + Lε/α) < 1``, where the expected log-likelihood is ``α``-strongly concave near ``θ*``,
    ``x ↦ ∇²_θ log p_θ(x)`` is ``L``-Lipschitz and ``W1(p_θ*, p_data) ≤ ε``.  *Where it applies*: a
    local (near ``θ*``), population-level (infinite-sample) statement; finite samples add a
    statistical error term.  It is sufficient, not necessary: the exact Gaussian factor
    :func:`mix_contraction` is ``λ/(1+λ) < 1`` for every ``λ``.

    With the idealized correction of strength ``γ`` (Gillman et al. 2024, ICML; survey Thm 5.6) the
    synthetic term becomes ``E_{π_γ(p_θt)} = (E_{p_θt} + γ E_data)/(1+γ)``, which is Bertrand's
    objective with ``λ_eff = λ/(1 + γ(1+λ))``; this function applies Bertrand's condition to
    ``λ_eff`` (exact rewriting, stated here rather than copied from Gillman et al.'s theorem).
    """
    lam_eff = lam / (1.0 + gamma * (1.0 + lam))
    kappa = lam_eff * (1.0 + lipschitz * eps / strong_concavity)
    return StabilityCondition(kappa=kappa, lambda_eff=lam_eff, stable=kappa < 1.0)


# --------------------------------------------------------------------------------------------
# kernel density estimate refitted on its own samples
# --------------------------------------------------------------------------------------------


def kde_model_variance(
    *,
    real_var: float,
    bandwidth: float,
    n0: int,
    generation: int,
    power: float = 0.0,
    max_n: int | None = None,
) -> float:
    """Per-coordinate variance of the Gaussian KDE at generation ``n`` (fully synthetic, replace).

    A KDE with bandwidth ``h`` on points with biased sample variance ``v`` has variance ``v + h²``;
    sampling it is resampling a point and adding ``h·N(0, I)``.  With ``n_i`` points per generation,
    ``E[v_i] = ((n_i−1)/n_i)(E[v_{i−1}] + h²)`` and ``E[v_1] = ((n_1−1)/n_1) σ²_real``, so the
    KDE's variance ``E[v_n] + h²`` drifts towards the fixed point ``M h²`` (constant schedule)
    whatever the real variance: the loop forgets the data (Shumailov et al. 2024 on density
    estimators; derivation here).
    """
    sizes = schedule_sizes(n0, generation, power=power, max_n=max_n)
    v = real_var
    for i, n in enumerate(sizes):
        v = (n - 1.0) / n * (v + (bandwidth**2 if i > 0 else 0.0))
    return float(v + bandwidth**2) if generation > 0 else float(real_var)


# --------------------------------------------------------------------------------------------
# Zipf tokens: tails disappear first (Dohmatob et al. 2024)
# --------------------------------------------------------------------------------------------


def zipf_probs(vocab: int, exponent: float) -> np.ndarray:
    """``p_i ∝ i^{-exponent}``, ``i = 1..vocab``, shape ``(vocab,)``."""
    if vocab < 1:
        raise ValueError(f"vocab = {vocab}: must be >= 1")
    if exponent < 0:
        raise ValueError(f"exponent = {exponent}: must be >= 0")
    w = np.arange(1, vocab + 1, dtype=np.float64) ** (-float(exponent))
    return w / w.sum()


def zipf_tail_mass(*, vocab: int, exponent: float, k: int) -> float:
    """``Σ_{i>k} p_i``: the error plateau once the generating model cuts the tail at rank ``k``.

    Dohmatob, Feng, Yang, Charton & Kempe 2024 ("A tale of tails: model collapse as a change of
    scaling laws", ICML, tail cutting): training on data from a model that drops ranks ``> k``
    leaves an irreducible error equal to the lost tail mass (``≍ k^{1−β}`` for exponent ``β > 1``).
    It is exactly the total variation between ``p`` and ``p`` truncated at ``k`` and renormalised.
    """
    if not 0 <= k <= vocab:
        raise ValueError(f"k = {k}: must be in [0, vocab = {vocab}]")
    p = zipf_probs(vocab, exponent)
    return float(p[k:].sum())


def zipf_missing_mass(*, vocab: int, exponent: float, n: int) -> float:
    """``E[Σ_i p_i 1{token i unseen in n draws}] = Σ_i p_i (1 − p_i)^n``.

    The mass that the categorical MLE (empirical frequencies) of generation 1 assigns zero, and that
    a fully synthetic loop of such MLEs can never recover (unseen tokens are absorbing): the first
    step of the tail cut of Dohmatob et al. 2024 (Good & Turing's missing mass).
    """
    p = zipf_probs(vocab, exponent)
    return float((p * np.exp(n * np.log1p(-p))).sum()) if vocab > 1 else 0.0


# --------------------------------------------------------------------------------------------
# registry entries
# --------------------------------------------------------------------------------------------


def _positive_generation_sizes(params: dict[str, Any]) -> None:
    dim = int(params.get("dim", 1))
    if params["M"] <= dim:
        raise ValueError(f"parameter 'M' = {params['M']} must exceed 'dim' = {dim}")


def _check_design(params: dict[str, Any]) -> None:
    if params["T"] <= params["d"] + 1:
        raise ValueError(
            f"parameter 'T' = {params['T']} must exceed d + 1 = {params['d'] + 1} "
            "(E tr (XᵀX)^{-1} = d/(T−d−1) is finite only then)"
        )


_GEN = Param("generation", int, None, 0, 10**7, "number of fits; 1 = the fit on real data")
_M = Param("M", int, None, 2, 10**9, "samples per generation (n0 of the schedule)")
_POWER = Param("power", float, 0.0, 0.0, 8.0, "schedule n_i = M·round(i^power); 0 = constant")
_MLE = Param("mle", int, 0, 0, 1, "1: MLE refit (divide by n); 0: unbiased (divide by n − 1)")
_DIM = Param("dim", int, 1, 1, 10_000, "dimension of the Gaussian")
_SIGMA = Param("sigma", float, 1.0, 0.0, None, "standard deviation of the real data / noise")


@formula(
    "stl-gaussian-logvar",
    params=[_M, _GEN, _DIM, _POWER, _MLE],
    source="Shumailov et al. 2024 (Nature) Gaussian case; survey §5.4; "
    "Wishart log-det (Bishop 2006 B.81)",
    summary="E[ln det(Σ_n Σ⁻¹)] of a Gaussian refitted n times on its own samples "
    "(= n[ψ((M−1)/2) − ln((M−1)/2)] ≈ −n/(M−1) for dim 1, unbiased)",
    check=_positive_generation_sizes,
)
def _f_logvar(*, M: int, generation: int, dim: int, power: float, mle: int) -> TheoryValue:
    return TheoryValue(
        gaussian_logvar_mean(M=M, generation=generation, dim=dim, power=power, mle=bool(mle))
    )


@formula(
    "stl-gaussian-logvar-variance",
    params=[_M, _GEN, _DIM, _POWER],
    source="Bartlett decomposition; survey §5.4",
    summary="Var[ln det(Σ_n Σ⁻¹)] = Σ_i Σ_j ψ'((n_i − j)/2) for the fully synthetic Gaussian loop",
    check=_positive_generation_sizes,
)
def _f_logvar_var(*, M: int, generation: int, dim: int, power: float) -> TheoryValue:
    return TheoryValue(gaussian_logvar_variance(M=M, generation=generation, dim=dim, power=power))


@formula(
    "stl-gaussian-mle-variance",
    params=[_SIGMA, _M, _GEN, _POWER],
    source="survey §5.4 (E[σ_n²] = σ²((M−1)/M)^n); Shumailov et al. 2024 Gaussian case",
    summary="E[σ_n²] of the MLE-refitted Gaussian: σ² Π_i (n_i − 1)/n_i",
)
def _f_mle_var(*, sigma: float, M: int, generation: int, power: float) -> TheoryValue:
    return TheoryValue(gaussian_mle_variance(sigma=sigma, M=M, generation=generation, power=power))


@formula(
    "stl-gaussian-mean-drift",
    params=[
        _SIGMA,
        _M,
        _GEN,
        _DIM,
        _POWER,
        _MLE,
        Param("accumulate", int, 0, 0, 1, "1: accumulate (exact with the covariance fixed)"),
    ],
    source="survey §5.4 (E[(μ_n − μ)²] = nσ²/M); Gerstgrasser et al. 2024 recursion (accumulate); "
    "Fu et al. 2024 (survey Cor 5.8) for growing n_i",
    summary="E||μ_n − μ||² of the fully synthetic Gaussian loop (replace, or accumulate)",
)
def _f_mean_drift(
    *, sigma: float, M: int, generation: int, dim: int, power: float, mle: int, accumulate: int
) -> TheoryValue:
    return TheoryValue(
        gaussian_mean_drift(
            sigma=sigma,
            M=M,
            generation=generation,
            dim=dim,
            power=power,
            mle=bool(mle),
            accumulate=bool(accumulate),
        )
    )


@formula(
    "stl-gaussian-expected-w2sq",
    params=[_SIGMA, _M, _GEN, _POWER, _MLE],
    source="Dowson & Landau 1982 (W2 between Gaussians); chi moments; survey §5.4",
    summary="exact E[W2²(fitted, real)] after n fully synthetic refits of a 1-D Gaussian",
    check=_positive_generation_sizes,
)
def _f_expected_w2(*, sigma: float, M: int, generation: int, power: float, mle: int) -> TheoryValue:
    return TheoryValue(
        gaussian_expected_w2sq(sigma=sigma, M=M, generation=generation, power=power, mle=bool(mle))
    )


@formula(
    "stl-gaussian-w2",
    params=[
        Param("mu1", float, 0.0),
        Param("sigma1", float, 1.0, 0.0, None),
        Param("mu2", float, 0.0),
        Param("sigma2", float, 1.0, 0.0, None),
    ],
    source="Dowson & Landau 1982; Givens & Shortt 1984",
    summary="W2(N(μ1, σ1²), N(μ2, σ2²)) = sqrt((μ1−μ2)² + (σ1−σ2)²)",
)
def _f_w2(*, mu1: float, sigma1: float, mu2: float, sigma2: float) -> TheoryValue:
    return TheoryValue(gaussian_w2(mu1=mu1, sigma1=sigma1, mu2=mu2, sigma2=sigma2))


_LINREG_PARAMS = [
    Param("d", int, None, 1, 100_000, "dimension of w"),
    Param("T", int, None, 3, 10**9, "rows of the fixed design (T > d + 1)"),
    _SIGMA,
    Param("generation", int, None, 0, 10**7, "number of fits; 1 = the fit on real labels"),
    Param("power", float, 0.0, 0.0, 8.0, "design copies per generation c_i = round(i^power)"),
]


@formula(
    "stl-linreg-replace",
    params=_LINREG_PARAMS,
    source="Dohmatob, Feng & Kempe 2024 ('Model collapse demystified'); Gerstgrasser et al. "
    "2024 ('Is model collapse inevitable?') replacement case; survey §5.4",
    summary="E||ŵ_n − w*||² = nσ² d/(T − d − 1): linear growth when labels are replaced",
    check=_check_design,
)
def _f_linreg_replace(
    *, d: int, T: int, sigma: float, generation: int, power: float
) -> TheoryValue:
    return TheoryValue(
        linreg_replace_error(d=d, T=T, sigma=sigma, generation=generation, power=power)
    )


@formula(
    "stl-linreg-accumulate",
    params=_LINREG_PARAMS,
    source="Gerstgrasser et al. 2024 ('Is model collapse inevitable?') accumulation; survey §5.4",
    summary="E||ŵ_n − w*||² = σ² d/(T − d − 1) Σ_{i≤n} 1/i² ≤ π²/6 × the first generation's",
    check=_check_design,
)
def _f_linreg_accumulate(
    *, d: int, T: int, sigma: float, generation: int, power: float
) -> TheoryValue:
    return TheoryValue(
        linreg_accumulate_error(d=d, T=T, sigma=sigma, generation=generation, power=power)
    )


_ALPHA = Param("real_fraction", float, None, 0.0, 1.0, "share α of real data (λ = (1−α)/α)")
_GAMMA = Param("gamma", float, 0.0, 0.0, None, "correction strength γ")


@formula(
    "stl-mix-contraction",
    params=[_ALPHA, _GAMMA, Param("n", int, 0, 0, None, "sample size (0: no rounding of αn)")],
    source="Bertrand et al. 2024 Gaussian example, survey §5.4 (μ_{t+1} = (μ* + λμ_t)/(1+λ)); "
    "Gillman et al. 2024 (correction π_γ)",
    summary="exact contraction factor λ/(1+λ)/(1+γ) = (1−α)/(1+γ) of the refitted mean",
)
def _f_contraction(*, real_fraction: float, gamma: float, n: int) -> TheoryValue:
    return TheoryValue(mix_contraction(real_fraction=real_fraction, gamma=gamma, n=n))


@formula(
    "stl-gaussian-mix-mean-mse",
    params=[
        _SIGMA,
        Param("n", int, None, 1, None, "samples per generation"),
        _ALPHA,
        _GAMMA,
        _GEN,
        _DIM,
    ],
    source="Bertrand et al. 2024 Gaussian example: exact finite-sample recursion (derived here)",
    summary="E||μ_n − μ*||² with real share α and correction γ, covariance fixed (not refitted)",
)
def _f_mix_mse(
    *, sigma: float, n: int, real_fraction: float, gamma: float, generation: int, dim: int
) -> TheoryValue:
    return TheoryValue(
        gaussian_mix_mean_mse(
            sigma=sigma,
            n=n,
            real_fraction=real_fraction,
            gamma=gamma,
            generation=generation,
            dim=dim,
        )
    )


@formula(
    "stl-bertrand-stability",
    params=[
        Param("lam", float, None, 0.0, None, "synthetic samples per real sample λ"),
        Param("lipschitz", float, 0.0, 0.0, None, "L: Lipschitz constant of ∇²_θ log p_θ(x) in x"),
        Param("eps", float, 0.0, 0.0, None, "ε ≥ W1(p_θ*, p_data) (0 = well specified)"),
        Param("strong_concavity", float, 1.0, 1e-12, None, "α: strong concavity near θ*"),
        _GAMMA,
    ],
    source="Bertrand et al. 2024 (ICLR) Thm 1, survey Thm 5.4; γ via Gillman et al. 2024 π_γ",
    summary="κ = λ_eff(1 + Lε/α), λ_eff = λ/(1+γ(1+λ)); retraining is stable near θ* if κ < 1",
)
def _f_bertrand(
    *, lam: float, lipschitz: float, eps: float, strong_concavity: float, gamma: float
) -> TheoryValue:
    return TheoryValue(
        bertrand_stability(
            lam=lam, lipschitz=lipschitz, eps=eps, strong_concavity=strong_concavity, gamma=gamma
        ).kappa
    )


@formula(
    "stl-kde-variance",
    params=[
        Param("real_var", float, 1.0, 0.0, None, "per-coordinate variance of the real data"),
        Param("bandwidth", float, None, 0.0, None, "kernel bandwidth h"),
        Param("n0", int, None, 1, None, "samples per generation"),
        _GEN,
        _POWER,
    ],
    source="derived (resample + h·N(0, I) per generation); "
    "cf. Shumailov et al. 2024 (density estimators)",
    summary="variance of a Gaussian KDE refitted n times on its own samples (→ M h²)",
)
def _f_kde(
    *, real_var: float, bandwidth: float, n0: int, generation: int, power: float
) -> TheoryValue:
    return TheoryValue(
        kde_model_variance(
            real_var=real_var, bandwidth=bandwidth, n0=n0, generation=generation, power=power
        )
    )


def _check_k(params: dict[str, Any]) -> None:
    if params["k"] > params["vocab"]:
        raise ValueError(f"parameter 'k' = {params['k']} must be <= 'vocab' = {params['vocab']}")


_VOCAB = Param("vocab", int, None, 1, 10**8, "number of token types")
_EXPONENT = Param("exponent", float, 1.1, 0.0, 20.0, "Zipf exponent β (p_i ∝ i^-β)")


@formula(
    "stl-zipf-tail-mass",
    params=[_VOCAB, _EXPONENT, Param("k", int, None, 0, None, "rank at which the tail is cut")],
    source="Dohmatob et al. 2024 ('A tale of tails', ICML), tail cutting",
    summary="Σ_{i>k} p_i: the plateau of the error once the tail is cut at rank k",
    check=_check_k,
)
def _f_tail(*, vocab: int, exponent: float, k: int) -> TheoryValue:
    return TheoryValue(zipf_tail_mass(vocab=vocab, exponent=exponent, k=k))


@formula(
    "stl-zipf-missing-mass",
    params=[_VOCAB, _EXPONENT, Param("n", int, None, 0, None, "number of draws")],
    source="Good 1953 (missing mass); Dohmatob et al. 2024 (first tail cut)",
    summary="E[mass of tokens unseen in n draws] = Σ_i p_i (1 − p_i)^n",
)
def _f_missing(*, vocab: int, exponent: float, n: int) -> TheoryValue:
    return TheoryValue(zipf_missing_mass(vocab=vocab, exponent=exponent, n=n))
