"""lsa-gd and icl-shift: bad input (ConfigError naming the field, CLI exit code 2), presets, verdicts
that can fail (synthetic tables with known answers), and tiny end-to-end runs."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import yaml

from fmtheory.cli import main
from fmtheory.contract import get_experiment
from fmtheory.errors import ConfigError
from fmtheory.experiments import icl_shift as shift_exp
from fmtheory.experiments import lsa_gd
from fmtheory.sections import GPTRunSection


# ----------------------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    ("name", "override", "field"),
    [
        ("lsa-gd", {"task.n_context": 0}, "task.n_context"),
        ("lsa-gd", {"task.noise_std": -1.0}, "task.noise_std"),
        ("lsa-gd", {"lsa.layers": [0, 1]}, "lsa.layers"),
        ("lsa-gd", {"train.lr": 0}, "train.lr"),
        ("icl-shift", {"task.n_contexts": [0, 5]}, "task.n_contexts"),
        ("icl-shift", {"shifts": [{"name": "covariate-shfit"}]}, "shifts.0.name"),
        ("icl-shift", {"shifts": [{"name": "none"}, {"name": "covariate-scale",
                                                     "params": {"c": -2}}]}, "shifts.1"),
        ("icl-shift", {"shifts": [{"name": "noisy-labels", "params": {"eps": 1}}]}, "shifts.0"),
        ("icl-shift", {"shifts": [{"name": "query-orthogonal"}]}, "shifts.0.n_context"),
        ("icl-shift", {"shifts": [{"name": "task-sparse", "params": {"k": 9}}]}, "shifts.0.params.k"),
    ],
)  # fmt: skip
def test_bad_input_is_a_config_error_naming_the_field(name, override, field):
    with pytest.raises(ConfigError) as info:
        get_experiment(name).make_config("quick", override)
    assert info.value.field == field or info.value.field.startswith(field + "."), info.value


def test_unknown_shift_lists_the_valid_ones():
    with pytest.raises(ConfigError, match="valid shifts: .*opposite-quadrant"):
        get_experiment("icl-shift").make_config("quick", {"shifts": [{"name": "nope"}]})


def test_cli_exit_code_2_and_nothing_written(tmp_path, capsys):
    code = main(["run", "icl-shift", "--set", "shifts=[{name: nope}]", "--out", str(tmp_path)])
    assert code == 2
    assert "shifts.0.name" in capsys.readouterr().err
    assert not any(tmp_path.rglob("*.parquet"))
    assert main(["run", "lsa-gd", "--set", "task.n_context=0", "--out", str(tmp_path)]) == 2


@pytest.mark.parametrize("name", ["lsa-gd", "icl-shift"])
def test_presets_validate_and_round_trip(name):
    exp = get_experiment(name)
    assert {"quick", "paper"} <= set(exp.presets())
    for preset in exp.presets():
        cfg = exp.make_config(preset)
        again = exp.config_cls.model_validate(
            yaml.safe_load(yaml.safe_dump(cfg.model_dump(mode="json")))
        )
        assert again == cfg


def test_the_gpt_is_softmax_unless_asked_and_is_named_from_its_config():
    assert GPTRunSection().model.attention == "softmax"
    for name in ("lsa-gd", "icl-shift"):
        for preset in ("quick", "paper"):
            cfg = get_experiment(name).make_config(preset)
            assert cfg.gpt.model.attention == "softmax"
            assert "softmax attention" in get_experiment(name).model_label(cfg)
    linear = GPTRunSection.model_validate({"model": {"attention": "linear"}}).model
    assert linear.label() == "GPT 4L×4H×64, linear attention, carry layout"


# ----------------------------------------------------------------------------- verdicts
def _lsa_table(gamma_err=0.01, cos1=0.999, mse=0.2, mse_se=0.005, cos2=0.995):
    R = lsa_gd._row
    se = mse_se
    return pd.DataFrame([
        R("lsa (L=1)", "gamma_rel_frobenius", gamma_err),
        R("lsa (L=1)", "pred_cosine", cos1, reference=lsa_gd.PGD1, n_layers=1),
        R("theory: lsa optimum", "normalized_mse", 0.2, se=0.0),
        R(lsa_gd.PGD1, "normalized_mse", mse, mse - 1.96 * se, mse + 1.96 * se, se=se),
        R("lsa (L=2)", "pred_cosine", cos2, reference="gd++ (2 steps, fitted)", n_layers=2),
    ])  # fmt: skip


def _lsa_verdicts(**kw):
    cfg = lsa_gd.Config.model_validate({"lsa": {"layers": [1, 2]}})
    return [c.holds for c in lsa_gd.checks(_lsa_table(**kw), cfg)]


def test_lsa_gd_checks_hold_and_fail_when_they_should():
    assert _lsa_verdicts() == [True, True, True, True]
    cfg = lsa_gd.Config.model_validate({"lsa": {"layers": [1, 2]}})
    assert [c.kind for c in lsa_gd.checks(_lsa_table(), cfg)] == [
        "claim",
        "claim",
        "theory",
        "claim",
    ]
    assert _lsa_verdicts(gamma_err=0.06)[0] is False
    assert _lsa_verdicts(cos1=0.98)[1] is False
    assert _lsa_verdicts(mse=0.2 + 5 * 0.005)[2] is False
    assert _lsa_verdicts(cos2=0.9)[3] is False


def _shift_table(orth_opt=1e-15, orth_trained=0.01, cov_shift=0.0, n_trend=(1.0, 0.5)):
    rows = []
    R = shift_exp._row

    def cell(method, label, shift_name, n, value, half=0.01):
        rows.append(R(method, "normalized_mse", value, value - half, value + half, seed=0,
                      shift=label, shift_name=shift_name, n_context=n, se=half / 1.96))  # fmt: skip

    for n in (5, 10):
        for c, th in ((0.5, 0.2), (2.0, 20.0)):
            label = f"covariate-scale(c={c:g})"
            cell(shift_exp.LSA_TRAINED, label, "covariate-scale", n, th + cov_shift, half=0.02 * th)
            cell(shift_exp.LSA_OPT, label, "covariate-scale", n, th, half=0.02 * th)
            cell("theory: trained lsa (its Γ̂)", label, "covariate-scale", n, th, 0)
            cell("theory: lsa optimum", label, "covariate-scale", n, th, 0)
        cell(shift_exp.LSA_TRAINED, "task-scale(scale=2)", "task-scale", n,
             n_trend[0] if n == 5 else n_trend[1])  # fmt: skip
        cell("theory: trained lsa (its Γ̂)", "task-scale(scale=2)", "task-scale", n,
             n_trend[0] if n == 5 else n_trend[1], 0)  # fmt: skip
    for method, metric, v in ((shift_exp.LSA_OPT, "orth_pred_max_relative", orth_opt),
                              (shift_exp.LSA_TRAINED, "orth_pred_rms_relative", orth_trained)):  # fmt: skip
        rows.append(R(method, metric, v, seed=0, shift="query-orthogonal",
                      shift_name="query-orthogonal", n_context=2))  # fmt: skip
    return pd.DataFrame(rows)


def _shift_verdicts(**kw):
    cfg = shift_exp.Config.model_validate({})
    return [c.holds for c in shift_exp.checks(_shift_table(**kw), cfg)]


def test_icl_shift_checks_hold_and_fail_when_they_should():
    assert _shift_verdicts() == [True, True, True, True, True, True]
    kinds = [c.kind for c in shift_exp.checks(_shift_table(), shift_exp.Config.model_validate({}))]
    assert kinds == ["sanity", "claim", "theory", "theory", "theory", "claim"]
    assert _shift_verdicts(orth_opt=1e-6)[0] is False
    assert _shift_verdicts(orth_trained=0.2)[1] is False
    v = _shift_verdicts(cov_shift=2.0)  # trained LSA off its closed form at c = 2
    assert v[2] is False and v[3] is True
    assert _shift_verdicts(n_trend=(1.0, 1.2))[5] is False  # the error grows with n
    assert _shift_verdicts(n_trend=(1.0, 1.0))[5] is None  # no detectable change: inconclusive


# ----------------------------------------------------------------------------- end to end (tiny)
_TINY_GPT = {"enabled": True, "model": {"n_layer": 1, "n_head": 1, "n_embd": 8, "attention": "softmax"},
             "train": {"steps": 10, "batch_size": 16, "warmup_steps": 2}}  # fmt: skip


@pytest.mark.slow
def test_lsa_gd_tiny_end_to_end():
    exp = get_experiment("lsa-gd")
    cfg = exp.make_config("quick", {
        "task": {"dim": 2, "n_context": 4}, "lsa": {"layers": [1, 2]},
        "train": {"steps": 150, "batch_size": 64, "fit_steps": 40, "warmup_steps": 5},
        "gpt": _TINY_GPT, "eval": {"n_prompts": 300, "grad_prompts": 20},
    })  # fmt: skip
    res = exp.run(cfg, None)
    t = res.table
    assert {"gamma_rel_frobenius", "pred_cosine", "grad_context_cosine", "grad_query_cosine",
            "pred_rel_l2", "normalized_mse", "train_loss", "step_size"} <= set(t["metric"])  # fmt: skip
    assert len(res.checks) == 4 and {c.kind for c in res.checks} == {"claim", "theory"}
    assert {"gamma", "equivalence", "gpt_vs_context", "error", "training_loss"} <= set(res.figures)
    assert set(exp.headline(t, cfg)) >= {"gamma_rel_err", "lsa1_pgd1_cosine", "gpt_pgd1_cosine"}
    # Γ* of the theory row is the closed form
    gs = t[(t.metric == "gamma") & (t.method == "theory: Γ*")]
    assert np.isclose(gs[(gs.i == 0) & (gs.j == 0)]["value"].item(), 4 / (4 + 1 + 2))
    assert math.isfinite(float(t[t.metric == "normalized_mse"]["value"].max()))


@pytest.mark.slow
def test_icl_shift_tiny_end_to_end():
    exp = get_experiment("icl-shift")
    cfg = exp.make_config("quick", {
        "task": {"dim": 3, "n_contexts": [4, 8]},
        "shifts": [{"name": "none"}, {"name": "query-orthogonal", "n_context": 1},
                   {"name": "covariate-scale", "params": {"c": 2.0}}, {"name": "orthant"}],
        "lsa": {"train": {"steps": 100, "batch_size": 64, "warmup_steps": 5}},
        "gpt": _TINY_GPT, "eval": {"n_prompts": 300},
    })  # fmt: skip
    res = exp.run(cfg, None)
    t = res.table
    err = t[t.metric == "normalized_mse"]
    gpt = exp.config_cls.model_validate(cfg.model_dump()).gpt.model.label()
    for method in ("lsa (trained)", "lsa optimum (Γ*)", gpt, "ols", "ridge (λ=0.1)"):
        assert len(err[err.method == method]) == 2 + 1 + 2 + 2, method
    # the exact optimum's prediction on orthogonal queries is 0 to float64 rounding
    assert res.checks[0].status == "holds" and res.checks[0].kind == "sanity"
    assert len(res.checks) == 6 and "error_by_shift" in res.figures
    # orthant prompts have no closed form: no theory rows there
    assert err[(err.shift_name == "orthant") & err.method.str.startswith("theory")].empty
