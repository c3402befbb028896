"""self-correction: the data generator against its definition, the Plackett–Luce loss against a
loop and its closed form, the theory against simulation, every check's failure and success on
constructed tables, the ingredient removed on the tiny preset, determinism, bad input."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from fmtheory.checks import exact_row
from fmtheory.contract import ConfigError, get_experiment
from fmtheory.experiments import self_correction as sc
from fmtheory.tasks.self_correction import response_error, sample_self_correction, tokens
from fmtheory.theory import evaluate

NAME = "self-correction"


def _gen(seed: int = 0) -> torch.Generator:
    g = torch.Generator()
    g.manual_seed(seed)
    return g


# ---------------------------------------------------------------- the generator's definition
def test_accurate_rewards_equal_quality_and_responses_follow_definition():
    b = sample_self_correction(batch=400, rounds=6, dim=5, reward_noise=0.0, generator=_gen())
    assert torch.equal(b.reward, b.quality)
    assert not b.corrupted.any()
    assert ((b.quality >= 0) & (b.quality <= 1)).all()
    r = b.quality.unsqueeze(-1)
    xi = (b.responses - r * b.y_star.unsqueeze(1)) / (1 - r)
    # the noise recovered from y_i = r_i y* + (1 − r_i) ξ_i is standard normal, independent of y*
    assert abs(xi.mean().item()) < 0.05 and abs(xi.var().item() - 1) < 0.05
    corr = (xi * b.y_star.unsqueeze(1)).mean().item()
    assert abs(corr) < 0.05
    # the error's conditional mean 2(1 − r)²
    ratio = response_error(b).sum() / (2 * (1 - b.quality) ** 2 * 1).sum()
    assert abs(ratio.item() - 1) < 0.05
    assert tokens(b).shape == (400, 6, 11)
    assert torch.equal(tokens(b)[..., -1], b.reward)


@pytest.mark.parametrize("p", [0.3, 1.0])
def test_noisy_rewards_replace_a_fraction_p(p):
    b = sample_self_correction(batch=4000, rounds=5, dim=2, reward_noise=p, generator=_gen(1))
    frac = b.corrupted.float().mean().item()
    assert abs(frac - p) < 4 * np.sqrt(p * (1 - p) / b.corrupted.numel()) + 1e-9
    keep = ~b.corrupted
    assert torch.equal(b.reward[keep], b.quality[keep])
    if p == 1.0:
        # replaced rewards are independent of quality
        c = np.corrcoef(b.reward.flatten().numpy(), b.quality.flatten().numpy())[0, 1]
        assert abs(c) < 0.03


def test_shuffled_rewards_are_a_permutation_within_each_prompt():
    a = sample_self_correction(batch=50, rounds=7, dim=3, reward_noise=0.0, generator=_gen(2))
    s = sample_self_correction(batch=50, rounds=7, dim=3, reward_noise=0.0, generator=_gen(2),
                               shuffle_rewards=True)  # fmt: skip
    assert torch.equal(a.responses, s.responses)
    assert torch.equal(a.reward.sort(1).values, s.reward.sort(1).values)
    assert not torch.equal(a.reward, s.reward)


def test_generator_rejects_bad_noise():
    with pytest.raises(ValueError, match="reward_noise"):
        sample_self_correction(batch=2, rounds=2, dim=2, reward_noise=1.5, generator=_gen())


# ---------------------------------------------------------------- Plackett–Luce
def test_pl_loss_vectorised_equals_loop_and_two_item_closed_form():
    g = _gen(3)
    s, q = torch.randn(20, 6, generator=g), torch.rand(20, 6, generator=g)
    torch.testing.assert_close(sc.plackett_luce_loss(s, q), sc.plackett_luce_loss_loop(s, q))
    s2, q2 = s[:, :2], q[:, :2]
    best = torch.where(q2[:, 0] > q2[:, 1], s2[:, 0] - s2[:, 1], s2[:, 1] - s2[:, 0])
    torch.testing.assert_close(sc.plackett_luce_loss(s2, q2), -torch.nn.functional.logsigmoid(best))
    mask = torch.zeros(20, 6, dtype=torch.bool)
    mask[:, :4] = True
    torch.testing.assert_close(sc.plackett_luce_loss(s, q, mask),
                               sc.plackett_luce_loss_loop(s[:, :4], q[:, :4]))  # fmt: skip


# ---------------------------------------------------------------- theory vs simulation
@pytest.mark.parametrize("n", [1, 2, 5, 12])
def test_best_of_n_matches_independent_simulation(n):
    rng = np.random.default_rng(n)
    m, d = 200_000, 3
    r = rng.random((m, n))
    best = r.max(1)
    ystar, xi = rng.standard_normal((m, d)), rng.standard_normal((m, d))
    err = ((1 - best)[:, None] ** 2 * (ystar - xi) ** 2).mean(1)
    se = err.std() / np.sqrt(m)
    assert abs(err.mean() - evaluate("self-correction-best-of-n", n=n).value) < 4 * se
    rand = ((1 - r[:, 0])[:, None] ** 2 * (ystar - xi) ** 2).mean(1)
    assert abs(
        rand.mean() - evaluate("self-correction-random-choice", n=n).value
    ) < 4 * rand.std() / np.sqrt(m)


# ---------------------------------------------------------------- constructed tables
def _cfg():
    return get_experiment(NAME).make_config("quick")


def _table(*, errors, gains, ablation_err=None, oracle=None, K=8):
    """errors: full model's error at rounds 1..K (p = 0); gains: {p: gain}; ablation_err: {variant: error at K}."""
    rows = []
    for t, e in enumerate(errors):
        rows.append(
            exact_row("m", "error", e, seed=0, se=0.01, variant="full", noise=0.0, rounds=t + 1)
        )
    for p, g in gains.items():
        rows.append(exact_row("m", "gain", g, seed=0, se=0.01, variant="full", noise=p, rounds=K))
    for v, e in (ablation_err or {}).items():
        rows.append(exact_row(v, "error", e, seed=0, se=0.01, variant=v, noise=0.0, rounds=K))
    if oracle is not None:
        rows.append(exact_row("select by observed reward", "error", oracle, seed=0, se=0.003,
                              variant="reference", noise=0.0, rounds=K))  # fmt: skip
    return pd.DataFrame(rows)


