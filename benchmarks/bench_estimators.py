"""Estimator speed: ridge and Bayes at every prefix length vs the plain per-prompt numpy loop.

Case: 10,000 prompts, dim 20, 40 points (``RegressionSpec(dim=20, noise_std=0.5)``, seed 0).
``value`` is the best of 5 wall-clock seconds of ``Ridge(alpha=0.25).predict_prefixes`` on all
prompts (float32 input, float64 arithmetic) with ``torch.set_num_threads(1)``; ``reference`` is the
loop that forms ``XᵀX + αI`` and calls ``numpy.linalg.solve`` for each prompt and prefix, timed
(best of 5) on the first ``LOOP_SUBSAMPLE`` prompts and scaled linearly to all prompts (the loop's
cost per prompt is constant).  ``ratio = reference / value``.  The Bayes posterior mean (general
prior: mean 0.3, diagonal covariance from 0.5 to 2, noise 0.5) is timed the same way against the
loop of Bishop 2006 eqs. (3.50)-(3.51); ``bayes_full_cov_*`` the same with a full covariance
``AAᵀ/d + I/2``.  Target: ``value < 1 s`` and ``ratio >= 50``.

On CPU both estimators run the compiled numba kernel (``fmtheory.estimators._kernels``); the output
also gives ``first_call_s`` (the first call of a process: numba compiles, or loads its on-disk
cache) and the pure-torch path's time and ratio (``torch_path_*``, ``FMTHEORY_NUMBA=0``), which is
what runs on CUDA or without numba.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import torch

from fmtheory.estimators import _linalg, create_estimator
from fmtheory.tasks import RegressionSpec, make_generator, sample_regression

BATCH, N_POINTS, DIM = 10_000, 40, 20
ALPHA = 0.25
NOISE_STD = 0.5
PRIOR_MEAN = 0.3
LOOP_SUBSAMPLE = 250
REPEATS = 5
THREADS = 1


def _best_of(fn: Callable[[], Any], repeats: int = REPEATS) -> tuple[float, Any]:
    best, out = float("inf"), None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def ridge_loop(x: np.ndarray, y: np.ndarray, alpha: float) -> np.ndarray:
    """The plain reference: per prompt, per prefix k, ``solve(XᵀX + αI, Xᵀy)`` then ``x_kᵀw``."""
    batch, n, d = x.shape
    out = np.zeros((batch, n))
    eye = np.eye(d)
    for b in range(batch):
        for k in range(n):
            xk = x[b, :k]
            w = np.linalg.solve(xk.T @ xk + alpha * eye, xk.T @ y[b, :k])
            out[b, k] = x[b, k] @ w
    return out


def bayes_loop(
    x: np.ndarray, y: np.ndarray, mean: np.ndarray, cov: np.ndarray, noise_std: float
) -> np.ndarray:
    """Per prompt and prefix: ``S_N⁻¹ = Σ⁻¹ + XᵀX/σ²``, ``m_N = S_N(Σ⁻¹μ + Xᵀy/σ²)`` (Bishop 3.50-51)."""
    batch, n, _ = x.shape
    out = np.zeros((batch, n))
    prec0 = np.linalg.inv(cov)
    beta = 1.0 / noise_std**2
    for b in range(batch):
        for k in range(n):
            xk = x[b, :k]
            w = np.linalg.solve(prec0 + beta * xk.T @ xk, prec0 @ mean + beta * xk.T @ y[b, :k])
            out[b, k] = x[b, k] @ w
    return out


@contextmanager
def _torch_path() -> Iterator[None]:
    """Switch the compiled kernel off (as ``FMTHEORY_NUMBA=0`` does) for the duration."""
    previous = os.environ.get("FMTHEORY_NUMBA")
    os.environ["FMTHEORY_NUMBA"] = "0"
    _linalg.compiled_kernel.cache_clear()
    try:
        yield
    finally:
        if previous is None:
            del os.environ["FMTHEORY_NUMBA"]
        else:
            os.environ["FMTHEORY_NUMBA"] = previous
        _linalg.compiled_kernel.cache_clear()


def _rel_err(ours: np.ndarray, ref: np.ndarray) -> float:
    """max |ours − ref| / max |ref|."""
    return float(np.abs(ours - ref).max() / np.abs(ref).max())


def bench_estimators() -> dict[str, Any]:
    previous_threads = torch.get_num_threads()
    torch.set_num_threads(THREADS)
    try:
        batch = sample_regression(
            RegressionSpec(dim=DIM, noise_std=NOISE_STD),
            batch=BATCH,
            n_points=N_POINTS,
            generator=make_generator(0),
        )
        x, y = batch.x, batch.y
        xs = x[:LOOP_SUBSAMPLE].double().numpy()
        ys = y[:LOOP_SUBSAMPLE].double().numpy()
        scale = BATCH / LOOP_SUBSAMPLE

        ridge = create_estimator("ridge", alpha=ALPHA)
        t_first, _ = _best_of(lambda: ridge.predict_prefixes(x[:8], y[:8]), repeats=1)
        t_ridge, pred = _best_of(lambda: ridge.predict_prefixes(x, y))
        t_loop, ref = _best_of(lambda: ridge_loop(xs, ys, ALPHA))
        ridge_err = _rel_err(pred[:LOOP_SUBSAMPLE].double().numpy(), ref)

        cov = torch.linspace(0.5, 2.0, DIM, dtype=torch.float64)
        bayes = create_estimator("bayes", prior_mean=PRIOR_MEAN, prior_cov=cov, noise_std=NOISE_STD)
        t_bayes, pred_b = _best_of(lambda: bayes.predict_prefixes(x, y))
        mean_np, cov_np = np.full(DIM, PRIOR_MEAN), np.diag(cov.numpy())
        t_bloop, ref_b = _best_of(lambda: bayes_loop(xs, ys, mean_np, cov_np, NOISE_STD))
        bayes_err = _rel_err(pred_b[:LOOP_SUBSAMPLE].double().numpy(), ref_b)

        # a full (non-diagonal) covariance: x is rotated onto its eigenvectors first
        a = torch.randn(DIM, DIM, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
        full = a @ a.T / DIM + 0.5 * torch.eye(DIM, dtype=torch.float64)
        bayes_full = create_estimator(
            "bayes", prior_mean=PRIOR_MEAN, prior_cov=full, noise_std=NOISE_STD
        )
        t_full, pred_f = _best_of(lambda: bayes_full.predict_prefixes(x, y))
        t_floop, ref_f = _best_of(lambda: bayes_loop(xs, ys, mean_np, full.numpy(), NOISE_STD))
        full_err = _rel_err(pred_f[:LOOP_SUBSAMPLE].double().numpy(), ref_f)

        with _torch_path():
            t_ridge_torch, _ = _best_of(lambda: ridge.predict_prefixes(x, y))
            t_bayes_torch, _ = _best_of(lambda: bayes.predict_prefixes(x, y))

        torch.set_num_threads(2)
        t_ridge2, _ = _best_of(lambda: ridge.predict_prefixes(x, y))
    finally:
        torch.set_num_threads(previous_threads)

    ratio = t_loop * scale / t_ridge
    bayes_ratio = t_bloop * scale / t_bayes
    return {
        "name": "estimators",
        "value": t_ridge,
        "unit": "s",
        "reference": t_loop * scale,
        "ratio": ratio,
        "case": f"ridge(alpha={ALPHA}).predict_prefixes, {BATCH} prompts, d={DIM}, n={N_POINTS}",
        "torch_threads": THREADS,
        "reference_method": "python loop over prompts x prefixes, numpy.linalg.solve(XtX+aI, Xty)",
        "reference_timed_prompts": LOOP_SUBSAMPLE,
        "reference_scaled_by": scale,
        "max_rel_err": ridge_err,
        "bayes_value": t_bayes,
        "bayes_reference": t_bloop * scale,
        "bayes_ratio": bayes_ratio,
        "bayes_max_rel_err": bayes_err,
        "bayes_full_cov_value": t_full,
        "bayes_full_cov_ratio": t_floop * scale / t_full,
        "bayes_full_cov_max_rel_err": full_err,
        "value_2_threads": t_ridge2,
        "kernel": "numba" if _linalg.compiled_kernel() is not None else "torch",
        "first_call_s": t_first,
        "torch_path_value": t_ridge_torch,
        "torch_path_ratio": t_loop * scale / t_ridge_torch,
        "torch_path_bayes_value": t_bayes_torch,
        "torch_path_bayes_ratio": t_bloop * scale / t_bayes_torch,
        "meets_target": bool(t_ridge < 1.0 and ratio >= 50 and t_bayes < 1.0 and bayes_ratio >= 50),
    }


BENCHMARKS: dict[str, Callable[[], dict[str, Any]]] = {"estimators": bench_estimators}
