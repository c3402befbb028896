"""Least squares, ridge and the Gaussian posterior mean, at every prefix length at once.

All three are the same computation (see ``_linalg``): the Gaussian posterior mean under prior
``w ~ N(μ, Σ)`` and noise ``N(0, σ²)`` is ridge with ``α = σ²`` on whitened features
``x̃ = x U`` (``U Uᵀ = Σ``) and targets ``y − xᵀμ``; least squares is its ``σ → 0`` limit with a flat
prior.  Predictions at all prefixes cost one ``n×n`` Cholesky per prompt (the kernel form).
"""

from __future__ import annotations

import numbers
from typing import Any

import torch
from torch import Tensor

from fmtheory.estimators._linalg import (
    CHUNK_ELEMENTS,
    chunks,
    minnorm_fit,
    minnorm_prefix_predictions,
    ridge_fit,
    sequential_gp_predictions,
)
from fmtheory.estimators.base import (
    COMPUTE_DTYPE,
    LinearICLEstimator,
    check_real,
    register_estimator,
)

__all__ = ["OLS", "Ridge", "BayesLinear"]


class OLS(LinearICLEstimator):
    """Minimum-norm least squares ``ŵ = X⁺ y`` (pseudo-inverse; interpolates when ``k <= dim``).

    Hastie, Montanari, Rosset & Tibshirani 2022, "Surprises in high-dimensional ridgeless least
    squares interpolation", Ann. Statist. §2 (``β̂ = (XᵀX)⁺Xᵀy``); Garg et al. 2022 §3 baseline.
    Kernel form for ``k < dim``, Cholesky of ``XᵀX`` for ``k >= dim``, SVD where rank-deficient
    (``_linalg.minnorm_prefix_predictions``).
    """

    name = "ols"

    def __init__(self) -> None:
        pass

    def _fit(self, x: Tensor, y: Tensor) -> None:
        self.coef_ = minnorm_fit(x.to(COMPUTE_DTYPE), y.to(COMPUTE_DTYPE))

    def _predict_prefixes(self, x: Tensor, y: Tensor) -> Tensor:
        return minnorm_prefix_predictions(x.to(COMPUTE_DTYPE), y.to(COMPUTE_DTYPE))


class Ridge(LinearICLEstimator):
    """Ridge regression ``ŵ = (XᵀX + αI)⁻¹ Xᵀy`` (no intercept; ``α = 0``: minimum-norm OLS).

    Hoerl & Kennard 1970; the objective is scikit-learn's ``Ridge(fit_intercept=False)``:
    ``‖y − Xw‖² + α‖w‖²``.  All prefixes via ``f_k = y_k − L_kk (L⁻¹y)_k``, ``LLᵀ = XXᵀ + αI``
    (Rasmussen & Williams 2006, Alg. 2.1).
    """

    name = "ridge"

    def __init__(self, *, alpha: float = 1.0) -> None:
        check_real("alpha", alpha, owner="ridge", low=0.0)
        self.alpha = alpha

    def _fit(self, x: Tensor, y: Tensor) -> None:
        x, y = x.to(COMPUTE_DTYPE), y.to(COMPUTE_DTYPE)
        alpha = float(self.alpha)
        self.coef_ = ridge_fit(x, y, alpha) if alpha > 0 else minnorm_fit(x, y)

    def _predict_prefixes(self, x: Tensor, y: Tensor) -> Tensor:
        alpha = float(self.alpha)
        if alpha > 0:
            return sequential_gp_predictions(x, y, alpha)  # converts chunk by chunk
        return minnorm_prefix_predictions(x.to(COMPUTE_DTYPE), y.to(COMPUTE_DTYPE))


def _check_prior_mean(value: Any) -> None:
    if isinstance(value, Tensor):
        if not value.is_floating_point() or value.ndim != 1 or value.numel() < 1:
            raise ValueError(
                f"bayes.prior_mean = Tensor{tuple(value.shape)} ({value.dtype}): expected a float "
                "or a floating tensor of shape (dim,)"
            )
        if not bool(torch.isfinite(value).all()):
            raise ValueError("bayes.prior_mean holds NaN or inf: every entry must be finite")
    else:
        check_real("prior_mean", value, owner="bayes")


