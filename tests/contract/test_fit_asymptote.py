"""``checks.fit_asymptote`` recovers a planted asymptote and rate, and its interval covers the truth."""

from __future__ import annotations

import numpy as np
import pytest

from fmtheory.checks import fit_asymptote


def test_recovers_planted_curve_and_covers_the_truth():
    x = np.geomspace(300, 30_000, 8)
    truth = dict(a=1.4, b=40.0, c=0.6)
    rng = np.random.default_rng(0)
    hits = 0
    for _ in range(200):
        se = 0.02 * np.ones_like(x)
        y = truth["a"] + truth["b"] * x ** -truth["c"] + rng.normal(0, se)
        f = fit_asymptote(x, y, se)
        lo, hi = f.ci
        hits += lo <= truth["a"] <= hi
    assert 0.90 <= hits / 200 <= 0.99  # nominal 95% coverage
    f = fit_asymptote(x, truth["a"] + truth["b"] * x ** -truth["c"])
    assert f.asymptote == pytest.approx(truth["a"], rel=1e-6)
    assert f.rate == pytest.approx(truth["c"], rel=1e-5)
    assert f.predict(x[:2]) == pytest.approx(
        truth["a"] + truth["b"] * x[:2] ** -truth["c"], rel=1e-6
    )


def test_needs_four_points():
    with pytest.raises(ValueError, match="need >= 4"):
        fit_asymptote([1, 2, 3], [3, 2, 1])
