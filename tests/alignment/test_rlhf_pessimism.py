"""rlhf-pessimism: the MLE against scikit-learn, the theory against simulation, every check's
failure and success on constructed tables, bad input, determinism."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

from fmtheory.checks import exact_row
from fmtheory.contract import ConfigError, get_experiment
from fmtheory.experiments import rlhf_pessimism as rp
from fmtheory.experiments._preference import bt_mle
from fmtheory.theory import evaluate
from fmtheory.theory.preference import bt_asymptotic_sq_error, bt_gamma, pessimism_radius

NAME = "rlhf-pessimism"


def _bt_data(rng, reps, n, d, theta):
    x = rng.standard_normal((reps, n, d))
    y = (rng.random((reps, n)) < 1 / (1 + np.exp(-(x @ theta)))).astype(float)
    return x, y


@pytest.mark.parametrize("lam", [0.0, 0.01])
def test_bt_mle_matches_sklearn_logistic_regression(lam):
    rng = np.random.default_rng(0)
    d, n = 5, 400
    theta = rng.standard_normal(d)
    x, y = _bt_data(rng, 3, n, d, theta)
    est = bt_mle(x, y, lam=lam)
    for r in range(3):
        kw = {"C": np.inf if lam == 0 else 1.0 / (n * lam)}
        sk = LogisticRegression(fit_intercept=False, tol=1e-12, max_iter=10_000, **kw)
        sk.fit(x[r], y[r])
        np.testing.assert_allclose(est[r], sk.coef_[0], rtol=1e-5, atol=1e-6)


def test_bt_mle_rate_formula_against_simulation():
    """θ* = 0: I = Σ_D/4 exactly, so E‖θ̂ − θ*‖²_{Σ_D} → 4d/n (registered bt-mle-rate²)."""
    rng = np.random.default_rng(1)
    d, n, reps = 4, 2000, 400
    x, y = _bt_data(rng, reps, n, d, np.zeros(d))
    est = bt_mle(x, y)
    sigma = np.einsum("rnd,rne->rde", x, x) / n
    sq = np.einsum("rd,rde,re->r", est, sigma, est)
    pred = evaluate("bt-mle-rate", d=d, n=n, gamma=0.25).value ** 2
    se = sq.std(ddof=1) / np.sqrt(reps)
    assert abs(sq.mean() - pred) <= 4 * se
    assert abs(sq.mean() / pred - 1) < 0.15


def test_asymptotic_trace_against_simulation():
    rng = np.random.default_rng(2)
    d, n, reps = 3, 3000, 400
    theta = np.array([1.0, -0.5, 0.8])
    x = rng.standard_normal((n, d))  # one fixed design, labels redrawn
    xs = np.broadcast_to(x, (reps, n, d)).copy()
    y = (rng.random((reps, n)) < 1 / (1 + np.exp(-(x @ theta)))).astype(float)
    est = bt_mle(xs, y)
    sigma = x.T @ x / n
    sq = np.einsum("rd,de,re->r", est - theta, sigma, est - theta)
    pred = float(bt_asymptotic_sq_error(x, theta))
    se = sq.std(ddof=1) / np.sqrt(reps)
    assert abs(sq.mean() - pred) <= 4 * se


def test_pessimism_radius_covers_theta_and_bound_formula():
    """The Wald radius Γ covers θ* in ≥ 1 − δ of data sets (it is conservative: I ⪰ γΣ_D)."""
    rng = np.random.default_rng(3)
    d, n, reps, delta = 3, 1000, 300, 0.1
    theta = np.array([0.6, 0.0, -0.6])
    x, y = _bt_data(rng, reps, n, d, theta)
    est = bt_mle(x, y)
    sigma = np.einsum("rnd,rne->rde", x, x) / n
    err = np.sqrt(np.einsum("rd,rde,re->r", est - theta, sigma, est - theta))
    lb = float(np.abs(x @ theta).max())
    g = pessimism_radius(d=d, n=n, gamma=bt_gamma(lb), delta=delta, lam=0.0, b=1.0)
    assert (err <= g).mean() >= 1 - delta
    v = evaluate("rlhf-pessimism-bound", d=d, n=n, gamma=bt_gamma(lb), delta=delta, lam=0.0,
                 b=1.0, coverage_norm=0.5).value  # fmt: skip
    assert v == pytest.approx(2 * g * 0.5)


# ---------------------------------------------------------------------------------------------
def _table(*, exp_scale=-0.5, sq=(0.0121, 0.0009), asym=(0.0121, 0.00001),
           greedy=(0.8, 0.02), pess=(0.45, 0.005), viol=(0.0, 0.0)):  # fmt: skip
    rows = []
    for n in (250, 500, 1000, 2000, 4000):
        v = 7.0 * n**exp_scale
        rows.append(exact_row("bt-mle", "sigma_error", v, se=0.02 * v, seed=0, n=n))
    rows.append(exact_row("bt-mle", "sq_sigma_error", sq[0], se=sq[1], seed=0, n=4000))
    rows.append(exact_row("asymptotic", "sq_sigma_error", asym[0], se=asym[1], seed=0, n=4000))
    rows.append(exact_row("greedy", "suboptimality", greedy[0], se=greedy[1], seed=0, n=500))
    rows.append(exact_row("pessimistic", "suboptimality", pess[0], se=pess[1], seed=0, n=500))
    rows.append(exact_row("pessimistic", "bound", 12.0, se=0.1, seed=0, n=500))
    rows.append(exact_row("pessimistic", "bound_violation", viol[0], se=viol[1], seed=0, n=500))
    return pd.DataFrame(rows)


def _cfg():
    return get_experiment(NAME).make_config("tiny")


def _status(table):
    return [c.status for c in rp.checks(table, _cfg())]


def test_checks_hold_on_a_table_that_agrees():
    assert _status(_table()) == ["holds"] * 4


def test_checks_fail_one_by_one():
    assert _status(_table(exp_scale=-1.0))[0] == "fails"
    assert _status(_table(exp_scale=-0.25))[0] == "fails"
    assert _status(_table(sq=(0.02, 0.0009)))[1] == "fails"
    assert _status(_table(greedy=(0.45, 0.01)))[2] == "fails"
    assert _status(_table(viol=(0.3, 0.02)))[3] == "fails"


def test_checks_kinds():
    kinds = [c.kind for c in rp.checks(_table(), _cfg())]
    assert kinds == ["claim", "theory", "claim", "claim"]


def test_good_coverage_removes_the_pessimism_gain():
    """With a* well covered the greedy policy is as good as the pessimistic one: the claim fails."""
    cov = rp.CoverageSection(n_actions=12, n_well=3, n=300, optimal_share=0.08, poor_share=0.08,
                             reps=40)  # fmt: skip
    table = pd.DataFrame(rp.rate_rows(_cfg().rate, 0) + rp.coverage_rows(cov, 0))
    assert rp.checks(table, _cfg())[2].status == "fails"


def test_tiny_run_is_deterministic_and_complete():
    exp = get_experiment(NAME)
    a = exp.run(exp.make_config("tiny"), None)
    b = exp.run(exp.make_config("tiny"), None)
    pd.testing.assert_frame_equal(a.table, b.table)
    assert {"se", "n"} <= set(a.table.columns)
    assert set(a.figures) == {"mle_rate", "coverage"}
    assert len(a.checks) == 4
    assert exp.headline(a.table, exp.make_config("tiny"))


@pytest.mark.parametrize(
    "field,value",
    [
        ("rate.n_grid", []),
        ("rate.n_grid", [3, 100, 200]),
        ("coverage.n", 0),
        ("coverage.delta", 1.5),
        ("coverage.lam", 0.0),
        ("coverage.n_well", 19),
        ("coverage.poor_share", 0.2),
    ],
)
def test_bad_input_is_one_config_error(field, value):
    with pytest.raises(ConfigError) as e:
        get_experiment(NAME).make_config("quick", {field: value})
    assert "\n" not in str(e.value)
