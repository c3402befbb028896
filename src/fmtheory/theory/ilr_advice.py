"""Advice a scientist can act on, from the theory of inverse linear regression (Lu & Yu 2025,
arXiv:2505.12138): is the context long enough, is a simple ridge enough, or is it hopeless?

Given the dimension d, the rank r of the cross-task prior (w = w0 + U v), the context length n, the
noise σ and the condition number κ of the inputs — or a table of past task vectors from which the
prior's mean, rank and spectrum are estimated — :func:`advise` returns an :class:`Advice` whose every
number comes from :mod:`fmtheory.theory.ilr`:

* ``bayes_error``: the oracle (Bayes-optimal) E‖ŵ - w‖² at this context length (:func:`oracle_mse`);
  a pretrained transformer that learned the prior can at best match it;
* ``ridge_error``: E‖ŵ - w‖² of ridge at its best penalty (:func:`best_ridge_mse`), the method
  that ignores the prior;
* ``more_examples_needed``: how many more pairs bring the Bayes error to the target (None: not
  even ``max_context`` pairs do);
* ``verdict``: one of :data:`VERDICTS`, decided by :func:`decide` from these numbers alone.

The target is in the units of ``bayes_error`` (E‖ŵ - w‖²); by default 10% of the prior variance
tr Λ = E‖w - w0‖² (a relative error of 0.1).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from fmtheory.theory.ilr import (
    best_ridge_mse,
    floor_mse,
    high_snr_mse,
    oracle_mse,
    spectral_gap_rank,
)
from fmtheory.theory.linear_regression import x_variances

__all__ = [
    "VERDICTS",
    "RIDGE_RATIO",
    "DEFAULT_RELATIVE_TARGET",
    "TaskPrior",
    "Advice",
    "estimate_prior_from_tasks",
    "decide",
    "advise",
]

#: The verdicts, by code.  "gather" is formatted with the number of extra examples.
VERDICTS = {
    "trust": "a transformer/Bayes estimator can be trusted here",
    "gather": "gather {n} more examples",
    "ridge": "ridge is within 10% of optimal: the simple method suffices",
    "out_of_reach": "out of reach for any model",
}
#: ridge "suffices" when its error is at most this multiple of the Bayes error
RIDGE_RATIO = 1.10
#: default target: this fraction of the prior variance tr Λ
DEFAULT_RELATIVE_TARGET = 0.1


@dataclass(frozen=True)
class TaskPrior:
    """A task prior N(mean, basis·diag(spectrum)·basisᵀ): ``mean: (d,)``, ``basis: (d, r)``
    orthonormal, ``spectrum: (r,)`` > 0.  ``eigenvalues``: the full estimated spectrum (d,),
    ``n_tasks``: how many task vectors it was estimated from (None: given, not estimated)."""

    mean: np.ndarray
    basis: np.ndarray
    spectrum: np.ndarray
    eigenvalues: np.ndarray | None = None
    n_tasks: int | None = None
    estimated_rank: int | None = None

    @property
    def dim(self) -> int:
        return int(self.basis.shape[0])

    @property
    def rank(self) -> int:
        return int(self.basis.shape[1])


def estimate_prior_from_tasks(tasks: Any, *, rank: int | None = None) -> TaskPrior:
    """The prior of past task vectors ``tasks: (T, d)`` (one task per row), T >= 2.

    mean = the sample mean; covariance = the sample covariance (ddof = 1); rank = its spectral gap
    (:func:`~fmtheory.theory.ilr.spectral_gap_rank`) unless ``rank`` is given; basis, spectrum =
    its top-rank eigenpairs (eigenvalues clamped > 0).  Raises ValueError naming the problem.
    """
    w = np.asarray(tasks, dtype=float)
    if w.ndim != 2 or w.shape[0] < 2 or w.shape[1] < 1:
        raise ValueError(
            f"tasks.shape = {w.shape}: expected (T >= 2 task vectors, d >= 1 coordinates)"
        )
    if not np.all(np.isfinite(w)):
        raise ValueError("tasks: every entry must be a finite number")
    mean = w.mean(0)
    cov = np.atleast_2d(np.cov(w, rowvar=False))
    evals, evecs = np.linalg.eigh((cov + cov.T) / 2)
    evals, evecs = evals[::-1], evecs[:, ::-1]
    est = spectral_gap_rank(evals)
    r = est if rank is None else int(rank)
    if not 1 <= r <= w.shape[1]:
        raise ValueError(f"rank = {rank!r}: must be in [1, d = {w.shape[1]}]")
    if not evals[0] > 0:
        raise ValueError("tasks: all task vectors are equal, the prior has no variance")
    spectrum = np.clip(evals[:r], 1e-12 * evals[0], None)
    return TaskPrior(mean=mean, basis=evecs[:, :r].copy(), spectrum=spectrum,
                     eigenvalues=evals.copy(), n_tasks=int(w.shape[0]), estimated_rank=est)  # fmt: skip


@dataclass(frozen=True)
class Advice:
    """What :func:`advise` returns.  Errors are E‖ŵ - w‖² (not divided by d); ``*_stderr`` are
    Monte Carlo standard errors (0 when exact).  ``more_examples_needed``: extra pairs beyond
    ``context`` for the Bayes error to reach ``target_error`` (0: already there; None: not within
    ``max_context`` pairs).  ``floor``: the error no estimator beats at this n (> 0 only if r > n).
    ``high_snr_error``: σ² r / (n - r - 1) (isotropic x, r < n - 1; else None)."""

    verdict: str
    verdict_code: str
    dim: int
    rank: int
    context: int
    noise: float
    cond: float
    prior_source: str
    prior_variance: float
    bayes_error: float
    bayes_error_stderr: float
    bayes_relative_error: float
    ridge_error: float
    ridge_error_stderr: float
    ridge_alpha: float
    ridge_over_bayes: float
    target_error: float
    target_is_default: bool
    more_examples_needed: int | None
    context_needed: int | None
    max_context: int
    floor: float
    relative_floor: float
    high_snr_error: float | None
    estimated_rank: int | None
    n_tasks: int | None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (floats, ints, strings, None)."""
        return {k: (None if isinstance(v, float) and not math.isfinite(v) else v)
                for k, v in asdict(self).items()}  # fmt: skip


