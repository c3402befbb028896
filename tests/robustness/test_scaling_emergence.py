"""Emergence against model size in ``scaling-laws``: each check made to hold and to fail on a
constructed table, and the source's most likely next token against a brute-force lookup."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from fmtheory.contract import get_experiment
from fmtheory.errors import ConfigError
from fmtheory.experiments import scaling_laws as sl
from fmtheory.probes.emergence import power_prediction
from fmtheory.tasks.markov import make_markov_source

EXP = get_experiment("scaling-laws")
CFG = EXP.make_config("tiny")  # answer_len 8
N = 100 * 2.0 ** np.arange(8)


def _rows(token, exact, se=0.005):
    rows = []
    for n, a, e in zip(N, token, exact, strict=True):
        grid = dict(seed=0, width=int(n), n_params=float(n))
        rows.append(
            dict(method=sl.ANSWER, metric="token_acc", value=a, se=se, ci_low=a, ci_high=a, **grid)
        )
        rows.append(
            dict(
                method=sl.ANSWER, metric="exact_match", value=e, se=se, ci_low=e, ci_high=e, **grid
            )
        )
        p, p_se = power_prediction(a, se, 8)
        rows.append(dict(method=sl.ANSWER_THEORY, metric="exact_match", value=p, se=p_se,
                         ci_low=p, ci_high=p, **grid))  # fmt: skip
    return pd.DataFrame(rows)


SMOOTH = 0.3 + 0.68 * (1 - np.exp(-np.arange(8) / 2.5))


def _status(table):
    return [c.status for c in sl._emergence_checks(table, CFG)]


def test_checks_hold_when_exact_match_is_the_power_of_a_smooth_accuracy():
    assert _status(_rows(SMOOTH, SMOOTH**8)) == ["holds", "holds", "holds"]


def test_checks_fail_without_their_ingredient():
    # exact match rising with the token accuracy itself (tokens perfectly correlated): not abrupt,
    # and far from acc^L
    late = np.array([0.3, 0.3, 0.31, 0.5, 0.7, 0.85, 0.95, 0.98])
    assert _status(_rows(late, late)) == ["fails", "fails", "fails"]


def test_abrupt_check_is_inconclusive_when_the_rise_falls_between_the_two_smallest_sizes():
    steep = np.array([0.3, 0.9, 0.92, 0.93, 0.94, 0.95, 0.95, 0.95])
    assert _status(_rows(steep, steep**8))[0] == "inconclusive"


def test_checks_are_not_applicable_without_answer_rows_or_sizes():
    assert set(_status(pd.DataFrame(columns=["method", "metric", "value", "se", "n_params"]))) == {
        "n/a"
    }
    few = _rows(SMOOTH, SMOOTH**8)
    assert set(_status(few[few["n_params"] <= N[1]])) == {"n/a"}


def test_argmax_next_is_the_most_likely_token():
    src = make_markov_source(vocab=5, order=2, alpha=0.5, seed=1)
    seq = src.sample(64, 10, torch.Generator().manual_seed(0))
    best = src.argmax_next(seq)
    for b in range(4):
        for t in range(2, 10):
            ctx = int(seq[b, t - 2]) * 5 + int(seq[b, t - 1])
            assert int(best[b, t - 2]) == int(src.transitions[ctx].argmax())


@pytest.mark.parametrize(
    ("key", "value"), [("emergence.answer_len", 40), ("emergence.extra_widths", [4]),
                       ("emergence.extra_widths", [0])],
)  # fmt: skip
def test_bad_emergence_input_is_one_line(key, value):
    with pytest.raises(ConfigError) as e:
        EXP.make_config("tiny", {key: value})
    assert key in str(e.value) and "\n" not in str(e.value)


def test_extra_widths_are_measured_but_not_fitted():
    cfg = EXP.make_config("tiny")
    assert cfg.emergence.extra_widths == [2]
    t = sl.run(cfg).table
    assert set(t.loc[t["method"] == sl.EXTRA, "width"]) == {2}
    assert 2 not in set(sl._points(t)["width"])
    assert 2 in set(t.loc[t["method"] == sl.ANSWER, "width"])
