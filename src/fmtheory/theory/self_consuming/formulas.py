"""The registry entries (``fmtheory theory list``) of the self-consuming closed forms; names are stable.

Conventions: see :mod:`fmtheory.theory.self_consuming`.
"""

from __future__ import annotations

from typing import Any

from fmtheory.theory.registry import Param, TheoryValue, formula
from fmtheory.theory.self_consuming.gaussian import (
    gaussian_expected_w2sq,
    gaussian_logvar_mean,
    gaussian_logvar_variance,
    gaussian_mean_drift,
    gaussian_mle_variance,
    gaussian_w2,
)
from fmtheory.theory.self_consuming.kde import kde_model_variance
from fmtheory.theory.self_consuming.linreg import linreg_accumulate_error, linreg_replace_error
from fmtheory.theory.self_consuming.mixing import (
    bertrand_stability,
    gaussian_mix_mean_mse,
    mix_contraction,
)
from fmtheory.theory.self_consuming.zipf import zipf_missing_mass, zipf_tail_mass

__all__: list[str] = []

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
