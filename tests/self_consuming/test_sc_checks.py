"""The self-consuming checks, from constructed tables: each claim and theory check holds on a table
that agrees with it and fails on one that does not (tables from tiny runs, then edited by hand)."""

from __future__ import annotations

import pandas as pd
import pytest

from fmtheory.contract import RunContext, get_experiment

EXP = get_experiment("self-consuming")

GAUSS = {"generations": 6, "replicates": 300, "gaussian.n0": 8, "gaussian.fit_covariance": False}


@pytest.fixture(scope="module")
def gauss():
    cfg = EXP.make_config("quick", {"model": "gaussian", **GAUSS})
    return cfg, EXP.run(cfg, RunContext()).table


def _find(checks, *words):
    found = [c for c in checks if all(w in c.claim for w in words)]
    assert found, [c.claim for c in checks]
    return found[0]


def _set(table: pd.DataFrame, regime: str, metric: str, value: float, se: float,
         method: str | None = None, last_only: bool = True) -> pd.DataFrame:  # fmt: skip
    t = table.copy()
    sel = (t["regime"] == regime) & (t["metric"] == metric) & (t["method"] != "theory")
    if method is not None:
        sel &= t["method"] == method
    if last_only and t.loc[sel, "generation"].notna().any():
        sel &= t["generation"] == t.loc[sel, "generation"].max()
    t.loc[sel, ["value", "se", "ci_low", "ci_high"]] = [value, se, value - 2 * se, value + 2 * se]
    return t


def test_closed_form_check_holds_then_fails(gauss):
    cfg, t = gauss
    c = _find(EXP.checks(t, cfg), "[replace]", "E||μ_n − μ||²")
    assert (c.kind, c.status) == ("theory", "holds")
    bad = t.copy()
    sel = (
        (bad["regime"] == "replace")
        & (bad["metric"] == "mean_sq_err")
        & (bad["method"] != "theory")
    )
    bad.loc[sel, "value"] *= 3
    assert _find(EXP.checks(bad, cfg), "[replace]", "E||μ_n − μ||²").status == "fails"


def test_contraction_check_holds_then_fails(gauss):
    cfg, t = gauss
    c = _find(EXP.checks(t, cfg), "[replace α=0.2]", "E[e_(t+1)")
    assert (c.kind, c.status) == ("theory", "holds")
    bad = _set(t, "replace α=0.2", "contraction", 0.5, 0.001)
    assert _find(EXP.checks(bad, cfg), "[replace α=0.2]", "E[e_(t+1)").status == "fails"


def test_bertrand_is_na_when_kappa_b_at_least_one_and_can_fail_below(gauss):
    cfg, t = gauss
    cs = [c for c in EXP.checks(t, cfg) if "Bertrand et al.'s bound" in c.claim]
    assert cs[0].status == "n/a" and "κ_B = 4" in cs[0].why
    good = _set(t, "replace α=0.2 γ=4", "contraction", 0.16, 0.001)  # exact κ = 0.8/5, κ_B = 4/21
    assert _find(EXP.checks(good, cfg), "[replace α=0.2 γ=4]", "Bertrand").status == "holds"
    bad = _set(t, "replace α=0.2 γ=4", "contraction", 0.5, 0.001)
    assert _find(EXP.checks(bad, cfg), "[replace α=0.2 γ=4]", "Bertrand").status == "fails"


def test_drift_and_comparison_claims_hold_then_fail(gauss):
    cfg, t = gauss
    cs = EXP.checks(t, cfg)
    drift = _find(cs, "drifts away")
    real = _find(cs, "real-data share keeps")
    assert (drift.kind, drift.status, real.status) == ("claim", "holds", "holds")
    bad = _set(t, "replace", "distance_change", -1.0, 0.01)
    assert _find(EXP.checks(bad, cfg), "drifts away").status == "fails"
    bad = _set(t, "replace α=0.2", "distance", 10.0, 0.01)
    assert _find(EXP.checks(bad, cfg), "real-data share keeps").status == "fails"
    bad = _set(t, "replace α=0.2 γ=4", "distance", 10.0, 0.01)
    assert _find(EXP.checks(bad, cfg), "stronger correction", "γ=4 vs").status == "fails"


