"""The check library: intervals, tidy rows, fits with intervals, and the Check factories every
experiment uses.  Torch-free (numpy/scipy); tensors are accepted through ``.detach()``.

Every factory returns one :class:`~fmtheory.contract.Check` whose status follows from an interval,
so that "the data cannot decide" is reported as ``inconclusive`` instead of as a pass:

- :func:`z_check`: |measured − predicted| ≤ z combined standard errors;
- :func:`bound_check`: a value stays on one side of a bound (holds when its whole interval does,
  fails when its whole interval is on the other side, inconclusive otherwise);
- :func:`difference_check`: a > b (or a < b) by more than z standard errors of the difference;
- :func:`exponent_check`: a fitted log-log slope's 95% interval contains the predicted exponent and
  excludes every alternative hypothesis, with enough R²;
- :func:`trend_check`: the sign of a fitted linear trend, through its interval;
- :func:`not_applicable` and :func:`inconclusive`, which require a reason.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import stats

from fmtheory.contract import Check

__all__ = [
    "AsymptoteFit",
    "fit_asymptote",
    "Z95",
    "Z_CHECK",
    "MeanCI",
    "mean_ci",
    "ci_row",
    "exact_row",
    "PowerFit",
    "fit_power_law",
    "LineFit",
    "fit_line",
    "z_check",
    "bound_check",
    "difference_check",
    "exponent_check",
    "trend_check",
    "not_applicable",
    "inconclusive",
    "as_array",
]

#: two-sided 95% normal quantile
Z95 = 1.959963984540054
#: default agreement tolerance of a z-check: |measured − predicted| ≤ 4 combined standard errors
#: (a false alarm rate of 6e-5 per comparison under the null, so a grid of ~100 points stays honest)
Z_CHECK = 4.0


def as_array(values: Any) -> np.ndarray:
    """A flat float64 numpy array from a tensor, array, list or scalar."""
    if hasattr(values, "detach"):
        values = values.detach().cpu().double().numpy()
    return np.asarray(values, dtype=float).ravel()


@dataclass(frozen=True)
class MeanCI:
    """Mean of a sample with its standard error and 95% normal interval ``mean ± 1.96·se``."""

    mean: float
    se: float
    low: float
    high: float
    n: int


def mean_ci(values: Any) -> MeanCI:
    """Mean, standard error (sd with ddof = 1, over √N) and 95% interval of a 1-D sample (N ≥ 1).

    A single value has se 0.
    """
    v = as_array(values)
    if v.size == 0:
        raise ValueError("mean_ci: no values")
    mean = float(v.mean())
    se = float(v.std(ddof=1)) / math.sqrt(v.size) if v.size > 1 else 0.0
    return MeanCI(mean, se, mean - Z95 * se, mean + Z95 * se, int(v.size))


def ci_row(method: str, metric: str, values: Any, *, seed: int, **coords: Any) -> dict[str, Any]:
    """One tidy result row: :func:`mean_ci` of ``values`` as value / se / ci_low / ci_high, plus the
    grid-point columns ``coords``."""
    ci = mean_ci(values)
    return dict(method=method, metric=metric, value=ci.mean, se=ci.se, ci_low=ci.low,
                ci_high=ci.high, seed=seed, **coords)  # fmt: skip


def exact_row(
    method: str, metric: str, value: float, *, seed: int, se: float = 0.0, **coords: Any
) -> dict[str, Any]:
    """One tidy row for a number with a known standard error (0: exact)."""
    value = float(value)
    return dict(method=method, metric=metric, value=value, se=float(se),
                ci_low=value - Z95 * se, ci_high=value + Z95 * se, seed=seed, **coords)  # fmt: skip


# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class LineFit:
    """y = intercept + slope·x by (weighted) least squares, with the slope's 95% t-interval."""

    slope: float
    slope_se: float
    slope_low: float
    slope_high: float
    intercept: float
    r2: float
    n_points: int