def _check_prior_cov(value: Any) -> None:
    if not isinstance(value, Tensor):
        check_real("prior_cov", value, owner="bayes", low=0.0, low_open=True)
        return
    allowed = "a float > 0, a (dim,) diagonal >= 0, or a (dim, dim) symmetric PSD matrix"
    if not value.is_floating_point() or value.ndim not in (1, 2) or value.numel() < 1:
        raise ValueError(f"bayes.prior_cov = Tensor{tuple(value.shape)}: expected {allowed}")
    if not bool(torch.isfinite(value).all()):
        raise ValueError("bayes.prior_cov holds NaN or inf: every entry must be finite")
    v = value.detach().to("cpu", COMPUTE_DTYPE)
    if v.ndim == 1:
        if bool((v < 0).any()) or not bool((v > 0).any()):
            raise ValueError(f"bayes.prior_cov = {v.tolist()}: expected {allowed}")
        return
    if v.shape[0] != v.shape[1]:
        raise ValueError(f"bayes.prior_cov.shape = {tuple(v.shape)}: expected {allowed}")
    scale = float(v.abs().max())
    if scale == 0 or not torch.allclose(v, v.T, rtol=0, atol=1e-10 * scale):
        raise ValueError(f"bayes.prior_cov is not symmetric (or is 0): expected {allowed}")
    if float(torch.linalg.eigvalsh(v).min()) < -1e-10 * scale:
        raise ValueError(f"bayes.prior_cov has a negative eigenvalue: expected {allowed}")


