"""scan-snap: the token-attention probe on hand-built patterns, the closed form against an
integrated ODE, the population gradient against finite differences, every check holding and failing
on constructed tables, bad input, and the tiny run's dynamics and determinism."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch
from scipy.integrate import solve_ivp

from fmtheory.checks import exact_row
from fmtheory.contract import ConfigError, get_experiment
from fmtheory.experiments import scan_snap as ss
from fmtheory.probes.token_attention import token_attention, token_attention_entropy
from fmtheory.theory import evaluate
from fmtheory.theory.scan_snap import (
    data_model,
    decoder_margin,
    logit_growth,
    population_dynamics,
    population_loss_grad,
    snap_time,
)

NAME = "scan-snap"


# ---------------------------------------------------------------------------- probe
def _pattern(rows: list[list[float]]) -> torch.Tensor:
    return torch.tensor(rows, dtype=torch.float64)[:, None, None, :]  # (B, 1, 1, S)


def test_token_entropy_uniform_distinct_keys_is_log_s():
    p = _pattern([[0.25] * 4])
    h = token_attention_entropy(p, torch.tensor([[0, 1, 2, 3]]), vocab=5)
    assert float(h) == pytest.approx(math.log(4), abs=1e-12)


def test_token_entropy_aggregates_repeated_tokens():
    # uniform over 4 positions holding tokens (7, 7, 2, 2): two token types, half each -> ln 2
    p = _pattern([[0.25] * 4, [0.25] * 4, [0.7, 0.1, 0.1, 0.1]])
    keys = torch.tensor([[7, 7, 2, 2], [3, 3, 3, 3], [1, 0, 0, 0]])
    h = token_attention_entropy(p, keys, vocab=8)[:, 0, 0]
    want = [math.log(2), 0.0, -(0.7 * math.log(0.7) + 0.3 * math.log(0.3))]
    assert h.tolist() == pytest.approx(want, abs=1e-12)
    c = token_attention(p, keys, vocab=8)[0, 0, 0]
    assert c[7].item() == pytest.approx(0.5) and c[2].item() == pytest.approx(0.5)


def test_token_entropy_rejects_non_probability_rows_and_bad_keys():
    with pytest.raises(ValueError, match="sum to 1"):
        token_attention_entropy(_pattern([[0.5, 0.2]]), torch.tensor([[0, 1]]), vocab=2)
    with pytest.raises(ValueError, match="keys"):
        token_attention(_pattern([[0.5, 0.5]]), torch.tensor([[0, 2]]), vocab=2)


# ---------------------------------------------------------------------------- theory
@pytest.mark.parametrize("k,eta_y,eta_z,kappa", [(4, 1.0, 5.0, 1.0), (10, 0.3, 1.0, 0.5)])
def test_logit_growth_matches_integrated_ode(k, eta_y, eta_z, kappa):
    def rhs(_t, s):
        err = (k - 1) / (math.exp(s[0]) + k - 1)
        return [eta_y * err, kappa * eta_z * err]

    ts = np.array([0.1, 1.0, 5.0, 40.0, 300.0])
    sol = solve_ivp(rhs, (0, ts[-1]), [0.0, 0.0], t_eval=ts, rtol=1e-11, atol=1e-12)
    for t, u, z in zip(ts, sol.y[0], sol.y[1], strict=True):
        assert decoder_margin(t=t, eta_y=eta_y, n_classes=k) == pytest.approx(u, rel=1e-7)
        got = logit_growth(t=t, eta_y=eta_y, eta_z=eta_z, n_classes=k, kappa=kappa)
        assert got == pytest.approx(z, rel=1e-7)


def test_logit_growth_linear_before_and_logarithmic_after_the_snap():
    k, ey, ez = 4, 1.0, 2.0
    t = 1e-4
    assert logit_growth(t=t, eta_y=ey, eta_z=ez, n_classes=k) == pytest.approx(
        ez * (k - 1) / k * t, rel=1e-3
    )
    t = 1e7
    late = ez / ey * math.log((k - 1) * ey * t)
    assert logit_growth(t=t, eta_y=ey, eta_z=ez, n_classes=k) == pytest.approx(late, rel=0.02)


def test_snap_time_halves_the_error_and_scales_as_one_over_eta_y():
    k = 6
    t0 = snap_time(eta_y=2.0, n_classes=k)
    u = decoder_margin(t=t0, eta_y=2.0, n_classes=k)
    assert math.exp(u) / (math.exp(u) + k - 1) == pytest.approx(0.5, abs=1e-9)
    assert snap_time(eta_y=20.0, n_classes=k) == pytest.approx(t0 / 10, rel=1e-12)
    assert evaluate("scan-snap-time", eta_y=2.0, n_classes=k).value == pytest.approx(t0)


def test_population_gradient_matches_finite_differences():
    dm = data_model(n_queries=2, next_per_query=2, n_common=3, n_distinct=2)
    rng = np.random.default_rng(0)
    y = rng.normal(size=(4, dm.probs.shape[1]))
    z = rng.normal(size=(2, dm.probs.shape[1]))
    _, gy, gz = population_loss_grad(y, z, dm)
    h = 1e-6
    for arr, g in ((y, gy), (z, gz)):
        for idx in [(0, 0), (1, 4), (arr.shape[0] - 1, arr.shape[1] - 1)]:
            arr[idx] += h
            lp = population_loss_grad(y, z, dm)[0]
            arr[idx] -= 2 * h
            lm = population_loss_grad(y, z, dm)[0]
            arr[idx] += h
            assert (lp - lm) / (2 * h) == pytest.approx(g[idx], abs=1e-8)


def test_population_dynamics_scans_onto_distinct_tokens_and_larger_eta_y_stops_sooner():
    dm = data_model(n_queries=2, next_per_query=2, n_common=20, n_distinct=4)
    slow = population_dynamics(dm, eta_y=1.0, eta_z=5.0, steps=200)
    fast = population_dynamics(dm, eta_y=10.0, eta_z=5.0, steps=200)
    assert slow.entropy[0] == pytest.approx(fast.entropy[0])
    assert slow.distinct_mass[-1] > slow.distinct_mass[0] + 0.4
    assert fast.entropy[-1] > slow.entropy[-1] + 0.3


# ---------------------------------------------------------------------------- checks
def _config():
    return get_experiment(NAME).make_config("quick")


def _table(meas_end=1.95, pred_end=1.97, mass_end=0.69, mass_pred=0.68, big_end=2.45,
           big_late=0.03, loss_end=0.01):  # fmt: skip
    cfg = _config()
    o = cfg.optim
    steps = np.arange(0, 401, 10)
    shape = 1 - np.exp(-steps / 60)
    rows = []

    def add(method, metric, values, se):
        for s, v in zip(steps, values, strict=True):
            rows.append(exact_row(method, metric, float(v), seed=0, se=se, step=int(s)))

    add(ss._method(o.eta_y, o.eta_z), "entropy", 3.13 + (meas_end - 3.13) * shape, 0.005)
    add(ss._pred(o.eta_y, o.eta_z), "entropy", 3.13 + (pred_end - 3.13) * shape, 0.0)
    add(ss._method(o.eta_y, o.eta_z), "distinct_mass", 0.1 + (mass_end - 0.1) * shape, 0.002)
    add(ss._pred(o.eta_y, o.eta_z), "distinct_mass", 0.1 + (mass_pred - 0.1) * shape, 0.0)
    add(ss._method(o.eta_y, o.eta_z), "loss", 1.39 + (loss_end - 1.39) * shape, 0.001)
    big = 3.13 + (big_end - 3.13) * (1 - np.exp(-steps / 20))
    big = np.where(steps >= 200, big[20] - big_late * (steps - 200) / 200, big)
    add(ss._method(o.eta_y_large, o.eta_z), "entropy", big, 0.005)
    add(ss._pred(o.eta_y_large, o.eta_z), "entropy", big + 0.02, 0.0)
    return pd.DataFrame(rows), cfg


def _status(table, cfg):
    return [c.status for c in ss.checks(table, cfg)]


def test_all_checks_hold_on_a_matching_table():
    assert _status(*_table()) == ["holds"] * 4


def test_trajectory_check_fails_when_far_from_prediction_or_without_a_scan():
    assert _status(*_table(meas_end=1.6))[1] == "fails"
    assert _status(*_table(meas_end=3.13))[1] == "fails"


def test_trajectory_check_inconclusive_when_the_prediction_barely_moves():
    t, cfg = _table(pred_end=3.1, meas_end=3.1)
    assert _status(t, cfg)[1] == "inconclusive"


def test_distinct_mass_check_fails_off_prediction_or_without_concentration():
    assert _status(*_table(mass_end=0.5))[2] == "fails"
    assert _status(*_table(mass_end=0.15, mass_pred=0.15))[2] == "fails"


def test_eta_y_check_fails_when_larger_eta_y_is_sparser_or_keeps_moving():
    assert _status(*_table(big_end=1.6))[3] == "fails"
    assert _status(*_table(big_late=0.5))[3] == "fails"


def test_eta_y_check_inconclusive_within_noise():
    # same final entropy, the larger-η_Y run frozen: the difference is within 2 s.e.
    t, cfg = _table(big_end=1.95, big_late=0.0)
    t.loc[t["method"] == ss._method(cfg.optim.eta_y_large, cfg.optim.eta_z), "value"] += 0
    base_last = t[(t["method"] == ss._method(cfg.optim.eta_y, cfg.optim.eta_z))
                  & (t["metric"] == "entropy")]["value"].iloc[-1]  # fmt: skip
    big = (t["method"] == ss._method(cfg.optim.eta_y_large, cfg.optim.eta_z)) & (
        t["metric"] == "entropy"
    )
    t.loc[big & (t["step"] == 400), "value"] = base_last + 0.001
    assert _status(t, cfg)[3] == "inconclusive"


def test_sanity_fails_when_the_decoder_does_not_learn():
    assert _status(*_table(loss_end=1.2))[0] == "fails"


# ---------------------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    "field,value",
    [
        ("optim", {"eta_y": 5.0, "eta_y_large": 2.0}),
        ("optim", {"eta_z": 0.0}),
        ("task", {"next_per_query": 1}),
        ("task", {"context_len": 1}),
        ("task", {"distinct_min": 0.0}),
        ("train", {"steps": 0}),
    ],
)
def test_bad_input_is_a_config_error(field, value):
    with pytest.raises(ConfigError) as e:
        get_experiment(NAME).make_config("quick", {field: value})
    assert "\n" not in str(e.value).strip()


# ---------------------------------------------------------------------------- tiny run
@pytest.fixture(scope="module")
def tiny():
    exp = get_experiment(NAME)
    cfg = exp.make_config("tiny")
    return cfg, exp.run(cfg).table


def test_tiny_run_scans_and_larger_eta_y_freezes_less_sparse(tiny):
    cfg, t = tiny
    o = cfg.optim
    base = ss._curve(t, ss._method(o.eta_y, o.eta_z), "entropy")
    big = ss._curve(t, ss._method(o.eta_y_large, o.eta_z), "entropy")
    mass = ss._curve(t, ss._method(o.eta_y, o.eta_z), "distinct_mass")
    assert base["value"].iloc[0] - base["value"].iloc[-1] > 0.7
    assert mass["value"].iloc[-1] > mass["value"].iloc[0] + 0.4
    assert big["value"].iloc[-1] > base["value"].iloc[-1] + 0.2
    assert [c.status for c in ss.checks(t, cfg)] == ["holds"] * 4


@pytest.mark.slow
def test_tiny_run_is_deterministic(tiny):
    cfg, t = tiny
    t2 = get_experiment(NAME).run(cfg).table
    a = t[t["metric"] != "steps_per_second"].reset_index(drop=True)
    b = t2[t2["metric"] != "steps_per_second"].reset_index(drop=True)
    pd.testing.assert_frame_equal(a, b)
