"""contrastive-ssl: every claim and theory check holds on a constructed table and fails on one
built to fail; bad input; determinism on the tiny preset."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from fmtheory.contract import ConfigError, get_experiment

EXP = get_experiment("contrastive-ssl")
CONFIG = EXP.make_config("tiny", {"digits.enabled": False})  # overlaps 0, 0.2, 1
DIGITS = EXP.make_config("tiny")  # strengths 0, 0.25, 0.5


def _r(method, metric, value, se=0.01, **coords):
    return dict(method=method, metric=metric, value=value, se=se, ci_low=value - 1.96 * se,
                ci_high=value + 1.96 * se, seed=0, **coords)  # fmt: skip


GOOD = {
    # overlap: (gap, bound, optimum error, spectral error, angle, infonce error)
    0.0: (0.0, math.nan, 0.5, 0.45, 80.0, 0.4),
    0.2: (0.3, 0.6, 0.03, 0.04, 8.0, 0.03),
    1.0: (0.03, 1.3, 0.03, 0.47, 84.0, 0.28),
}


def _table(good=GOOD, weak=0.0, strong=5.0, digits=None) -> pd.DataFrame:
    rows = []
    for loss, (errs, counts) in (digits or {}).items():
        for st, e, c in zip((0.0, 0.25, 0.5), errs, counts, strict=True):
            rows += [_r(f"digits-{loss}", "probe_error", e, strength_s=st),
                     _r(f"digits-{loss}", "n_collapsed_dims", c, se=0.5, strength_s=st)]  # fmt: skip
    for o, (gap, bound, opt, err, ang, ierr) in good.items():
        rows += [_r("theory", "gap", gap, overlap=o), _r("theory", "bound", bound, overlap=o),
                 _r("theory", "optimum_probe_error", opt, overlap=o),
                 _r("spectral", "probe_error", err, overlap=o),
                 _r("spectral", "max_angle_deg", ang, se=1.0, overlap=o),
                 _r("spectral", "bound_slack", bound - err, overlap=o),
                 _r("infonce", "probe_error", ierr, overlap=o)]  # fmt: skip
    rows += [_r("infonce-linear", "n_collapsed_dims", weak, se=0.3, strength="weak"),
             _r("infonce-linear", "n_collapsed_dims", strong, se=0.3, strength="strong")]  # fmt: skip
    return pd.DataFrame(rows)


def _one(checks, text):
    hits = [
        c
        for c in checks
        if c.claim.startswith(text) or (text in c.claim and "digits" not in c.claim)
    ]
    assert len(hits) == 1, [c.claim for c in checks]
    return hits[0]


def _with(o, **kw):
    names = ("gap", "bound", "opt", "err", "ang", "ierr")
    g = dict(GOOD)
    vals = dict(zip(names, g[o], strict=True))
    vals.update(kw)
    g[o] = tuple(vals[n] for n in names)
    return g


CASES = [
    ("top-k eigenspace", dict(good=_with(0.2, ang=40.0))),
    ("stays below 2φ/λ_{k+1} (overlap 0.2)", dict(good=_with(0.2, err=0.9))),
    ("exact spectral optimum", dict(good=_with(0.2, opt=0.9))),
    ("spectral: downstream error falls", dict(good=_with(0.0, err=0.01))),
    ("spectral: downstream error rises", dict(good=_with(1.0, err=0.0))),
    ("infonce: downstream error falls", dict(good=_with(0.0, ierr=0.0))),
    ("infonce: downstream error rises", dict(good=_with(1.0, ierr=0.0))),
    ("strong augmentation collapses more", dict(weak=5.0, strong=0.0)),
]


@pytest.mark.parametrize(("text", "bad"), CASES, ids=[c[0][:25] for c in CASES])
def test_check_holds_then_fails(text, bad) -> None:
    assert _one(EXP.checks(_table(), CONFIG), text).status == "holds"
    c = _one(EXP.checks(_table(**bad), CONFIG), text)
    assert c.status == "fails", (c.measured, c.tolerance)


def test_every_check_is_covered() -> None:
    claims = [c.claim for c in EXP.checks(_table(), CONFIG)]
    assert all(any(t in c for t, _ in CASES) for c in claims), claims


def test_no_gap_or_vacuous_bound_is_na() -> None:
    g = {o: (0.01, 1.5, *v[2:]) for o, v in GOOD.items()}
    checks = EXP.checks(_table(good=g), CONFIG)
    assert _one(checks, "top-k eigenspace").status == "n/a"
    assert _one(checks, "stays below").status == "n/a"


@pytest.mark.parametrize(
    ("over", "where"),
    [({"graph.overlaps": [0.0, 0.5, 1.5]}, "graph"), ({"losses": ["triplet"]}, "losses.0"),
     ({"collapse.strong": 0.001}, "collapse"), ({"graph.overlaps": [0.0, -0.1, 1.0]}, "graph"),
     ({"n_seeds": 1}, "n_seeds"), ({"embed_dim": 500}, "embed_dim"),
     ({"digits.strengths": [0.0, 0.5, 2.0]}, "digits")],
)  # fmt: skip
def test_bad_input_is_one_config_error(over, where) -> None:
    with pytest.raises(ConfigError) as e:
        EXP.make_config("quick", over)
    assert where in str(e.value) and "\n" not in str(e.value)


@pytest.mark.slow
def test_tiny_preset_is_deterministic() -> None:
    cfg = EXP.make_config("tiny", {"train.steps": 20, "graph.per_class": 4,
                                   "collapse.n_eval": 100})  # fmt: skip
    a, b = EXP.run(cfg, None), EXP.run(cfg, None)
    pd.testing.assert_frame_equal(a.table, b.table)
    assert {"ladder", "eigenspace", "collapse", "digits"} <= set(a.figures)
    assert EXP.headline(a.table, cfg) and "k=3" in EXP.model_label(cfg)


DIG_GOOD = {
    "spectral": ((0.08, 0.03, 0.09), (0, 1, 2)),
    "infonce": ((0.09, 0.03, 0.09), (0, 10, 20)),
}
DIG_CASES = [
    ("digits-spectral: downstream error falls", {"spectral": ((0.0, 0.05, 0.09), (0, 1, 2))}),
    ("digits-spectral: downstream error rises", {"spectral": ((0.08, 0.05, 0.0), (0, 1, 2))}),
    ("digits-infonce: downstream error falls", {"infonce": ((0.01, 0.05, 0.09), (0, 10, 20))}),
    ("digits-infonce: downstream error rises", {"infonce": ((0.08, 0.05, 0.01), (0, 10, 20))}),
    ("digits, InfoNCE MLP", {"infonce": ((0.08, 0.05, 0.09), (20, 10, 0))}),
]


@pytest.mark.parametrize(("text", "bad"), DIG_CASES, ids=[c[0][:25] for c in DIG_CASES])
def test_digits_check_holds_then_fails(text, bad) -> None:
    assert _one(EXP.checks(_table(digits=DIG_GOOD), DIGITS), text).status == "holds"
    c = _one(EXP.checks(_table(digits={**DIG_GOOD, **bad}), DIGITS), text)
    assert c.status == "fails", (c.measured, c.tolerance)


def test_every_digits_check_is_covered() -> None:
    claims = [c.claim for c in EXP.checks(_table(digits=DIG_GOOD), DIGITS) if "digits" in c.claim]
    assert len(claims) == 5 and all(any(c.startswith(t) for t, _ in DIG_CASES) for c in claims)


def test_digits_augmentation_is_identity_at_zero_and_deterministic() -> None:
    import torch

    from fmtheory.experiments.contrastive_ssl import augment_digits

    x = torch.rand(3, 8, 8, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(
        augment_digits(x, 0.0, torch.Generator().manual_seed(1)), x.flatten(1)
    )
    a = augment_digits(x, 0.5, torch.Generator().manual_seed(2))
    b = augment_digits(x, 0.5, torch.Generator().manual_seed(2))
    assert torch.equal(a, b) and not torch.allclose(a, x.flatten(1))