def decide(
    *,
    bayes_error: float,
    ridge_error: float,
    target_error: float,
    more_examples_needed: int | None,
) -> tuple[str, str]:
    """(code, sentence) of the verdict, from the theory's numbers alone.

    1. Bayes error above the target: "gather N more examples" if some context length within reach
       gets there (N = ``more_examples_needed``), else "out of reach for any model" — the Bayes
       error is a lower bound for every estimator, transformers included.
    2. Otherwise: "ridge suffices" when ridge_error <= RIDGE_RATIO × bayes_error, else "trust"
       (a transformer that learned the prior, or the Bayes estimator, is worth its cost).
    """
    if bayes_error > target_error:
        if more_examples_needed is None:
            return "out_of_reach", VERDICTS["out_of_reach"]
        return "gather", VERDICTS["gather"].format(n=more_examples_needed)
    if ridge_error <= RIDGE_RATIO * bayes_error:
        return "ridge", VERDICTS["ridge"]
    return "trust", VERDICTS["trust"]


def _check(name: str, ok: bool, value: Any, allowed: str) -> None:
    if not ok:
        raise ValueError(f"{name} = {value!r}: {allowed}")


def _is_int(v: Any) -> bool:
    return not isinstance(v, bool) and isinstance(v, (int, np.integer))


def _finite(v: Any) -> bool:
    return isinstance(v, (int, float, np.floating)) and not isinstance(v, bool) and math.isfinite(v)


