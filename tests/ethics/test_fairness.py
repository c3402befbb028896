"""fairness: formulas against simulation, fairlearn metrics on hand-made cases, checks, config."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from fmtheory.contract import ConfigError, RunContext, get_experiment
from fmtheory.experiments import fairness as fx
from fmtheory.theory import evaluate
from fmtheory.theory.fairness import chouldechova_fpr, kmr_generalized_fnr

EXP = get_experiment("fairness")


def test_kmr_identity_against_simulation() -> None:
    rng = np.random.default_rng(1)
    s = rng.beta(2.0, 5.0, 400_000)  # a calibrated score: Y ~ Bernoulli(s)
    y = rng.random(s.size) < s
    p, x, yy = y.mean(), s[~y].mean(), (1 - s[y]).mean()
    assert kmr_generalized_fnr(base_rate=p, gfpr=x) == pytest.approx(yy, rel=0.01)


def test_chouldechova_against_simulation() -> None:
    rng = np.random.default_rng(2)
    y = rng.random(200_000) < 0.3
    pred = np.where(y, rng.random(y.size) < 0.7, rng.random(y.size) < 0.2)
    tp, fp = (pred & y).sum(), (pred & ~y).sum()
    fpr = chouldechova_fpr(prevalence=y.mean(), ppv=tp / (tp + fp), fnr=1 - tp / y.sum())
    assert fpr == pytest.approx(fp / (~y).sum(), rel=1e-9)
    assert evaluate("chouldechova-fpr", prevalence=0.5, ppv=0.5, fnr=0.0).value == 1.0
    with pytest.raises(ValueError, match="prevalence"):
        evaluate("chouldechova-fpr", prevalence=1.5, ppv=0.5, fnr=0.1)


def test_rate_rows_match_fairlearn_by_hand() -> None:
    y = np.array([1, 0, 1, 0, 1, 1, 0, 0])
    pred = np.array([1, 1, 0, 0, 1, 0, 0, 0])
    a = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    rows: list[dict] = []
    fx._rate_rows(rows, "m", pred, y, a, seed=0)
    t = pd.DataFrame(rows).set_index("metric")["value"]
    # group 0 selects 2/4, group 1 selects 1/4
    assert t["dp_difference"] == pytest.approx(0.25)
    # TPR: g0 1/2, g1 1/2; FPR: g0 1/2, g1 0 -> EO difference 0.5
    assert t["eo_difference"] == pytest.approx(0.5)
    assert t["accuracy_group0"] == pytest.approx(0.5)
    assert t["accuracy_group1"] == pytest.approx(0.75)


@pytest.fixture(scope="module")
def tiny():
    cfg = EXP.make_config("tiny")
    return cfg, EXP.run(cfg, RunContext())


def test_tiny_runs_and_is_deterministic(tiny) -> None:
    cfg, res = tiny
    again = EXP.run(cfg, RunContext())
    pd.testing.assert_frame_equal(res.table, again.table)
    assert {c.kind for c in res.checks} >= {"claim", "theory", "sanity"}
    assert set(res.figures) == {"frontier", "transfer", "impossibility"}
    assert all(c.status != "fails" for c in res.checks)


def _status(table: pd.DataFrame, cfg, start: str) -> str:
    return next(c.status for c in fx.checks(table, cfg) if c.claim.startswith(start))


def _set(table: pd.DataFrame, method: str, metric: str, value: float, se: float | None = None,
         **coords) -> pd.DataFrame:  # fmt: skip
    t = table.copy()
    m = (t["method"] == method) & (t["metric"] == metric)
    for k, v in coords.items():
        m &= t[k] == v
    assert m.any()
    t.loc[m, "value"] = value
    if se is not None:
        t.loc[m, "se"] = se
    return t


def test_mitigation_check_fails_and_holds(tiny) -> None:
    cfg, res = tiny
    start = "fairlearn's ExponentiatedGradient"
    t = _set(res.table, "logistic", "dp_difference", 0.3, 0.01)
    t = _set(t, "eg_demographic_parity", "dp_difference", 0.01, 0.01)
    assert _status(t, cfg, start) == "holds"
    t = _set(t, "eg_demographic_parity", "dp_difference", 0.4, 0.01)
    assert _status(t, cfg, start) == "fails"


def test_transfer_check_fails_and_holds(tiny) -> None:
    cfg, res = tiny
    start = "the score's DP gap moves"
    t = _set(res.table, "theory", "transfer_bound", 0.1, direction="aligned", size=0.5)
    t = _set(t, "logistic", "dp_gap_change", 0.05, 0.001, direction="aligned", size=0.5)
    t = _set(t, "logistic", "dp_gap_change", 0.0, 0.001, direction="scale", size=0.5)
    assert _status(t, cfg, start) == "holds"
    t = _set(t, "logistic", "dp_gap_change", 0.2, 0.001, direction="aligned", size=0.5)
    assert _status(t, cfg, start) == "fails"


def test_kmr_checks_fail_and_hold(tiny) -> None:
    cfg, res = tiny
    t = _set(res.table, "posterior", "gfnr_group0", 0.3, 0.001)
    t = _set(t, "kmr_identity", "gfnr_group0", 0.3, 0.001)
    assert _status(t, cfg, "a calibrated score's generalized FNR") == "holds"
    t = _set(t, "kmr_identity", "gfnr_group0", 0.5, 0.001)
    assert _status(t, cfg, "a calibrated score's generalized FNR") == "fails"
    start = "with unequal base rates"
    t = _set(res.table, "population", "base_rate_group0", 0.6, 0.001)
    t = _set(t, "population", "base_rate_group1", 0.3, 0.001)
    for k in ("gfpr", "gfnr"):
        t = _set(t, "posterior", f"{k}_group0", 0.3, 0.001)
        t = _set(t, "posterior", f"{k}_group1", 0.3, 0.001)
    assert _status(t, cfg, start) == "fails"
    t = _set(t, "posterior", "gfpr_group1", 0.2, 0.001)
    assert _status(t, cfg, start) == "holds"


def test_pot_sanity_fails_on_wrong_w1(tiny) -> None:
    cfg, res = tiny
    t = res.table.copy()
    t.loc[t["method"] == "pot", "value"] *= 1.01
    assert _status(t, cfg, "POT's W1") == "fails"


@pytest.mark.parametrize(
    "field,value",
    [("population.p_group1", 1.0), ("shift.sizes", [0.0]), ("mitigation.bounds", [1.5]),
     ("mitigation.constraints", ["accuracy"]), ("shift.directions", ["sideways"]),
     ("n_train", 5)],
)  # fmt: skip
def test_bad_input(field: str, value: object) -> None:
    with pytest.raises(ConfigError) as e:
        EXP.make_config("quick", {field: value})
    assert field.split(".")[-1] in str(e.value)
    assert "\n" not in str(e.value)
