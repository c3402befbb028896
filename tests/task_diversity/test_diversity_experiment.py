"""task-diversity: the transition estimate, the verdicts (they can fail), config errors, a tiny run."""

import math

import numpy as np
import pandas as pd
import pytest

from fmtheory.contract import ConfigError, get_experiment
from fmtheory.experiments.task_diversity import (
    checks,
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


def _row(method, metric, value, se, **coords):
    return dict(method=method, metric=metric, value=value, se=se, ci_low=value - 1.96 * se,
                ci_high=value + 1.96 * se, **coords)  # fmt: skip


def _table(cross_at=(3.0, 4.0), dmmse_shift=0.0, sim_shift=0.0, n_tasks=(1, 4, 16, 64, 256)):
    rows = []
    for seed, c in enumerate(cross_at):
        for m in n_tasks:
            lr = math.log2(m) - c  # log(dist_dmmse / dist_ridge) grows with log2 M
            dr = 0.1
            dd = dr * math.exp(lr)
            for metric, v in (("dist_to_dmmse", dd), ("dist_to_ridge", dr)):
                rows.append(_row("transformer", metric, v, 0.002, tasks="fresh", n_tasks=m,
                                 seed=seed))  # fmt: skip
            for tasks in ("fresh", "pool"):
                for metric in ("normalized_mse", "normalized_mse_k0"):
                    rows.append(_row("dmmse", metric, 0.5 + dmmse_shift, 0.01, tasks=tasks,
                                     n_tasks=m, seed=seed))  # fmt: skip
                rows.append(_row("theory: dmmse exact", "normalized_mse_k0", 0.5, 0.0,
                                 tasks=tasks, n_tasks=m, seed=seed))  # fmt: skip
                if m == 1:
                    rows.append(_row("theory: dmmse exact", "normalized_mse", 0.5, 0.0,
                                     tasks=tasks, n_tasks=m, seed=seed))  # fmt: skip
                rows.append(_row("reference: dmmse simulated", "normalized_mse",
                                 0.5 + sim_shift, 0.01, tasks=tasks, n_tasks=m, seed=seed))  # fmt: skip
    t = pd.DataFrame(rows)
    return pd.concat([t, pd.DataFrame(transition_rows(t))], ignore_index=True)


CFG = get_experiment("task-diversity").make_config(
    "quick", {"pool": {"m_min": 1, "m_max": 256, "factor": 4, "seeds": 2}}
)


def _status(cs):
    return [(c.kind, c.status) for c in cs]


def test_all_hold_on_a_consistent_table():
    table = _table()
    cs = checks(table, CFG)
    assert _status(cs) == [("claim", "holds")] * 3 + [("theory", "holds"), ("sanity", "holds")]
    agg = table[(table["metric"] == "transition_log2_m") & (table["seed"] == -1)].iloc[0]
    assert agg["value"] == pytest.approx(3.5)
    assert agg["ci_low"] < 3.0 and agg["ci_high"] > 4.0  # Student-t interval over 2 replicates


def test_checks_fail_when_the_transformer_never_leaves_dmmse_or_never_starts_there():
    late = checks(_table(cross_at=(20.0, 20.0)), CFG)  # always dMMSE-like
    assert [c.status for c in late[:3]] == ["holds", "fails", "fails"]
    early = checks(_table(cross_at=(-5.0, -5.0)), CFG)  # always ridge-like
    assert [c.status for c in early[:3]] == ["fails", "holds", "fails"]


def test_theory_check_fails_when_the_estimator_leaves_the_exact_risk():
    cs = checks(_table(dmmse_shift=0.2), CFG)
    assert cs[3].kind == "theory" and cs[3].status == "fails"


def test_sanity_check_fails_when_the_simulated_reference_disagrees():
    cs = checks(_table(sim_shift=0.2), CFG)
    assert cs[3].status == "holds" and cs[4].kind == "sanity" and cs[4].status == "fails"


def test_config_errors_name_the_field():
    exp = get_experiment("task-diversity")
    for override, field in [
        ({"pool.m_min": 0}, "pool.m_min"),
        ({"task.n_points": 0}, "task.n_points"),
        ({"task.noise_std": 0.0}, "task.noise_std"),
        ({"pool.m_min": 8, "pool.m_max": 4}, "pool"),
        ({"train.curriculum.dims_start": 2}, "train"),
        ({"pool.bogus": 1}, "pool.bogus"),
        ({"model.attention": "relu"}, "model.attention"),
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


def test_tiny_run_end_to_end_and_deterministic():
    cfg = get_experiment("task-diversity").make_config("tiny")
    res = run(cfg)
    t = res.table
    assert t["se"].notna().any() and "se" in t.columns
    fresh = t[(t["method"] == "transformer") & (t["tasks"] == "fresh") & t["n_tasks"].notna()]
    assert set(fresh["metric"]) >= {"normalized_mse", "dist_to_dmmse", "dist_to_ridge"}
    assert sorted(fresh["n_tasks"].unique()) == [1, 2] and sorted(fresh["seed"].unique()) == [0, 1]
    assert [c.kind for c in res.checks] == ["claim"] * 3 + ["theory", "sanity"]
    assert set(res.figures) >= {"distance_vs_m", "error_fresh_tasks"}
    # M = 1: dMMSE predicts w_1·x, its pool-task error is σ² (per d: 0.25 / 2) up to sampling
    d1 = t[(t["method"] == "dmmse") & (t["tasks"] == "pool") & (t["n_tasks"] == 1)
           & (t["metric"] == "normalized_mse")]  # fmt: skip
    assert (d1["ci_low"] <= 0.125 + 0.05).all() and (d1["ci_high"] >= 0.125 - 0.05).all()
    again = run(cfg).table
    pd.testing.assert_frame_equal(t, again)
    assert "softmax attention" in get_experiment("task-diversity").model_label(cfg)
