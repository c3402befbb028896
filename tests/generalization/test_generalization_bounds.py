"""generalization-bounds: every claim and sanity check fails and holds on constructed tables; bad
input; a tiny run whose valid bounds are above the test error, deterministically."""

from __future__ import annotations

import pandas as pd
import pytest

from fmtheory.contract import ConfigError, get_experiment
from fmtheory.experiments import generalization_bounds as gb

NAME = "generalization-bounds"


def _cfg(**over):
    return get_experiment(NAME).make_config("quick", {"tasks": ["binary"], **over})


def _row(method, metric, value, noise=0.0, net="small", se=0.0):
    return dict(method=method, metric=metric, value=value, se=se, ci_low=value, ci_high=value,
                seed=0, task="binary", noise=noise, net=net)  # fmt: skip


def _table(**v):
    """A binary task with four noise levels (small net) and the wide net on true / random labels."""
    d = dict(vc=3.0, pb=0.3, pb_data=0.2, testset=0.1, err=0.05, rand_train=0.0, pb_rand=0.9,
             vc_rand=3.0, spectral=(10.0, 20.0, 40.0, 80.0), test=(0.05, 0.1, 0.2, 0.4),
             gibbs=0.08, wide_spectral=(100.0, 200.0, 300.0, 400.0, 900.0),
             wide_test=(0.01, 0.1, 0.2, 0.4, 0.9))  # fmt: skip
    d.update(v)
    rows = []
    for i, p in enumerate((0.0, 0.1, 0.2, 0.4)):
        rows += [
            _row(gb.NET, "train_error", 0.0, p),
            _row(gb.NET, "test_error", d["test"][i], p, se=0.01),
            _row(gb.NET, "test_error_noisy", d["test"][i], p, se=0.01),
            _row(gb.CONST, "test_error", 0.49, p),
            _row(gb.VC, "bound", d["vc"], p),
            _row(gb.SPECTRAL, "bound", d["spectral"][i], p),
            _row(gb.RADEMACHER, "bound", d["spectral"][i] / 2, p),
            _row(gb.PB, "bound", d["pb"], p),
            _row(gb.GIBBS, "test_error_noisy", d["gibbs"], p, se=0.01),
            _row(gb.PB_DATA, "bound", d["pb_data"], p),
            _row(gb.GIBBS_DATA, "test_error_noisy", d["gibbs"], p, se=0.01),
            _row(gb.TESTSET, "bound", d["testset"], p),
            _row(gb.PRIOR_NET, "test_error_noisy", d["err"], p, se=0.01),
        ]
    # the wide net at the sweep's levels and on random labels (noise 1)
    for i, p in enumerate((0.0, 0.1, 0.2, 0.4, 1.0)):
        rand = p == 1.0
        rows += [
            _row(gb.NET, "train_error", d["rand_train"] if rand else 0.0, p, "wide"),
            _row(gb.NET, "test_error", d["wide_test"][i], p, "wide", se=0.01),
            _row(gb.NET, "test_error_noisy", 0.5, p, "wide", se=0.03),
            _row(gb.CONST, "test_error", 0.49, p, "wide"),
            _row(gb.VC, "bound", d["vc_rand"] if rand else 3.0, p, "wide"),
            _row(gb.SPECTRAL, "bound", d["wide_spectral"][i], p, "wide"),
        ]
        if p in (0.0, 1.0):
            rows += [
                _row(gb.PB, "bound", d["pb_rand"] if rand else 0.4, p, "wide"),
                _row(gb.GIBBS, "test_error_noisy", 0.3, p, "wide", se=0.03),
            ]
    return pd.DataFrame(rows)


def _status(table, words, cfg=None):
    found = [c for c in gb.checks(table, cfg or _cfg()) if words in c.claim]
    assert len(found) == 1, [c.claim for c in gb.checks(table, cfg or _cfg())]
    return found[0]


def test_every_check_holds_on_a_table_that_agrees():
    bad = [c for c in gb.checks(_table(), _cfg()) if c.status != "holds"]
    assert not bad, [(c.claim, c.status, c.why) for c in bad]
    kinds = {c.kind for c in gb.checks(_table(), _cfg())}
    assert kinds == {"claim", "sanity"}


@pytest.mark.parametrize(
    ("words", "override", "kind"),
    [
        ("VC (h = W) bound is at least", dict(vc=0.01, vc_rand=0.01), "sanity"),
        ("PAC-Bayes (init prior) bound is at least", dict(pb=0.02), "sanity"),
        ("PAC-Bayes (data prior) bound is at least", dict(pb_data=0.02), "sanity"),
        ("test-set (Langford) bound is at least", dict(testset=0.01), "sanity"),
        ("VC bound of the trained network is vacuous", dict(vc=0.9), "claim"),
        ("prior at the initialisation) is below", dict(pb=0.7), "claim"),
        ("PAC-Bayes adds nothing", dict(pb_data=0.08, testset=0.12), "claim"),
        ("zero training error on random labels", dict(rand_train=0.2), "claim"),
        ("PAC-Bayes bound becomes vacuous", dict(pb_rand=0.35), "claim"),
        ("VC bound does not notice", dict(vc_rand=3.5), "sanity"),
        (
            "grows with their fraction",
            dict(wide_spectral=(900.0, 400.0, 300.0, 200.0, 100.0)),
            "claim",
        ),
    ],
)
def test_each_check_fails_on_a_table_that_contradicts_it(words, override, kind):
    c = _status(_table(**override), words)
    assert c.status == "fails" and c.kind == kind


def test_noise_check_is_inconclusive_when_the_test_error_does_not_grow():
    c = _status(_table(wide_test=(0.1, 0.1, 0.1, 0.1, 0.1)), "grows with their fraction")
    assert c.status == "inconclusive"


def test_checks_are_not_applicable_without_their_bounds():
    t = _table()
    t = t[~t["method"].isin([gb.PB, gb.PB_DATA, gb.TESTSET])]
    c = _status(t, "prior at the initialisation) is below")
    assert c.status == "n/a"


@pytest.mark.parametrize(
    ("field", "value", "words"),
    [
        ("delta", 1.5, "delta"),
        ("delta", 0.0, "delta"),
        ("binary_net.hidden", [0], "width"),
        ("wide_net.hidden", [-3], "width"),
        ("noise_levels", [0.0, 1.5], "noise_levels"),
        ("noise_levels", [0.2, 0.4], "include 0"),
        ("bounds", ["vc", "occam"], "bounds"),
        ("pac_bayes.delta_mc", 1.0, "delta_mc"),
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


def test_tiny_run_valid_bounds_are_above_the_test_error(tiny):
    cfg, res = tiny
    t = res.table
    assert {"value", "se", "ci_low", "ci_high", "seed", "method", "metric"} <= set(t.columns)
    for b in gb.VALID:
        bound = float(t[(t["method"] == b) & (t["metric"] == "bound")]["value"].iloc[0])
        err = t[(t["method"] == gb.BOUNDED[b]) & (t["metric"] == "test_error_noisy")]
        assert bound >= float(err["value"].iloc[0])
    sanity = [c for c in res.checks if c.kind == "sanity" and c.status != "n/a"]
    assert sanity and all(c.status == "holds" for c in sanity)
    assert "bounds_vs_noise" in res.figures


def test_tiny_run_is_deterministic(tiny):
    cfg, res = tiny
    again = get_experiment(NAME).run(cfg, None)
    pd.testing.assert_frame_equal(res.table, again.table)


def test_label_names_the_networks():
    assert "MLP 65-20-2" in gb.label(_cfg())
