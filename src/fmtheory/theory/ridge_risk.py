"""Risk of ridge regression from k in-context pairs (isotropic x), by Monte Carlo over the design.

Same model as :mod:`fmtheory.theory.linear_regression`, with isotropic x: w ~ N(0, τ² I_d),
x ~ N(0, I_d), y = <w, x> + ε, ε ~ N(0, σ²); the context is X: (k, d), y: (k,).

The estimator is ridge, ŵ_λ = (XᵀX + λ I)⁻¹ Xᵀ y (penalty λ‖w‖² on the UN-normalised loss
‖y - Xw‖²), which is the posterior mean, hence Bayes-optimal, at λ = σ²/τ²; λ → 0⁺ is minimum-norm
least squares (whose exact risk is ``ols-risk`` in :mod:`fmtheory.theory.linear_regression`).

Every value is the prediction risk E(<ŵ, x_q> - y_q)² at a fresh query (it includes the noise σ² of
y_q) and is NOT divided by d.
"""

from __future__ import annotations

import math

from fmtheory.theory.linear_regression import _BAYES_PARAMS, _iso_traces, _ols_value, _positive
from fmtheory.theory.registry import Param, TheoryValue, register_formula

__all__ = ["ridge_risk"]


def ridge_risk(
    *,
    d: int,
    k: int,
    sigma: float,
    lam: float,
    prior_scale: float = 1.0,
    n_mc: int = 2000,
    seed: int = 0,
) -> TheoryValue:
    """Prediction risk of ridge ŵ_λ = (XᵀX + λI)⁻¹Xᵀy, isotropic x, averaged over X (not / d).

    Conditional on X (the bias-variance decomposition of Hastie et al. 2022 §2 and Dobriban & Wager
    2018 §2, averaged over w ~ N(0, τ² I) and ε):

        E[(<ŵ_λ, x_q> - y_q)² | X] = τ² λ² tr(XᵀX + λI)⁻² + σ² tr XᵀX (XᵀX + λI)⁻² + σ²,

    a function of the spectrum of XᵀX only; its mean over X is a Monte Carlo average over ``n_mc``
    designs (the same tridiagonal Laguerre draws as
    :func:`~fmtheory.theory.linear_regression.bayes_risk` for equal ``seed``, so at λ = σ²/τ² the
    two agree draw by draw: common random numbers). λ = 0 is the ridgeless limit λ → 0⁺ (min-norm
    least squares: each of the d - k null directions costs τ²); there the value is ``inf`` for σ > 0
    and |k - d| <= 1, exact τ²(d - k)⁺ for σ = 0, and for 2 <= |k - d| <= 3 the per-design risk has
    infinite variance, so the stderr is unreliable: use ``ols-risk``.  k = 0 gives τ² d + σ²
    exactly.
    """
    p = _RIDGE.resolve(
        dict(d=d, k=k, sigma=sigma, lam=lam, prior_scale=prior_scale, n_mc=n_mc, seed=seed)
    )
    d, k, sigma, lam, tau = p["d"], p["k"], p["sigma"], p["lam"], p["prior_scale"]
    if k == 0 or (lam == 0 and (sigma == 0 or abs(k - d) <= 1)):
        return TheoryValue(_ols_value(d, k, sigma, tau), None)
    tr_r, tr_r2 = _iso_traces(seed=p["seed"], n_mc=p["n_mc"], ks=[k], d=d, lam=lam)
    tr_r, tr_r2 = tr_r[0], tr_r2[0]  # (n_mc,) each, over the min(k, d) non-zero eigenvalues
    # null directions (d - min(k, d) of them): bias τ² each; non-zero eigenvalues e: bias
    # τ²λ²/(e+λ)², variance σ² e/(e+λ)² = σ² [1/(e+λ) - λ/(e+λ)²].
    risk = tau**2 * (d - min(k, d)) + tau**2 * lam**2 * tr_r2 + sigma**2 * (tr_r - lam * tr_r2)
    return TheoryValue(
        float(risk.mean()) + sigma**2, float(risk.std(ddof=1) / math.sqrt(risk.shape[0]))
    )


_RIDGE = register_formula(
    "ridge-risk",
    ridge_risk,
    params=(
        *_BAYES_PARAMS[:3],
        Param("lam", float, None, 0, None, "ridge penalty λ on ‖y - Xw‖² + λ‖w‖² (σ²/τ²: Bayes)"),
        _BAYES_PARAMS[3],
        *_BAYES_PARAMS[5:],
    ),
    source="Hastie, Montanari, Rosset & Tibshirani 2022 §2 (bias-variance decomposition of ridge); "
    "Dobriban & Wager 2018 §2; Bishop 2006 §3.3 (λ = σ²/τ² is the posterior mean)",
    summary="prediction risk of ridge (XᵀX + λI)⁻¹Xᵀy from k pairs, isotropic x, E over X by "
    "Monte Carlo (not divided by d)",
    check=_positive("prior_scale"),
)