def _by_claim(checks, start):
    hits = [c for c in checks if c.claim.startswith(start)]
    assert len(hits) == 1, [c.claim for c in checks]
    return hits[0]


GOOD_ERR = [0.67, 0.35, 0.25, 0.19, 0.15, 0.13, 0.11, 0.10]
FLAT_ERR = [0.67, 0.70, 0.72, 0.75, 0.77, 0.80, 0.82, 0.85]
GOOD_GAIN = {0.0: 0.57, 0.25: 0.40, 0.5: 0.25, 0.75: 0.12, 1.0: 0.0}
BAD_GAIN = {0.0: 0.2, 0.25: 0.3, 0.5: 0.4, 0.75: 0.5, 1.0: 0.6}


def test_rounds_and_gain_checks_hold_and_fail():
    cfg = _cfg()
    ok = sc.checks(_table(errors=GOOD_ERR, gains=GOOD_GAIN), cfg)
    bad = sc.checks(_table(errors=FLAT_ERR, gains={0.0: -0.18}), cfg)
    for start in ("With accurate rewards, the error", "With accurate rewards, K ="):
        assert _by_claim(ok, start).status == "holds"
        assert _by_claim(bad, start).status == "fails"


def test_noise_checks_hold_and_fail():
    cfg = _cfg()
    ok = sc.checks(_table(errors=GOOD_ERR, gains=GOOD_GAIN), cfg)
    bad = sc.checks(_table(errors=GOOD_ERR, gains=BAD_GAIN), cfg)
    for start in ("With noisy rewards", "The gain at p ="):
        assert _by_claim(ok, start).status == "holds"
        assert _by_claim(bad, start).status == "fails"


def test_theory_check_holds_and_fails():
    cfg = _cfg()
    ok = sc.checks(_table(errors=GOOD_ERR, gains=GOOD_GAIN, oracle=4 / 90), cfg)
    bad = sc.checks(_table(errors=GOOD_ERR, gains=GOOD_GAIN, oracle=0.2), cfg)
    assert _by_claim(ok, "Choosing the best").status == "holds"
    assert _by_claim(bad, "Choosing the best").status == "fails"


@pytest.mark.parametrize(
    "variant,start",
    [
        ("linear-attention", "Self-correction needs softmax"),
        ("one-head", "Self-correction needs multi-head"),
        ("no-ffn", "Self-correction needs the feed-forward"),
        ("depth-1", "Self-correction needs more than 1 layer"),
    ],
)
def test_ablation_checks_hold_and_fail(variant, start):
    cfg = _cfg()
    ok = sc.checks(_table(errors=GOOD_ERR, gains=GOOD_GAIN, ablation_err={variant: 0.6}), cfg)
    bad = sc.checks(_table(errors=GOOD_ERR, gains=GOOD_GAIN, ablation_err={variant: 0.1}), cfg)
    assert _by_claim(ok, start).status == "holds"
    assert _by_claim(bad, start).status == "fails"


def test_missing_ablation_is_not_applicable_with_reason():
    out = sc.checks(_table(errors=GOOD_ERR, gains=GOOD_GAIN), _cfg())
    c = _by_claim(out, "Self-correction needs softmax")
    assert c.status == "n/a" and "not in this preset" in c.why


# ---------------------------------------------------------------- tiny preset: the ingredient
@pytest.fixture(scope="module")
def tiny_runs():
    exp = get_experiment(NAME)
    return exp.run(exp.make_config("tiny"), None), exp.run(
        exp.make_config("tiny", {"shuffle_rewards": True}), None
    )


def test_tiny_self_corrects_and_shuffled_rewards_remove_the_gain(tiny_runs):
    real, shuffled = tiny_runs
    gain = "With accurate rewards, K ="
    assert _by_claim(real.checks, gain).status == "holds"
    assert _by_claim(real.checks, "With accurate rewards, the error").status == "holds"
    assert _by_claim(shuffled.checks, gain).status == "fails"
    assert _by_claim(shuffled.checks, "With accurate rewards, the error").status != "holds"
    assert {"rounds", "noise"} <= set(real.figures)


def test_determinism_on_tiny():
    exp = get_experiment(NAME)
    over = {"train.steps": 20, "eval_size": 50}
    a = exp.run(exp.make_config("tiny", over), None)
    b = exp.run(exp.make_config("tiny", over), None)
    pd.testing.assert_frame_equal(a.table, b.table)
    assert "se" in a.table.columns


# ---------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    "field,value",
    [
        ("reward_noise", [0.0, 1.5]),
        ("reward_noise", [-0.1, 0.0]),
        ("reward_noise", [0.5]),
        ("rounds", 0),
        ("dim", 0),
        ("model.attention", "quadratic"),
        ("ablations", ["no-attention"]),
        ("depths", [3]),
        ("eval_size", 0),
    ],
)
def test_bad_input_is_one_config_error(field, value):
    with pytest.raises(ConfigError) as e:
        get_experiment(NAME).make_config("quick", {field: value})
    assert "\n" not in str(e.value)