def fit_line(x: Any, y: Any, y_se: Any | None = None) -> LineFit:
    """Least squares of ``y`` on ``x`` (weights 1/se² when ``y_se`` is given and positive).

    The slope's standard error is the usual OLS one (residual variance, n − 2 degrees of freedom),
    and its interval uses Student's t; NaN everywhere with fewer than 3 distinct points.
    """
    x, y = as_array(x), as_array(y)
    keep = np.isfinite(x) & np.isfinite(y)
    w = np.ones_like(x)
    if y_se is not None:
        s = as_array(y_se)
        if np.all(s[keep] > 0):
            w = 1.0 / s**2
    x, y, w = x[keep], y[keep], w[keep]
    n = int(x.size)
    if n < 3 or np.ptp(x) == 0:
        nan = math.nan
        return LineFit(nan, nan, nan, nan, nan, nan, n)
    w = w / w.mean()
    xm, ym = np.average(x, weights=w), np.average(y, weights=w)
    sxx = float(np.sum(w * (x - xm) ** 2))
    slope = float(np.sum(w * (x - xm) * (y - ym)) / sxx)
    intercept = float(ym - slope * xm)
    resid = y - (intercept + slope * x)
    ss_res = float(np.sum(w * resid**2))
    ss_tot = float(np.sum(w * (y - ym) ** 2))
    r2 = 1.0 - ss_res / ss_tot if ss_tot > 0 else 1.0
    se = math.sqrt(ss_res / (n - 2) / sxx)
    t = float(stats.t.ppf(0.975, n - 2))
    return LineFit(slope, se, slope - t * se, slope + t * se, intercept, r2, n)


@dataclass(frozen=True)
class PowerFit(LineFit):
    """log y = intercept + slope · log x: ``slope`` is the exponent, with its 95% interval."""


def fit_power_law(x: Any, y: Any, y_se: Any | None = None) -> PowerFit:
    """Fit y ∝ x^slope through (log x, log y) over the points with x > 0 and y > 0.

    ``y_se`` (standard errors of y) weight the points by (y/se)², the delta-method weights of log y.
    """
    x, y = as_array(x), as_array(y)
    keep = (x > 0) & (y > 0) & np.isfinite(x) & np.isfinite(y)
    se_log = None
    if y_se is not None:
        s = as_array(y_se)[keep]
        se_log = s / y[keep]
    f = fit_line(np.log(x[keep]), np.log(y[keep]), se_log)
    return PowerFit(*(getattr(f, k) for k in LineFit.__dataclass_fields__))


@dataclass(frozen=True)
class AsymptoteFit:
    """y = asymptote + scale · x^(−rate), with standard errors from the fit's covariance."""

    asymptote: float
    asymptote_se: float
    scale: float
    rate: float
    rate_se: float

    @property
    def ci(self) -> tuple[float, float]:
        """The asymptote's 95% interval."""
        return self.asymptote - Z95 * self.asymptote_se, self.asymptote + Z95 * self.asymptote_se

    def predict(self, x: Any) -> np.ndarray:
        return self.asymptote + self.scale * as_array(x) ** (-self.rate)


def fit_asymptote(x: Any, y: Any, y_se: Any | None = None) -> AsymptoteFit:
    """Weighted least squares of y = a + b·x^(−c) (b, c ≥ 0: a curve falling to its asymptote a),
    ``scipy.optimize.curve_fit`` with ``absolute_sigma`` when ``y_se`` is given.  Needs ≥ 4 points
    with x > 0; raises ``ValueError`` otherwise and ``RuntimeError`` when the fit does not converge.
    """
    from scipy.optimize import curve_fit

    x, y = as_array(x), as_array(y)
    se = None if y_se is None else as_array(y_se)
    keep = (x > 0) & np.isfinite(x) & np.isfinite(y)
    if se is not None:
        keep &= np.isfinite(se) & (se > 0)
    if keep.sum() < 4:
        raise ValueError(f"fit_asymptote: {int(keep.sum())} usable points, need >= 4")
    x, y = x[keep], y[keep]
    se = None if se is None else se[keep]
    x0 = float(np.exp(np.mean(np.log(x))))  # centre x for conditioning: b is the excess at x0

    def model(t: np.ndarray, a: float, b: float, c: float) -> np.ndarray:
        return a + b * (t / x0) ** (-c)

    p0 = [float(y.min()), float(max(y.max() - y.min(), 1e-12)), 0.5]
    p, cov = curve_fit(model, x, y, p0=p0, sigma=se, absolute_sigma=se is not None,
                       bounds=([-np.inf, 0.0, 0.0], [np.inf, np.inf, 10.0]), maxfev=20000)  # fmt: skip
    err = np.sqrt(np.clip(np.diag(cov), 0.0, None))
    return AsymptoteFit(float(p[0]), float(err[0]), float(p[1] * x0 ** p[2]), float(p[2]),
                        float(err[2]))  # fmt: skip


