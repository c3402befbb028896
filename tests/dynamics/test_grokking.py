"""grokking: every claim check holds and fails on constructed tables; bad input; determinism."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from fmtheory.checks import exact_row
from fmtheory.contract import ConfigError, get_experiment
from fmtheory.experiments import grokking as gk

NAME = "grokking"
STEPS = np.arange(0, 3001, 50)


def _config():
    return get_experiment(NAME).make_config("quick")


def _step(at: float, low: float = 0.0, high: float = 1.0) -> np.ndarray:
    return low + (high - low) / (1 + np.exp(-(STEPS - at) / 30))


def _table(
    train_at=200,
    test_at=2000,
    fs_at=1200,
    nowd_test_at=None,
    init_acc=1 / 53,
    rl_at=1000,
    rl_low=0.3,
):
    wd = gk._wd_method(_config())
    rows = []
    curves = {
        (wd, "train_acc"): np.minimum(1.0, _step(train_at, init_acc, 1.01)),
        (wd, "test_acc"): _step(test_at, init_acc, 1.0),
        (wd, "fourier_sparsity"): _step(fs_at, 0.25, 0.95),
        (wd, "restricted_loss"): _step(rl_at, np.log(53), rl_low),
        (gk.NO_WD, "train_acc"): np.minimum(1.0, _step(train_at, init_acc, 1.01)),
        (gk.NO_WD, "test_acc"): _step(nowd_test_at, init_acc, 1.0) if nowd_test_at else
        0.3 + 0 * STEPS,
    }  # fmt: skip
    for (method, metric), v in curves.items():
        for s, x in zip(STEPS, v, strict=True):
            rows.append(exact_row(method, metric, float(x), seed=0, se=0.005, step=int(s)))
    return pd.DataFrame(rows)


def _status(table, start):
    for c in gk.checks(table, _config()):
        if c.claim.startswith(start):
            return c.status
    raise AssertionError(start)


def test_all_hold_on_a_grokking_curve():
    assert all(c.status == "holds" for c in gk.checks(_table(), _config()))


def test_delay_fails_when_test_follows_train():
    assert _status(_table(train_at=300, test_at=700, fs_at=200), "training accuracy") == "fails"


def test_delay_inconclusive_when_test_never_generalises():
    t = _table(test_at=10_000)
    assert _status(t, "training accuracy") == "inconclusive"


def test_progress_measure_fails_when_it_rises_after_test_accuracy():
    assert _status(_table(fs_at=2600), "the embedding") == "fails"


def test_restricted_loss_check_holds_fails_and_is_inconclusive():
    claim = "the restricted loss"
    assert _status(_table(), claim) == "holds"
    assert _status(_table(rl_at=2600), claim) == "fails"
    assert _status(_table(rl_at=1930), claim) == "inconclusive"  # within the grid
    assert _status(_table(rl_low=3.8), claim) == "inconclusive"  # barely falls


def test_no_wd_fails_when_it_generalises_as_fast():
    assert _status(_table(nowd_test_at=2100), "without weight decay") == "fails"
    assert _status(_table(), "without weight decay") == "holds"


def test_sanity_fails_off_chance():
    assert _status(_table(init_acc=0.5), "at initialisation") == "fails"


@pytest.mark.parametrize("field,value", [
    ("task.p", 2),
    ("task.train_fraction", 0.0),
    ("task.train_fraction", 1.0),
    ("eval.probes", ["restricted-loss-of-everything"]),
    ("eval.probes", ["excluded-loss"]),
    ("eval.fourier_top", 27),      # p // 2 = 26
    ("train.weight_decay", 0.0),
])  # fmt: skip
def test_bad_input_is_one_line(field, value):
    with pytest.raises(ConfigError) as e:
        get_experiment(NAME).make_config("quick", {field: value})
    assert "\n" not in str(e.value)


def test_tiny_is_deterministic_and_memorises():
    exp = get_experiment(NAME)
    cfg = exp.make_config("tiny")
    a, b = exp.run(cfg), exp.run(cfg)
    cols = ["method", "metric", "step", "value"]
    ta = a.table[a.table.metric != "steps_per_second"][cols].reset_index(drop=True)
    tb = b.table[b.table.metric != "steps_per_second"][cols].reset_index(drop=True)
    pd.testing.assert_frame_equal(ta, tb)
    assert {"grokking", "losses"} <= set(a.figures)
    wd = gk._wd_method(cfg)
    train = a.table[(a.table.method == wd) & (a.table.metric == "train_acc")].sort_values("step")
    test = a.table[(a.table.method == wd) & (a.table.metric == "test_acc")].sort_values("step")
    # the training set is fitted faster than the test set: training accuracy ends above test accuracy
    assert train.value.iloc[-1] > test.value.iloc[-1] + 0.2
    assert train.value.iloc[-1] > train.value.iloc[0] + 0.5


def test_headline_and_label():
    exp = get_experiment(NAME)
    h = exp.headline(_table(), _config())
    assert h["step_train_100"] < h["step_test_95"] and np.isnan(h["step_test_95_no_wd"])
    assert "1L×4H×64" in exp.model_label(_config())
