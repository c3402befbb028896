"""Compiled CPU kernel for the all-prefix Gaussian-process / ridge predictions (numba).

Why a kernel: the prefix predictions of :func:`fmtheory.estimators._linalg.sequential_gp_predictions`
need one ``n×n`` Cholesky factor per prompt.  LAPACK's ``potrf`` (what ``torch.linalg.cholesky``
calls per matrix) runs at about 1.5 GFLOP/s on matrices this small (13 µs for 40×40 here); the
plain loops below, compiled by numba, do the kernel matrix, the factorisation and the triangular
solve for one prompt in about 9 µs with no temporaries (d = 20, n = 40, one thread).

The algorithm is the row-by-row (bordered) Cholesky factorisation ``L Lᵀ = x xᵀ + s·I`` together
with ``z = L⁻¹ r``: row ``k`` needs only rows ``< k``, and the prediction at position ``k`` from the
positions before it is

    f_k = Σ_{i<k} L_ki z_i  ( = r_k − L_kk z_k )

(Rasmussen & Williams 2006, GPML Alg. 2.1; Golub & Van Loan 2013, §4.2, for the row-oriented
Cholesky).  See the module docstring of ``_linalg`` for why this is the ridge prediction.  With a
prior mean ``μ`` and prior standard deviations ``c`` (diagonal prior covariance) the same kernel
runs on ``x̃ = x ⊙ c`` and ``r = y − xμ`` and adds ``xμ`` back: the Bayes posterior mean.

The kernel runs one thread per call and releases the GIL, so :func:`gp_innovations` splits large
batches over ``torch.get_num_threads()`` Python threads.  Compiled code is cached on disk by numba
(``cache=True``); the first call in a fresh environment compiles for about a second.

Importing this module imports numba; ``_linalg`` imports it lazily, on the first prediction, and
uses the pure-torch path (same numbers to rounding) when numba is missing or ``FMTHEORY_NUMBA=0``.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch
from numba import njit
from torch import Tensor

__all__ = ["gp_innovations"]

#: Prompts per thread below which splitting a batch over threads is not worth it.
MIN_PROMPTS_PER_THREAD = 256


# "reassoc" lets LLVM vectorise the dot products; no "nnan": the pivot test must see NaN.
@njit(fastmath={"reassoc", "contract"}, nogil=True, cache=True)
def _innovations(x, y, shift, scale, s, out, bad):  # pragma: no cover - compiled
    """Fill ``out[b, k]`` and flag ``bad[b]`` for every prompt ``b`` (see :func:`gp_innovations`)."""
    batch, n, p = x.shape
    xb = np.empty((n, p))
    rb = np.empty(n)
    mb = np.empty(n)
    chol = np.zeros((n, n))
    z = np.empty(n)
    inv = np.empty(n)
    for b in range(batch):
        for k in range(n):
            m = 0.0
            for q in range(p):
                v = np.float64(x[b, k, q])
                m += v * shift[q]
                xb[k, q] = v * scale[q]
            mb[k] = m
            rb[k] = y[b, k] - m
        for k in range(n):
            # row k of x̃ x̃ᵀ, then of L (columns j < k), from rows j < k of L
            for j in range(k + 1):
                a = 0.0
                for q in range(p):
                    a += xb[k, q] * xb[j, q]
                chol[k, j] = a
            for j in range(k):
                a = chol[k, j]
                for i in range(j):
                    a -= chol[k, i] * chol[j, i]
                chol[k, j] = a * inv[j]
            d = chol[k, k] + s
            f = 0.0
            for i in range(k):
                d -= chol[k, i] * chol[k, i]
                f += chol[k, i] * z[i]
            if not d > 0.0:  # not positive definite (or NaN): the caller recomputes the prompt
                bad[b] = True
                d = 1.0
            root = np.sqrt(d)
            inv[k] = 1.0 / root
            z[k] = (rb[k] - f) / root
            out[b, k] = f + mb[k]


def gp_innovations(
    x: Tensor,
    y: Tensor,
    noise_var: float,
    *,
    shift: Tensor | None = None,
    scale: Tensor | None = None,
) -> tuple[Tensor, Tensor]:
    """All-prefix posterior-mean predictions by the compiled kernel, ``(f, bad)``.

    ``x: (batch, n, p)``, ``y: (batch, n)`` CPU float tensors; ``s = noise_var > 0``; optional
    prior mean ``shift = μ: (p,)`` and prior standard deviations ``scale = c: (p,)`` (default 0
    and 1: ridge with ``α = s``).  ``f[:, k] = x_kᵀμ + x̃_kᵀ (X̃_kᵀX̃_k + sI)⁻¹ X̃_kᵀ(y_k − X_kμ)``
    with ``x̃ = x ⊙ c`` is the prediction at point ``k`` from the points before it, ``(batch, n)``
    float64.  ``bad: (batch,)`` marks prompts whose factorisation met a non-positive pivot
    (their ``f`` is meaningless; recompute them).
    """
    if x.device.type != "cpu" or y.device.type != "cpu":
        raise ValueError(f"gp_innovations runs on CPU tensors, got {x.device} and {y.device}")
    dtype = torch.promote_types(x.dtype, y.dtype)
    if dtype not in (torch.float32, torch.float64):
        dtype = torch.float64
    xn = x.detach().to(dtype).contiguous().numpy()
    yn = y.detach().to(dtype).contiguous().numpy()
    batch, n, p = xn.shape
    mu = _vector(shift, p, 0.0)
    c = _vector(scale, p, 1.0)
    out = np.empty((batch, n), dtype=np.float64)
    bad = np.zeros(batch, dtype=np.bool_)
    s = float(noise_var)
    threads = min(torch.get_num_threads(), batch // MIN_PROMPTS_PER_THREAD)
    if threads <= 1:
        _innovations(xn, yn, mu, c, s, out, bad)
    else:
        bounds = np.linspace(0, batch, threads + 1).astype(int)
        parts = [slice(lo, hi) for lo, hi in zip(bounds[:-1], bounds[1:], strict=True)]
        with ThreadPoolExecutor(max_workers=threads) as pool:
            list(
                pool.map(lambda sl: _innovations(xn[sl], yn[sl], mu, c, s, out[sl], bad[sl]), parts)
            )
    return torch.from_numpy(out), torch.from_numpy(bad)


def _vector(v: Tensor | None, p: int, fill: float) -> np.ndarray:
    """``v`` as a contiguous float64 ``(p,)`` array, or ``p`` copies of ``fill``."""
    if v is None:
        return np.full(p, fill)
    return np.ascontiguousarray(v.detach().to("cpu", torch.float64).numpy().reshape(p))
