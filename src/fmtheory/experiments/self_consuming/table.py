"""Results of the self-consuming experiment: closed forms per regime, the tidy table, the checks.

Part of the ``self-consuming`` experiment (``experiments/self_consuming/``) (leading underscore: not auto-registered).  The
functions take the experiment's ``Config`` (duck-typed: only its fields are read), the effective
:class:`Sizes`, the :class:`RegimeSet` and the loops' :class:`LoopOutput` s.

Tolerances are fixed here, before any run:

* closed form vs simulation: ``|mean − theory| ≤ z_K·SE`` at each of the ``K`` recorded generations,
  ``z_K`` the Bonferroni quantile for a family-wise false-alarm rate :data:`FAMILY_ALPHA`;
* comparisons between regimes: a Welch (or paired) z of at least :data:`COMPARE_Z` holds, at most
  ``−COMPARE_Z`` fails, in between is reported as inconclusive (``holds=None``);
* mean-type Gaussian metrics only where ``Var[ln det] ≤`` :data:`HEAVY_TAIL_LOGVAR` (beyond, the
  mean is dominated by rare paths; the median and the log-variance are checked instead).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from fmtheory.experiments.self_consuming.regimes import LoopOutput, Regime, RegimeSet, Sizes
from fmtheory.tasks.generative import make_mixture_data
from fmtheory.theory import self_consuming as th

__all__ = ["theory_curves", "contraction_theory", "build_table"]

Config = Any  # fmtheory.experiments.self_consuming.config.Config (duck-typed: fields only)


# --------------------------------------------------------------------------------------------
# closed forms per regime
# --------------------------------------------------------------------------------------------


def theory_curves(cfg: Config, sizes: Sizes, reg: Regime) -> dict[str, Callable[[int], float]]:
    """metric -> (generation -> closed-form expectation) for the metrics that have one here."""
    out: dict[str, Callable[[int], float]] = {}
    n0, k = sizes.n0, reg.power
    if cfg.model == "gaussian":
        s = cfg.gaussian
        mle = s.estimator == "mle"
        if s.fit_covariance and reg.fully_synthetic and reg.mode == "replace":
            out["log_var_ratio"] = lambda g: th.gaussian_logvar_mean(
                M=n0, generation=g, dim=s.dim, power=k, mle=mle
            )
            out["log_var_ratio_var"] = lambda g: th.gaussian_logvar_variance(
                M=n0, generation=g, dim=s.dim, power=k
            )
            out["mean_sq_err"] = lambda g: th.gaussian_mean_drift(
                sigma=s.std, M=n0, generation=g, dim=s.dim, power=k, mle=mle
            )
            if s.dim == 1:
                out["var_ratio"] = lambda g: (
                    th.gaussian_mle_variance(sigma=1.0, M=n0, generation=g, power=k) if mle else 1.0
                )
                out["w2_sq"] = lambda g: th.gaussian_expected_w2sq(
                    sigma=s.std, M=n0, generation=g, power=k, mle=mle
                )
        if not s.fit_covariance:
            mse: Callable[[int], float] | None = None
            if reg.fully_synthetic:
                acc = reg.mode == "accumulate"
                mse = lambda g: th.gaussian_mean_drift(  # noqa: E731
                    sigma=s.std, M=n0, generation=g, dim=s.dim, power=k, accumulate=acc
                )
            elif reg.mode == "replace" and k == 0:
                mse = lambda g: th.gaussian_mix_mean_mse(  # noqa: E731
                    sigma=s.std,
                    n=n0,
                    real_fraction=reg.real_fraction,
                    gamma=reg.gamma,
                    generation=g,
                    dim=s.dim,
                )
            if mse is not None:
                out["mean_sq_err"] = mse
                out["w2_sq"] = mse  # Σ fixed: W2² = ||μ_g − μ*||²
    elif cfg.model == "linreg" and reg.fully_synthetic:
        s = cfg.linreg
        fn = th.linreg_replace_error if reg.mode == "replace" else th.linreg_accumulate_error
        out["distance"] = lambda g: fn(d=s.dim, T=n0, sigma=s.noise_std, generation=g, power=k)
    elif cfg.model == "kde" and reg.fully_synthetic and reg.mode == "replace":
        real_var = make_mixture_data(cfg.kde.data).variance()
        out["model_variance"] = lambda g: th.kde_model_variance(
            real_var=real_var,
            bandwidth=cfg.kde.bandwidth,
            n0=n0,
            generation=g,
            power=k,
            max_n=cfg.kde.max_n,
        )
    elif cfg.model == "neural" and reg.fully_synthetic and reg.mode == "replace":
        s = cfg.neural
        miss = th.zipf_missing_mass(vocab=s.vocab, exponent=s.exponent, n=n0 * s.seq_len)
        out["missing_mass@categorical-mle"] = lambda g: miss if g == 1 else float("nan")
    return out


def contraction_theory(cfg: Config, sizes: Sizes, reg: Regime) -> float | None:
    """Exact κ of ``E[e_{t+1} | e_t] = κ e_t`` for replace regimes of the exact families."""
    if cfg.model not in ("gaussian", "linreg") or reg.mode != "replace":
        return None
    if reg.power != 0 and reg.real_fraction > 0:
        return None  # the rounding of α n_i changes with i: no single κ
    return th.mix_contraction(real_fraction=reg.real_fraction, gamma=reg.gamma, n=sizes.n0)


# --------------------------------------------------------------------------------------------
# the table
# --------------------------------------------------------------------------------------------

Z95 = 1.959963984540054


def _mean_ci(v: np.ndarray) -> tuple[float, float, float, float]:
    """(mean, lo, hi, se) over the last axis, ignoring non-finite values."""
    v = v[np.isfinite(v)]
    if v.size == 0:
        return (float("nan"),) * 4
    m = float(v.mean())
    se = float(v.std(ddof=1) / math.sqrt(v.size)) if v.size > 1 else float("nan")
    return m, m - Z95 * se, m + Z95 * se, se


def _median_ci(v: np.ndarray) -> tuple[float, float, float]:
    """Median with the distribution-free 95% order-statistic interval."""
    v = np.sort(v[~np.isnan(v)])
    n = v.size
    if n == 0:
        return (float("nan"),) * 3
    lo = max(0, int(math.floor(n / 2 - Z95 * math.sqrt(n) / 2)) - 1)
    hi = min(n - 1, int(math.ceil(n / 2 + Z95 * math.sqrt(n) / 2)))
    return float(np.median(v)), float(v[lo]), float(v[hi])


def _var_ci(v: np.ndarray) -> tuple[float, float, float, float]:
    """Sample variance with a distribution-free SE ``sqrt((m4 − s⁴)/n)``."""
    v = v[np.isfinite(v)]
    if v.size < 3:
        return (float("nan"),) * 4
    s2 = float(v.var(ddof=1))
    m4 = float(((v - v.mean()) ** 4).mean())
    se = math.sqrt(max(m4 - s2 * s2, 0.0) / v.size)
    return s2, s2 - Z95 * se, s2 + Z95 * se, se


_MEDIAN_METRICS = ("distance", "var_ratio")
_VARIANCE_METRICS = ("log_var_ratio",)


def build_table(
    cfg: Config,
    sizes: Sizes,
    rset: RegimeSet,
    outputs: dict[str, list[LoopOutput]],
    theory: dict[str, dict[str, Callable[[int], float]]],
) -> pd.DataFrame:
    rows: list[dict[str, Any]] = []
    for reg in rset.regimes:
        base = {
            "seed": cfg.seed,
            "model": cfg.model,
            "regime": reg.label,
            "configured": reg.label == rset.configured,
            "real_fraction": reg.real_fraction,
            "mode": reg.mode,
            "gamma": reg.gamma,
            "schedule": reg.schedule,
            "power": reg.power,
            "n0": sizes.n0,
            "replicates": sizes.replicates,
        }
        for out in outputs[reg.label]:
            for metric, arr in out.metrics.items():
                for gi, g in enumerate(out.generations):
                    m, lo, hi, se = _mean_ci(arr[gi])
                    rows.append(
                        base
                        | dict(method=out.method, metric=metric, generation=int(g), value=m)
                        | dict(se=se, ci_low=lo, ci_high=hi)
                    )
                    if metric in _MEDIAN_METRICS:
                        med, mlo, mhi = _median_ci(arr[gi])
                        rows.append(
                            base
                            | dict(method=out.method, metric=f"{metric}_median", generation=int(g))
                            | dict(value=med, se=math.nan, ci_low=mlo, ci_high=mhi)
                        )
                    if metric in _VARIANCE_METRICS:
                        s2, vlo, vhi, vse = _var_ci(arr[gi])
                        rows.append(
                            base
                            | dict(method=out.method, metric=f"{metric}_var", generation=int(g))
                            | dict(value=s2, se=vse, ci_low=vlo, ci_high=vhi)
                        )
            if out.contraction is not None and out.contraction.count > 0:
                k, se = out.contraction.estimate()
                rows.append(
                    base
                    | dict(method=out.method, metric="contraction", generation=None, value=k)
                    | dict(se=se, ci_low=k - Z95 * se, ci_high=k + Z95 * se)
                )
            for key, val in out.extra.items():
                rows.append(
                    base
                    | dict(method=out.method, metric=key, generation=None, value=val)
                    | dict(se=0.0, ci_low=val, ci_high=val)
                )
            rows += [base | r for r in _paired_rows(out, sizes, reg)]
        gens = outputs[reg.label][0].generations
        for metric, fn in theory[reg.label].items():
            name = metric.split("@")[0]
            for g in gens:
                v = fn(int(g))
                if math.isfinite(v):
                    rows.append(
                        base
                        | dict(method="theory", metric=name, generation=int(g), value=v)
                        | dict(se=0.0, ci_low=v, ci_high=v)
                    )
        kappa = contraction_theory(cfg, sizes, reg)
        if kappa is not None:
            rows.append(
                base
                | dict(method="theory", metric="contraction", generation=None, value=kappa)
                | dict(se=0.0, ci_low=kappa, ci_high=kappa)
            )
    table = pd.DataFrame(rows)
    table["generation"] = table["generation"].astype("Int64")
    first = ["method", "metric", "value", "se", "ci_low", "ci_high", "seed", "model", "regime"]
    return table[first + [c for c in table.columns if c not in first]]


def _paired(method: str, metric: str, d: np.ndarray, **extra: Any) -> dict[str, Any]:
    m, lo, hi, se = _mean_ci(d)
    return dict(method=method, metric=metric, generation=None, value=m, se=se, ci_low=lo,
                ci_high=hi, **extra)  # fmt: skip


def _paired_rows(out: LoopOutput, sizes: Sizes, reg: Regime) -> list[dict[str, Any]]:
    """Generation-free rows of paired differences over replicates (see the module docstring)."""
    rows = []
    gens = [int(g) for g in out.generations]
    if "distance" in out.metrics and len(gens) >= 2:
        dist = out.metrics["distance"]
        rows.append(_paired(out.method, "distance_change", dist[-1] - dist[0],
                            from_generation=gens[0]))  # fmt: skip
        half = min(gens, key=lambda g: abs(g - sizes.generations // 2))
        rows.append(_paired(out.method, "distance_plateau_change", dist[-1] - dist[gens.index(half)],
                            from_generation=half))  # fmt: skip
    if "log_ratio_head" in out.metrics and "log_ratio_tail" in out.metrics:
        d = out.metrics["log_ratio_head"][-1] - out.metrics["log_ratio_tail"][-1]
        rows.append(_paired(out.method, "tail_minus_head", d, from_generation=gens[-1]))
    if out.method == "categorical-mle" and "missing_mass" in out.metrics and len(gens) >= 2:
        step = float(np.diff(out.metrics["missing_mass"], axis=0).min())
        rows.append(dict(method=out.method, metric="missing_mass_min_step", generation=None,
                         value=step, se=0.0, ci_low=step, ci_high=step))  # fmt: skip
    return rows
