"""Estimators of inverse linear regression (Lu & Yu 2025, arXiv:2505.12138): recover w from a context.

All are :class:`~fmtheory.estimators.base.LinearICLEstimator` s: ``fit(x, y)`` on
``x: (batch, k, dim)``, ``y: (batch, k)`` stores ``coef_ = ŵ: (batch, dim)`` (the inverse target);
``predict`` / ``predict_prefixes`` give the forward target ``<ŵ, x_q>``.

* ``ridge_gcv`` (RE): ridge per prompt with its penalty chosen by generalized cross-validation;
* ``tre`` (TRE): two-stage empirical Bayes — estimate the task prior (mean w0, covariance Σw, its rank
  by the spectral gap, the noise) from the pretraining tasks, then the posterior mean under it;
* ``ore`` (ORE): the oracle posterior mean, knowing w0, U, Λ and σ.

Minimum-norm least squares is ``ols`` (:mod:`fmtheory.estimators.least_squares`).
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from fmtheory.estimators.base import (
    COMPUTE_DTYPE,
    LinearICLEstimator,
    check_int,
    check_real,
    register_estimator,
)
from fmtheory.estimators.least_squares import BayesLinear
from fmtheory.theory.ilr import spectral_gap_rank

__all__ = ["RidgeGCV", "TwoStageBayes", "OracleBayes", "TaskPriorEstimate", "estimate_task_prior"]


# ----------------------------------------------------------------------------- RE


def gcv_ridge_fit(
    x: Tensor, y: Tensor, *, alpha_min: float, alpha_max: float, n_alphas: int
) -> tuple[Tensor, Tensor]:
    """(ŵ: (B, d), α: (B,)): ridge with α minimising GCV per prompt, on a relative log grid.

    GCV(α) = (1/k)‖(I - H_α) y‖² / (1 - tr H_α / k)², H_α = X (XᵀX + αI)⁻¹ Xᵀ (Golub, Heath &
    Wahba 1979, "Generalized cross-validation as a method for choosing a good ridge parameter",
    Technometrics 21, eq. 1.4).  From the thin SVD X = P diag(s) Qᵀ and z = Pᵀy:
    ‖(I - H)y‖² = Σ (α/(s²+α))² z² + ‖y‖² - ‖z‖², tr H = Σ s²/(s²+α).  The grid is
    α = c · logspace(alpha_min, alpha_max), c = ‖X‖_F² / d the mean eigenvalue of XᵀX (per prompt);
    ties go to the smallest α.  k = 0 gives ŵ = 0 (α reported as NaN).
    """
    batch, k, d = x.shape
    if k == 0:
        nan = torch.full((batch,), math.nan, dtype=COMPUTE_DTYPE, device=x.device)
        return torch.zeros(batch, d, dtype=COMPUTE_DTYPE, device=x.device), nan
    x, y = x.to(COMPUTE_DTYPE), y.to(COMPUTE_DTYPE)
    p, s, qh = torch.linalg.svd(x, full_matrices=False)  # (B,k,m), (B,m), (B,m,d)
    z = torch.einsum("bkm,bk->bm", p, y)  # (B, m)
    perp = ((y * y).sum(-1) - (z * z).sum(-1)).clamp_min(0.0)  # part of y off the column space
    scale = (x * x).sum((1, 2)) / d  # (B,)
    grid = torch.logspace(
        math.log10(alpha_min), math.log10(alpha_max), n_alphas, dtype=COMPUTE_DTYPE,
        device=x.device,
    )  # fmt: skip
    alphas = scale.clamp_min(1e-300)[:, None] * grid  # (B, A)
    s2 = (s * s)[:, :, None]  # (B, m, 1)
    shrink = alphas[:, None, :] / (s2 + alphas[:, None, :])  # α/(s²+α), (B, m, A)
    rss = (shrink**2 * (z * z)[:, :, None]).sum(1) + perp[:, None]  # (B, A)
    dof = (1.0 - shrink).sum(1)  # tr H, (B, A)
    gcv = (rss / k) / (1.0 - dof / k).clamp_min(1e-300) ** 2
    best = gcv.argmin(-1)  # first minimum
    alpha = alphas.gather(1, best[:, None])[:, 0]
    coef_s = s / (s * s + alpha[:, None])  # (B, m)
    w = torch.einsum("bmd,bm->bd", qh, coef_s * z)
    return w, alpha


class RidgeGCV(LinearICLEstimator):
    """RE: ridge ``ŵ = (XᵀX + αI)⁻¹ Xᵀy`` with α chosen per prompt by GCV (Golub et al. 1979).

    The candidate α are ``‖X‖_F²/d × logspace(log10 alpha_min, log10 alpha_max, n_alphas)``
    (:func:`gcv_ridge_fit`).  The RE baseline of Lu & Yu 2025: it knows nothing of the task prior.
    Learned state: ``coef_: (batch, dim)``, ``alpha_: (batch,)``.  Prefix predictions refit at
    every prefix length (a loop over k, batched over prompts).
    """

    name = "ridge_gcv"

    def __init__(
        self, *, alpha_min: float = 1e-6, alpha_max: float = 1e3, n_alphas: int = 46
    ) -> None:
        check_real("alpha_min", alpha_min, owner="ridge_gcv", low=0.0, low_open=True)
        check_real("alpha_max", alpha_max, owner="ridge_gcv", low=0.0, low_open=True)
        if not alpha_max >= alpha_min:
            raise ValueError(
                f"ridge_gcv.alpha_max = {alpha_max!r}: must be >= alpha_min = {alpha_min!r}"
            )
        check_int("n_alphas", n_alphas, owner="ridge_gcv", low=1)
        self.alpha_min = alpha_min
        self.alpha_max = alpha_max
        self.n_alphas = n_alphas

    def _gcv(self, x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
        return gcv_ridge_fit(x, y, alpha_min=float(self.alpha_min),
                             alpha_max=float(self.alpha_max), n_alphas=int(self.n_alphas))  # fmt: skip

    def _fit(self, x: Tensor, y: Tensor) -> None:
        self.coef_, self.alpha_ = self._gcv(x, y)

    def _predict_prefixes(self, x: Tensor, y: Tensor) -> Tensor:
        out = torch.empty(x.shape[:2], dtype=COMPUTE_DTYPE, device=x.device)
        xq = x.to(COMPUTE_DTYPE)
        for k in range(x.shape[1]):
            w, _ = self._gcv(x[:, :k], y[:, :k])
            out[:, k] = (xq[:, k] * w).sum(-1)
        return out


# ----------------------------------------------------------------------------- TRE


@dataclass(frozen=True)
class TaskPriorEstimate:
    """An estimated task prior N(mean, basis·diag(spectrum)·basisᵀ) and noise, float64.

    ``mean: (d,)``; ``cov: (d, d)`` the full (untruncated) moment estimate of Σw;
    ``eigenvalues: (d,)`` its spectrum, descending; ``rank`` r̂; ``basis: (d, r̂)``,
    ``spectrum: (r̂,)`` its top eigenpairs (eigenvalues clamped > 0); ``noise_std`` σ̂;
    ``method``: "least_squares" (per-task fits, m >= d + 2 pairs) or "moments" (m < d + 2).
    """

    mean: Tensor
    cov: Tensor
    eigenvalues: Tensor
    rank: int
    basis: Tensor
    spectrum: Tensor
    noise_std: float
    method: str

    @property
    def prior_cov(self) -> Tensor:
        """The rank-r̂ prior covariance basis·diag(spectrum)·basisᵀ, (d, d), exactly symmetric."""
        c = (self.basis * self.spectrum) @ self.basis.T
        return (c + c.T) / 2


def _check_tasks(x: Any, y: Any, owner: str) -> tuple[Tensor, Tensor]:
    for name, t, nd, what in (("tasks_x", x, 3, "(T, m, dim)"), ("tasks_y", y, 2, "(T, m)")):
        if not isinstance(t, Tensor) or not t.is_floating_point() or t.ndim != nd:
            shape = tuple(t.shape) if isinstance(t, Tensor) else type(t).__name__
            raise ValueError(f"{owner}.{name} = {shape}: expected a floating tensor {what}")
        if not bool(torch.isfinite(t).all()):
            raise ValueError(f"{owner}.{name} holds NaN or inf: every entry must be finite")
    if tuple(y.shape) != tuple(x.shape[:2]):
        raise ValueError(
            f"{owner}.tasks_y.shape = {tuple(y.shape)}: expected {tuple(x.shape[:2])} (T, m)"
        )
    if x.shape[0] < 2 or x.shape[1] < 1 or x.shape[2] < 1:
        raise ValueError(f"{owner}.tasks_x.shape = {tuple(x.shape)}: need T >= 2 tasks, m >= 1")
    return x, y


def estimate_task_prior(
    x: Tensor, y: Tensor, *, rank: int | None = None, noise_std: float | None = None
) -> TaskPriorEstimate:
    """Stage 1 of TRE: the task prior from T pretraining tasks ``x: (T, m, d)``, ``y: (T, m)``.

    Empirical Bayes by the method of moments (Robbins 1956; Morris 1983, "Parametric empirical
    Bayes inference", JASA 78 §2), from each task's own fit:

    * m >= d + 2, least squares: ŵ_t = (X_tᵀX_t)⁻¹X_tᵀy_t is unbiased with
      Cov(ŵ) = Σw + σ² E(XᵀX)⁻¹, so mean = avg ŵ_t, Σ̂w = sample Cov(ŵ_t) - σ̂² avg (X_tᵀX_t)⁻¹,
      σ̂² = Σ_t RSS_t / (T (m - d));
    * m < d + 2 (fewer pairs than needed to fit each task), moments: with Σ̂x the pooled second
      moment of x, w̃_t = Σ̂x⁻¹ X_tᵀy_t / m has E[w̃ | w] = w and, for Gaussian x (Isserlis),
      E[w̃ w̃ᵀ] = (1 + 1/m) E[wwᵀ] + E[y²] Σx⁻¹ / m; so mean = avg w̃_t and
      Σ̂w = (avg w̃w̃ᵀ - avg(y²) Σ̂x⁻¹/m) / (1 + 1/m) - mean meanᵀ.  σ̂² is the pooled residual
      variance of least squares inside the estimated subspace, Σ RSS_t / (T (m - r̂)) (m > r̂),
      else avg(y²) - tr(Σ̂x E[wwᵀ]) clamped at 0.

    The rank is the spectral gap of Σ̂w (:func:`fmtheory.theory.ilr.spectral_gap_rank`) unless
    ``rank`` is given; ``noise_std`` given replaces σ̂.
    """
    x, y = _check_tasks(x, y, "tre")
    x, y = x.to(COMPUTE_DTYPE), y.to(COMPUTE_DTYPE)
    t, m, d = x.shape
    if rank is not None and not 1 <= rank <= d:
        raise ValueError(f"tre.rank = {rank!r}: must be in [1, dim = {d}]")
    gram = x.transpose(1, 2) @ x  # (T, d, d)
    xty = torch.einsum("tmd,tm->td", x, y)
    if m >= d + 2:
        method = "least_squares"
        chol = torch.linalg.cholesky(gram)
        w_hat = torch.cholesky_solve(xty[..., None], chol)[..., 0]
        rss = ((y - torch.einsum("tmd,td->tm", x, w_hat)) ** 2).sum()
        s2 = float(rss) / (t * (m - d))
        mean = w_hat.mean(0)
        dev = w_hat - mean
        cov_hat = dev.T @ dev / (t - 1)
        inv_mean = torch.cholesky_inverse(chol).mean(0)
        sigma2_used = s2 if noise_std is None else float(noise_std) ** 2
        cov = cov_hat - sigma2_used * inv_mean
    else:
        method = "moments"
        sx = gram.sum(0) / (t * m)  # pooled E[x xᵀ]
        sx_inv = torch.linalg.inv(sx)
        w_t = xty @ sx_inv / m  # (T, d), Σ̂x symmetric
        mean = w_t.mean(0)
        ey2 = float((y * y).mean())
        second = (w_t.T @ w_t / t - ey2 * sx_inv / m) / (1.0 + 1.0 / m)
        cov = second - torch.outer(mean, mean)
        s2 = None
    cov = (cov + cov.T) / 2
    evals, evecs = torch.linalg.eigh(cov)
    evals, evecs = evals.flip(0), evecs.flip(1)  # descending
    r_hat = spectral_gap_rank(evals.cpu().numpy()) if rank is None else int(rank)
    top = evals[:r_hat].clamp_min(1e-12 * max(float(evals[0]), 1e-300))
    basis = evecs[:, :r_hat]
    if noise_std is not None:
        sigma = float(noise_std)
    elif s2 is not None:
        sigma = math.sqrt(max(s2, 0.0))
    elif m > r_hat:
        z = x @ basis  # (T, m, r̂)
        res = y - x @ mean
        coef = torch.linalg.lstsq(z, res[..., None]).solution
        rss = ((res - (z @ coef)[..., 0]) ** 2).sum()
        sigma = math.sqrt(float(rss) / (t * (m - r_hat)))
    else:
        sigma = math.sqrt(max(ey2 - float(torch.trace(sx @ second)), 0.0))
    return TaskPriorEstimate(mean=mean, cov=cov, eigenvalues=evals, rank=r_hat, basis=basis,
                             spectrum=top, noise_std=sigma, method=method)  # fmt: skip


class TwoStageBayes(LinearICLEstimator):
    """TRE: two-stage empirical Bayes. Stage 1 estimates the task prior N(ŵ0, Σ̂w) of rank r̂ and
    the noise σ̂ from the pretraining tasks (:func:`estimate_task_prior`); stage 2 is the Gaussian
    posterior mean under it, ``ŵ = ŵ0 + Σ̂ Xᵀ(XΣ̂Xᵀ + σ̂²I)⁻¹(y - Xŵ0)`` (Bishop 2006 eq. 3.49-3.51,
    :class:`~fmtheory.estimators.least_squares.BayesLinear`).  The TRE baseline of Lu & Yu 2025.

    ``tasks_x: (T, m, dim)``, ``tasks_y: (T, m)``: the pretraining tasks' contexts (the transformer
    sees such prompts in pretraining; TRE never sees their w).  ``rank`` / ``noise_std``: fix r̂ /
    σ̂ instead of estimating them.  Learned state: ``coef_``, ``prior_`` (a
    :class:`TaskPriorEstimate`).
    """

    name = "tre"

    def __init__(
        self,
        *,
        tasks_x: Tensor,
        tasks_y: Tensor,
        rank: int | None = None,
        noise_std: float | None = None,
    ) -> None:
        _check_tasks(tasks_x, tasks_y, "tre")
        if rank is not None:
            check_int("rank", rank, owner="tre", low=1)
            if rank > tasks_x.shape[2]:
                raise ValueError(f"tre.rank = {rank!r}: must be <= dim = {tasks_x.shape[2]}")
        if noise_std is not None:
            check_real("noise_std", noise_std, owner="tre", low=0.0)
        self.tasks_x = tasks_x
        self.tasks_y = tasks_y
        self.rank = rank
        self.noise_std = noise_std

    @classmethod
    def example_params(cls) -> dict[str, Any]:
        g = torch.Generator().manual_seed(0)
        x = torch.randn(64, 6, 3, generator=g, dtype=torch.float64)
        w = torch.tensor([0.5, -0.2, 0.1], dtype=torch.float64) + torch.randn(
            64, 1, generator=g, dtype=torch.float64
        ) * torch.tensor([0.6, 0.0, 0.8], dtype=torch.float64)
        y = torch.einsum("tmd,td->tm", x, w) + 0.2 * torch.randn(
            64, 6, generator=g, dtype=torch.float64
        )
        return {"tasks_x": x, "tasks_y": y}

    def _inner(self, dim: int, device: torch.device) -> tuple[BayesLinear, TaskPriorEstimate]:
        if self.tasks_x.shape[2] != dim:
            raise ValueError(f"tre.tasks_x.shape = {tuple(self.tasks_x.shape)}: x has dim {dim}")
        est = estimate_task_prior(self.tasks_x.to(device), self.tasks_y.to(device),
                                  rank=self.rank, noise_std=self.noise_std)  # fmt: skip
        inner = BayesLinear(prior_mean=est.mean, prior_cov=est.prior_cov, noise_std=est.noise_std)
        return inner, est

    def _fit(self, x: Tensor, y: Tensor) -> None:
        inner, self.prior_ = self._inner(x.shape[-1], x.device)
        self.coef_ = inner.fit(x, y).coef_

    def _predict_prefixes(self, x: Tensor, y: Tensor) -> Tensor:
        inner, _ = self._inner(x.shape[-1], x.device)
        return inner.predict_prefixes(x, y)


# ----------------------------------------------------------------------------- ORE


class OracleBayes(BayesLinear):
    """ORE: the oracle posterior mean for w = w0 + U v, v ~ N(0, Λ), knowing w0, U, Λ and σ.

    ``ŵ = w0 + U Λ Zᵀ (Z Λ Zᵀ + σ² I)⁻¹ (y - X w0)``, Z = X U (Bishop 2006 eqs. 3.49-3.51 in the
    r coordinates v; Lu & Yu 2025's oracle): the Bayes estimator of both targets, with error
    :func:`fmtheory.theory.ilr.oracle_mse`.  ``w0: (dim,)``; ``basis``: U, ``(dim, r)`` with
    orthonormal columns; ``spectrum``: Λ as a float (λ I_r) or ``(r,)`` variances > 0;
    ``noise_std``: σ >= 0 (0: the interpolating posterior mean).
    """

    name = "ore"

    def __init__(
        self,
        *,
        w0: Tensor,
        basis: Tensor,
        spectrum: float | Tensor = 1.0,
        noise_std: float = 0.0,
    ) -> None:
        if not isinstance(w0, Tensor) or not w0.is_floating_point() or w0.ndim != 1:
            raise ValueError(f"ore.w0 = {w0!r}: expected a floating tensor of shape (dim,)")
        if not isinstance(basis, Tensor) or not basis.is_floating_point() or basis.ndim != 2:
            raise ValueError(f"ore.basis = {basis!r}: expected a floating tensor (dim, r)")
        if basis.shape[0] != w0.shape[0] or basis.shape[1] < 1:
            raise ValueError(
                f"ore.basis.shape = {tuple(basis.shape)}: expected (dim = {w0.shape[0]}, r >= 1)"
            )
        for name, t in (("w0", w0), ("basis", basis)):
            if not bool(torch.isfinite(t).all()):
                raise ValueError(f"ore.{name} holds NaN or inf: every entry must be finite")
        b = basis.detach().to("cpu", COMPUTE_DTYPE)
        eye = torch.eye(b.shape[1], dtype=COMPUTE_DTYPE)
        if not torch.allclose(b.T @ b, eye, atol=1e-6, rtol=0):
            raise ValueError("ore.basis: columns must be orthonormal (Uᵀ U = I)")
        if isinstance(spectrum, Tensor):
            ok = spectrum.is_floating_point() and tuple(spectrum.shape) == (basis.shape[1],)
            if not ok or not bool((torch.isfinite(spectrum) & (spectrum > 0)).all()):
                raise ValueError(
                    f"ore.spectrum = {spectrum!r}: expected a float > 0 or {basis.shape[1]} "
                    "finite variances > 0"
                )
        else:
            check_real("spectrum", spectrum, owner="ore", low=0.0, low_open=True)
        check_real("noise_std", noise_std, owner="ore", low=0.0)
        self.w0 = w0
        self.basis = basis
        self.spectrum = spectrum
        self.noise_std = noise_std

    @classmethod
    def example_params(cls) -> dict[str, Any]:
        g = torch.Generator().manual_seed(0)
        q, _ = torch.linalg.qr(torch.randn(3, 2, generator=g, dtype=torch.float64))
        return {
            "w0": torch.tensor([0.5, -0.2, 0.1], dtype=torch.float64),
            "basis": q,
            "spectrum": 1.0,
            "noise_std": 0.2,
        }

    def _prior_factors(self, dim: int, device: torch.device) -> None:
        """None: predictions whiten by :meth:`_prior`'s factor (``BayesLinear._predict_prefixes``)."""
        return None

    def _prior(self, dim: int, device: torch.device) -> tuple[Tensor, Tensor]:
        """(w0: (dim,), U Λ^{1/2}: (dim, r)) in float64: the factor of Σw = U Λ Uᵀ."""
        if self.w0.shape[0] != dim:
            raise ValueError(f"ore.w0.shape = {tuple(self.w0.shape)}: x has dim {dim}")
        u = self.basis.detach().to(device, COMPUTE_DTYPE)
        lam = self.spectrum
        if isinstance(lam, numbers.Real):
            scale = torch.full((u.shape[1],), float(lam), dtype=COMPUTE_DTYPE, device=device)
        else:
            scale = lam.detach().to(device, COMPUTE_DTYPE)
        return self.w0.detach().to(device, COMPUTE_DTYPE), u * scale.sqrt()


register_estimator("ridge_gcv", RidgeGCV)
register_estimator("tre", TwoStageBayes)
register_estimator("ore", OracleBayes)
