"""Batched linear algebra shared by the estimators: every prefix of every prompt at once.

All functions take ``x: (batch, n, p)``, ``y: (batch, n)`` (float64, except where a docstring says
any float dtype), return float64 and work in chunks of prompts so temporaries stay cache-sized.

The central identity (sequential Gaussian-process prediction from ONE Cholesky factorisation).  Let
``A = K + s·I = L Lᵀ`` be positive definite (``K = x xᵀ``, ``s`` the noise variance) and
``z = L⁻¹ r``.  The leading ``k×k`` block of ``L`` is the Cholesky factor of the leading block of
``A`` and row ``k`` of ``L z = r`` reads ``Σ_{j<k} L_kj z_j + L_kk z_k = r_k``, where
``Σ_{j<k} L_kj z_j = K[k,:k] A[:k,:k]⁻¹ r[:k]`` (since ``L_k L[k,:k]ᵀ = K[:k,k]``).  Hence the
posterior-mean prediction at position ``k`` from positions ``< k`` is

    f_k = r_k − L_kk z_k          (Rasmussen & Williams 2006, GPML §2.2 and Alg. 2.1;
                                   the "innovations" of Kailath's Kalman filter)

and, by the push-through identity ``xᵀ(x xᵀ + sI)⁻¹ = (xᵀx + sI)⁻¹ xᵀ``, it equals the ridge
prediction ``x_kᵀ (X_kᵀX_k + sI)⁻¹ X_kᵀ r_k``.  One ``n×n`` Cholesky per prompt thus replaces ``n``
``p×p`` solves per prompt.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable
from functools import cache

import torch
from torch import Tensor

from fmtheory.estimators.base import COMPUTE_DTYPE

__all__ = [
    "chunks",
    "exclusive_cumsum",
    "prefix_grams",
    "sequential_gp_predictions",
    "ridge_prefix_gram",
    "ridge_fit",
    "minnorm_prefix_predictions",
    "minnorm_fit",
    "CHUNK_ELEMENTS",
    "KERNEL_MAX_RATIO",
    "PIVOT_RTOL",
    "compiled_kernel",
]

#: Elements (float64) per chunk of temporaries: 2**18 * 8 bytes = 2 MiB, about an L2 cache.
CHUNK_ELEMENTS = 1 << 18

#: The kernel (n×n) form is used while n <= KERNEL_MAX_RATIO · p; measured crossover of the two
#: forms on CPU (float64, one thread): n ≈ 16 p for p = 5 and beyond n = 16 p for p = 20.
KERNEL_MAX_RATIO = 16

#: A Cholesky pivot² below PIVOT_RTOL × (largest diagonal entry) marks a (numerically) rank-deficient
#: or ill-conditioned system; such prompts/prefixes are recomputed by SVD (pseudo-inverse).
PIVOT_RTOL = 1e-8


def chunks(batch: int, per_prompt: int, budget: int = CHUNK_ELEMENTS) -> list[slice]:
    """Slices of ``range(batch)`` holding about ``budget // per_prompt`` prompts each."""
    size = max(1, budget // max(1, per_prompt))
    return [slice(i, min(i + size, batch)) for i in range(0, batch, size)]


def exclusive_cumsum(t: Tensor, dim: int = 1) -> Tensor:
    """``out[..., k, ...] = sum_{i<k} t[..., i, ...]`` along ``dim`` (zero at ``k = 0``)."""
    c = t.cumsum(dim)
    zero = torch.zeros_like(c.narrow(dim, 0, 1))
    return torch.cat([zero, c.narrow(dim, 0, c.shape[dim] - 1)], dim)


def prefix_grams(x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
    """``G: (batch, n, p, p)`` and ``b: (batch, n, p)`` with ``G[:, k] = X_kᵀX_k``, ``b[:, k] = X_kᵀy_k``.

    ``X_k = x[:, :k]`` (so ``G[:, 0] = 0``).  Memory ``batch·n·p²``: chunk the batch before calling.
    """
    outer = x.unsqueeze(-1) * x.unsqueeze(-2)  # (B, n, p, p)
    return exclusive_cumsum(outer, 1), exclusive_cumsum(x * y.unsqueeze(-1), 1)


def _solve_spd_or_lu(a: Tensor, rhs: Tensor) -> Tensor:
    """Solve ``a w = rhs`` for symmetric ``a: (..., p, p)``, ``rhs: (..., p)``; Cholesky, LU if not PD."""
    chol, info = torch.linalg.cholesky_ex(a)
    w = torch.cholesky_solve(rhs.unsqueeze(-1), chol).squeeze(-1)
    bad = info != 0
    if bool(bad.any()):
        w[bad] = torch.linalg.solve(a[bad], rhs[bad])
    return w


def ridge_prefix_gram(x: Tensor, y: Tensor, alpha: float) -> Tensor:
    """Reference-form ridge at every prefix: ``x_kᵀ (G_k + αI)⁻¹ b_k`` via ``p×p`` solves, ``(B, n)``.

    ``batch·n`` small factorisations: used for long prompts (``n > KERNEL_MAX_RATIO · p``) and
    where the Cholesky of the kernel form fails.
    """
    batch, n, p = x.shape
    out = torch.empty(batch, n, dtype=x.dtype, device=x.device)
    eye = torch.eye(p, dtype=x.dtype, device=x.device)
    for sl in chunks(batch, n * p * p):
        g, b = prefix_grams(x[sl], y[sl])
        w = _solve_spd_or_lu(g + alpha * eye, b)
        out[sl] = (x[sl] * w).sum(-1)
    return out


@cache
def compiled_kernel() -> Callable[..., tuple[Tensor, Tensor]] | None:
    """The numba CPU kernel :func:`fmtheory.estimators._kernels.gp_innovations`, or None.

    None when numba cannot be imported or the environment sets ``FMTHEORY_NUMBA=0`` (read once,
    at the first call), and with a warning when numba fails to set the kernel up (for instance no
    writable cache location).  Imported lazily: numba costs ~0.3 s to import.
    """
    if os.environ.get("FMTHEORY_NUMBA", "1").strip().lower() in {"0", "false", "no", "off"}:
        return None
    try:
        from fmtheory.estimators._kernels import gp_innovations
    except ImportError:  # numba not installed
        return None
    except (RuntimeError, OSError) as exc:  # e.g. numba finds no writable cache location
        warnings.warn(
            f"fmtheory: numba kernel unavailable ({exc}); using the torch path", stacklevel=2
        )
        return None
    return gp_innovations


def sequential_gp_predictions(
    x: Tensor,
    r: Tensor,
    noise_var: float,
    *,
    shift: Tensor | None = None,
    scale: Tensor | None = None,
) -> Tensor:
    """``f[:, k] = x_kᵀ (X_kᵀX_k + s I)⁻¹ X_kᵀ r_k`` for every ``k`` (``s = noise_var > 0``), ``(B, n)``.

    ``x``, ``r`` of any float dtype: each chunk is converted to float64 on the way in.

    With ``shift = μ: (p,)`` and ``scale = c: (p,)`` (``c >= 0``): the posterior-mean prediction
    under the prior ``w ~ N(μ, diag(c²))`` and noise variance ``s``,
    ``f_k = x_kᵀμ + x̃_kᵀ (X̃_kᵀX̃_k + s I)⁻¹ X̃_kᵀ (r_k − X_k μ)`` with ``x̃ = x ⊙ c`` (Bishop 2006,
    eqs. 3.50–3.51 after whitening; ``BayesLinear``).

    Via the kernel form ``f_k = r_k − L_kk (L⁻¹ r)_k`` with ``L Lᵀ = x xᵀ + s I`` (module docstring).
    Cost per prompt: one ``n×n`` Cholesky and one triangular solve.  On CPU the compiled kernel of
    ``_kernels`` does this (about 2× faster than batched LAPACK on small matrices); elsewhere, or
    without numba, batched ``torch.linalg`` in cache-sized chunks.  Prompts whose factorisation
    fails (``s`` negligible against ``‖x‖²``) fall back to :func:`ridge_prefix_gram`, and so do
    long prompts, ``n > KERNEL_MAX_RATIO · p``, where ``n`` factorisations of ``p×p`` are cheaper.
    """
    batch, n, p = x.shape
    kernel = compiled_kernel() if x.device.type == "cpu" else None
    if kernel is not None and n <= KERNEL_MAX_RATIO * p:
        out, bad = kernel(x, r, noise_var, shift=shift, scale=scale)
        if bool(bad.any()):
            out[bad] = _gp_torch(x[bad], r[bad], noise_var, shift, scale, primal=True)
        return out
    return _gp_torch(x, r, noise_var, shift, scale, primal=n > KERNEL_MAX_RATIO * p)


def _gp_torch(
    x: Tensor, r: Tensor, s: float, shift: Tensor | None, scale: Tensor | None, primal: bool
) -> Tensor:
    """:func:`sequential_gp_predictions` in batched torch: ``p×p`` solves if ``primal``, else kernel."""
    batch, n, _ = x.shape
    out = torch.empty(batch, n, dtype=COMPUTE_DTYPE, device=x.device)
    per_prompt = n * x.shape[-1] ** 2 if primal else n * n
    for sl in chunks(batch, per_prompt):
        xc, rc = x[sl].to(COMPUTE_DTYPE), r[sl].to(COMPUTE_DTYPE)
        mean = xc @ shift.to(xc) if shift is not None else None
        if mean is not None:
            rc = rc - mean
        if scale is not None:
            xc = xc * scale.to(xc)
        fc = ridge_prefix_gram(xc, rc, s) if primal else _gp_cholesky(xc, rc, s)
        out[sl] = fc if mean is None else fc + mean
    return out


def _gp_cholesky(x: Tensor, r: Tensor, s: float) -> Tensor:
    """Kernel form by batched ``torch.linalg`` (float64 ``x``, ``r``); :func:`ridge_prefix_gram`
    for the prompts whose Cholesky fails."""
    k = torch.bmm(x, x.transpose(1, 2))
    k.diagonal(dim1=1, dim2=2).add_(s)
    chol, info = torch.linalg.cholesky_ex(k)
    z = torch.linalg.solve_triangular(chol, r.unsqueeze(-1), upper=False).squeeze(-1)
    f = r - chol.diagonal(dim1=1, dim2=2) * z
    bad = info != 0
    if bool(bad.any()):
        f[bad] = ridge_prefix_gram(x[bad], r[bad], s)
    return f


def ridge_fit(x: Tensor, y: Tensor, alpha: float) -> Tensor:
    """``w = (XᵀX + αI)⁻¹ Xᵀy`` per prompt (``α > 0``), ``(B, p)``."""
    g = x.transpose(1, 2) @ x
    g.diagonal(dim1=1, dim2=2).add_(alpha)
    return _solve_spd_or_lu(g, torch.einsum("bkp,bk->bp", x, y))


# ----------------------------------------------------------------------------- minimum-norm LS


def _drop_zero_columns(x: Tensor) -> tuple[Tensor, Tensor]:
    """Drop the features that are 0 in every prompt and point (e.g. a curriculum's inactive dims).

    They add nothing to any ``XᵀX``, ``Xᵀy`` or ``x xᵀ``, and the minimum-norm solution is 0 there,
    so predictions are unchanged; only the rank, hence the choice of form, changes.
    """
    keep = (x != 0).flatten(0, 1).any(0)
    return (x if bool(keep.all()) else x[..., keep]), keep


def _good_pivots(chol: Tensor, info: Tensor, diag: Tensor) -> Tensor:
    """``(..., m)`` bool: pivot j and every pivot before it are ``>= PIVOT_RTOL ×`` max diagonal."""
    piv = chol.diagonal(dim1=-2, dim2=-1) ** 2
    scale = diag.amax(-1, keepdim=True)
    ok = torch.isfinite(piv) & (piv >= PIVOT_RTOL * scale) & (scale > 0)
    m = piv.shape[-1]
    idx = torch.arange(m, device=piv.device)
    ok &= (info.unsqueeze(-1) == 0) | (idx < info.unsqueeze(-1) - 1)
    return ok.to(torch.int8).cumprod(-1).bool()


def _pinv_predictions(x_ctx: Tensor, y_ctx: Tensor, counts: Tensor, x_q: Tensor) -> Tensor:
    """``x_qᵀ X⁺ y`` by SVD for rows of ``x_ctx: (F, kmax, p)`` whose first ``counts[f]`` rows count."""
    mask = torch.arange(x_ctx.shape[1], device=x_ctx.device) < counts.unsqueeze(-1)
    xm = x_ctx * mask.unsqueeze(-1)
    w = (torch.linalg.pinv(xm) @ (y_ctx * mask).unsqueeze(-1)).squeeze(-1)
    return (x_q * w).sum(-1)


def minnorm_prefix_predictions(x: Tensor, y: Tensor) -> Tensor:
    """``f[:, k] = x_kᵀ X_k⁺ y_k`` (minimum-norm least squares on the first ``k`` pairs), ``(B, n)``.

    Queries ``k < p`` (under-determined) use the kernel form ``K[k,:k] K_k⁻¹ y_k`` with ``K = x xᵀ``
    and one ``p×p`` Cholesky per prompt (module docstring, ``s = 0``); queries ``k >= p`` use
    ``G_k⁻¹ b_k`` with a batched ``p×p`` Cholesky per prefix.  Where a pivot falls below
    ``PIVOT_RTOL`` (rank deficiency, near-collinearity) the prefix is recomputed by SVD,
    ``torch.linalg.pinv`` (Hastie et al. 2022, "Surprises in high-dimensional ridgeless least
    squares interpolation", §2).
    """
    batch, n, _ = x.shape
    out = torch.zeros(batch, n, dtype=x.dtype, device=x.device)
    xr, _ = _drop_zero_columns(x)
    p = xr.shape[-1]
    if p == 0 or n == 0:
        return out
    redo = torch.zeros(batch, n, dtype=torch.bool, device=x.device)

    # Phase 1: queries 1 .. m-1 with m = min(n, p), kernel form (K_k = X_k X_kᵀ is k×k, k < p).
    m = min(n, p)
    if m > 1:
        for sl in chunks(batch, m * m):
            xc, yc = xr[sl, :m], y[sl, :m]
            kmat = torch.bmm(xc, xc.transpose(1, 2))
            chol, info = torch.linalg.cholesky_ex(kmat)
            good = _good_pivots(chol, info, kmat.diagonal(dim1=1, dim2=2))
            z = torch.linalg.solve_triangular(chol, yc.unsqueeze(-1), upper=False).squeeze(-1)
            f = yc - chol.diagonal(dim1=1, dim2=2) * z
            # query k (>= 1) uses pivots 0..k; k = 0 has no data and predicts 0
            good[:, 0] = True
            f = torch.where(good, f, torch.zeros_like(f))
            f[:, 0] = 0.0
            out[sl, :m] = f
            redo[sl, :m] = ~good

    # Phase 2: queries p .. n-1, Gram form (G_k = X_kᵀX_k is p×p, k >= p).
    if n > p:
        q = n - p
        for sl in chunks(batch, q * p * p):
            xc, yc = xr[sl], y[sl]
            g0 = xc[:, :p].transpose(1, 2) @ xc[:, :p]  # G_p
            b0 = torch.einsum("bkp,bk->bp", xc[:, :p], yc[:, :p])
            gx, bx = prefix_grams(xc[:, p:], yc[:, p:])  # sums over rows p .. k-1
            g = gx + g0.unsqueeze(1)  # (b, q, p, p): G_k for k = p .. n-1
            bvec = bx + b0.unsqueeze(1)
            chol, info = torch.linalg.cholesky_ex(g)
            good = _good_pivots(chol, info, g.diagonal(dim1=-2, dim2=-1)).all(-1)
            w = torch.cholesky_solve(bvec.unsqueeze(-1), chol).squeeze(-1)
            f = (xc[:, p:] * w).sum(-1)
            out[sl, p:] = torch.where(good, f, torch.zeros_like(f))
            redo[sl, p:] = ~good

    # Fallback: SVD pseudo-inverse for the flagged (prompt, prefix) pairs.
    bi, ki = torch.nonzero(redo, as_tuple=True)
    if bi.numel():
        order = torch.argsort(ki)
        bi, ki = bi[order], ki[order]
        for sl in chunks(bi.numel(), n * p, budget=1 << 20):
            b_s, k_s = bi[sl], ki[sl]
            kmax = int(k_s.max())
            out[b_s, k_s] = _pinv_predictions(xr[b_s, :kmax], y[b_s, :kmax], k_s, xr[b_s, k_s])
    return out


def minnorm_fit(x: Tensor, y: Tensor) -> Tensor:
    """``w = X⁺ y`` per prompt, ``(B, p)`` (minimum-norm least squares; Hastie et al. 2022, §2).

    Kernel form ``Xᵀ(XXᵀ)⁻¹y`` when ``k <= p``, normal equations ``(XᵀX)⁻¹Xᵀy`` when ``k > p``,
    SVD (``torch.linalg.pinv``) for prompts whose Cholesky pivots fall below ``PIVOT_RTOL``.
    """
    batch, k, p_full = x.shape
    w_full = torch.zeros(batch, p_full, dtype=x.dtype, device=x.device)
    xr, keep = _drop_zero_columns(x)
    p = xr.shape[-1]
    if k == 0 or p == 0:
        return w_full
    if k <= p:
        a = torch.bmm(xr, xr.transpose(1, 2))
        chol, info = torch.linalg.cholesky_ex(a)
        good = _good_pivots(chol, info, a.diagonal(dim1=1, dim2=2)).all(-1)
        w = xr.transpose(1, 2) @ torch.cholesky_solve(y.unsqueeze(-1), chol)
    else:
        a = xr.transpose(1, 2) @ xr
        chol, info = torch.linalg.cholesky_ex(a)
        good = _good_pivots(chol, info, a.diagonal(dim1=1, dim2=2)).all(-1)
        w = torch.cholesky_solve(xr.transpose(1, 2) @ y.unsqueeze(-1), chol)
    w = w.squeeze(-1)
    bad = ~good
    if bool(bad.any()):
        w[bad] = (torch.linalg.pinv(xr[bad]) @ y[bad].unsqueeze(-1)).squeeze(-1)
    w_full[:, keep] = w
    return w_full
