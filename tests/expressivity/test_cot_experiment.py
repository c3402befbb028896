"""The `cot` experiment: checks on constructed tables, bad input, determinism, tiny training."""

import pandas as pd
import pytest

from fmtheory.contract import ConfigError, RunContext, get_experiment
from fmtheory.experiments import cot

EXP = get_experiment("cot")


def _row(method, metric, value, se=0.01, n=16, depth=2, **kw):
    return dict(method=method, metric=metric, value=value, se=se, ci_low=value - 2 * se,
                ci_high=value + 2 * se, seed=0, n=n, depth=depth, **kw)  # fmt: skip


def _quick_table(par_cot=1.0, s5_cot=1.0, par_ans=0.51, s5_ans=0.2, maj=0.99, trace=16):
    rows = [
        _row("parity/cot", "accuracy", par_cot, 0.0 if par_cot == 1 else 0.005),
        _row("s5/cot", "accuracy", s5_cot, 0.0 if s5_cot == 1 else 0.005),
        _row("parity/answer", "accuracy", par_ans, 0.015),
        _row("s5/answer", "accuracy", s5_ans, 0.012),
        _row("majority/answer", "accuracy", maj, 0.003),
        _row("parity/cot", "trace_length", trace, 0.0),
        _row("s5/cot", "trace_length", 16, 0.0),
        _row("parity", "chance", 0.5, 0.0, depth=None),
        _row("parity", "label_rate", 0.49, 0.015, depth=None),
    ]
    return pd.DataFrame(rows)


def _by_claim(checks, text):
    found = [c for c in checks if text in c.claim]
    assert len(found) == 1, text
    return found[0]


@pytest.fixture(scope="module")
def quick_config():
    return EXP.make_config("quick")


def test_quick_checks_hold_on_separation(quick_config) -> None:
    ch = cot.checks(_quick_table(), quick_config)
    assert _by_claim(ch, "99% on parity").status == "holds"
    assert _by_claim(ch, "99% on s5").status == "holds"
    assert _by_claim(ch, "parity at n = 16 stays within").status == "holds"
    assert _by_claim(ch, "S5 tracking at n = 16 stays below").status == "holds"
    assert _by_claim(ch, "control (majority)").status == "holds"
    assert _by_claim(ch, "trace length").status == "holds"
    assert _by_claim(ch, "Sampled answer rate").status == "holds"
    for c in ch:
        if "grows with depth" in c.claim or "does not fall" in c.claim:
            assert c.status == "n/a" and "needs" in c.why
        assert c.kind in ("claim", "sanity")


def test_quick_checks_fail_without_separation(quick_config) -> None:
    ch = cot.checks(
        _quick_table(par_cot=0.6, s5_cot=0.3, par_ans=0.9, s5_ans=0.8, maj=0.7, trace=15),
        quick_config,
    )
    for text in ("99% on parity", "99% on s5", "parity at n = 16 stays within",
                 "S5 tracking at n = 16 stays below", "control (majority)", "trace length"):  # fmt: skip
        assert _by_claim(ch, text).status == "fails", text


def test_chance_sanity_fails_on_biased_sampler(quick_config) -> None:
    t = _quick_table()
    t.loc[t.metric == "label_rate", "value"] = 0.6
    assert _by_claim(cot.checks(t, quick_config), "Sampled answer rate").status == "fails"


def _grid_table(solved_by_depth, cot_small=1.0, cot_large=1.0):
    rows = []
    for d, nstar in solved_by_depth.items():
        for n in (4, 8, 16, 32):
            rows.append(
                _row("s5/answer", "accuracy", 0.99 if n <= nstar else 0.3, 0.01, n=n, depth=d)
            )
            rows.append(_row("s5/cot", "accuracy", cot_small if n == 4 else cot_large, 0.005,
                             n=n, depth=d))  # fmt: skip
    return pd.DataFrame(rows)


def test_check3_holds_and_fails() -> None:
    cfg = EXP.make_config("paper")
    ch = cot.checks(_grid_table({1: 4, 2: 8, 4: 16, 6: 16}), cfg)
    assert _by_claim(ch, "grows with depth").status == "holds"
    assert _by_claim(ch, "does not fall").status == "holds"
    ch = cot.checks(_grid_table({1: 8, 2: 8, 4: 8, 6: 8}, cot_large=0.5), cfg)
    assert _by_claim(ch, "grows with depth").status == "fails"
    assert _by_claim(ch, "does not fall").status == "fails"
    ch = cot.checks(_grid_table({1: 32, 2: 32, 4: 32, 6: 32}), cfg)
    assert _by_claim(ch, "grows with depth").status == "fails"  # not bounded at fixed depth


