"""Scaling laws: the entropy rate against simulation, the fit recovering planted exponents, the
compute-optimal size against a numeric minimum, every claim check made to hold and to fail."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch
from scipy import optimize

from fmtheory.contract import get_experiment
from fmtheory.errors import ConfigError
from fmtheory.experiments import scaling_laws as sl
from fmtheory.tasks.markov import make_markov_source
from fmtheory.theory.scaling import compute_optimal_n, entropy_rate, fit_scaling_law, scaling_law

EXP = get_experiment("scaling-laws")


@pytest.mark.parametrize("order", [1, 2])
def test_entropy_rate_against_the_sources_own_loss(order):
    src = make_markov_source(vocab=6, order=order, alpha=0.5, seed=3)
    h = entropy_rate(src.transitions.numpy(), order)
    seq = src.sample(4000, 40, torch.Generator().manual_seed(0))
    nll = -src.log_prob(seq).mean(1)
    se = float(nll.std() / math.sqrt(nll.numel()))
    assert float(nll.mean()) == pytest.approx(h, abs=4 * se)


def test_fit_recovers_planted_law():
    rng = np.random.default_rng(0)
    n = np.repeat(np.geomspace(1e3, 1e5, 6), 5)
    d = np.tile(np.geomspace(1e4, 1e6, 5), 6)
    truth = dict(e=1.2, a=30.0, alpha=0.4, b=80.0, beta=0.35)
    loss = scaling_law(n, d, **truth) + rng.normal(0, 2e-3, n.size)
    f = fit_scaling_law(n, d, loss, np.full(n.size, 2e-3))
    for k in ("e", "alpha", "beta"):
        assert abs(getattr(f, k) - truth[k]) <= 4 * f.se[k] + 1e-6, (k, getattr(f, k), f.se[k])


def test_compute_optimal_size_is_the_numeric_minimum():
    p = dict(a=406.4, alpha=0.34, b=410.7, beta=0.28)
    c = 1e21
    res = optimize.minimize_scalar(lambda ln: scaling_law(math.exp(ln), c / (6 * math.exp(ln)), 0, **p),
                                   bounds=(math.log(1e6), math.log(1e13)), method="bounded")  # fmt: skip
    assert compute_optimal_n(c, **p) == pytest.approx(math.exp(res.x), rel=1e-3)


CFG = EXP.make_config("tiny")


def _table(*, e=1.0, h=1.0, held_shift=0.0, entropy_shift=0.0, below=False):
    rows = [dict(method="theory: entropy rate", metric="loss", value=h, se=0.0, ci_low=h,
                 ci_high=h, seed=0),
            dict(method="true source (Bayes predictor)", metric="loss", value=h + entropy_shift,
                 se=0.002, ci_low=h, ci_high=h, seed=0)]  # fmt: skip
    widths = [4, 8, 16, 32, 64]
    for i, w in enumerate(widths):
        n = 100 * 4**i
        for step in (1, 3, 10, 30, 100, 300, 1000, 3000, 10000):
            d = step * 1000.0
            law = e + 30 * n**-0.5 + 40 * d**-0.45
            v = law + (held_shift if w == widths[-1] else 0.0)
            if below:
                v = min(v, h - 0.5)
            rows.append(dict(method="decoder", metric="loss", value=v, se=0.001, ci_low=v, ci_high=v,
                             seed=0, width=w, n_params=n, step=step, tokens=d))  # fmt: skip
    return pd.DataFrame(rows)


def _st(t):
    return {c.claim: c.status for c in sl._law_checks(t)}


def _get(st, prefix):
    hits = [v for k, v in st.items() if k.startswith(prefix)]
    assert len(hits) == 1, (prefix, st)
    return hits[0]


def test_checks_hold_on_a_table_that_follows_the_law():
    st = _st(_table())
    assert set(st.values()) == {"holds"}, st


@pytest.mark.parametrize(
    ("change", "prefix"),
    [
        (dict(entropy_shift=0.1), "the entropy rate formula equals the true"),
        (dict(below=True), "no model's loss is below the entropy fl"),
        (dict(held_shift=0.5), "the law fitted on the 4 smaller models p"),
        (dict(e=1.5), "the fitted irreducible loss E equals the"),
    ],
)
def test_each_check_fails_without_its_ingredient(change, prefix):
    assert _get(_st(_table(**change)), prefix) == "fails"


def test_tiny_preset_deterministic_and_bad_input():
    a = sl.run(EXP.make_config("tiny"))
    b = sl.run(EXP.make_config("tiny"))
    pd.testing.assert_frame_equal(a.table, b.table)
    assert set(a.figures) == {"loss_vs_tokens", "emergence_vs_size"}
    assert len(a.checks) == len(sl._law_checks(a.table)) + 3
    for key, value, field in (("grid.widths", [8, 16], "grid.widths"),
                              ("source.kind", "zipf", "source.kind"),
                              ("grid.eval_steps", [10], "grid.eval_steps")):  # fmt: skip
        with pytest.raises(ConfigError) as e:
            EXP.make_config("tiny", {key: value})
        assert e.value.field == field


def test_compute_optimal_check_fails_when_the_grid_optimum_moves_otherwise(monkeypatch):
    """The grid's best size growing like C^1.5 (far from β/(α+β) ≈ 0.47, and from the rivals)."""
    cs = np.geomspace(1e8, 1e12, 8)
    monkeypatch.setattr(sl, "_grid_optimum", lambda pts: (cs, 1e-10 * cs**1.5))
    assert _get(_st(_table()), "the compute-optimal model size") == "fails"
    monkeypatch.setattr(sl, "_grid_optimum", lambda pts: (cs, np.full(cs.size, 400.0)))
    assert _get(_st(_table()), "the compute-optimal model size") == "inconclusive"
