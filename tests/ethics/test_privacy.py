"""privacy: attacks on a leaking and a non-leaking model, checks on constructed tables, config."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from fmtheory.contract import ConfigError, RunContext, get_experiment
from fmtheory.experiments import privacy as px

EXP = get_experiment("privacy")


def test_attack_on_lookup_table_and_constant() -> None:
    rng = np.random.default_rng(0)
    # a lookup table: loss 0 on every member, positive on non-members
    leak = px.loss_threshold_attack(np.zeros(200), rng.uniform(0.5, 2.0, 200), rng)
    assert leak["auc"] == pytest.approx(1.0)
    assert leak["advantage"] == pytest.approx(1.0)
    # a constant model: the same loss everywhere
    const = px.loss_threshold_attack(np.ones(200), np.ones(200), rng)
    assert const["auc"] == pytest.approx(0.5)
    assert const["advantage"] == pytest.approx(0.0)


def test_lira_on_leaking_and_constant_models() -> None:
    rng = np.random.default_rng(1)
    in_mask = rng.random((8, 100)) < 0.5
    phi_shadow = np.where(in_mask, 5.0, 0.0) + 0.1 * rng.standard_normal((8, 100))
    member = np.arange(100) < 50
    leak = px.lira_scores(np.where(member, 5.0, 0.0), phi_shadow, in_mask)
    ok = np.isfinite(leak)
    att = px.loss_threshold_attack(-leak[ok & member], -leak[ok & ~member], rng)
    assert att["auc"] == pytest.approx(1.0)
    const = px.lira_scores(np.ones(100), np.ones((8, 100)), in_mask)
    att = px.loss_threshold_attack(-const[ok & member], -const[ok & ~member], rng)
    assert att["auc"] == pytest.approx(0.5)


@pytest.fixture(scope="module")
def tiny():
    cfg = EXP.make_config("tiny")
    return cfg, EXP.run(cfg, RunContext())


def test_tiny_deterministic(tiny) -> None:
    cfg, res = tiny
    pd.testing.assert_frame_equal(res.table, EXP.run(cfg, RunContext()).table)
    assert set(res.figures) == {"privacy", "memorization", "canary"}


def _status(table: pd.DataFrame, cfg, start: str) -> str:
    return next(c.status for c in px.checks(table, cfg) if c.claim.startswith(start))


def _set(t: pd.DataFrame, method: str, metric: str, value: float, se: float = 0.0) -> pd.DataFrame:
    t = t.copy()
    m = (t["method"] == method) & (t["metric"] == metric) & (t["target_eps"] == 2.0)
    if metric == "auc":
        m = (t["method"] == method) & (t["metric"] == metric) & np.isinf(t["target_eps"])
    t.loc[m, ["value", "se"]] = [value, se]
    return t


def test_advantage_check(tiny) -> None:
    cfg, res = tiny
    t = _set(res.table, "theory", "advantage_bound", 0.5)
    assert _status(_set(t, "loss_threshold", "advantage", 0.1, 0.01), cfg, "at every ε") == "holds"
    assert _status(_set(t, "loss_threshold", "advantage", 0.9, 0.01), cfg, "at every ε") == "fails"
    t = _set(_set(t, "loss_threshold", "advantage", 0.1, 0.01), "lira", "advantage", 0.9, 0.01)
    assert _status(t, cfg, "at every ε") == "fails"


def test_leak_check(tiny) -> None:
    cfg, res = tiny
    assert _status(_set(res.table, "lira", "auc", 0.6, 0.01), cfg, "the non-private") == "holds"
    assert _status(_set(res.table, "lira", "auc", 0.4, 0.01), cfg, "the non-private") == "fails"


def test_accountant_check(tiny) -> None:
    cfg, res = tiny
    assert _status(res.table, cfg, "the independent RDP") == "holds"
    t = _set(res.table, "ours", "epsilon", 99.0)
    assert _status(t, cfg, "the independent RDP") == "fails"


@pytest.mark.parametrize(
    "field,value", [("dp.epsilons", [0.0]), ("dp.epsilons", [-1.0]), ("dp.delta", 1.0),
                    ("dp.delta", 0.0), ("hidden", 0), ("attack.methods", ["shadow"]),
                    ("attack.low_fpr", 0.0)],
)  # fmt: skip
def test_bad_input(field: str, value: object) -> None:
    with pytest.raises(ConfigError) as e:
        EXP.make_config("quick", {field: value})
    assert field.split(".")[-1] in str(e.value)
