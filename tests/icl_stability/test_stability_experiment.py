"""icl-stability: the temperature mechanism, the verdicts (they can fail), config errors, a tiny run."""

import math

import numpy as np
import pandas as pd
import pytest
import torch

from fmtheory.contract import ConfigError, get_experiment
from fmtheory.experiments.icl_stability import attention_temperature, checks, run
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


def _row(method, metric, value, se=0.0, **coords):
    return dict(method=method, metric=metric, value=value, se=se, ci_low=value - 1.96 * se,
                ci_high=value + 1.96 * se, **coords)  # fmt: skip


def _table(rate_tr=-1.0, rate_ridge=-1.0, bound=1e12, unit=0.01, change_k=(1.0, 1.6, 3.0),
           err=0.1):  # fmt: skip
    """A table as ``run`` writes it, for d = 2, n_points = 12 (fit over n >= 6, n max = 11)."""
    rows = []
    for n in range(1, 12):
        for method, rate, depth, temp in (("transformer", rate_tr, 2.0, 1.0),
                                          ("ridge", rate_ridge, np.nan, np.nan)):  # fmt: skip
            v = 0.5 * n**rate
            rows.append(_row(method, "sensitivity_replace", v, 0.002 * v, n_context=n,
                             depth=depth, temperature=temp))  # fmt: skip
    rows += [
        _row("theory: stability bound (Thm 4.5)", "stability_bound", bound,
             log10_value=math.log10(bound), depth=2.0, temperature=1.0, n_context=11),
        _row("transformer", "sensitivity_unit", unit, 0.001, depth=2.0, temperature=1.0,
             n_context=11),
        _row("transformer", "gamma", 12.0, depth=2.0, temperature=1.0, n_context=np.nan),
        _row("transformer", "normalized_mse", err, 0.01, depth=2.0, temperature=1.0,
             n_context=11),
    ]  # fmt: skip
    for k, v in zip((1, 2, 5), change_k, strict=True):
        rows.append(_row("transformer", "corruption_change", v, 0.01, n_corrupt=k, depth=2.0,
                         temperature=1.0, n_context=11))  # fmt: skip
    return pd.DataFrame(rows)


CFG = get_experiment("icl-stability").make_config(
    "quick", {"task.dim": 2, "task.n_points": 12, "model.n_layer": 2, "probe.fit_min_context": 6}
)


def _st(table):
    return [(c.kind, c.status) for c in checks(table, CFG)]


def test_verdicts_on_a_consistent_table():
    # learned, transformer rate, ridge rate, bound (vacuous here: n/a), linear composition
    assert _st(_table()) == [("sanity", "holds"), ("claim", "holds"), ("theory", "holds"),
                             ("claim", "n/a"), ("sanity", "holds")]  # fmt: skip


def test_rate_checks_fail_and_hold():
    assert _st(_table(rate_tr=-0.3))[1] == ("claim", "fails")
    assert _st(_table(rate_tr=-0.5))[1] == ("claim", "fails")  # the rival O(1/sqrt n)
    assert _st(_table(rate_tr=-1.6))[1] == ("claim", "holds")  # faster than 1/n is O(1/n)
    assert _st(_table(rate_tr=-0.75))[1] == ("claim", "inconclusive")  # on the boundary
    assert _st(_table(rate_ridge=-0.5))[2] == ("theory", "fails")


def test_rate_check_is_inconclusive_when_the_model_did_not_learn():
    st = _st(_table(err=0.9))
    assert st[0] == ("sanity", "fails") and st[1] == ("claim", "inconclusive")


def test_bound_check_applies_only_when_the_bound_is_informative():
    assert _st(_table(bound=0.5))[3] == ("claim", "holds")
    assert _st(_table(bound=0.5, unit=0.8))[3] == ("claim", "fails")


def test_composition_sanity_fails_when_violated():
    assert _st(_table(change_k=(1.0, 2.5, 3.0)))[4] == ("sanity", "fails")


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
    assert set(exp.presets()) >= {"quick", "paper", "tiny"}
    for name in exp.presets():
        exp.make_config(name)


def test_tiny_run_end_to_end_and_deterministic():
    cfg = get_experiment("icl-stability").make_config("tiny")
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
    assert "se" in t.columns
    tr = t[(t["metric"] == "sensitivity_replace") & (t["method"] == "transformer")]
    assert sorted(tr["temperature"].unique()) == [0.5, 1.0]
    assert sorted(tr["n_context"].unique()) == list(range(1, 10))
    assert set(t["method"]) >= {"ridge", "transformer (untrained)"}
    assert [c.kind for c in res.checks] == ["sanity", "claim", "theory", "claim", "sanity"]
    assert set(res.figures) == {"sensitivity_vs_n", "bound_vs_measured", "label_corruption"}
    pd.testing.assert_frame_equal(t, run(cfg).table)
    assert "softmax attention" in get_experiment("icl-stability").model_label(cfg)
