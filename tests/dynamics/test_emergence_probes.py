"""The emergence probes (``probes/emergence.py``) on inputs whose answer is known exactly."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from fmtheory.probes.emergence import (
    answer_scores,
    power_prediction,
    rise_fraction,
    rise_points,
    sigmoid_vs_smooth,
)


def test_answer_scores_on_hand_built_logits():
    target = torch.tensor([[0, 1, 2], [2, 2, 2]])
    logits = torch.full((2, 3, 4), -5.0)
    logits[0, torch.arange(3), target[0]] = 5.0  # all right
    logits[1, 0, 2] = logits[1, 1, 0] = logits[1, 2, 2] = 5.0  # one wrong of three
    s = answer_scores(logits, target)
    assert s["token_acc"].tolist() == pytest.approx([1.0, 2 / 3])
    assert s["exact_match"].tolist() == [1.0, 0.0]
    p_right = math.exp(5) / (math.exp(5) + 3 * math.exp(-5))
    assert float(s["token_loss"][0]) == pytest.approx(-math.log(p_right))
    with pytest.raises(ValueError, match="disagree"):
        answer_scores(logits, target[:, :2])


def test_power_prediction_against_independent_tokens():
    """Exact match of L independent Bernoulli(a) tokens, simulated, against a^L (4 s.e.)."""
    a, L, n = 0.8, 6, 200_000
    rng = np.random.default_rng(0)
    right = rng.random((n, L)) < a
    em = right.all(1)
    pred, pred_se = power_prediction(
        float(right.mean()), float(right.mean(1).std() / math.sqrt(n)), L
    )
    assert abs(em.mean() - pred) <= 4 * math.hypot(em.std() / math.sqrt(n), pred_se)
    assert pred_se == pytest.approx(
        L * right.mean() ** (L - 1) * right.mean(1).std() / math.sqrt(n)
    )


def test_rise_points_and_fraction_on_piecewise_linear_curves():
    x = np.array([0.0, 1.0, 2.0, 3.0, 4.0])
    v = np.array([0.0, 0.0, 0.5, 1.0, 1.0])
    assert rise_points(x, v) == pytest.approx((1.2, 2.8, 1.6))
    assert all(math.isnan(t) for t in rise_points(x, np.zeros(5)))
    token = np.array([0.0, 0.5, 0.8, 1.0, 1.0])  # at x = 1.2: 0.56 of its rise
    x10, frac, resolved = rise_fraction(x, token, v)
    assert (x10, frac, resolved) == (pytest.approx(1.2), pytest.approx(0.56), True)
    x10, frac, resolved = rise_fraction(x, token, np.array([0.0, 0.5, 0.8, 1.0, 1.0]))
    assert (x10, resolved) == (pytest.approx(0.2), False)  # inside the first interval: not measured
    assert all(math.isnan(t) for t in rise_fraction(x, np.zeros(5), v)[:2])


@pytest.mark.parametrize("shape", ["sigmoid", "smooth"])
def test_sigmoid_vs_smooth_picks_the_generating_curve(shape):
    x = np.linspace(5.0, 12.0, 12)
    s = x - x[0]
    v = (
        0.1 + 0.8 / (1 + np.exp(-(s - 4.0) / 0.3))
        if shape == "sigmoid"
        else 0.1 + 0.8 * (1 - np.exp(-s / 2))
    )
    se = np.full_like(v, 0.01)
    d = sigmoid_vs_smooth(x, v + np.random.default_rng(1).normal(0, 0.01, v.size), se)["delta"]
    assert (d > 10) if shape == "sigmoid" else (d < 10), d
    assert math.isnan(sigmoid_vs_smooth(x[:5], v[:5], se[:5])["delta"])