# ---------------------------------------------------------------------------------------------
def not_applicable(claim: str, source: str, kind: str, why: str, tolerance: str = "") -> Check:
    """The check does not apply to this config (``why`` says why)."""
    return Check(claim, source, kind, "n/a", "n/a", tolerance, "n/a", why)


def inconclusive(
    claim: str,
    source: str,
    kind: str,
    why: str,
    *,
    predicted: float | str = "",
    measured: float | str = "",
    tolerance: str = "",
) -> Check:
    """The data cannot decide (``why`` says why)."""
    return Check(claim, source, kind, predicted, measured, tolerance, "inconclusive", why)


def _finite(*vals: float) -> bool:
    return all(isinstance(v, int | float) and math.isfinite(v) for v in vals)


def z_check(
    claim: str,
    source: str,
    kind: str,
    *,
    measured: float,
    measured_se: float,
    predicted: float,
    predicted_se: float = 0.0,
    z: float = Z_CHECK,
    where: str = "",
) -> Check:
    """Holds when |measured − predicted| ≤ z·√(se_m² + se_p²); fails otherwise.

    Both standard errors zero means an exact comparison at a relative tolerance of 1e-9.
    """
    tol = f"|measured − predicted| ≤ {z:g} combined s.e."
    if not _finite(measured, measured_se, predicted, predicted_se):
        return inconclusive(claim, source, kind, "a non-finite number: nothing to compare",
                            predicted=predicted, measured=measured, tolerance=tol)  # fmt: skip
    se = math.hypot(measured_se, predicted_se)
    diff = abs(measured - predicted)
    if se == 0:
        ok = diff <= 1e-9 * max(1.0, abs(predicted))
        zs = "exact"
    else:
        ok = diff <= z * se
        zs = f"{diff / se:.2f} s.e."
    return Check(claim, source, kind, float(predicted), float(measured),
                 f"{tol} ({zs}{'; ' + where if where else ''})",
                 "holds" if ok else "fails")  # fmt: skip


def bound_check(
    claim: str,
    source: str,
    kind: str,
    *,
    value: float,
    value_se: float,
    bound: float,
    below: bool = True,
    z: float = Z95,
    where: str = "",
) -> Check:
    """``value ≤ bound`` (``below``) or ``value ≥ bound``, judged through value ± z·se.

    Holds when the whole interval is on the claimed side, fails when the whole interval is on the
    other side, inconclusive when the interval straddles the bound.
    """
    side = "≤" if below else "≥"
    tol = f"value {side} bound, judged by value ± {z:.2f} s.e."
    if where:
        tol += f" ({where})"
    if not _finite(value, value_se, bound):
        if isinstance(bound, float) and math.isinf(bound) and _finite(value):
            ok = (bound > 0) == below
            return Check(claim, source, kind, bound, float(value), tol, "holds" if ok else "fails")
        return inconclusive(claim, source, kind, "a non-finite number: nothing to compare",
                            predicted=bound, measured=value, tolerance=tol)  # fmt: skip
    lo, hi = value - z * value_se, value + z * value_se
    if below:
        status = "holds" if hi <= bound else "fails" if lo > bound else "inconclusive"
    else:
        status = "holds" if lo >= bound else "fails" if hi < bound else "inconclusive"
    why = (
        f"the interval [{lo:.4g}, {hi:.4g}] contains the bound {bound:.4g}"
        if status == "inconclusive"
        else ""
    )
    return Check(claim, source, kind, float(bound), float(value), tol, status, why)


