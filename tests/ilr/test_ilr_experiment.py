"""The ``ilr`` experiment: config validation, the run plan, a tiny end-to-end run (with resume),
and checks that can fail."""

from __future__ import annotations

import math

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

from fmtheory.experiments.base import ConfigError, RunContext, get_experiment
from fmtheory.experiments.ilr import (
    ABOUT,
    ORE,
    TH_ORACLE,
    TRANSFORMER,
    TRE,
    exponent,
    make_checks,
    plan,
)

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
    for col in ("method", "metric", "value", "ci_low", "ci_high", "seed", "rank", "context",
                "noise", "cond", "sweeps"):  # fmt: skip
        assert col in t
    mse = t[t["metric"] == "mse_w"]
    cells = set(zip(mse["rank"], mse["context"], strict=True))
    assert cells == {(1, 3), (1, 2), (3, 2)}
    assert {TRANSFORMER, ORE, TRE, TH_ORACLE} <= set(mse["method"])
    assert (t["metric"] == "prior_mean_rel_err").any() and (t["metric"] == "forward_mse").any()
    by_claim = {c.claim: c for c in res.checks}
    floor = next(c for k, c in by_claim.items() if k.startswith("for r > n"))
    assert floor.holds is True  # r = 3 > n = 2 cell: nobody beats (r − n)λ
    expo = [c for k, c in by_claim.items() if "grows" in k]
    assert expo and all(c.holds is None for c in expo)  # one value per sweep: not applicable
    assert set(res.figures) >= {"phase_diagram", "learned_prior_spectrum", "training_loss"}
    assert EXP.figures(t).keys() == res.figures.keys()  # figures come from the table alone
    plt.close("all")
    h = EXP.headline(t)
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
        return out

    def verdict(table):
        return next(c.holds for c in make_checks(cfg, table) if c.claim.startswith("TRE ≳"))

    assert verdict(set_transformer(ABOUT * 0.99)) is True
    assert verdict(set_transformer(ABOUT * 1.5)) is False


def test_exponent_recovers_a_known_power_law():
    rows = []
    for r in (1, 2, 4, 8):
        for method, a in ((TRANSFORMER, 1.0), (TH_ORACLE, 0.5)):
            mse = (0.3 * (r / 16) ** a) ** 2  # root error = 0.3 (r/n)^a
            rows.append(dict(method=method, metric="mse_w", value=mse, ci_low=mse, ci_high=mse,
                             seed=0, rank=r, context=16, noise=0.1, cond=1.0, sweeps="rank"))  # fmt: skip
    t = pd.DataFrame(rows)
    assert exponent(t, "rank", TRANSFORMER).slope == pytest.approx(1.0)
    assert exponent(t, "rank", TH_ORACLE).slope == pytest.approx(0.5)
    assert exponent(t, "rank", TRANSFORMER).r2 == pytest.approx(1.0)
    assert math.isnan(exponent(t, "noise", TRANSFORMER).slope)
    assert np.isfinite(exponent(t, "rank", TRANSFORMER).intercept)
