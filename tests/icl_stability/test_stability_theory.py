"""The stability bound (exact values) and the power-law fit (against numpy and a simulation)."""

import math

import numpy as np
import pytest

from fmtheory.theory import evaluate
from fmtheory.theory.stability import (
    fit_power_law,
    is_vacuous,
    log_stability_bound,
    stability_bound,
)


def test_bound_exact_values():
    for depth in (1, 3):
        assert stability_bound(gamma=0.0, depth=depth, n=5) == pytest.approx(1 / 9)
    assert stability_bound(gamma=1.0, depth=2, n=5) == pytest.approx((1 + math.e) ** 2 / 9)
    g = 0.3
    assert stability_bound(gamma=g, depth=4, n=11) == pytest.approx((1 + g * math.exp(g)) ** 4 / 21)
    # n = 1: the query alone, 2n − 1 = 1 token
    assert stability_bound(gamma=0.5, depth=1, n=1) == pytest.approx(1 + 0.5 * math.exp(0.5))


def test_bound_is_monotone_and_log_form_survives_overflow():
    assert stability_bound(gamma=1.0, depth=2, n=10) < stability_bound(gamma=1.5, depth=2, n=10)
    assert stability_bound(gamma=1.0, depth=3, n=10) > stability_bound(gamma=1.0, depth=2, n=10)
    assert stability_bound(gamma=1.0, depth=2, n=20) < stability_bound(gamma=1.0, depth=2, n=10)
    lg = log_stability_bound(gamma=800.0, depth=4, n=10)
    # log(1 + Γe^Γ) ≈ Γ + log Γ for large Γ
    assert lg == pytest.approx(4 * (800 + math.log(800)) - math.log(19), rel=1e-12)
    assert stability_bound(gamma=800.0, depth=4, n=10) == math.inf
    assert log_stability_bound(gamma=2.0, depth=3, n=7) == pytest.approx(
        math.log(stability_bound(gamma=2.0, depth=3, n=7))
    )


def test_vacuity_threshold_is_two():
    assert not is_vacuous(1.999) and is_vacuous(2.0) and is_vacuous(math.inf)


def test_registry_and_bad_input():
    v = evaluate("icl-stability-bound", gamma=0.5, depth=3, n=10)
    assert v.stderr is None and v.value == pytest.approx((1 + 0.5 * math.exp(0.5)) ** 3 / 19)
    for params, name in [
        (dict(gamma=-1.0, depth=1, n=2), "gamma"),
        (dict(gamma=1.0, depth=0, n=2), "depth"),
        (dict(gamma=1.0, depth=1, n=0), "n"),
    ]:
        with pytest.raises(ValueError, match=name):
            evaluate("icl-stability-bound", **params)
    with pytest.raises(ValueError, match="n ="):
        stability_bound(gamma=1.0, depth=1, n=0)


def test_power_law_fit_exact_and_against_numpy():
    n = np.arange(4, 40)
    f = fit_power_law(n, 3.0 * n**-1.0)
    assert f.exponent == pytest.approx(-1.0) and f.prefactor == pytest.approx(3.0)
    assert f.r2 == pytest.approx(1.0) and f.exponent_se == pytest.approx(0.0, abs=1e-10)
    rng = np.random.default_rng(0)
    v = 2.0 * n**-0.8 * np.exp(0.1 * rng.standard_normal(n.size))
    f = fit_power_law(n, v)
    slope, _ = np.polyfit(np.log(n), np.log(v), 1)
    assert f.exponent == pytest.approx(slope, rel=1e-10)


def test_power_law_standard_error_matches_simulation():
    # 2000 noisy data sets: the spread of the fitted exponents equals the mean reported s.e.
    rng = np.random.default_rng(1)
    n = np.arange(5, 30)
    fits = [fit_power_law(n, n**-1.0 * np.exp(0.2 * rng.standard_normal(n.size)))
            for _ in range(2000)]  # fmt: skip
    b = np.array([f.exponent for f in fits])
    se = np.mean([f.exponent_se for f in fits])
    assert abs(b.mean() + 1.0) <= 4 * b.std(ddof=1) / math.sqrt(b.size)
    # the s.e. of a standard deviation from 2000 draws is ≈ 1.6%: allow 4 of them
    assert abs(b.std(ddof=1) / se - 1) <= 4 * 0.016


def test_power_law_bad_input():
    with pytest.raises(ValueError, match="values"):
        fit_power_law(np.array([1.0, 2.0, 3.0]), np.array([1.0, 0.0, 1.0]))
    with pytest.raises(ValueError, match="n"):
        fit_power_law(np.array([1.0]), np.array([1.0]))
    with pytest.raises(ValueError, match="distinct"):
        fit_power_law(np.array([2.0, 2.0]), np.array([1.0, 2.0]))
