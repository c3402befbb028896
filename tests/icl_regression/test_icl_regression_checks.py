"""The icl-regression verdicts can fail: synthetic result tables with known answers."""

import numpy as np
import pandas as pd
import pytest

from fmtheory.contract import get_experiment
from fmtheory.errors import ConfigError
from fmtheory.experiments.icl_regression import Config, checks


def _table(d=5, n=11, transformer_factor=1.0, ols_peak=5, bayes_shift=0.0, ols_shift=0.0,
           tr_se=0.005):  # fmt: skip
    rows = []
    ks = np.arange(n)
    bayes = 1.0 / (1 + ks) + 0.05
    ols = np.where(ks == ols_peak, 50.0, 0.5)
    for method, vals, se in [
        (LIN, bayes * transformer_factor, tr_se),
        ("bayes (posterior mean)", bayes + bayes_shift, 0.005),
        ("theory: bayes risk", bayes, 0.0025),
        ("ols (min-norm)", ols + ols_shift, 0.01),
        ("theory: ols risk", ols, 0.0),
    ]:
        for k in ks:
            v = float(vals[k])
            rows.append(dict(method=method, n_context=int(k), metric="normalized_mse", value=v,
                             se=se, ci_low=v - 1.96 * se, ci_high=v + 1.96 * se, seed=0))  # fmt: skip
    return pd.DataFrame(rows)


LIN = "GPT 4L×4H×64, linear attention, carry layout"


def _cfg(**task):
    return Config.model_validate({"task": {"dim": 5, "n_points": 11, "noise_std": 0.5, **task},
                                  "model": {"attention": "linear"}})  # fmt: skip


def _statuses(table, **task):
    return [(c.kind, c.status) for c in checks(table, _cfg(**task))]


def test_all_hold_on_a_consistent_table_and_only_the_transformer_is_a_claim():
    assert _statuses(_table()) == [("claim", "holds"), ("theory", "holds"), ("theory", "holds"),
                                   ("theory", "holds")]  # fmt: skip


def test_transformer_check_fails_when_too_far_from_bayes():
    assert _statuses(_table(transformer_factor=1.5))[0] == ("claim", "fails")


def test_transformer_check_is_inconclusive_when_an_interval_straddles_the_bound():
    # at k = 1 the bound is 1.2·0.55 + 0.02 = 0.68; 1.2× gives 0.66, inside ± 1.96·0.02
    assert _statuses(_table(transformer_factor=1.2, tr_se=0.02))[0] == ("claim", "inconclusive")


def test_ols_peak_check_fails_when_peak_elsewhere():
    assert _statuses(_table(ols_peak=7))[1] == ("theory", "fails")


def test_ols_closed_form_check_fails_on_disagreement():
    assert _statuses(_table(ols_shift=0.2))[2] == ("theory", "fails")


def test_bayes_theory_check_fails_on_disagreement():
    assert _statuses(_table(bayes_shift=0.1))[3] == ("theory", "fails")


def test_sparse_task_marks_gaussian_checks_not_applicable():
    v = _statuses(_table(), sparsity=2)
    assert v[0] == ("claim", "n/a") and v[3] == ("theory", "n/a")


def test_config_rejects_bad_values_with_field_names():
    exp = get_experiment("icl-regression")
    for override, field in [
        ({"task.sparsity": 9}, "task"),
        ({"model.mask": "sliding"}, "model"),
        ({"train.lr": -1}, "train.lr"),
        ({"eval.n_prompts": 1}, "eval.n_prompts"),
        ({"model.attention": "cosine"}, "model.attention"),
    ]:
        with pytest.raises(ConfigError) as info:
            exp.make_config("quick", override)
        assert info.value.field.startswith(field)


def test_attention_is_required_and_labels_the_model():
    with pytest.raises(ConfigError) as info:
        get_experiment("icl-regression").validate({"model": {"n_layer": 2}})
    assert info.value.field == "model.attention"
    exp = get_experiment("icl-regression")
    assert (
        exp.model_label(exp.make_config("quick")) == "GPT 4L×4H×64, linear attention, carry layout"
    )
    assert "softmax attention, interleaved layout" in exp.model_label(exp.make_config("paper"))


def test_presets_round_trip_through_yaml():
    import yaml

    exp = get_experiment("icl-regression")
    for name in exp.presets():
        cfg = exp.make_config(name)
        again = Config.model_validate(yaml.safe_load(yaml.safe_dump(cfg.model_dump(mode="json"))))
        assert again == cfg
