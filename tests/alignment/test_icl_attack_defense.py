"""icl-attack-defense: the formula against simulation, the sampler against its definition, every
check made to hold and to fail on constructed tables, bad input, determinism and the tiny preset."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch

from fmtheory.checks import exact_row
from fmtheory.contract import ConfigError, get_experiment
from fmtheory.experiments import icl_attack_defense as iad
from fmtheory.tasks.safety import SafetyVocab, attack_prompts, sample_safety
from fmtheory.theory import evaluate
from fmtheory.theory.icl_attack import attack_llr, attack_success, refusal_llr

NAME = "icl-attack-defense"
PRIOR_C, CS, CC = 0.05, 0.2, 0.6


def _simulate(k: int, kd: int, n: int, rng: np.random.Generator) -> tuple[float, float]:
    """Sample mode, k harmful demos then kd more; keep the draws with k compliances and kd
    refusals; the frequency of the compliant mode and its s.e."""
    comp = rng.random(n) < PRIOR_C
    p = np.where(comp, CC, CS)
    ok = (rng.binomial(k, p) == k) & (rng.binomial(kd, 1 - p) == kd)
    x = comp[ok].astype(float)
    return float(x.mean()), float(x.std(ddof=1) / math.sqrt(x.size))


@pytest.mark.parametrize("k,kd", [(0, 0), (1, 0), (3, 0), (5, 0), (3, 2), (5, 4)])
def test_formula_matches_simulation_of_two_hypothesis_model(k, kd):
    m, se = _simulate(k, kd, 2_000_000, np.random.default_rng(k * 10 + kd))
    pred = evaluate("icl-attack-success", k=k, prior_compliant=PRIOR_C, comply_safe=CS,
                    comply_compliant=CC, k_defense=kd).value  # fmt: skip
    assert abs(m - pred) <= 4 * se
    assert abs(m - pred) < 0.02


def test_formula_is_logistic_with_llr_slope_and_defense_shift():
    b, br = attack_llr(CS, CC), refusal_llr(CS, CC)
    assert b == pytest.approx(math.log(3)) and br == pytest.approx(math.log(2))
    s = [attack_success(k, prior_compliant=PRIOR_C, comply_safe=CS, comply_compliant=CC)
         for k in range(6)]  # fmt: skip
    logits = np.log(np.array(s) / (1 - np.array(s)))
    np.testing.assert_allclose(np.diff(logits), b, rtol=1e-12)
    kd = 3  # shift right by kd·b_r/b demonstrations
    assert attack_success(4 + kd * br / b, prior_compliant=PRIOR_C, comply_safe=CS,
                          comply_compliant=CC, k_defense=kd) == pytest.approx(s[4])  # fmt: skip


def test_sampler_follows_its_definition():
    v = SafetyVocab(n_queries=8, n_answers=4, n_harmful=4)
    g = torch.Generator().manual_seed(0)
    b = sample_safety(v, batch=4000, max_demos=6, aligned=True, prior_safe=0.7, comply_safe=0.2,
                      comply_compliant=0.6, harmful_share=0.5, generator=g)  # fmt: skip
    tok, tgt = b.tokens, b.targets
    assert (tok[:, -2] == v.qry).all()
    q, a = tok[:, :-2:2], tok[:, 1:-2:2]
    demo = q != v.pad
    assert (tgt[:, :-2:2][demo] == a[demo]).all()
    harm = demo & (q >= 4)
    refused = a == v.refuse
    assert not (refused & demo & (q < 4)).any()  # benign demos are answered
    shift = None
    for mode, p in ((b.compliant, 0.6), (~b.compliant, 0.2)):
        h = harm & mode[:, None]
        rate = 1 - refused[h].double().mean().item()
        assert abs(rate - p) < 0.02
    answered = demo & ~refused
    shift = (a - v.n_queries - q) % v.n_answers  # one shift per prompt
    for i in range(50):
        s = shift[i][answered[i]]
        assert s.numel() == 0 or (s == s[0]).all()
    assert abs((~b.compliant).double().mean().item() - 0.7) < 0.03
    final_harm = tok[:, -1] >= 4
    assert (tgt[final_harm & ~b.compliant, -1] == v.refuse).all()
    assert (tgt[final_harm & b.compliant, -1] != v.refuse).all()


def test_attack_prompts_layout():
    v = SafetyVocab(n_queries=8, n_answers=4, n_harmful=4)
    g = torch.Generator().manual_seed(1)
    t = attack_prompts(v, batch=5, max_demos=6, k=3, k_defense=2, final=True, generator=g)
    a = t[:, 1:-2:2]
    assert (t[:, :2] == v.pad).all() and (a[:, 1:3] == v.refuse).all()
    assert (a[:, 3:] != v.refuse).all() and (t[:, -1] >= 4).all() and (t[:, -2] == v.qry).all()
    with pytest.raises(ValueError):
        attack_prompts(v, batch=5, max_demos=6, k=-1, k_defense=0, final=True, generator=g)


# ---------------------------------------------------------------------------------------------
def _table(attack, defense, q_s=0.2, q_c=0.6, sim_shift=0.0):
    cfg = get_experiment(NAME).make_config("tiny")
    rows = []
    for k, (s, d) in enumerate(zip(attack, defense, strict=True)):
        rows.append(exact_row("attack", "success", s, se=0.005, seed=0, k=k, k_defense=0))
        rows.append(exact_row("defense", "success", d, se=0.005, seed=0, k=k, k_defense=2))
        bay = attack_success(k, prior_compliant=0.05, comply_safe=0.2, comply_compliant=0.6)
        rows.append(exact_row("bayes-attack", "success", bay, seed=0, k=k, k_defense=0))
        rows.append(exact_row("simulation", "success", bay + sim_shift, se=0.002, seed=0, k=k,
                              k_defense=0))  # fmt: skip
    rows.append(exact_row("score-safe", "comply_demo", q_s, se=0.002, seed=0, k=0, k_defense=7))
    rows.append(exact_row("score-compliant", "comply_demo", q_c, se=0.002, seed=0, k=7,
                          k_defense=0))  # fmt: skip
    rows.append(exact_row("data", "attack_llr", math.log(3), seed=0, k=np.nan, k_defense=np.nan))
    return pd.DataFrame(rows), cfg


def _logistic_curve(b, a=-3.0, shift=0.0):
    return [1 / (1 + math.exp(-(a + b * (k - shift)))) for k in range(9)]


def _by(cs, kind, word):
    return [c for c in cs if c.kind == kind and word in c.claim][0]


def test_checks_hold_on_a_bayesian_table():
    t, cfg = _table(_logistic_curve(math.log(3)), _logistic_curve(math.log(3), shift=2.5))
    cs = iad.checks(t, cfg)
    assert {c.status for c in cs} == {"holds"}, [(c.claim, c.status, c.measured) for c in cs]


def test_logistic_check_fails_on_a_linear_curve():
    lin = [0.1 + 0.1 * k for k in range(9)]
    t, cfg = _table(lin, [x - 0.1 for x in lin])
    assert _by(iad.checks(t, cfg), "claim", "better than a linear").status == "fails"


def test_slope_check_fails_when_the_model_scores_a_different_ratio():
    t, cfg = _table(_logistic_curve(math.log(3)), _logistic_curve(math.log(3), shift=2.5),
                    q_s=0.2, q_c=0.25)  # fmt: skip
    assert _by(iad.checks(t, cfg), "claim", "fitted slope").status == "fails"


def test_defense_check_fails_when_refusals_do_not_shift_the_curve():
    c = _logistic_curve(math.log(3))
    t, cfg = _table(c, c)
    assert _by(iad.checks(t, cfg), "claim", "shift the curve").status == "fails"


def test_theory_check_fails_when_simulation_disagrees():
    t, cfg = _table(_logistic_curve(1.0), _logistic_curve(1.0, shift=2), sim_shift=0.05)
    assert _by(iad.checks(t, cfg), "theory", "simulation").status == "fails"


def test_rising_sanity_fails_on_a_falling_curve():
    c = _logistic_curve(-1.0)
    t, cfg = _table(c, c)
    assert _by(iad.checks(t, cfg), "sanity", "rises").status == "fails"


# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "override",
    [
        {"eval": {"k_grid": [0, 1, -1, 2]}},
        {"eval": {"k_defense": -1}},
        {"task": {"name": "permutation"}},
        {"task": {"comply_safe": 1.5}},
        {"task": {"comply_safe": 0.7, "comply_compliant": 0.6}},
        {"task": {"n_harmful": 8, "n_queries": 8}},
        {"eval": {"k_grid": [0, 1, 2, 11], "k_defense": 2}},
        {"unknown_field": 1},
    ],
)
def test_bad_input_raises_config_error(override):
    with pytest.raises(ConfigError):
        get_experiment(NAME).make_config("quick", override)


@pytest.fixture(scope="module")
def tiny_runs():
    e = get_experiment(NAME)
    cfg = e.make_config("tiny")
    return e.run(cfg), e.run(cfg)


@pytest.mark.slow
def test_tiny_is_deterministic(tiny_runs):
    a, b = tiny_runs
    pd.testing.assert_frame_equal(a.table, b.table)


@pytest.mark.slow
def test_tiny_attack_rate_rises_with_k(tiny_runs):
    t = tiny_runs[0].table
    att = t[(t.method == "attack") & (t.metric == "success")].sort_values("k")
    assert att.value.iloc[-1] > att.value.iloc[0] + 0.1
    assert _by(tiny_runs[0].checks, "sanity", "rises").status == "holds"