def difference_check(
    claim: str,
    source: str,
    kind: str,
    *,
    a: float,
    a_se: float,
    b: float,
    b_se: float,
    greater: bool = True,
    z: float = Z95,
    min_effect: float = 0.0,
    where: str = "",
) -> Check:
    """The claim "a > b" (``greater``) or "a < b", judged by d = a − b and its interval d ± z·se.

    Holds when the interval lies beyond ``min_effect`` on the claimed side; fails when it lies
    entirely short of ``min_effect`` (the effect is absent or reversed); inconclusive otherwise,
    with the reason.  ``min_effect`` ≥ 0 is the smallest difference that counts as an effect.
    """
    sign = 1.0 if greater else -1.0
    rel = ">" if greater else "<"
    tol = f"a {rel} b by more than {min_effect:g}, judged by (a − b) ± {z:.2f} s.e."
    if where:
        tol += f" ({where})"
    if not _finite(a, a_se, b, b_se):
        return inconclusive(claim, source, kind, "a non-finite number: nothing to compare",
                            predicted=f"a {rel} b", measured=f"a={a}, b={b}", tolerance=tol)  # fmt: skip
    d = sign * (a - b)
    se = math.hypot(a_se, b_se)
    lo, hi = d - z * se, d + z * se
    if lo > min_effect:
        status, why = "holds", ""
    elif hi < min_effect or (se == 0 and d <= min_effect):
        status, why = "fails", ""
    else:
        status = "inconclusive"
        why = f"the difference's interval [{lo:.4g}, {hi:.4g}] contains {min_effect:g}"
    measured = f"a={a:.4g}±{a_se:.2g}, b={b:.4g}±{b_se:.2g}"
    return Check(claim, source, kind, f"a {rel} b", measured, tol, status, why)


def exponent_check(
    claim: str,
    source: str,
    kind: str,
    *,
    x: Any,
    y: Any,
    predicted: float,
    alternatives: Sequence[float] = (),
    y_se: Any | None = None,
    r2_min: float = 0.5,
    where: str = "",
) -> Check:
    """A power law y ∝ x^p: the fitted exponent's 95% interval must contain ``predicted``.

    Inconclusive when the fit explains little (R² < ``r2_min``), when fewer than 3 points exist,
    or when the interval also contains one of ``alternatives`` (the rival hypotheses under test).
    """
    f = fit_power_law(x, y, y_se)
    measured = (
        f"{f.slope:.3f} [{f.slope_low:.3f}, {f.slope_high:.3f}], R² {f.r2:.2f}"
        if math.isfinite(f.slope)
        else "no fit"
    )
    tol = f"predicted exponent inside the fit's 95% interval; R² ≥ {r2_min:g}"
    if alternatives:
        tol += f"; alternatives {', '.join(f'{a:g}' for a in alternatives)} outside it"
    if where:
        tol += f" ({where})"
    if not math.isfinite(f.slope):
        return inconclusive(claim, source, kind, f"{f.n_points} usable points: no fit",
                            predicted=predicted, measured=measured, tolerance=tol)  # fmt: skip
    if f.r2 < r2_min:
        return inconclusive(claim, source, kind, f"the fit explains little (R² = {f.r2:.2f})",
                            predicted=predicted, measured=measured, tolerance=tol)  # fmt: skip
    inside = f.slope_low <= predicted <= f.slope_high
    rivals = [a for a in alternatives if f.slope_low <= a <= f.slope_high]
    if inside and rivals:
        return inconclusive(
            claim, source, kind,
            f"the interval also admits the alternative exponent {rivals[0]:g}",
            predicted=predicted, measured=measured, tolerance=tol,
        )  # fmt: skip
    return Check(claim, source, kind, float(predicted), measured, tol,
                 "holds" if inside else "fails")  # fmt: skip


def trend_check(
    claim: str,
    source: str,
    kind: str,
    *,
    x: Any,
    y: Any,
    y_se: Any | None = None,
    increasing: bool = True,
    where: str = "",
) -> Check:
    """The sign of the linear trend of y in x, through the slope's 95% interval.

    Holds when the interval is entirely on the claimed side of 0, fails when it is entirely on
    the other side, inconclusive when it contains 0 (no detectable trend).
    """
    f = fit_line(x, y, y_se)
    way = "increasing" if increasing else "decreasing"
    tol = f"slope's 95% interval entirely {'> 0' if increasing else '< 0'}"
    if where:
        tol += f" ({where})"
    if not math.isfinite(f.slope):
        return inconclusive(claim, source, kind, f"{f.n_points} usable points: no trend fit",
                            predicted=way, measured="no fit", tolerance=tol)  # fmt: skip
    measured = f"slope {f.slope:.4g} [{f.slope_low:.4g}, {f.slope_high:.4g}]"
    s = 1.0 if increasing else -1.0
    lo, hi = sorted((s * f.slope_low, s * f.slope_high))
    if lo > 0:
        return Check(claim, source, kind, way, measured, tol, "holds")
    if hi < 0:
        return Check(claim, source, kind, way, measured, tol, "fails")
    return inconclusive(claim, source, kind, "the slope's interval contains 0",
                        predicted=way, measured=measured, tolerance=tol)  # fmt: skip
