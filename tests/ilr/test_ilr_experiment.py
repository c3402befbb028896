"""The ``ilr`` experiment: config validation, the run plan, a tiny end-to-end run (with resume),
and checks that can fail."""

from __future__ import annotations

import math

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

from fmtheory.contract import RunContext, get_experiment
from fmtheory.errors import ConfigError
from fmtheory.experiments.ilr import checks, exponent, plan
from fmtheory.experiments.ilr.checks import ABOUT, R2_MIN
from fmtheory.experiments.ilr.config import ORE, TH_ORACLE, TRANSFORMER, TRE

EXP = get_experiment("ilr")

TINY = {
    "task.dim": 3, "task.context": 3, "task.rank": 1,
    "sweep.ranks": [1], "sweep.noises": [0.1], "sweep.conds": [1.0],
    "sweep.phase_ranks": [1, 3], "sweep.phase_contexts": [2],
    "model.n_layer": 1, "model.n_embd": 8, "train.steps": 10, "train.batch_size": 16,
    "gpt.model.n_layer": 1, "gpt.model.n_embd": 8, "gpt.train.steps": 3,
    "eval.n_prompts": 100, "eval.tre_tasks": 100, "eval.theory_mc": 100,
}  # fmt: skip


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    cfg = EXP.make_config("quick", TINY)
    ctx = RunContext(workdir=tmp_path_factory.mktemp("ilr"))
    yield cfg, ctx, EXP.run(cfg, ctx)
    plt.close("all")


def test_presets_validate():
    for preset in ("quick", "paper"):
        cfg = EXP.make_config(preset)
        assert cfg.task.context < cfg.task.dim  # the claim is about n < d


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"task.rank": 11}, "rank"),
        ({"sweep.ranks": [1, 11]}, "ranks"),
        ({"sweep.noises": [-0.1]}, "noises"),
        ({"sweep.conds": [0.5]}, "conds"),
        ({"sweep.phase_contexts": []}, "phase"),
        ({"model.loss": "magic"}, "model.loss"),
        ({"model.bogus": 1}, "bogus"),
    ],
)
def test_bad_config_names_the_field(overrides, field):
    with pytest.raises(ConfigError, match=field):
        EXP.make_config("quick", overrides)


def test_plan_of_the_quick_preset():
    runs = plan(EXP.make_config("quick"))
    keys = {(r.rank, r.noise, r.cond) for r in runs}
    # ranks ∪ phase ranks at the base σ, κ; the other σ; the other κ
    assert keys == {(1, 0.1, 1.0), (2, 0.1, 1.0), (4, 0.1, 1.0), (8, 0.1, 1.0),
                    (2, 0.05, 1.0), (2, 0.2, 1.0), (2, 0.4, 1.0), (2, 0.1, 4.0), (2, 0.1, 16.0)}  # fmt: skip
    base = next(r for r in runs if (r.rank, r.noise, r.cond) == (2, 0.1, 1.0))
    assert base.cells[8] == {"base", "rank", "noise", "cond", "phase"}
    assert set(base.cells) == {2, 4, 8, 12}


def test_tiny_run_table_and_checks(tiny):
    cfg, _, res = tiny
    t = res.table
    for col in ("method", "metric", "value", "se", "ci_low", "ci_high", "seed", "rank", "context",
                "noise", "cond", "sweeps"):  # fmt: skip
        assert col in t
    mse = t[t["metric"] == "mse_w"]
    cells = set(zip(mse["rank"], mse["context"], strict=True))
    assert cells == {(1, 3), (1, 2), (3, 2)}
    assert {TRANSFORMER, ORE, TRE, TH_ORACLE} <= set(mse["method"])
    assert (t["metric"] == "prior_mean_rel_err").any() and (t["metric"] == "forward_mse").any()
    by_claim = {c.claim: c for c in res.checks}
    floor = next(c for k, c in by_claim.items() if k.startswith("for r > n"))
    assert (
        floor.status == "holds" and floor.kind == "theory"
    )  # r = 3 > n = 2: nobody beats (r − n)λ
    expo = [c for k, c in by_claim.items() if "grows" in k]
    # one value per sweep: no fit (inconclusive), or no oracle power law to match (n/a)
    assert expo and all(c.status in ("inconclusive", "n/a") and c.why for c in expo)
    assert any("GPT" in c.claim and c.kind == "claim" for c in res.checks)
    assert set(res.figures) >= {"phase_diagram", "learned_prior_spectrum", "training_loss"}
    assert EXP.figures(t).keys() == res.figures.keys()  # figures come from the table alone
    plt.close("all")
    h = EXP.headline(t, cfg)
    assert h["transformer_over_ore"] == pytest.approx(h["transformer_mse"] / h["ore_mse"])


