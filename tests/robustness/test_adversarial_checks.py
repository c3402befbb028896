"""Every claim and theory check of adversarial-robustness, made to hold and made to fail on
constructed tables; bad input; the tiny preset deterministic."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from fmtheory.contract import get_experiment
from fmtheory.errors import ConfigError
from fmtheory.experiments import adversarial_robustness as ar
from fmtheory.theory.robustness import gmm_robust_error_limit

EXP = get_experiment("adversarial-robustness")
CFG = EXP.make_config("tiny", {"gmm.dims": [1024, 4096, 16384], "gmm.target": 0.05,
                               "gmm.n_values": [1, 2, 4, 8, 16, 32, 64, 128, 256, 512]})  # fmt: skip


def _row(method, metric, value, se=0.01, **kw):
    return dict(method=method, metric=metric, value=value, se=se, ci_low=value - 1.96 * se,
                ci_high=value + 1.96 * se, seed=0, **kw)  # fmt: skip


def _table(
    *,
    pgd_factor=1.0,
    std_drop=0.9,
    adv_gain=0.3,
    test_curve=(0.5, 0.8, 0.7, 0.6),
    train_loss=(2.0, 0.5, 0.2, 0.05),
    nstar_scale=1.0,
    mc_shift=0.0,
    broken=0.0,
    acc_se=0.01,
):
    rows = []
    for i, ex in enumerate((0.5, 1.0, 2.0)):
        rows.append(_row("pgd (linear model)", "min_l2", ex * pgd_factor, 0.0, part="attack",
                         point=i, exact=ex))  # fmt: skip
    for eps in (0.0, 0.1, 0.2):
        std = 0.97 - std_drop * eps / 0.2
        rows.append(_row("standard training", "robust_acc", std, part="eps", eps=eps))
        rows.append(_row("adversarial training (PGD ε=0.1)", "robust_acc", min(1, std + adv_gain),
                         part="eps", eps=eps))  # fmt: skip
    for step, (acc, tr_loss) in enumerate(zip(test_curve, train_loss, strict=True)):
        kw = dict(part="overfit", step=step * 100)
        rows += [_row("adversarial training (long)", "robust_test_acc", acc, acc_se, **kw),
                 _row("adversarial training (long)", "robust_val_acc", acc, acc_se, **kw),
                 _row("adversarial training (long)", "robust_train_acc", 1.0, 0.0, **kw),
                 _row("adversarial training (long)", "robust_test_loss", 2 - acc * 2, 0.01, **kw),
                 _row("adversarial training (long)", "robust_train_loss", tr_loss, 0.001, **kw)]  # fmt: skip
    g = CFG.gmm
    for d in g.dims:
        sigma = g.sigma_scale * d**0.25
        for n in g.n_values:
            for eps, metric in ((0.0, "standard_error"), (g.eps, "robust_error")):
                th = gmm_robust_error_limit(d=d, n=n, sigma=sigma, eps=eps)
                n_eff = max(1, round(n / nstar_scale)) if metric == "robust_error" else n
                ms = gmm_robust_error_limit(d=d, n=n_eff, sigma=sigma, eps=eps)
                kw = dict(part="gmm", d=d, n=n)
                rows.append(_row("theory: large-d limit", metric, th, 0.0, **kw))
                rows.append(_row("mean estimator", metric, ms, 0.001, **kw))
                if d == g.dims[0]:
                    rows.append(_row("mean estimator (test points)", metric, min(1, ms + mc_shift),
                                     0.001, **kw))  # fmt: skip
    for r in (0.0, 0.5):
        kw = dict(part="smoothing", radius=r)
        rows += [_row("smoothed MLP", "certified_acc", 0.8, **kw),
                 _row("smoothed MLP", "pgd_acc", 0.85, **kw),
                 _row("smoothed MLP", "certified_but_broken", broken, 0.005, **kw)]  # fmt: skip
    return pd.DataFrame(rows)


def _status(table):
    return {c.claim: (c.kind, c.status) for c in ar.checks(table, CFG)}


def _find(statuses, words):
    hits = [v for k, v in statuses.items() if words in k]
    assert len(hits) == 1, (words, list(statuses))
    return hits[0]


def test_every_check_holds_on_a_table_that_meets_the_theory():
    st = _status(_table())
    assert all(s == "holds" for _, s in st.values()), st
    kinds = {k for k, _ in st.values()}
    assert kinds == {"claim", "theory", "sanity"}


@pytest.mark.parametrize(
    ("change", "words"),
    [
        (dict(pgd_factor=1.1), "PGD finds the exact minimal"),
        (dict(std_drop=0.1), "a standard model fails under attack"),
        (dict(adv_gain=-0.2), "adversarial training raises robust accuracy"),
        (dict(test_curve=(0.5, 0.6, 0.7, 0.8), acc_se=0.001), "peaks, then falls"),
        (dict(train_loss=(2.0, 0.05, 0.2, 0.5)), "keeps falling after the robust test"),
        (dict(test_curve=(0.5, 0.6, 0.7, 0.8), acc_se=0.001), "robust test loss reaches a minimum"),
        (dict(mc_shift=0.2), "formula (1) matches"),
        (dict(nstar_scale=3.0), "follow the theory's prediction"),
        (dict(broken=0.2), "no image certified at radius r"),
    ],
)
def test_each_check_fails_when_its_ingredient_is_removed(change, words):
    kind, status = _find(_status(_table(**change)), words)
    assert status == "fails", (words, status)


def test_sample_gap_check_fails_when_robust_needs_no_more_data():
    g = CFG.gmm
    t = _table()
    rob = (t["part"] == "gmm") & (t["metric"] == "robust_error") & (t["method"] == "mean estimator")
    std = t[
        (t["part"] == "gmm") & (t["metric"] == "standard_error") & (t["method"] == "mean estimator")
    ]
    # robust curve := the standard curve scaled so that n*_robust / n*_standard falls with d
    for d, factor in zip(g.dims, (8, 4, 2), strict=True):
        sd = std[std["d"] == d].set_index("n")["value"]
        m = rob & (t["d"] == d)
        t.loc[m, "value"] = [float(sd.loc[max(1, n // factor)]) * 0 + (0.5 if n < factor * 3 else 0.0)
                             for n in t.loc[m, "n"]]  # fmt: skip
    kind, status = _find(_status(t), "by a factor that grows with d")
    assert status == "fails"


def test_tiny_preset_runs_and_is_deterministic():
    a = ar.run(EXP.make_config("tiny"))
    b = ar.run(EXP.make_config("tiny"))
    pd.testing.assert_frame_equal(a.table, b.table)
    assert {"attack", "eps", "overfit", "gmm", "smoothing"} <= set(a.table["part"])
    assert set(a.figures) == {"robust_acc_vs_eps", "robust_overfitting", "gmm_sample_complexity",
                              "smoothing_certified_vs_attack"}  # fmt: skip
    assert not a.table["se"].isna().any()


@pytest.mark.parametrize(
    ("key", "value", "field"),
    [
        ("attack.eval_eps", [-0.1], "attack.eval_eps"),
        ("attack.eps", -1, "attack.eps"),
        ("attack.norm", "1", "attack.norm"),
        ("smoothing.sigma", 0, "smoothing.sigma"),
        ("gmm.dims", [16, 64], "gmm.dims"),
        ("smoothing.radii", [-1.0], "smoothing.radii"),
    ],
)
def test_bad_input_names_the_field(key, value, field):
    with pytest.raises(ConfigError) as e:
        EXP.make_config("tiny", {key: value})
    assert e.value.field == field and "\n" not in str(e.value)


def test_label_names_the_model():
    assert ar.label(CFG).startswith("MLP 64-32-10 (ReLU)")
    assert math.isfinite(
        ar.headline(ar.run(EXP.make_config("tiny")).table, CFG)["adv_robust_acc_max_eps"]
    )
