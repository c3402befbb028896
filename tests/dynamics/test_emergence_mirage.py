"""emergence-mirage: every claim check holds and fails on constructed tables; bad input; determinism."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from fmtheory.checks import exact_row
from fmtheory.contract import ConfigError, get_experiment
from fmtheory.experiments import emergence_mirage as em

NAME = "emergence-mirage"
STEPS = np.arange(0, 1501, 25)
L = 8


def _config():
    return get_experiment(NAME).make_config("quick")


def _table(acc: np.ndarray, exact: np.ndarray | None = None, se: float = 0.005) -> pd.DataFrame:
    exact = acc**L if exact is None else exact
    rows = []
    for s, a, e in zip(STEPS, acc, exact, strict=True):
        rows.append(exact_row(em.METHOD, "token_acc", a, se=se, seed=0, step=int(s)))
        rows.append(exact_row(em.METHOD, "exact_match", e, se=se, seed=0, step=int(s)))
        rows.append(exact_row("theory acc^L", "exact_match", a**L, se=L * a ** (L - 1) * se,
                              seed=0, step=int(s)))  # fmt: skip
    return pd.DataFrame(rows)


SMOOTH = 1 - 0.97 * np.exp(-STEPS / 400)
SIGMOID = 0.02 + 0.97 / (1 + np.exp(-(STEPS - 700) / 30))


def _status(table, start):
    for c in em.checks(table, _config()):
        if c.claim.startswith(start):
            return c.status
    raise AssertionError(start)


def test_all_hold_for_a_smooth_token_curve():
    assert all(c.status == "holds" for c in em.checks(_table(SMOOTH), _config()))


def test_abrupt_is_inconclusive_when_exact_match_rises_before_the_second_measurement():
    fast = 1 - 0.97 * np.exp(-STEPS / 5)
    assert _status(_table(fast, fast), "exact match looks abrupt") == "inconclusive"


def test_abrupt_fails_when_token_accuracy_jumps_too():
    assert _status(_table(SIGMOID, SIGMOID), "exact match looks abrupt") == "fails"


def test_power_law_fails_for_correlated_tokens():
    # exact match = accuracy (all tokens right or all wrong together), not acc^L
    assert _status(_table(SMOOTH, SMOOTH), "exact match equals") == "fails"


def test_linear_metric_check_fails_on_a_jump():
    assert _status(_table(SIGMOID), "under the linear metric") == "fails"


@pytest.mark.parametrize("field,value", [
    ("task.answer_len", 1),
    ("task.vocab", 2),
    ("task.zipf_alpha", -1.0),
    ("model.n_embd", 33),
])  # fmt: skip
def test_bad_input_is_one_line(field, value):
    with pytest.raises(ConfigError) as e:
        get_experiment(NAME).make_config("quick", {field: value})
    assert "\n" not in str(e.value)


def test_tiny_is_deterministic_and_exact_match_lags_token_accuracy():
    exp = get_experiment(NAME)
    cfg = exp.make_config("tiny")
    a, b = exp.run(cfg), exp.run(cfg)
    cols = ["method", "metric", "step", "value"]
    ta = a.table[a.table.metric != "steps_per_second"][cols].reset_index(drop=True)
    tb = b.table[b.table.metric != "steps_per_second"][cols].reset_index(drop=True)
    pd.testing.assert_frame_equal(ta, tb)
    t = a.table[a.table.method == em.METHOD]
    acc = t[t.metric == "token_acc"].sort_values("step").value.to_numpy()
    ex = t[t.metric == "exact_match"].sort_values("step").value.to_numpy()
    assert np.all(ex <= acc + 1e-12)  # all L right implies each right
    assert acc[-1] > acc[0] + 0.3


def test_headline_and_label():
    exp = get_experiment(NAME)
    h = exp.headline(_table(SMOOTH), _config())
    assert h["step_exact_match_10"] > h["step_token_acc_10"]
    assert exp.model_label(_config()) == "attention-only 1L×2H×32"