def test_plateau_is_an_equivalence_test(gauss):
    cfg, t = gauss
    st = _find(EXP.checks(t, cfg), "stable: the distance")
    assert st.status == "inconclusive" and "transient" in st.why  # 6 generations: κ^3 = 0.51
    long = EXP.make_config("quick", {"model": "gaussian", **GAUSS, "generations": 60})
    d = float(t[(t["regime"] == "replace α=0.2") & (t["metric"] == "distance")]["value"].iloc[0])
    for value, se, status in ((0.0, 1e-4, "holds"), (d, 1e-4, "fails"),
                              (0.1 * d, 0.1 * d, "inconclusive")):  # fmt: skip
        tt = _set(t, "replace α=0.2", "distance_plateau_change", value, se)
        # the margin is 10% of the distance at the generation the change starts from
        tt.loc[(tt["regime"] == "replace α=0.2") & (tt["metric"] == "distance")
               & (tt["method"] != "theory"), "value"] = d  # fmt: skip
        assert _find(EXP.checks(tt, long), "stable: the distance").status == status


def test_collapse_claim_holds_then_fails():
    cfg = EXP.make_config("quick", {"model": "gaussian", "generations": 6, "replicates": 200,
                                    "gaussian.n0": 8})  # fmt: skip
    t = EXP.run(cfg, RunContext()).table
    few = EXP.make_config("quick", {"model": "gaussian", "generations": 1, "gaussian.n0": 50})
    assert _find(EXP.checks(t, few), "collapse").status == "inconclusive"  # too few generations
    long = EXP.make_config("quick", {"model": "gaussian", "generations": 60, "gaussian.n0": 8})
    low = _set(t, "replace", "var_ratio_median", 0.01, 0.001)
    c = _find(EXP.checks(low, long), "collapse")
    assert (c.kind, c.status) == ("claim", "holds")
    high = _set(t, "replace", "var_ratio_median", 1.5, 0.001)
    assert _find(EXP.checks(high, long), "collapse").status == "fails"


def test_linreg_accumulate_bound_holds_then_fails():
    cfg = EXP.make_config("quick", {"model": "linreg", "generations": 6, "replicates": 300,
                                    "linreg.dim": 3, "linreg.n0": 12})  # fmt: skip
    t = EXP.run(cfg, RunContext()).table
    first = 1.0 * 3 / (12 - 3 - 1)  # σ²d/(T−d−1)
    good = _set(t, "accumulate", "distance", first, 0.001)
    c = _find(EXP.checks(good, cfg), "π²/6")
    assert (c.kind, c.status) == ("claim", "holds")
    bad = _set(t, "accumulate", "distance", 100.0, 0.01)
    assert _find(EXP.checks(bad, cfg), "π²/6").status == "fails"


def test_neural_tails_claim_and_missing_mass_sanity():
    cfg = EXP.make_config("quick", {
        "model": "neural", "generations": 2, "replicates": 1, "neural.n0": 40,
        "neural.vocab": 20, "neural.head": 4, "neural.steps": 3, "neural.batch_size": 16,
        "neural.mle_replicates": 20, "neural.max_n": 100, "compare.enabled": False,
    })  # fmt: skip
    t = EXP.run(cfg, RunContext()).table
    for value, status in ((1.0, "holds"), (-1.0, "fails")):
        tt = _set(t, "replace", "tail_minus_head", value, 0.01, method="categorical-mle")
        c = _find(EXP.checks(tt, cfg), "categorical MLE: tails disappear")
        assert (c.kind, c.status) == ("claim", status)
    mm = _find(EXP.checks(t, cfg), "never returns")
    assert (mm.kind, mm.status) == ("sanity", "holds")
    bad = _set(t, "replace", "missing_mass_min_step", -0.1, 0.0, method="categorical-mle")
    assert _find(EXP.checks(bad, cfg), "never returns").status == "fails"