def test_resume_reuses_trained_models(tiny):
    cfg, ctx, res = tiny
    assert (ctx.workdir / "models").is_dir()
    again = EXP.run(cfg, ctx)  # loads every model: same numbers
    plt.close("all")
    cols = ["method", "metric", "rank", "context", "value"]
    a = res.table[cols].sort_values(cols[:4]).reset_index(drop=True)
    b = again.table[cols].sort_values(cols[:4]).reset_index(drop=True)
    pd.testing.assert_frame_equal(a, b)


def test_ordering_check_can_fail(tiny):
    cfg, _, res = tiny
    t = res.table.copy()
    sel = (t["metric"] == "mse_w") & (t["context"] > t["rank"])
    tre = t[sel & (t["method"] == TRE)].set_index(["rank", "context"])["value"]

    def set_transformer(factor):
        out = t.copy()
        for (r, n), v in tre.items():
            m = sel & (out["method"] == TRANSFORMER) & (out["rank"] == r) & (out["context"] == n)
            out.loc[m, ["value", "ci_low", "ci_high"]] = factor * v
            out.loc[m, "se"] = 1e-6 * v
        tm = sel & (out["method"] == TRE)
        out.loc[tm, "se"] = 1e-6 * out.loc[tm, "value"]
        return out

    def verdict(table):
        return next(c.status for c in checks(table, cfg) if c.claim.startswith("TRE ≳"))

    assert verdict(set_transformer(ABOUT * 0.99)) == "holds"
    assert verdict(set_transformer(ABOUT * 1.5)) == "fails"


def test_exponent_recovers_a_known_power_law():
    rows = []
    for r in (1, 2, 4, 8):
        for method, a in ((TRANSFORMER, 1.0), (TH_ORACLE, 0.5)):
            mse = (0.3 * (r / 16) ** a) ** 2  # root error = 0.3 (r/n)^a
            rows.append(dict(method=method, metric="mse_w", value=mse, se=0.0, ci_low=mse,
                             ci_high=mse, seed=0, rank=r, context=16, noise=0.1, cond=1.0,
                             sweeps="rank"))  # fmt: skip
    t = pd.DataFrame(rows)
    assert exponent(t, "rank", TRANSFORMER).slope == pytest.approx(1.0)
    assert exponent(t, "rank", TH_ORACLE).slope == pytest.approx(0.5)
    assert exponent(t, "rank", TRANSFORMER).r2 == pytest.approx(1.0)
    assert math.isnan(exponent(t, "noise", TRANSFORMER).slope)
    assert np.isfinite(exponent(t, "rank", TRANSFORMER).intercept)


def _sweep_table(t_exp: float, o_exp: float, noise: float = 0.0) -> pd.DataFrame:
    rows = []
    for i, r in enumerate((1, 2, 4, 8, 16)):
        for method, a in ((TRANSFORMER, t_exp), (TH_ORACLE, o_exp)):
            eps = noise * (-1) ** i if method == TRANSFORMER else 0.0  # scatter, same slope
            root = 0.3 * (r / 32) ** a * math.exp(eps)
            rows.append(dict(method=method, metric="mse_w", value=root**2, se=1e-4 * root**2,
                             ci_low=root**2, ci_high=root**2, seed=0, rank=r, context=32,
                             noise=0.1, cond=1.0, sweeps="rank"))  # fmt: skip
    return pd.DataFrame(rows)


def _expo_status(t):
    from fmtheory.experiments.ilr.checks import _exponent_checks

    return {c.claim.split(" grows ")[1][:14]: c.status for c in _exponent_checks(t)
            if "r/n" in c.claim}  # fmt: skip


def test_exponent_checks_hold_fail_and_refuse_to_decide():
    # transformer linear, oracle at 0.5: "linear" holds, "like the oracle" fails
    st = _expo_status(_sweep_table(1.0, 0.5))
    assert st == {"linearly in r/": "holds", "in r/n like th": "fails"}
    # transformer like the oracle
    st = _expo_status(_sweep_table(0.5, 0.5))
    assert st == {"linearly in r/": "fails", "in r/n like th": "holds"}
    # an exponent between the two with a wide interval admits both: inconclusive
    st = _expo_status(_sweep_table(0.75, 0.5, noise=0.4))
    assert set(st.values()) <= {"inconclusive"}, st
    assert R2_MIN > 0.5
