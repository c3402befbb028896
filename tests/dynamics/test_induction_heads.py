"""induction-heads: every claim check holds and fails on constructed tables; bad input; determinism."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from fmtheory.checks import exact_row
from fmtheory.contract import ConfigError, get_experiment
from fmtheory.experiments import induction_heads as ih

NAME = "induction-heads"
STEPS = np.arange(0, 1501, 25)
LOGV = math.log(64)


def _config():
    return get_experiment(NAME).make_config("quick")


def _sigmoid_drop(centre: float, width: float, depth: float) -> np.ndarray:
    return -depth / (1 + np.exp(-(STEPS - centre) / width))


def _table(icl2, icl1, pm2, copying=0.9, first=LOGV) -> pd.DataFrame:
    rows = []
    for i, s in enumerate(STEPS):
        for n, icl in ((1, icl1), (2, icl2)):
            c = dict(step=int(s), n_layers=n, layer=np.nan, head=np.nan)
            rows.append(exact_row(f"{n}-layer", "icl_loss", icl[i], seed=0, se=0.01, **c))
            rows.append(exact_row(f"{n}-layer", "loss_first", first, seed=0, se=0.01, **c))
        for h in range(2):
            c = dict(step=int(s), n_layers=2, layer=1, head=h)
            rows.append(exact_row("2-layer", "prefix_matching", pm2[i] if h == 1 else 0.05,
                                  seed=0, se=0.01, **c))  # fmt: skip
            rows.append(exact_row("2-layer", "copying", copying, seed=0, **c))
    return pd.DataFrame(rows)


def _status(table, claim_start):
    for c in ih.checks(table, _config()):
        if c.claim.startswith(claim_start):
            return c.status
    raise AssertionError(claim_start)


GOOD2 = _sigmoid_drop(500, 20, 4.0)
FLAT1 = _sigmoid_drop(300, 100, 0.8)
PM_AT = lambda centre: 0.9 / (1 + np.exp(-(STEPS - centre) / 20))  # noqa: E731


def test_all_claims_hold_on_a_phase_change():
    t = _table(GOOD2, FLAT1, PM_AT(500))
    assert all(c.status == "holds" for c in ih.checks(t, _config()) if c.kind != "sanity")


def test_abrupt_fails_on_smooth_decay_and_on_no_drop():
    smooth = -4.0 * (1 - np.exp(-STEPS / 300))
    assert _status(_table(smooth, FLAT1, PM_AT(500)), "the 2-layer") == "fails"
    assert _status(_table(FLAT1, FLAT1, PM_AT(500)), "the 2-layer") == "fails"


def test_prefix_matching_fails_when_the_jump_is_elsewhere_or_absent():
    assert _status(_table(GOOD2, FLAT1, PM_AT(1100)), "at the same step") == "fails"
    assert _status(_table(GOOD2, FLAT1, 0.1 + 0 * STEPS), "at the same step") == "fails"


def test_one_layer_check_fails_when_it_drops():
    assert _status(_table(GOOD2, _sigmoid_drop(800, 20, 4.0), PM_AT(500)),
                   "the 1-layer") == "fails"  # fmt: skip


def test_copying_fails_for_a_negative_head():
    assert _status(_table(GOOD2, FLAT1, PM_AT(500), copying=-0.5), "the layer-2 head") == "fails"


def test_sanity_fails_when_first_copy_is_predictable():
    assert _status(_table(GOOD2, FLAT1, PM_AT(500), first=1.0), "at initialisation") == "fails"


@pytest.mark.parametrize("field,value", [
    ("task.period_max", 40),   # two copies of 40 do not fit in 64 tokens
    ("task.period_min", 1),
    ("task.period_min", 32),   # min > max
    ("model.layers", [0, 2]),
    ("eval.probes", ["entropy-of-everything"]),
    ("train.steps", -1),
])  # fmt: skip
def test_bad_input_is_one_line(field, value):
    with pytest.raises(ConfigError) as e:
        get_experiment(NAME).make_config("quick", {field: value})
    assert "\n" not in str(e.value)


def test_tiny_run_is_deterministic_and_measures_every_head():
    exp = get_experiment(NAME)
    cfg = exp.make_config("tiny")
    a, b = exp.run(cfg), exp.run(cfg)
    cols = ["method", "metric", "step", "layer", "head", "value"]
    ta = a.table[a.table.metric != "steps_per_second"][cols].reset_index(drop=True)
    tb = b.table[b.table.metric != "steps_per_second"][cols].reset_index(drop=True)
    pd.testing.assert_frame_equal(ta, tb)
    pm = a.table[(a.table.metric == "prefix_matching") & (a.table.n_layers == 2)]
    assert set(zip(pm["layer"], pm["head"], strict=True)) == {(0, 0), (0, 1), (1, 0), (1, 1)}
    assert {"phase_change", "prefix_matching"} <= set(a.figures)
    # training moves the second copy's loss below the first copy's (the in-context loss falls)
    icl = a.table[(a.table.metric == "icl_loss") & (a.table.n_layers == 2)].sort_values("step")
    assert icl.value.iloc[-1] < icl.value.iloc[0] - 0.1


def test_headline_and_label():
    exp = get_experiment(NAME)
    h = exp.headline(_table(GOOD2, FLAT1, PM_AT(500)), _config())
    assert 450 <= h["phase_change_step"] <= 550
    assert exp.model_label(_config()) == "attention-only 1/2L×4H×64"
