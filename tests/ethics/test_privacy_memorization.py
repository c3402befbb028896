"""privacy, memorization part: the estimator and atypicality on hand-built inputs with known answers,
the three memorization checks on constructed tables, bad input for the new fields."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from fmtheory.checks import exact_row
from fmtheory.contract import ConfigError, get_experiment
from fmtheory.experiments import privacy as px
from fmtheory.probes.memorization import (
    knn_label_disagreement,
    memorization_scores,
    nearest_neighbours,
    top_fraction_difference,
)

EXP = get_experiment("privacy")


def test_memorization_scores_known_answer() -> None:
    # example 0: always right when in, never when out (a lookup table) -> mem 1, se 0;
    # example 1: always right (a typical example) -> mem 0; example 2: never out -> NaN
    in_mask = np.array([[1, 1, 1], [0, 0, 1], [1, 1, 1], [0, 1, 1]], bool)
    correct = np.array([[1, 1, 1], [0, 1, 1], [1, 1, 0], [0, 1, 0]], float)
    mem, se = memorization_scores(correct, in_mask)
    assert mem[0] == pytest.approx(1.0) and se[0] == pytest.approx(0.0)
    assert mem[1] == pytest.approx(0.0)
    assert math.isnan(mem[2]) and math.isnan(se[2])


def test_memorization_scores_half_in_half_out() -> None:
    in_mask = np.array([[1], [1], [0], [0]], bool)
    correct = np.array([[1], [0], [0], [0]], float)
    mem, se = memorization_scores(correct, in_mask)
    assert mem[0] == pytest.approx(0.5)
    assert se[0] == pytest.approx(math.sqrt(0.25 / 2))


def test_knn_disagreement_and_neighbours() -> None:
    # two tight clusters of label 0 and 1; one point labelled 1 sits inside the 0 cluster
    x = np.array([[0.0, 0], [0.1, 0], [0, 0.1], [0.05, 0.05], [5, 5], [5.1, 5], [5, 5.1]])
    y = np.array([0, 0, 0, 1, 1, 1, 1])
    a = knn_label_disagreement(x, y, k=3)
    assert a[3] == pytest.approx(1.0)
    assert a[4] == pytest.approx(0.0)
    assert int(np.argmax(a)) == 3
    assert nearest_neighbours(np.array([[4.9, 5.0], [0.0, 0.0]]), x).tolist() == [4, 0]


def test_top_fraction_difference() -> None:
    score = np.r_[np.ones(10), np.zeros(90)]
    key = np.r_[np.full(10, 2.0), np.ones(90)]
    d, se = top_fraction_difference(score, key, 0.1)
    assert d == pytest.approx(1.0) and se == pytest.approx(0.0)
    d, _ = top_fraction_difference(score, -key, 0.1)
    assert d == pytest.approx(-1 / 9)


def _table(top: float, mem_np: float, mem_dp: float, drop: float, se: float = 0.01) -> pd.DataFrame:
    inf = dict(seed=0, target_eps=math.inf)
    dp = dict(seed=0, target_eps=2.0)
    return pd.DataFrame([
        exact_row("memorization", "top_atypical_minus_rest", top, se=se, **inf),
        exact_row("memorization", "mean_mem", mem_np, se=se, **inf),
        exact_row("memorization", "mean_mem", mem_dp, se=se, **dp),
        exact_row("removal", "drop_difference", drop, se=se, **inf),
    ])  # fmt: skip


def _status(table: pd.DataFrame, start: str) -> str:
    cfg = EXP.make_config("tiny")
    return next(c.status for c in px.checks(table, cfg) if c.claim.startswith(start))


def test_atypical_check() -> None:
    assert _status(_table(0.2, 0.1, 0.0, 0.1), "atypical") == "holds"
    assert _status(_table(-0.2, 0.1, 0.0, 0.1), "atypical") == "fails"
    assert _status(_table(0.005, 0.1, 0.0, 0.1), "atypical") == "inconclusive"


def test_dp_lowers_check() -> None:
    assert _status(_table(0.2, 0.1, 0.0, 0.1), "DP-SGD lowers") == "holds"
    assert _status(_table(0.2, 0.0, 0.1, 0.1), "DP-SGD lowers") == "fails"


def test_removal_check() -> None:
    assert _status(_table(0.2, 0.1, 0.0, 0.1), "removing the most") == "holds"
    assert _status(_table(0.2, 0.1, 0.0, -0.1), "removing the most") == "fails"


def test_checks_not_applicable_without_rows() -> None:
    t = _table(0.2, 0.1, 0.0, 0.1)
    t = t[t["method"] != "removal"]
    st = _status(t, "removing the most")
    assert st == "n/a"
    t = t[~np.isfinite(t["target_eps"]) | (t["metric"] != "mean_mem")]
    assert _status(t, "DP-SGD lowers") == "n/a"


@pytest.mark.parametrize(
    "field,value", [("memorization.epsilon", 0.0), ("memorization.epsilon", -2.0),
                    ("memorization.models", -1), ("memorization.top_frac", 1.0),
                    ("memorization.removal_seeds", 1), ("memorization.knn", 0)],
)  # fmt: skip
def test_bad_input_memorization(field: str, value: object) -> None:
    with pytest.raises(ConfigError) as e:
        EXP.make_config("quick", {field: value})
    assert field.split(".")[-1] in str(e.value)