def test_p_not_prime_message() -> None:
    with pytest.raises(ConfigError, match="p = 9: p not prime"):
        EXP.make_config("quick", {"p": 9})


@pytest.mark.parametrize(
    ("override", "field"),
    [
        ({"ns": [0]}, "ns"),
        ({"depths": [0]}, "depths"),
        ({"tasks": [{"task": "sorting", "formats": ["answer"]}]}, "tasks"),
        ({"tasks": [{"task": "majority", "formats": ["cot"]}]}, "tasks"),
        ({"model.n_head": 5}, "model"),
        ({"p": 9}, "p"),
        ({"tasks": [{"task": "arith", "formats": ["cot"], "ns": [0]}]}, "tasks"),
        ({"tasks": [{"task": "s5", "formats": ["answer"], "depths": [0]}]}, "tasks"),
    ],
)
def test_bad_input(override, field) -> None:
    with pytest.raises(ConfigError) as e:
        EXP.make_config("quick", override)
    assert field in str(e.value) and "\n" not in str(e.value)


@pytest.fixture(scope="module")
def tiny_result():
    return EXP.run(EXP.make_config("tiny"), RunContext())


def test_cot_beats_answer_only_on_parity_n8(tiny_result) -> None:
    t = tiny_result.table
    acc = t[t.metric == "accuracy"].set_index("method").value
    assert acc["parity/cot"] >= 0.95
    assert acc["parity/answer"] <= 0.7
    assert set(tiny_result.figures) == {"accuracy_vs_n", "accuracy_vs_step", "position_loss"}


def test_tiny_deterministic(tiny_result) -> None:
    again = EXP.run(EXP.make_config("tiny"), RunContext())
    pd.testing.assert_frame_equal(tiny_result.table, again.table)


@pytest.mark.slow
def test_tiny_arith_cot_beats_answer_only() -> None:
    cfg = EXP.make_config("tiny-arith")
    t = EXP.run(cfg, RunContext()).table
    acc = t[t.metric == "accuracy"].set_index("method").value
    assert acc["arith/cot"] >= 0.9
    assert acc["arith/answer"] < acc["arith/cot"] - 0.3


def _deep_table(nstar_by_depth, cot_small=1.0, cot_large=1.0):
    rows = []
    for d, nstar in nstar_by_depth.items():
        for n in (1, 2, 4, 8, 16, 32):
            rows.append(
                _row("s5/answer", "accuracy", 0.99 if n <= nstar else 0.2, 0.01, n=n, depth=d)
            )
    rows.append(_row("s5/cot", "accuracy", cot_small, 0.005, n=2, depth=2))
    rows.append(_row("s5/cot", "accuracy", cot_large, 0.005, n=32, depth=2))
    return pd.DataFrame(rows)


def test_check3_reads_per_task_depths() -> None:
    cfg = EXP.make_config("paper-deep")
    assert cot._depths(cfg) == [1, 2, 4, 6]
    ch = cot.checks(_deep_table({1: 1, 2: 2, 4: 8, 6: 16}), cfg)
    c = _by_claim(ch, "grows with depth")
    assert c.status == "holds" and "L=1: n*=1" in c.measured and "L=6: n*=16" in c.measured
    assert _by_claim(ch, "does not fall").status == "holds"
    ch = cot.checks(_deep_table({1: 1, 2: 1, 4: 1, 6: 1}, cot_large=0.8), cfg)
    assert _by_claim(ch, "grows with depth").status == "fails"  # n* = 1 at every depth
    c = _by_claim(ch, "does not fall")
    assert c.status == "fails" and "s5/cot, L=2, n=2→32" in c.tolerance


def test_per_task_depths_and_ns_train_each_cell_once() -> None:
    cfg = EXP.make_config(
        "tiny",
        {
            "tasks": [
                {"task": "s5", "formats": ["answer"], "ns": [1, 2], "depths": [1]},
                {"task": "s5", "formats": ["cot"], "ns": [2], "depths": [2]},
            ],
            "train.steps": 2,
            "eval_size": 16,
            "curve_size": 16,
        },
    )
    t = EXP.run(cfg, RunContext()).table
    acc = t[t.metric == "accuracy"]
    assert sorted(zip(acc.method, acc.n, acc.depth, strict=True)) == [
        ("s5/answer", 1, 1), ("s5/answer", 2, 1), ("s5/cot", 2, 2)
    ]  # fmt: skip
    chance = t[t.metric == "chance"]
    assert sorted(chance.n) == [1, 2]  # one chance row per (task, n), not per task entry
