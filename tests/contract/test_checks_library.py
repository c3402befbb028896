"""The check library: fits against numpy/scipy, and each factory's three outcomes."""

import numpy as np
import pytest
from scipy import stats

from fmtheory.checks import (
    bound_check,
    ci_row,
    difference_check,
    exponent_check,
    fit_line,
    fit_power_law,
    mean_ci,
    trend_check,
    z_check,
)


def test_mean_ci_matches_numpy():
    v = np.random.default_rng(0).normal(2.0, 3.0, 500)
    ci = mean_ci(v)
    assert ci.mean == pytest.approx(v.mean())
    assert ci.se == pytest.approx(v.std(ddof=1) / np.sqrt(v.size))
    row = ci_row("m", "err", v, seed=0, n=3)
    assert row["se"] == pytest.approx(ci.se) and row["n"] == 3


def test_fit_line_matches_scipy_linregress():
    rng = np.random.default_rng(1)
    x = np.linspace(0, 10, 30)
    y = 1.5 * x - 2 + rng.normal(0, 1, x.size)
    f, ref = fit_line(x, y), stats.linregress(x, y)
    assert f.slope == pytest.approx(ref.slope)
    assert f.slope_se == pytest.approx(ref.stderr)
    assert f.r2 == pytest.approx(ref.rvalue**2)
    t = stats.t.ppf(0.975, x.size - 2)
    assert f.slope_low == pytest.approx(ref.slope - t * ref.stderr)


def test_power_law_recovers_planted_exponent():
    x = np.geomspace(1, 1000, 12)
    y = 3 * x**-0.5 * np.exp(np.random.default_rng(2).normal(0, 0.02, x.size))
    f = fit_power_law(x, y)
    assert f.slope_low < -0.5 < f.slope_high and f.slope_high - f.slope_low < 0.05


def test_z_check_holds_and_fails():
    assert (
        z_check("c", "s", "theory", measured=1.0, measured_se=0.1, predicted=1.3).status == "holds"
    )
    assert (
        z_check("c", "s", "theory", measured=1.0, measured_se=0.1, predicted=1.5).status == "fails"
    )


def test_bound_check_three_outcomes():
    kw = dict(bound=1.0, below=True)
    assert bound_check("c", "s", "claim", value=0.5, value_se=0.1, **kw).status == "holds"
    assert bound_check("c", "s", "claim", value=1.5, value_se=0.1, **kw).status == "fails"
    c = bound_check("c", "s", "claim", value=0.95, value_se=0.1, **kw)
    assert c.status == "inconclusive" and "contains the bound" in c.why


def test_difference_check_no_significant_difference_is_not_a_pass():
    c = difference_check("c", "s", "claim", a=0.21, a_se=0.02, b=0.20, b_se=0.02)
    assert c.status == "inconclusive"
    assert difference_check("c", "s", "claim", a=0.5, a_se=0.02, b=0.2, b_se=0.02).status == "holds"
    assert difference_check("c", "s", "claim", a=0.1, a_se=0.02, b=0.5, b_se=0.02).status == "fails"
    # an effect smaller than the stated minimum counts as absent
    c = difference_check("c", "s", "claim", a=0.51, a_se=1e-4, b=0.5, b_se=1e-4, min_effect=0.05)
    assert c.status == "fails"


def test_exponent_check_interval_that_admits_both_hypotheses_is_inconclusive():
    rng = np.random.default_rng(3)
    x = np.geomspace(1, 4, 5)
    y = x**0.9 * np.exp(rng.normal(0, 0.2, x.size))  # noisy: wide interval
    c = exponent_check("c", "s", "claim", x=x, y=y, predicted=1.0, alternatives=[0.74])
    assert c.status == "inconclusive" and "alternative" in c.why
    x = np.geomspace(1, 1000, 10)
    y = x**1.0 * np.exp(rng.normal(0, 0.01, x.size))
    assert exponent_check("c", "s", "claim", x=x, y=y, predicted=1.0,
                          alternatives=[0.74]).status == "holds"  # fmt: skip
    assert exponent_check("c", "s", "claim", x=x, y=y, predicted=0.74).status == "fails"


def test_exponent_check_low_r2_is_inconclusive():
    x = np.geomspace(1, 100, 8)
    y = np.exp(np.random.default_rng(4).normal(0, 1, x.size))
    c = exponent_check("c", "s", "claim", x=x, y=y, predicted=0.3, r2_min=0.5)
    assert c.status == "inconclusive" and "R²" in c.why


def test_trend_check_three_outcomes():
    x = np.arange(10.0)
    assert trend_check("c", "s", "claim", x=x, y=x + 0.01 * np.sin(x)).status == "holds"
    assert trend_check("c", "s", "claim", x=x, y=-x + 0.01 * np.sin(x)).status == "fails"
    flat = np.random.default_rng(5).normal(0, 1, 10)
    assert trend_check("c", "s", "claim", x=x, y=flat).status in ("inconclusive",)
