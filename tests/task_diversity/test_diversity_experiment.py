"""task-diversity: the transition estimate, the verdicts (they can fail), config errors, a tiny run."""

import math

import numpy as np
import pandas as pd
import pytest

from fmtheory.contract import ConfigError, get_experiment
from fmtheory.experiments.task_diversity import (
    checks,
    growth_fit,
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


def _table(cross_at=(3.0, 3.2, 3.4), dmmse_shift=0.0, sim_shift=0.0, n_tasks=(1, 4, 16, 64, 256),
           gate=1.05, dim=None, hi_gap=None):  # fmt: skip
    """A constructed table: per replicate, log(dist to dMMSE / dist to ridge) = log2 M − cross;
    ``gate`` = transformer / ridge fresh-task error at every M; ``hi_gap`` overrides, at the
    largest M, dist to dMMSE − dist to ridge (per replicate values)."""
    rows = []
    extra = {} if dim is None else {"dim": dim}
    for seed, c in enumerate(cross_at):
        for m in n_tasks:
            lr = math.log2(m) - c  # log(dist_dmmse / dist_ridge) grows with log2 M
            dr = 0.1
            dd = dr * math.exp(lr)
            if hi_gap is not None and m == max(n_tasks):
                dd = dr + hi_gap[seed]
            for metric, v in (("dist_to_dmmse", dd), ("dist_to_ridge", dr)):
                rows.append(_row("transformer", metric, v, 0.002, tasks="fresh", n_tasks=m,
                                 seed=seed, **extra))  # fmt: skip
            rows.append(_row("ridge", "normalized_mse", 0.4, 0.004, tasks="fresh", n_tasks=m,
                             seed=seed, **extra))  # fmt: skip
            rows.append(_row("transformer", "normalized_mse", 0.4 * gate, 0.004, tasks="fresh",
                             n_tasks=m, seed=seed, **extra))  # fmt: skip
            for tasks in ("fresh", "pool"):
                for metric in ("normalized_mse", "normalized_mse_k0"):
                    rows.append(_row("dmmse", metric, 0.5 + dmmse_shift, 0.01, tasks=tasks,
                                     n_tasks=m, seed=seed, **extra))  # fmt: skip
                rows.append(_row("theory: dmmse exact", "normalized_mse_k0", 0.5, 0.0,
                                 tasks=tasks, n_tasks=m, seed=seed, **extra))  # fmt: skip
                if m == 1:
                    rows.append(_row("theory: dmmse exact", "normalized_mse", 0.5, 0.0,
                                     tasks=tasks, n_tasks=m, seed=seed, **extra))  # fmt: skip
                rows.append(_row("reference: dmmse simulated", "normalized_mse",
                                 0.5 + sim_shift, 0.01, tasks=tasks, n_tasks=m, seed=seed, **extra))  # fmt: skip
    return pd.DataFrame(rows)


def _finish(t):
    return pd.concat([t, pd.DataFrame(transition_rows(t))], ignore_index=True)


CFG = get_experiment("task-diversity").make_config(
    "quick", {"pool": {"m_min": 1, "m_max": 256, "factor": 4, "seeds": 3}}
)


def _by(cs, text):
    found = [c for c in cs if text in c.claim]
    assert len(found) == 1, [c.claim for c in cs]
    return found[0]


SMALL, LARGE, GATE, INSIDE, WIDTH = ("smallest task", "largest task", "trained to ridge",
                                     "lies inside the sweep", "estimated to within")  # fmt: skip


def test_all_hold_on_a_consistent_table():
    table = _finish(_table())
    cs = checks(table, CFG)
    assert [(c.kind, c.status) for c in cs] == [("claim", "holds"), ("claim", "holds"),
        ("sanity", "holds"), ("claim", "holds"), ("sanity", "holds"), ("theory", "holds"),
        ("sanity", "holds")]  # fmt: skip
    agg = table[(table["metric"] == "transition_log2_m") & (table["seed"] == -1)].iloc[0]
    assert agg["value"] == pytest.approx(3.2)
    assert agg["ci_low"] < 3.0 and agg["ci_high"] > 3.4  # Student-t interval over 3 replicates


def test_checks_fail_when_the_transformer_never_leaves_dmmse_or_never_starts_there():
    late = checks(_finish(_table(cross_at=(20.0, 20.0, 20.0))), CFG)  # always dMMSE-like
    assert [_by(late, k).status for k in (SMALL, LARGE, INSIDE)] == ["holds", "fails", "fails"]
    early = checks(_finish(_table(cross_at=(-5.0, -5.0, -5.0))), CFG)  # always ridge-like
    assert [_by(early, k).status for k in (SMALL, LARGE, INSIDE)] == ["fails", "holds", "fails"]


def test_training_gate_fails_and_makes_the_transition_check_inconclusive():
    cs = checks(_finish(_table(gate=1.5)), CFG)
    assert _by(cs, GATE).status == "fails" and _by(cs, GATE).kind == "sanity"
    inside = _by(cs, INSIDE)
    assert inside.status == "inconclusive" and "training gate not met" in inside.why
    assert not [c for c in cs if WIDTH in c.claim]  # not judged without the gate


def test_transition_holds_only_when_its_whole_interval_is_inside():
    # crossings 0.2, 3, 6: every replicate inside (0, 8) but the t interval reaches below 0
    cs = checks(_finish(_table(cross_at=(0.2, 3.0, 6.0))), CFG)
    assert _by(cs, INSIDE).status == "inconclusive" and "outside the sweep" in _by(cs, INSIDE).why
    assert _by(cs, WIDTH).status == "fails"  # an interval of ~14 log2 units
    assert _by(checks(_finish(_table()), CFG), INSIDE).status == "holds"


def test_closer_to_ridge_at_the_largest_m_needs_a_difference_beyond_its_error():
    # 0.199 against 0.210 style: a small gap with a large spread over replicates -> not decided
    noisy = checks(_finish(_table(hi_gap=(0.03, -0.02, 0.025))), CFG)
    assert _by(noisy, LARGE).status == "inconclusive"
    closer_to_ridge = checks(_finish(_table(hi_gap=(0.05, 0.06, 0.055))), CFG)
    assert _by(closer_to_ridge, LARGE).status == "holds"
    closer_to_dmmse = checks(_finish(_table(hi_gap=(-0.05, -0.06, -0.055))), CFG)
    assert _by(closer_to_dmmse, LARGE).status == "fails"


def _growth_table(slope, gate=1.05, jitter=(0.0, 0.2, 0.4)):
    parts = [_table(cross_at=tuple(1.0 + slope * (d - 2) + j for j in jitter), dim=d, gate=gate)
             for d in (2, 3, 4, 5)]  # fmt: skip
    return _finish(pd.concat(parts, ignore_index=True))


def test_growth_fit_and_extrapolation():
    f = growth_fit([2, 2, 3, 3, 4, 4], [1.0, 1.2, 2.0, 2.2, 3.0, 3.2])
    assert f["slope"] == pytest.approx(1.0) and f["at"] == pytest.approx(7.1)
    assert f["at_lo"] < 7.1 < f["at_hi"]
    assert math.isnan(growth_fit([2, 2], [1.0, 2.0])["slope"])


def test_growth_checks_hold_fail_and_need_the_gate():
    grows = "grows with the dimension"
    paper = "falls in the paper's range"
    # slope 1.75 per d: log2 M*(8) = 1 + 0.2 + 10.5 = 11.7, inside the paper's 11-12
    cs = checks(_growth_table(1.75), CFG)
    assert _by(cs, grows).status == "holds" and _by(cs, paper).status == "holds"
    assert len([c for c in cs if INSIDE in c.claim]) == 4
    shrinks = checks(_growth_table(-0.3), CFG)  # log2 M*(8) ~ -0.6, far below 11
    assert _by(shrinks, grows).status == "fails" and _by(shrinks, paper).status == "fails"
    flat = checks(_growth_table(0.0), CFG)  # a slope interval around 0: undecided
    assert _by(flat, grows).status == "inconclusive" and _by(flat, paper).status == "fails"
    gated = checks(_growth_table(1.75, gate=1.3), CFG)
    assert _by(gated, grows).status == "inconclusive" and "gate" in _by(gated, grows).why


def test_growth_checks_need_every_replicate_to_cross():
    table = _growth_table(1.75)
    sel = (table["metric"] == "transition_log2_m") & (table["dim"] == 3) & (table["seed"] == 1)
    table.loc[sel, "value"] = math.nan
    cs = checks(table, CFG)
    for text in ("grows with the dimension", "falls in the paper's range"):
        c = _by(cs, text)
        assert c.status == "inconclusive" and "d = 3: 1 of 3 replicates never cross" in c.why


def test_theory_check_fails_when_the_estimator_leaves_the_exact_risk():
    cs = checks(_finish(_table(dmmse_shift=0.2)), CFG)
    assert cs[-2].kind == "theory" and cs[-2].status == "fails"


def test_sanity_check_fails_when_the_simulated_reference_disagrees():
    cs = checks(_finish(_table(sim_shift=0.2)), CFG)
    assert cs[-2].status == "holds" and cs[-1].kind == "sanity" and cs[-1].status == "fails"


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
        ({"growth.dims": [2, 2]}, "growth"),
        ({"growth.dims": [0, 3]}, "growth"),
        ({"growth.points_per_dim": 0}, "growth.points_per_dim"),
        ({"workers": 0}, "workers"),
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


def test_quick_is_the_d5_slice_of_paper():
    """quick trains exactly paper's d = 5 models (replicates 0-2): same seeds, task, model, recipe."""
    exp = get_experiment("task-diversity")
    quick, paper = exp.make_config("quick"), exp.make_config("paper")
    assert 5 in paper.dims() and quick.dims() == [5]
    sliced = paper.at_dim(5)
    for field in ("seed", "task", "model", "train", "eval"):
        assert getattr(quick, field) == getattr(sliced, field), field
    assert quick.pool.values() == paper.pool.values()
    assert quick.pool.seeds <= paper.pool.seeds


def test_tiny_run_end_to_end_and_deterministic():
    cfg = get_experiment("task-diversity").make_config("tiny")
    res = run(cfg)
    t = res.table
    assert t["se"].notna().any() and "se" in t.columns
    fresh = t[(t["method"] == "transformer") & (t["tasks"] == "fresh") & t["n_tasks"].notna()]
    assert set(fresh["metric"]) >= {"normalized_mse", "dist_to_dmmse", "dist_to_ridge"}
    assert sorted(fresh["n_tasks"].unique()) == [1, 2] and sorted(fresh["seed"].unique()) == [0, 1]
    kinds = [c.kind for c in res.checks]
    assert kinds[:3] == ["claim", "claim", "sanity"] and kinds[-2:] == ["theory", "sanity"]
    assert (t["dim"].dropna() == 2).all()
    assert set(res.figures) >= {"distance_vs_m", "error_fresh_tasks"}
    # M = 1: dMMSE predicts w_1·x, its pool-task error is σ² (per d: 0.25 / 2) up to sampling
    d1 = t[(t["method"] == "dmmse") & (t["tasks"] == "pool") & (t["n_tasks"] == 1)
           & (t["metric"] == "normalized_mse")]  # fmt: skip
    assert (d1["ci_low"] <= 0.125 + 0.05).all() and (d1["ci_high"] >= 0.125 - 0.05).all()
    again = run(cfg).table
    pd.testing.assert_frame_equal(t, again)
    assert "softmax attention" in get_experiment("task-diversity").model_label(cfg)


def test_growth_figure_and_headline_from_the_table():
    from fmtheory.experiments.task_diversity import figures, headline

    table = _growth_table(1.75)
    figs = figures(table)
    assert set(figs) >= {"distance_vs_m", "error_fresh_tasks", "m_star_vs_d"}
    h = headline(table, CFG)
    assert h["log2_m_star_extrapolated_d8"] == pytest.approx(11.7, abs=0.01)
    assert h["gate_ratio_to_ridge"] == pytest.approx(1.05)
    import matplotlib.pyplot as plt

    plt.close("all")


@pytest.mark.slow
def test_worker_processes_give_the_same_table():
    """The (dimension, replicate) units on 2 spawned processes: the same numbers, the same order."""
    exp = get_experiment("task-diversity")
    one = exp.make_config("tiny", {"pool": {"m_min": 1, "m_max": 1, "seeds": 2}})
    two = exp.make_config("tiny", {"pool": {"m_min": 1, "m_max": 1, "seeds": 2}, "workers": 2})
    pd.testing.assert_frame_equal(run(one).table, run(two).table)


def test_a_unit_gives_the_rows_of_its_replicate():
    """``_unit`` (what a worker process runs) returns exactly the serial run's rows of its replicate."""
    from fmtheory.contract import RunContext
    from fmtheory.experiments.task_diversity import _unit

    cfg = get_experiment("task-diversity").make_config(
        "tiny", {"pool": {"m_min": 1, "m_max": 1, "seeds": 2}}
    )
    whole = run(cfg).table
    rows = pd.DataFrame(_unit((cfg, RunContext(), 2, 1, 1)))
    mine = whole[(whole["seed"] == 1) & whole["n_tasks"].notna()].reset_index(drop=True)
    pd.testing.assert_frame_equal(rows[mine.columns.intersection(rows.columns)],
                                  mine[mine.columns.intersection(rows.columns)],
                                  check_dtype=False)  # fmt: skip
