"""task-diversity: the transition estimate, the verdicts (they can fail), config errors, a tiny run."""

import math

import numpy as np
import pandas as pd
import pytest

from fmtheory.experiments import get_experiment
from fmtheory.experiments.base import ConfigError
from fmtheory.experiments.task_diversity import (
    Config,
    make_checks,
    run,
    transition_log2,
    transition_rows,
)


def test_transition_interpolates_in_log2_m():
    ms = np.array([1, 2, 4, 8])
    # log ratio −1 at M = 2, +1 at M = 4: crossing half way, log2 M* = 1.5
    assert transition_log2(ms, np.array([-2.0, -1.0, 1.0, 2.0])) == pytest.approx(1.5)
    assert transition_log2(ms, np.array([-3.0, -1.0, 3.0, 2.0])) == pytest.approx(1.25)
    assert transition_log2(ms, -np.ones(4)) is None
    assert transition_log2(ms, np.ones(4)) == -math.inf


def _table(cross_at=(3.0, 4.0), dmmse_shift=0.0, n_tasks=(1, 4, 16, 64, 256)):
    rows = []
    for seed, c in enumerate(cross_at):
        for m in n_tasks:
            lr = math.log2(m) - c  # log(dist_dmmse / dist_ridge) grows with log2 M
            dr = 0.1
            dd = dr * math.exp(lr)
            for metric, v in (("dist_to_dmmse", dd), ("dist_to_ridge", dr)):
                rows.append(dict(method="transformer", metric=metric, value=v, ci_low=v, ci_high=v,
                                 tasks="fresh", n_tasks=m, seed=seed))  # fmt: skip
            for tasks in ("fresh", "pool"):
                rows.append(dict(method="dmmse", metric="normalized_mse", value=0.5 + dmmse_shift,
                                 ci_low=0.49 + dmmse_shift, ci_high=0.51 + dmmse_shift,
                                 tasks=tasks, n_tasks=m, seed=seed))  # fmt: skip
                rows.append(dict(method="theory: dmmse risk", metric="normalized_mse", value=0.5,
                                 ci_low=0.49, ci_high=0.51, tasks=tasks, n_tasks=m, seed=seed))  # fmt: skip
    t = pd.DataFrame(rows)
    return pd.concat([t, pd.DataFrame(transition_rows(t))], ignore_index=True)


CFG = Config.model_validate({"pool": {"m_min": 1, "m_max": 256, "factor": 4, "seeds": 2}})


def test_all_hold_on_a_consistent_table():
    table = _table()
    checks = make_checks(CFG, table)
    assert [c.holds for c in checks] == [True, True, True, True]
    agg = table[(table["metric"] == "transition_log2_m") & (table["seed"] == -1)].iloc[0]
    assert agg["value"] == pytest.approx(3.5)
    assert agg["ci_low"] < 3.0 and agg["ci_high"] > 4.0  # Student-t interval over 2 replicates


def test_checks_fail_when_the_transformer_never_leaves_dmmse_or_never_starts_there():
    late = make_checks(CFG, _table(cross_at=(20.0, 20.0)))  # always dMMSE-like
    assert late[0].holds is True and late[1].holds is False and late[2].holds is False
    early = make_checks(CFG, _table(cross_at=(-5.0, -5.0)))  # always ridge-like
    assert early[0].holds is False and early[1].holds is True and early[2].holds is False


def test_theory_check_fails_on_disagreement():
    assert make_checks(CFG, _table(dmmse_shift=0.2))[3].holds is False


def test_config_errors_name_the_field():
    exp = get_experiment("task-diversity")
    for override, field in [
        ({"pool.m_min": 0}, "pool.m_min"),
        ({"task.n_points": 0}, "task.n_points"),
        ({"task.noise_std": 0.0}, "task.noise_std"),
        ({"pool.m_min": 8, "pool.m_max": 4}, "pool"),
        ({"train.curriculum.dims_start": 2}, "train"),
        ({"pool.bogus": 1}, "pool.bogus"),
    ]:
        with pytest.raises(ConfigError) as info:
            exp.make_config("quick", override)
        assert info.value.field == field


def test_presets_validate():
    exp = get_experiment("task-diversity")
    assert set(exp.presets()) >= {"quick", "paper"}
    for name in exp.presets():
        cfg = exp.make_config(name)
        assert cfg.pool.values()[0] == cfg.pool.m_min


def test_tiny_run_end_to_end():
    cfg = Config.model_validate({
        "task": {"dim": 2, "n_points": 5},
        "pool": {"m_min": 1, "m_max": 2, "seeds": 2},
        "model": {"n_layer": 1, "n_head": 1, "n_embd": 16},
        "train": {"steps": 8, "batch_size": 16, "warmup_steps": 2},
        "eval": {"n_prompts": 40, "theory_mc": 200},
    })  # fmt: skip
    res = run(cfg)
    t = res.table
    fresh = t[(t["method"] == "transformer") & (t["tasks"] == "fresh") & t["n_tasks"].notna()]
    assert set(fresh["metric"]) >= {"normalized_mse", "dist_to_dmmse", "dist_to_ridge"}
    assert sorted(fresh["n_tasks"].unique()) == [1, 2] and sorted(fresh["seed"].unique()) == [0, 1]
    assert len(res.checks) == 4 and set(res.figures) >= {"distance_vs_m", "error_fresh_tasks"}
    assert np.isfinite(t["value"][t["metric"] != "transition_log2_m"]).all()
    # M = 1: dMMSE predicts w_1·x, its pool-task error is σ² (per d: 0.25 / 2) up to sampling
    d1 = t[(t["method"] == "dmmse") & (t["tasks"] == "pool") & (t["n_tasks"] == 1)]
    assert (d1["ci_low"] <= 0.125 + 0.05).all() and (d1["ci_high"] >= 0.125 - 0.05).all()
