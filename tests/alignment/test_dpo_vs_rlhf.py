"""dpo-vs-rlhf: the closed-form optimum against an exact solve, Gao et al.'s fit, every check's
failure and success on constructed tables, an ingredient removed, bad input, determinism."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from scipy.optimize import minimize
from scipy.special import log_softmax

from fmtheory.checks import exact_row
from fmtheory.contract import ConfigError, RunContext, get_experiment
from fmtheory.experiments import dpo_vs_rlhf as dv
from fmtheory.experiments._preference import bt_mle, bt_mle_counts
from fmtheory.theory import evaluate
from fmtheory.theory.kl_optimum import kl_divergence, kl_optimal_policy, kl_optimal_value
from fmtheory.train.fit import make_generator

NAME = "dpo-vs-rlhf"


@pytest.mark.parametrize("seed,n_actions,beta", [(0, 2, 0.3), (1, 3, 1.0), (2, 5, 2.0)])
def test_closed_form_optimum_against_exact_solve(seed, n_actions, beta):
    """max_π E_π r − β KL(π‖π_ref) solved numerically (SLSQP on the simplex) = the closed form."""
    rng = np.random.default_rng(seed)
    r = rng.standard_normal(n_actions)
    ref = np.exp(log_softmax(rng.standard_normal(n_actions)))

    def neg(p):
        p = np.clip(p, 1e-12, 1)
        return -(p @ r - beta * np.sum(p * np.log(p / ref)))

    sol = minimize(neg, np.full(n_actions, 1 / n_actions), method="SLSQP",
                   bounds=[(0, 1)] * n_actions,
                   constraints=[{"type": "eq", "fun": lambda p: p.sum() - 1}],
                   options={"ftol": 1e-14, "maxiter": 1000})  # fmt: skip
    pi = kl_optimal_policy(np.log(ref), r, beta)
    np.testing.assert_allclose(sol.x, pi, atol=1e-5)
    assert -sol.fun == pytest.approx(float(kl_optimal_value(np.log(ref), r, beta)), abs=1e-8)
    if n_actions == 2:
        two = evaluate("kl-optimum-two-arm", p_ref=ref[0], reward_gap=r[0] - r[1], beta=beta)
        assert two.value == pytest.approx(pi[0], rel=1e-10)


def test_kl_divergence_basics():
    p = np.array([0.2, 0.8])
    assert kl_divergence(p, p) == pytest.approx(0.0)
    assert kl_divergence(np.array([1.0, 0.0]), p) == pytest.approx(np.log(1 / 0.2))


def test_bt_mle_counts_matches_the_sample_mle():
    """The count-based tabular MLE equals bt_mle on the one-hot differences of the same pairs."""
    rng = np.random.default_rng(4)
    a = rng.integers(0, 4, 600)
    b = (a + rng.integers(1, 4, 600)) % 4
    r = np.array([0.5, -0.2, 0.1, 0.0])
    y = rng.random(600) < 1 / (1 + np.exp(-(r[a] - r[b])))
    win, lose = np.where(y, a, b), np.where(y, b, a)
    counts = np.zeros((4, 4))
    np.add.at(counts, (win, lose), 1.0)
    x = (np.eye(4)[win] - np.eye(4)[lose])[None]
    ref = bt_mle(x, np.ones((1, 600)), lam=1e-6 / 600)[0]
    got = bt_mle_counts(counts, lam=1e-6)
    np.testing.assert_allclose(got - got.mean(), ref - ref.mean(), atol=1e-6)


def test_gao_fit_recovers_its_form():
    d = np.linspace(0, 3, 40)
    with np.errstate(divide="ignore", invalid="ignore"):
        r = np.where(d > 0, d * (0.8 - 0.4 * np.log(d)), 0.0)
    alpha, beta, r2 = dv.gao_fit(d, r, "rl")
    assert (alpha, beta) == pytest.approx((0.8, 0.4), abs=1e-9)
    assert r2 == pytest.approx(1.0)
    assert dv.gao_fit(d, d * (1.0 - 0.3 * d), "bon")[:2] == pytest.approx((1.0, 0.3), abs=1e-9)


def test_preference_labels_follow_bradley_terry():
    r = np.array([[1.0, 0.0]])
    logp = np.log(np.array([[0.5, 0.5]]))
    data = dv.sample_preferences(r, logp, [20_000], make_generator(0))
    distinct = data["win"] != data["lose"]
    frac = (data["win"][distinct] == 0).double().mean().item()
    assert frac == pytest.approx(1 / (1 + np.exp(-1.0)), abs=0.015)


# ---------------------------------------------------------------------------------------------
def _table(*, dpo_exp=-1.0, rlhf_exp=-1.0, corr=(0.99, 0.002), drop=(0.13, 0.02),
           gao="rl", proxy_up=True, equiv=(1e-5, 5e-5)):  # fmt: skip
    rows = []
    for n in (1000, 2000, 4000, 8000, 16000, 32000):
        for method, e in (("dpo", dpo_exp), ("rlhf", rlhf_exp)):
            v = 50.0 * n**e
            rows.append(exact_row(method, "kl_to_optimum", v, se=0.03 * v, seed=0, n=n))
    rows.append(exact_row("closed-form-on-mle", "kl_to_optimum", 0.003, se=1e-4, seed=0, n=32000))
    for method, v in (("dpo", equiv[0]), ("rlhf", equiv[1])):
        rows.append(exact_row(method, "kl_to_mle_optimum", v, se=1e-5, seed=0, n=32000))
    rows.append(exact_row("dpo", "implicit_reward_corr", corr[0], se=corr[1], seed=0, n=32000))
    d = np.linspace(0, 3, 30)
    with np.errstate(divide="ignore", invalid="ignore"):
        gold = np.where(d > 0, d * (0.8 - 0.4 * np.log(d)), 0.0) if gao == "rl" else np.sin(9 * d)
    for i, (di, gi) in enumerate(zip(d, gold, strict=True)):
        rows.append(exact_row("proxy-pg", "kl", di**2, se=0.01, seed=0, step=5 * i))
        rows.append(exact_row("proxy-pg", "gold_reward", gi, se=0.01, seed=0, step=5 * i))
        pr = di if proxy_up else -di
        rows.append(exact_row("proxy-pg", "proxy_reward", pr, se=0.01, seed=0, step=5 * i))
    rows.append(exact_row("proxy-pg", "gold_drop", drop[0], se=drop[1], seed=0, step=145))
    return pd.DataFrame(rows)


def _cfg():
    return get_experiment(NAME).make_config("tiny")


def _status(table):
    return [c.status for c in dv.checks(table, _cfg())]


def test_checks_hold_on_a_table_that_agrees():
    assert _status(_table()) == ["holds"] * 8


def test_check_kinds():
    assert [c.kind for c in dv.checks(_table(), _cfg())] == ["claim"] * 5 + ["sanity", "claim",
                                                                              "claim"]  # fmt: skip


def test_checks_fail_one_by_one():
    assert _status(_table(dpo_exp=0.0))[0] == "fails"
    assert _status(_table(rlhf_exp=-0.5))[1] == "fails"
    assert _status(_table(equiv=(0.001, 0.0)))[2] == "fails"
    assert _status(_table(equiv=(0.0, 0.001)))[3] == "fails"
    assert _status(_table(corr=(0.5, 0.01)))[4] == "fails"
    assert _status(_table(proxy_up=False))[5] == "fails"
    assert _status(_table(drop=(0.0, 0.0)))[6] == "fails"
    assert _status(_table(gao="other"))[7] == "fails"


def test_shuffled_preferences_remove_the_implicit_reward():
    """Labels independent of the reward (win/lose swapped at random): DPO's implicit reward no
    longer tracks r, and the correlation claim fails."""
    cfg = _cfg()
    reward, logp_ref = dv.make_problem(cfg.problem, 0)
    data = dv.sample_preferences(reward, logp_ref, [800, 800], make_generator(1))
    swap = torch.rand(data["win"].shape, generator=make_generator(2)) < 0.5
    win, lose = data["win"].clone(), data["lose"].clone()
    data["win"], data["lose"] = torch.where(swap, lose, win), torch.where(swap, win, lose)
    logp = dv.train_dpo(data, logp_ref, 1.0, cfg.dpo_train, 3, RunContext())
    corr = dv._centred_corr(1.0 * (logp - logp_ref[None]), reward)
    table = _table(corr=(float(corr.mean()), float(corr.std(ddof=1) / np.sqrt(2))))
    assert dv.checks(table, cfg)[4].status == "fails"


def test_tiny_run_is_deterministic_and_complete():
    exp = get_experiment(NAME)
    a = exp.run(exp.make_config("tiny"), None)
    b = exp.run(exp.make_config("tiny"), None)
    pd.testing.assert_frame_equal(a.table, b.table)
    assert {"se", "n", "step"} <= set(a.table.columns)
    assert set(a.figures) == {"kl_to_optimum", "overoptimisation"}
    assert len(a.checks) == 8
    assert exp.headline(a.table, exp.make_config("tiny"))


@pytest.mark.parametrize(
    "field,value",
    [
        ("problem.beta", 0.0),
        ("problem.beta", -1.0),
        ("overopt.beta", 0.0),
        ("data.n_grid", []),
        ("data.n_grid", [0, 10, 20]),
        ("overopt.n_pairs", 0),
        ("problem.n_actions", 1),
    ],
)
def test_bad_input_is_one_config_error(field, value):
    with pytest.raises(ConfigError) as e:
        get_experiment(NAME).make_config("quick", {field: value})
    assert "\n" not in str(e.value)


def test_run_with_a_workdir_equals_a_run_without(tmp_path):
    exp = get_experiment(NAME)
    cfg = exp.make_config("tiny", {"dpo_train.checkpoint_every": 20})
    a = exp.run(cfg, RunContext(workdir=tmp_path))
    assert (tmp_path / "checkpoints" / "dpo.safetensors").exists()
    b = exp.run(cfg, RunContext(workdir=tmp_path))  # resumes from the finished checkpoints
    c = exp.run(cfg, None)
    pd.testing.assert_frame_equal(a.table, c.table)
    pd.testing.assert_frame_equal(b.table, c.table)
