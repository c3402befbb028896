"""privacy's ICL part (_privacy_icl.py): checks on constructed tables, bad input, determinism."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from fmtheory.contract import ConfigError, RunContext, get_experiment
from fmtheory.experiments import _privacy_icl as pi
from fmtheory.experiments import privacy as px

EXP = get_experiment("privacy")
TINY_ICL = {
    "icl": {
        "epsilons": [None, 4.0],
        "prompts": 256,
        "model": {"n_layer": 1, "n_head": 2, "n_embd": 8, "attention": "linear"},
        "train": {"steps": 20, "batch_size": 32, "lr": 0.003, "warmup_steps": 0},
        "eval_prompts": 40,
    }
}


def _cfg(**icl):
    return EXP.make_config(
        "quick", {"icl.epsilons": [None, 8.0, 1.0], **{f"icl.{k}": v for k, v in icl.items()}}
    )


def _table(err: dict[float, float], zero: float = 1.0, gain8: float = 0.5,
           eps_rdp: dict[float, float] | None = None, se: float = 0.01) -> pd.DataFrame:  # fmt: skip
    """Hand-built rows: the model's error at k = 2d = 10 per ε, the zero predictor's, the gain at
    ε = 8, and the accountant's ε."""
    rows = [dict(method="icl_gpt", metric="icl_mse", value=v, se=se, target_eps=e, n_context=10,
                 seed=0) for e, v in err.items()]  # fmt: skip
    rows.append(dict(method="icl_zero", metric="icl_mse", value=zero, se=se, target_eps=math.nan,
                     n_context=10, seed=0))  # fmt: skip
    rows.append(dict(method="icl_gpt", metric="icl_gain_2d", value=gain8, se=0.05, target_eps=8.0,
                     n_context=10, seed=0))  # fmt: skip
    for e, v in (eps_rdp or {8.0: 7.999, 1.0: 0.99}).items():
        rows.append(dict(method="icl_rdp", metric="epsilon", value=v, se=0.0, target_eps=e, seed=0))
    return pd.DataFrame(rows)


def _status(table: pd.DataFrame, start: str) -> str:
    return next(c.status for c in px.checks(table, _cfg()) if c.claim.startswith(start))


GOOD = {math.inf: 0.2, 8.0: 0.3, 1.0: 0.5}


def test_learns_in_context_check() -> None:
    assert _status(_table(GOOD), "the non-private transformer") == "holds"
    assert _status(_table({**GOOD, math.inf: 1.2}), "the non-private transformer") == "fails"


def test_survives_dp_check() -> None:
    assert _status(_table(GOOD, gain8=0.5), "in-context learning survives") == "holds"
    assert _status(_table(GOOD, gain8=-0.3), "in-context learning survives") == "fails"
    assert _status(_table(GOOD, gain8=0.05), "in-context learning survives") == "inconclusive"


def test_trend_check() -> None:
    assert _status(_table(GOOD), "the ICL error") == "holds"
    assert _status(_table({math.inf: 0.5, 8.0: 0.3, 1.0: 0.2}), "the ICL error") == "fails"
    assert _status(_table({math.inf: 0.2, 8.0: 0.6, 1.0: 0.4}), "the ICL error") == "fails"
    assert _status(_table({math.inf: 0.3, 8.0: 0.3, 1.0: 0.3}), "the ICL error") == "inconclusive"


def test_accountant_sanity_check() -> None:
    assert _status(_table(GOOD), "the ICL models' ε") == "holds"
    assert _status(_table(GOOD, eps_rdp={8.0: 6.0, 1.0: 0.99}), "the ICL models' ε") == "fails"


def test_no_icl_section_adds_nothing() -> None:
    cfg = EXP.make_config("tiny")
    assert cfg.icl is None
    assert pi.icl_rows(None, 0, 1e-5, RunContext()) == []
    assert pi.icl_checks(_table(GOOD), None) == []
    assert pi.icl_figures(pd.DataFrame(columns=["method", "metric"])) == {}


@pytest.mark.parametrize(
    ("key", "value", "field"),
    [
        ("icl.epsilons", [None, 0.0], "icl.epsilons"),
        ("icl.epsilons", [-1.0], "icl.epsilons"),
        ("icl.epsilons", [8.0, 8.0], "icl.epsilons"),
        ("icl.n_points", 8, "icl.n_points"),
        ("icl.max_grad_norm", 0.0, "max_grad_norm"),
        ("icl.prompts", 0, "prompts"),
    ],
)
def test_bad_input(key: str, value: object, field: str) -> None:
    with pytest.raises(ConfigError) as e:
        EXP.make_config("quick", {key: value})
    msg = str(e.value)
    assert "\n" not in msg.strip() and field in msg


def test_tiny_deterministic_and_wired() -> None:
    cfg = EXP.make_config("tiny", {f"icl.{k}": v for k, v in TINY_ICL["icl"].items()})
    a = pd.DataFrame(pi.icl_rows(cfg.icl, cfg.seed, cfg.dp.delta, RunContext()))
    b = pd.DataFrame(pi.icl_rows(cfg.icl, cfg.seed, cfg.dp.delta, RunContext()))
    pd.testing.assert_frame_equal(a, b)
    assert set(a["method"]) == {"icl_gpt", "icl_rdp", "icl_prv", "icl_opacus", "icl_zero",
                                "icl_ols", "icl_ridge", "icl_bayes"}  # fmt: skip
    assert len(pi._sel(a, "icl_gpt", "icl_mse")) == 2 * cfg.icl.n_points
    eps = float(pi._sel(a, "icl_rdp", "epsilon")["value"].iloc[0])
    assert eps == pytest.approx(4.0, rel=pi.EPS_RTOL)
    zero0 = pi._at_k(a, "icl_zero", 0)["value"].iloc[0]
    assert pi._at_k(a, "icl_bayes", 0)["value"].iloc[0] == pytest.approx(zero0)
    checks = pi.icl_checks(a, cfg.icl)
    assert len(checks) == 4 and all(c.status in {"holds", "fails", "inconclusive"} for c in checks)
    assert set(pi.icl_figures(a)) == {"icl_under_dp"}
