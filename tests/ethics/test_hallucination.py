"""hallucination: checks on constructed tables, bad input, the bound's pieces, detectors, tiny run."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from fmtheory.contract import ConfigError, get_experiment
from fmtheory.experiments.hallucination import (
    eigenscore,
    good_turing_recalibrate,
    hallucination_rate,
    semantic_entropy,
    temperature_probs,
)
from fmtheory.theory import evaluate
from fmtheory.theory.good_turing import (
    binned_miscalibration,
    kv_lower_bound,
    kv_slack,
    kv_sparsity_term,
)

EXP = get_experiment("hallucination")
CFG = EXP.make_config("tiny")


def _row(method: str, metric: str, value: float, se: float, n: int, tau: float = np.nan) -> dict:
    return dict(method=method, metric=metric, value=value, se=se, ci_low=value - 1.96 * se,
                ci_high=value + 1.96 * se, seed=0, n=n, tau=tau)  # fmt: skip


def _table(hall: list[float], bound: list[float], mf: list[float], auc: float) -> pd.DataFrame:
    rows = []
    for n, h, b, m in zip((100, 200, 400), hall, bound, mf, strict=True):
        for meth in ("lm", "calibrated"):
            rows += [_row(meth, "hallucination", h, 0.005, n), _row(meth, "bound", b, 0.005, n),
                     _row(meth, "bound_leading", b, 0.005, n)]  # fmt: skip
        rows.append(_row("corpus", "monofact", m, 0.005, n))
    rows += [_row(d, "auroc", auc, 0.02, 400) for d in ("eigenscore", "semantic_entropy")]
    return pd.DataFrame(rows)


KEYS = (
    "bound-cal",
    "bound-lm",
    "lead-cal",
    "lead-lm",
    "mf",
    "hall-cal",
    "hall-lm",
    "eigenscore",
    "semantic_entropy",
)


def _status(table: pd.DataFrame) -> dict[str, str]:
    out = {}
    for c in EXP.checks(table, CFG):
        cal = "recalibrated" in c.claim
        if "Kalai" in c.claim:
            key = ("lead-" if "without" in c.claim else "bound-") + ("cal" if cal else "lm")
        elif "monofact" in c.claim:
            key = "mf"
        elif "hallucination rate" in c.claim:
            key = "hall-cal" if cal else "hall-lm"
        else:
            key = c.claim.split()[0]
        out[key] = c.status
    return out


def test_checks_hold_on_a_constructed_table() -> None:
    s = _status(_table([0.30, 0.20, 0.10], [0.2, 0.1, 0.0], [0.3, 0.2, 0.1], 0.8))
    assert s == dict.fromkeys(KEYS, "holds")


def test_checks_fail_on_a_constructed_table() -> None:
    s = _status(_table([0.10, 0.20, 0.30], [0.3, 0.1, 0.0], [0.1, 0.2, 0.3], 0.3))
    assert s == dict.fromkeys(KEYS, "fails")


def test_bound_check_fails_when_the_rate_is_below_a_positive_bound_at_one_n() -> None:
    """A calibrated model whose g(H) is below a positive bound at one corpus size only."""
    s = _status(_table([0.30, 0.05, 0.20], [0.1, 0.1, 0.1], [0.3, 0.2, 0.1], 0.8))
    assert s["bound-cal"] == s["bound-lm"] == s["lead-cal"] == s["lead-lm"] == "fails"


def test_bound_check_is_not_applicable_when_the_bound_is_negative_everywhere() -> None:
    s = _status(_table([0.01, 0.01, 0.01], [-0.3, -0.2, -0.1], [0.3, 0.2, 0.1], 0.8))
    assert s["bound-cal"] == s["bound-lm"] == s["lead-cal"] == s["lead-lm"] == "n/a"


@pytest.mark.parametrize(
    "field,value",
    [
        ("facts", {"exponent": 1.0}),
        ("facts", {"exponent": 0.8}),
        ("eval", {"detectors": ["perplexity"]}),
        ("eval", {"delta": 1.0}),
        ("facts", {"n_grid": [100, 50, 200]}),
        ("eval", {"thresholds": [0.0, 1.5]}),
        ("eval", {"temperatures": [0.0]}),
        ("eval", {"cutoff": 0}),
    ],
)
def test_bad_input(field: str, value: dict) -> None:
    with pytest.raises(ConfigError):
        EXP.make_config("quick", {field: value})


def test_miscalibration_zero_when_calibrated_and_tv_when_not() -> None:
    p = np.array([0.5, 0.3, 0.2, 0.0])
    assert binned_miscalibration(p, p, 3) == pytest.approx(0.0, abs=1e-12)
    g = np.array([0.0, 0.0, 0.0, 1.0])  # all mass on a false fact: one bin holds everything
    assert binned_miscalibration(g, p, 1) == pytest.approx(0.0)  # b = 1 cannot see anything
    # with many bins, the false fact's bin has g = 1, p = 0: Mis = ½(|0 − 1| + |1 − 0|) = 1
    assert binned_miscalibration(g + 1e-9, p, 4) == pytest.approx(1.0, abs=1e-6)


def test_bound_formula_slack_and_sparsity() -> None:
    assert kv_slack(600, 0.05) == pytest.approx(np.sqrt(6 * np.log(120) / 600))
    # the paper's simplified statement (§1, probability 99%): 7/√n and 300·|Facts|/|H|
    assert kv_slack(10_000, 0.01) * 100 <= 7.0
    assert kv_sparsity_term(1 / 1000, 0.01) == pytest.approx(300 / 1000)
    v = evaluate("kv-hallucination-bound", monofact=0.3, miscalibration=0.05, n=10_000, delta=0.05)
    assert v.value == pytest.approx(kv_lower_bound(0.3, 0.05, 10_000, 0.05))
    assert v.value == pytest.approx(0.25 - np.sqrt(6 * np.log(120) / 10_000))
    w = evaluate("kv-hallucination-bound", monofact=0.3, miscalibration=0.05, n=10_000,
                 delta=0.05, sparsity=0.001)  # fmt: skip
    assert w.value == pytest.approx(v.value - 3 * 0.001 / 0.05)
    with pytest.raises(ValueError, match="sparsity"):
        kv_sparsity_term(1.5, 0.05)


def test_miscalibration_keeps_level_sets_together() -> None:
    """Ties in g form one level set; they are never split between bins."""
    g = np.array([0.1, 0.1, 0.1, 0.1, 0.6])
    p = np.array([0.4, 0.0, 0.0, 0.0, 0.6])
    # the four tied facts share one bin whatever b is: g = p on it and on the last one
    for b in (2, 5, 50):
        assert binned_miscalibration(g, p, b) == pytest.approx(0.0, abs=1e-12)
    # without ties the same masses are split and the miscalibration appears
    g2 = g + np.array([0.0, 1e-6, 2e-6, 3e-6, -6e-6])
    assert binned_miscalibration(g2, p, 50) > 0.2


def test_good_turing_recalibration_masses() -> None:
    counts = np.array([0, 0, 1, 1, 1, 2, 6, 0])  # n = 11; N1 = 3, N2 = 1, N6 = 1
    ge = np.full(counts.size, 1.0 / counts.size)
    g = good_turing_recalibrate(ge, counts, cutoff=5)
    raw = np.array([3 / 11, 2 * 1 / 11, 3 * 0 / 11, 6 / 11])  # c = 0, 1, 2 (N3 = 0), 6 (≥ cutoff)
    raw /= raw.sum()
    assert g[counts == 0].sum() == pytest.approx(raw[0])
    assert g[counts == 1].sum() == pytest.approx(raw[1])
    assert g[counts == 2].sum() == pytest.approx(0.0)
    assert g[counts == 6].sum() == pytest.approx(raw[3])
    assert g.sum() == pytest.approx(1.0)


def test_temperature_probs() -> None:
    ga = np.array([[0.7, 0.2, 0.1]])
    np.testing.assert_allclose(temperature_probs(ga, 1.0), ga)
    assert temperature_probs(ga, 0.05)[0, 0] > 0.999
    np.testing.assert_allclose(temperature_probs(ga, 10.0).sum(), 1.0)
    assert temperature_probs(ga, 10.0).max() < 0.4


def test_bound_on_a_calibrated_model_in_simulation() -> None:
    """The Good–Turing-smoothed empirical law (missing mass N₁/n spread over unseen facts with a
    uniform attribute) hallucinates at rate N₁/n·(1 − 1/A) and at least at the bound, in every
    simulated corpus."""
    rng = np.random.default_rng(1)
    k, a, n = 2000, 16, 1000
    p = np.arange(1, k + 1) ** -1.2
    p /= p.sum()
    attrs = rng.integers(0, a, k)
    for _ in range(20):
        counts = np.bincount(rng.choice(k, n, p=p), minlength=k)
        mf = (counts == 1).sum() / n
        ge = np.where(counts > 0, counts / n * (1 - mf), mf / max((counts == 0).sum(), 1))
        ga = np.where((counts > 0)[:, None], np.eye(a)[attrs], 1.0 / a)
        h = hallucination_rate(ge, ga, attrs)
        g = (ge[:, None] * ga).ravel()
        pt = np.zeros((k, a))
        pt[np.arange(k), attrs] = p
        mis = binned_miscalibration(g, pt.ravel(), 10)
        assert h >= kv_lower_bound(mf, mis, n, 0.05)
        assert h == pytest.approx(mf * (1 - 1 / a))


def test_detectors_on_known_samples() -> None:
    ans = np.array([[1, 1, 1, 1], [0, 1, 2, 3], [0, 0, 1, 1]])
    np.testing.assert_allclose(semantic_entropy(ans), [0.0, np.log(4), np.log(2)])
    same = torch.ones(1, 4, 8)
    diverse = torch.randn(1, 4, 8, generator=torch.Generator().manual_seed(0))
    assert eigenscore(same)[0] == pytest.approx(np.log(1e-3))
    assert eigenscore(diverse)[0] > eigenscore(same)[0] + 1.0


@pytest.mark.slow
def test_tiny_run_is_deterministic_and_sane() -> None:
    r1, r2 = EXP.run(CFG), EXP.run(CFG)
    pd.testing.assert_frame_equal(r1.table, r2.table)
    t = r1.table
    mf = t[(t.method == "lm") & (t.metric == "monofact")].value.to_numpy()
    assert np.all((mf > 0) & (mf < 1))
    cov = t[(t.method == "abstain") & (t.metric == "coverage")].sort_values("tau").value.to_numpy()
    assert cov[0] == 1.0 and np.all(np.diff(cov) <= 0)
