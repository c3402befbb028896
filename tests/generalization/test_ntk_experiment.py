"""ntk: every claim check fails and holds on constructed tables; bad input; a tiny run."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from fmtheory.contract import ConfigError, get_experiment
from fmtheory.experiments import ntk

NAME = "ntk"
WIDTHS = (128, 256, 512, 1024, 2048)


def _cfg(**over):
    return get_experiment(NAME).make_config("quick", over)


def _row(method, metric, value, se, **kw):
    return dict(method=method, metric=metric, value=value, se=se, ci_low=value - 2 * se,
                ci_high=value + 2 * se, seed=0, **kw)  # fmt: skip


def _table(exps=None, pred_exp=-0.5, net=(0.9, 0.2, 0.1), ker=(1.0, 0.5, 0.1)):
    exps = {"kernel_error_init": -0.5, "kernel_change": -0.5, "weight_change": -0.5,
            **(exps or {})}  # fmt: skip
    rows = []
    for m in WIDTHS:
        for metric, p in {**exps, "prediction_distance": pred_exp}.items():
            v = 3.0 * m**p
            rows.append(_row(ntk.NET, metric, v, 0.01 * v, width=m, n=np.nan))
    for n, a, b in zip((64, 256, 512), net, ker, strict=True):
        rows.append(_row(ntk.MF, "test_mse", a, 0.01, width=np.nan, n=n))
        rows.append(_row(ntk.KRR, "test_mse", b, 0.01, width=np.nan, n=n))
    return pd.DataFrame(rows)


def _find(table, words):
    found = [c for c in ntk.checks(table, _cfg()) if words in c.claim]
    assert len(found) == 1
    return found[0]


def test_every_check_holds_on_a_table_that_agrees():
    bad = [c for c in ntk.checks(_table(), _cfg()) if c.status != "holds"]
    assert not bad, [(c.claim, c.status, c.measured) for c in bad]
    assert {c.kind for c in ntk.checks(_table(), _cfg())} == {"claim"}


@pytest.mark.parametrize(
    ("words", "kwargs"),
    [
        ("empirical NTK approaches", dict(exps={"kernel_error_init": -0.25})),
        ("relative change of the NTK", dict(exps={"kernel_change": -0.8})),
        ("relative change of the weights", dict(exps={"weight_change": -0.2})),
        ("distance falls with m", dict(pred_exp=0.3)),
        ("mean-field network beats", dict(net=(1.0, 0.6, 0.2), ker=(1.0, 0.5, 0.1))),
    ],
)
def test_each_check_fails_on_a_table_that_contradicts_it(words, kwargs):
    assert _find(_table(**kwargs), words).status == "fails"


def test_exponent_check_is_inconclusive_when_an_alternative_fits_too():
    t = _table()
    rows = t["metric"] == "kernel_error_init"
    # scattered points around slope −1/2: the interval also admits 0 (or R² is low)
    t.loc[rows, "value"] *= np.array([1.0, 1.6, 0.6, 1.6, 0.6])
    assert _find(t, "empirical NTK approaches").status == "inconclusive"


@pytest.mark.parametrize(
    ("field", "value", "words"),
    [
        ("lazy.widths", [0, 128], "width"),
        ("lazy.widths", [-4], "width"),
        ("rich.width", 0, "width"),
        ("lazy.lr", -1.0, "lr"),
        ("rich.sizes", [1], "sizes"),
    ],
)
def test_bad_input_names_the_field(field, value, words):
    with pytest.raises(ConfigError, match=words):
        get_experiment(NAME).make_config("quick", {field: value})


@pytest.fixture(scope="module")
def tiny():
    exp = get_experiment(NAME)
    cfg = exp.make_config("tiny")
    return cfg, exp.run(cfg, None)


def test_tiny_run_table_and_figures(tiny):
    cfg, res = tiny
    t = res.table
    assert {"value", "se", "ci_low", "ci_high", "seed"} <= set(t.columns)
    err = t[(t["metric"] == "kernel_error_init")].sort_values("width")["value"].to_numpy()
    assert err[-1] < err[0]  # the kernel error shrinks from m = 32 to m = 128
    assert {"width_scaling", "predictions", "rich_vs_kernel"} <= set(res.figures)
    assert len(res.checks) == 5


def test_tiny_run_is_deterministic(tiny):
    cfg, res = tiny
    pd.testing.assert_frame_equal(res.table, get_experiment(NAME).run(cfg, None).table)
