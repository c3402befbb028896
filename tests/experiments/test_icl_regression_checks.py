"""The icl-regression verdicts can fail: synthetic result tables with known answers."""

import numpy as np
import pandas as pd
import pytest

from fmtheory.experiments import get_experiment
from fmtheory.experiments.base import ConfigError
from fmtheory.experiments.icl_regression import Config, make_checks


def _table(d=5, n=11, transformer_factor=1.0, ols_peak=5, bayes_shift=0.0):
    rows = []
    ks = np.arange(n)
    bayes = 1.0 / (1 + ks) + 0.05
    ols = np.where(ks == ols_peak, 50.0, 0.5)
    for method, vals, half in [
        ("transformer", bayes * transformer_factor, 0.01),
        ("bayes (posterior mean)", bayes + bayes_shift, 0.01),
        ("theory: bayes risk", bayes, 0.005),
        ("ols (min-norm)", ols, 0.02),
        ("theory: ols risk", ols, 0.0),
    ]:
        for k in ks:
            rows.append(dict(method=method, n_context=int(k), metric="normalized_mse",
                             value=float(vals[k]), ci_low=float(vals[k] - half),
                             ci_high=float(vals[k] + half), seed=0))  # fmt: skip
    return pd.DataFrame(rows)


def _verdicts(table, **task):
    cfg = Config.model_validate({"task": {"dim": 5, "n_points": 11, "noise_std": 0.5, **task}})
    return [c.holds for c in make_checks(cfg, table)]


def test_all_hold_on_a_consistent_table():
    assert _verdicts(_table()) == [True, True, True, True]


def test_transformer_check_fails_when_too_far_from_bayes():
    assert _verdicts(_table(transformer_factor=1.5))[0] is False


def test_ols_peak_check_fails_when_peak_elsewhere():
    assert _verdicts(_table(ols_peak=7))[1] is False


def test_bayes_theory_check_fails_on_disagreement():
    assert _verdicts(_table(bayes_shift=0.1))[3] is False


def test_sparse_task_marks_gaussian_checks_not_applicable():
    v = _verdicts(_table(), sparsity=2)
    assert v[0] is None and v[3] is None


def test_config_rejects_bad_values_with_field_names():
    exp = get_experiment("icl-regression")
    for override, field in [
        ({"task.sparsity": 9}, "task"),
        ({"model.mask": "sliding"}, "model"),
        ({"train.lr": -1}, "train.lr"),
        ({"eval.n_prompts": 1}, "eval.n_prompts"),
    ]:
        with pytest.raises(ConfigError) as info:
            exp.make_config("quick", override)
        assert info.value.field.startswith(field)


def test_presets_round_trip_through_yaml():
    import yaml

    exp = get_experiment("icl-regression")
    for name in exp.presets():
        cfg = exp.make_config(name)
        again = Config.model_validate(yaml.safe_load(yaml.safe_dump(cfg.model_dump(mode="json"))))
        assert again == cfg
