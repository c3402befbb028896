"""icl-stability: the temperature mechanism, the verdicts (they can fail), config errors, a tiny run."""

import math

import numpy as np
import pandas as pd
import pytest
import torch

from fmtheory.experiments import get_experiment
from fmtheory.experiments.base import ConfigError
from fmtheory.experiments.icl_stability import Config, attention_temperature, make_checks, run
from fmtheory.models.gpt import GPTConfig
from fmtheory.models.hooks import run_with_cache
from fmtheory.models.icl import RegressionTransformer


def _model(seed=0):
    torch.manual_seed(seed)
    m = RegressionTransformer(2, 6, GPTConfig(n_layer=2, n_head=2, n_embd=8, n_positions=6),
                              layout="carry")  # fmt: skip
    with torch.no_grad():
        for p in m.parameters():
            p.add_(0.3 * torch.randn_like(p))
    return m.eval()


def test_temperature_divides_q_and_is_removed_on_exit():
    m = _model()
    x, y = torch.randn(5, 6, 2), torch.randn(5, 6)
    with torch.no_grad():
        base = m(x, y)
        key = "backbone.blocks.0.attn.hook_q"
        q1 = run_with_cache(m, x, y, names=[key]).cache[key]
        with attention_temperature(m, 4.0):
            hot = m(x, y)
            q4 = run_with_cache(m, x, y, names=[key]).cache[key]
        after = m(x, y)
        with attention_temperature(m, 1.0):
            same = m(x, y)
    assert not torch.allclose(hot, base) and torch.equal(after, base) and torch.equal(same, base)
    # block 0's input does not depend on T, so its queries are exactly divided by T
    assert torch.allclose(q4, q1 / 4.0)
    with pytest.raises(ValueError, match="temperature"), attention_temperature(m, -1.0):
        pass


def test_huge_temperature_gives_uniform_attention():
    m = _model(1)
    x, y = torch.randn(3, 6, 2), torch.randn(3, 6)
    names = [f"backbone.blocks.{i}.attn.hook_pattern" for i in range(2)]
    with torch.no_grad(), attention_temperature(m, 1e9):
        cache = run_with_cache(m, x, y, names=names).cache
    causal_uniform = torch.tril(torch.ones(6, 6)) / torch.arange(1, 7).unsqueeze(1)
    for n in names:
        assert torch.allclose(cache[n], causal_uniform.expand_as(cache[n]), atol=1e-6)


def _table(rate_tr=-1.0, rate_ridge=-1.1, bound=1e12, change_k=(1.0, 1.6, 3.0), err=0.1):
    rows = [
        dict(method="transformer", metric="rate_replace", value=rate_tr, ci_low=rate_tr - 0.1,
             ci_high=rate_tr + 0.1, depth=2.0, temperature=1.0, r2=0.9, n_context=np.nan),
        dict(method="ridge", metric="rate_replace", value=rate_ridge, ci_low=rate_ridge - 0.1,
             ci_high=rate_ridge + 0.1, depth=np.nan, temperature=np.nan, r2=0.95,
             n_context=np.nan),
        dict(method="theory: stability bound (Thm 4.5)", metric="stability_bound", value=bound,
             ci_low=bound, ci_high=bound, log10_value=math.log10(bound), depth=2.0,
             temperature=1.0, n_context=11),
        dict(method="transformer", metric="sensitivity_unit", value=0.01, ci_low=0.009,
             ci_high=0.011, depth=2.0, temperature=1.0, n_context=11),
        dict(method="transformer", metric="gamma", value=12.0, ci_low=12.0, ci_high=12.0,
             depth=2.0, temperature=1.0, n_context=np.nan),
        dict(method="transformer", metric="normalized_mse", value=err, ci_low=err, ci_high=err,
             depth=2.0, temperature=1.0, n_context=11),
    ]  # fmt: skip
    for k, v in zip((1, 2, 5), change_k, strict=True):
        rows.append(dict(method="transformer", metric="corruption_change", value=v, ci_low=v,
                         ci_high=v, n_corrupt=k, depth=2.0, temperature=1.0, n_context=11))  # fmt: skip
    return pd.DataFrame(rows)


CFG = Config.model_validate({"task": {"dim": 2, "n_points": 12}, "model": {"n_layer": 2}})


def test_verdicts_on_a_consistent_table():
    holds = [c.holds for c in make_checks(CFG, _table())]
    # learned, transformer rate, ridge rate, bound informative (vacuous here), linear composition
    assert holds == [True, True, True, False, True]


def test_verdicts_can_fail_and_hold():
    assert make_checks(CFG, _table(rate_tr=-0.3))[1].holds is False
    assert make_checks(CFG, _table(rate_tr=-1.6))[1].holds is False
    assert make_checks(CFG, _table(rate_ridge=-0.5))[2].holds is False
    assert make_checks(CFG, _table(bound=0.5))[3].holds is True
    assert make_checks(CFG, _table(change_k=(1.0, 2.5, 3.0)))[4].holds is False
    assert make_checks(CFG, _table(err=0.9))[0].holds is False


def test_config_errors_name_the_field():
    exp = get_experiment("icl-stability")
    for override, field in [
        ({"probe.epsilon": -0.1}, "probe.epsilon"),
        ({"task.n_points": 0}, "task.n_points"),
        ({"probe.temperatures": [0.0]}, "probe.temperatures"),
        ({"probe.depths": [0]}, "probe.depths"),
        ({"probe.fit_min_context": 40}, "probe"),
        ({"probe.corrupt_fractions": [0.0, 1.5]}, "probe.corrupt_fractions"),
        ({"model.attention": "linear"}, "model"),
        ({"train.curriculum.points_start": 3}, "train"),
    ]:
        with pytest.raises(ConfigError) as info:
            exp.make_config("quick", override)
        assert info.value.field == field


def test_presets_validate():
    exp = get_experiment("icl-stability")
    assert set(exp.presets()) >= {"quick", "paper"}
    for name in exp.presets():
        exp.make_config(name)


def test_tiny_run_end_to_end():
    cfg = Config.model_validate({
        "task": {"dim": 2, "n_points": 10},
        "model": {"n_layer": 1, "n_head": 1, "n_embd": 16},
        "train": {"steps": 10, "batch_size": 16, "warmup_steps": 2},
        "probe": {"n_prompts": 60, "depths": [1], "temperatures": [1.0, 2.0],
                  "corrupt_fractions": [0.0, 0.3]},
    })  # fmt: skip
    res = run(cfg)
    t = res.table
    metrics = set(t["metric"])
    assert metrics >= {
        "sensitivity_replace",
        "sensitivity_noise",
        "rate_replace",
        "gamma",
        "stability_bound",
        "corruption_mse",
        "corruption_change",
        "normalized_mse",
    }
    tr = t[(t["metric"] == "sensitivity_replace") & (t["method"] == "transformer")]
    assert sorted(tr["temperature"].unique()) == [1.0, 2.0]
    assert sorted(tr["n_context"].unique()) == list(range(1, 10))
    assert set(t["method"]) >= {"ridge", "transformer (untrained)"}
    assert len(res.checks) == 5
    assert set(res.figures) == {"sensitivity_vs_n", "bound_vs_measured", "label_corruption"}