class BayesLinear(LinearICLEstimator):
    """Gaussian posterior mean ``ŵ = μ + Σ Xᵀ(XΣXᵀ + σ²I)⁻¹(y − Xμ)``, prior ``N(μ, Σ)``, noise ``σ``.

    Bishop 2006, PRML eqs. (3.49)–(3.51) (``m_N = S_N(S_0⁻¹m_0 + βΦᵀt)``, ``S_N⁻¹ = S_0⁻¹ + βΦᵀΦ``),
    rewritten by Woodbury in the form above, which needs no ``Σ⁻¹``.  The Bayes-optimal predictor
    (MMSE) for the Gaussian task prior of Raventós et al. 2023 / Garg et al. 2022.
    ``noise_std = 0`` gives the interpolating posterior mean ``μ + ΣXᵀ(XΣXᵀ)⁺(y − Xμ)``.

    ``prior_mean``: float (every coordinate) or tensor ``(dim,)``; ``prior_cov``: float ``c``
    (``c·I``), tensor ``(dim,)`` (diagonal) or ``(dim, dim)`` (PSD, may be singular).  Computed as
    ridge on whitened features ``x U``, ``U Uᵀ = Σ`` (``U = V Λ^{1/2}`` from ``eigh``).
    """

    name = "bayes"

    def __init__(
        self,
        *,
        prior_mean: float | Tensor = 0.0,
        prior_cov: float | Tensor = 1.0,
        noise_std: float = 0.0,
    ) -> None:
        _check_prior_mean(prior_mean)
        _check_prior_cov(prior_cov)
        check_real("noise_std", noise_std, owner="bayes", low=0.0)
        both = isinstance(prior_mean, Tensor) and isinstance(prior_cov, Tensor)
        if both and prior_mean.shape[0] != prior_cov.shape[0]:
            raise ValueError(
                f"bayes.prior_mean.shape = {tuple(prior_mean.shape)}: expected "
                f"({prior_cov.shape[0]},) to match prior_cov"
            )
        self.prior_mean = prior_mean
        self.prior_cov = prior_cov
        self.noise_std = noise_std

    def _prior(self, dim: int, device: torch.device) -> tuple[Tensor, Tensor]:
        """(μ: (dim,), U: (dim, r)) in float64 with ``U Uᵀ = Σ`` (zero-variance directions dropped)."""
        mu = self._mean(dim, device)
        cov = self.prior_cov
        if isinstance(cov, numbers.Real):
            return mu, float(cov) ** 0.5 * torch.eye(dim, dtype=COMPUTE_DTYPE, device=device)
        c = self._cov(dim, device)
        if c.ndim == 1:
            keep = c > 0
            return mu, torch.diag(c.sqrt())[:, keep]
        lam, vec = torch.linalg.eigh((c + c.T) / 2)
        keep = lam > 1e-12 * lam.max()
        return mu, vec[:, keep] * lam[keep].sqrt()

    def _fit(self, x: Tensor, y: Tensor) -> None:
        x, y = x.to(COMPUTE_DTYPE), y.to(COMPUTE_DTYPE)
        mu, u = self._prior(x.shape[-1], x.device)
        r = y - x @ mu
        xt = x @ u
        s2 = float(self.noise_std) ** 2
        v = ridge_fit(xt, r, s2) if s2 > 0 else minnorm_fit(xt, r)
        self.coef_ = mu + v @ u.T

    def _predict_prefixes(self, x: Tensor, y: Tensor) -> Tensor:
        s2 = float(self.noise_std) ** 2
        batch, n, _ = x.shape
        if s2 == 0:
            mu, u = self._prior(x.shape[-1], x.device)
            x, y = x.to(COMPUTE_DTYPE), y.to(COMPUTE_DTYPE)
            xm = x @ mu
            return xm + minnorm_prefix_predictions(x @ u, y - xm)
        factors = self._prior_factors(x.shape[-1], x.device)
        out = torch.empty(batch, n, dtype=COMPUTE_DTYPE, device=x.device)
        if factors is None:  # a subclass's factor U (Σ = U Uᵀ) only: whiten here
            mu, u = self._prior(x.shape[-1], x.device)
            for sl in chunks(batch, n * max(n, x.shape[-1])):
                xc = x[sl].to(COMPUTE_DTYPE)
                xm = xc @ mu
                out[sl] = xm + sequential_gp_predictions(xc @ u, y[sl] - xm, s2)
            return out
        mu, scale, rot = factors
        if rot is None:  # diagonal prior: sequential_gp_predictions scales x and subtracts x·μ
            return sequential_gp_predictions(x, y, s2, shift=mu, scale=scale)
        # general Σ = V diag(c²) Vᵀ: rotate x onto V (x·μ = (xV)·(Vᵀμ)), in chunks of prompts
        for sl in chunks(batch, n * x.shape[-1], CHUNK_ELEMENTS * 8):
            xr = x[sl].to(COMPUTE_DTYPE) @ rot
            out[sl] = sequential_gp_predictions(xr, y[sl], s2, shift=rot.T @ mu, scale=scale)
        return out

    def _mean(self, dim: int, device: torch.device) -> Tensor:
        """μ: (dim,) in float64."""
        mean = self.prior_mean
        if not isinstance(mean, Tensor):
            return torch.full((dim,), float(mean), dtype=COMPUTE_DTYPE, device=device)
        if mean.shape[0] != dim:
            raise ValueError(f"bayes.prior_mean.shape = {tuple(mean.shape)}: x has dim {dim}")
        return mean.detach().to(device, COMPUTE_DTYPE)

    def _cov(self, dim: int, device: torch.device) -> Tensor:
        """The tensor ``prior_cov`` ((dim,) or (dim, dim)) in float64, its size checked."""
        cov = self.prior_cov
        if cov.shape[0] != dim:
            raise ValueError(f"bayes.prior_cov.shape = {tuple(cov.shape)}: x has dim {dim}")
        return cov.detach().to(device, COMPUTE_DTYPE)

    def _prior_factors(
        self, dim: int, device: torch.device
    ) -> tuple[Tensor, Tensor, Tensor | None] | None:
        """(μ: (dim,), c: (dim,), V: (dim, dim) or None) in float64 with ``Σ = V diag(c²) Vᵀ``.

        ``V`` is None for a scalar or diagonal ``Σ`` (``V = I``); otherwise from ``eigh``, with
        eigenvalues below ``1e-12·max`` set to 0.  A subclass that defines only :meth:`_prior`
        (a factor ``U``, ``Σ = U Uᵀ``) returns None, and predictions whiten by ``U``.
        """
        mu = self._mean(dim, device)
        cov = self.prior_cov
        if isinstance(cov, numbers.Real):
            return (
                mu,
                torch.full((dim,), float(cov) ** 0.5, dtype=COMPUTE_DTYPE, device=device),
                None,
            )
        c = self._cov(dim, device)
        if c.ndim == 1:
            return mu, c.clamp(min=0).sqrt(), None
        lam, vec = torch.linalg.eigh((c + c.T) / 2)
        lam = torch.where(lam > 1e-12 * lam.max(), lam, torch.zeros_like(lam))
        return mu, lam.sqrt(), vec


register_estimator("ols", OLS)
register_estimator("ridge", Ridge)
register_estimator("bayes", BayesLinear)