def advise(
    *,
    dim: int | None,
    rank: int | None,
    context: int,
    noise: float,
    cond: float = 1.0,
    prior_scale: float = 1.0,
    target_error: float | None = None,
    prior: TaskPrior | None = None,
    max_context: int = 1_000_000,
    n_mc: int = 2000,
    seed: int = 0,
) -> Advice:
    """Advice for estimating w from ``context`` pairs (see the module docstring).

    Without ``prior``: Λ = prior_scale² I_r, w0 = 0 and U uniformly random (the Bayes error does
    not depend on U for isotropic x and is averaged over U otherwise; ridge's error is averaged
    over U).  With ``prior`` (e.g. :func:`estimate_prior_from_tasks`): its mean, basis and spectrum;
    ``dim`` / ``rank`` may then be None (taken from it) — a given ``dim`` must match.
    Σx: diagonal, geometric eigenvalues from 1 to 1/cond, trace d.  Raises ValueError naming the
    offending argument.
    """
    _check("context", _is_int(context) and context >= 1, context, "must be an integer >= 1")
    _check("noise", _finite(noise) and noise >= 0, noise, "must be a finite number >= 0")
    _check("cond", _finite(cond) and cond >= 1, cond, "must be a finite number >= 1")
    _check("prior_scale", _finite(prior_scale) and prior_scale > 0, prior_scale, "must be > 0")
    _check("max_context", _is_int(max_context) and max_context >= context, max_context,
           f"must be an integer >= context = {context}")  # fmt: skip
    if target_error is not None:
        _check("target_error", _finite(target_error) and target_error > 0, target_error,
               "must be a finite number > 0")  # fmt: skip
    if prior is None:
        _check("dim", _is_int(dim) and dim >= 1, dim, "must be an integer >= 1")
        _check("rank", _is_int(rank) and rank >= 1, rank, "must be an integer >= 1")
        _check("rank", rank <= dim, rank, f"must be <= dim = {dim} (w = w0 + U v, U: d × r)")
        d, r = int(dim), int(rank)
        spectrum = np.full(r, float(prior_scale) ** 2)
        basis, mean = None, np.zeros(d)
        source = "dims"
    else:
        d, r = prior.dim, prior.rank
        if dim is not None:
            _check("dim", dim == d, dim, f"must equal the number of columns of the tasks, {d}")
        spectrum, basis, mean = prior.spectrum, prior.basis, prior.mean
        source = "tasks"
    x_var = x_variances(d=d, cond=float(cond))
    prior_var = float(spectrum.sum())
    target = DEFAULT_RELATIVE_TARGET * prior_var if target_error is None else float(target_error)
    # Monte Carlo sizes: cheap paths get n_mc; costly ones (r×r or d×d per draw) fewer draws.
    fast = basis is None and cond == 1.0 and bool(np.all(spectrum == spectrum[0]))
    mc_bayes = n_mc if fast else int(np.clip(5e6 / r**3, 20, n_mc))
    mc_search = n_mc if fast else int(np.clip(mc_bayes // 2, 10, n_mc))

    def bayes(n: int, mc: int) -> tuple[float, float]:
        v = oracle_mse(n=n, sigma=float(noise), spectrum=spectrum, x_var=x_var, basis=basis, d=d,
                       n_mc=mc, seed=seed)  # fmt: skip
        return v.value, (v.stderr or 0.0)

    b_err, b_se = bayes(context, mc_bayes)
    if b_err <= target:
        more: int | None = 0
    elif bayes(max_context, mc_search)[0] > target:
        more = None
    else:
        lo, hi = context, context  # bayes(lo) > target; find hi with bayes(hi) <= target
        while True:
            hi = min(2 * hi, max_context)
            if bayes(hi, mc_search)[0] <= target:
                break
            lo = hi
        while hi - lo > 1:
            mid = (lo + hi) // 2
            lo, hi = (lo, mid) if bayes(mid, mc_search)[0] <= target else (mid, hi)
        more = hi - context
    # ridge: its error is linear in M = μμᵀ + Σw; without a basis, E_U[U Λ Uᵀ] = (tr Λ / d) I
    cov = (np.eye(d) * prior_var / d) if basis is None else (basis * spectrum) @ basis.T
    mc_ridge = n_mc if cond == 1.0 else int(np.clip(2e8 / d**3, 20, 500))
    ridge = best_ridge_mse(n=context, sigma=float(noise), cov=cov, mean=mean, x_var=x_var,
                           n_mc=mc_ridge, seed=seed)  # fmt: skip
    code, sentence = decide(bayes_error=b_err, ridge_error=ridge.mse, target_error=target,
                            more_examples_needed=more)  # fmt: skip
    hs = high_snr_mse(r=r, n=context, sigma=float(noise)) if cond == 1.0 else math.inf
    return Advice(
        verdict=sentence,
        verdict_code=code,
        dim=d,
        rank=r,
        context=int(context),
        noise=float(noise),
        cond=float(cond),
        prior_source=source,
        prior_variance=prior_var,
        bayes_error=b_err,
        bayes_error_stderr=b_se,
        bayes_relative_error=b_err / prior_var,
        ridge_error=ridge.mse,
        ridge_error_stderr=ridge.stderr,
        ridge_alpha=ridge.alpha,
        ridge_over_bayes=ridge.mse / b_err if b_err > 0 else math.inf,
        target_error=target,
        target_is_default=target_error is None,
        more_examples_needed=more,
        context_needed=None if more is None else int(context) + more,
        max_context=int(max_context),
        floor=floor_mse(spectrum=spectrum, n=int(context)),
        relative_floor=floor_mse(spectrum=spectrum, n=int(context)) / prior_var,
        high_snr_error=hs if math.isfinite(hs) else None,
        estimated_rank=None if prior is None else prior.estimated_rank,
        n_tasks=None if prior is None else prior.n_tasks,
    )
