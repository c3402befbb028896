"""Probes of "emergence": the same skill under a nonlinear metric (exact match on an L-token answer)
and under linear ones (per-token accuracy, loss), along any axis x (training step, log model size).

Schaeffer, Miranda & Koyejo 2023, "Are emergent abilities of large language models a mirage?",
§2 Eq. 1–3: if the L tokens of an answer are right independently with probability a, exact match is
a^L, a steep function of a, so a smooth rise of a looks like a jump in exact match.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import torch
import torch.nn.functional as F
from scipy.optimize import curve_fit

__all__ = [
    "AIC_MARGIN",
    "HALF_LEARNED",
    "answer_scores",
    "power_prediction",
    "rise_points",
    "rise_fraction",
    "sigmoid_vs_smooth",
]

#: "Looks abrupt while the skill grows smoothly": when exact match has made 10% of its rise, the
#: per-token accuracy has already made at least this fraction of its own rise (exact match shows
#: nothing while half of the underlying skill is learned).
HALF_LEARNED = 0.5
#: A sigmoid "beats" a smooth curve when its AIC is lower by at least this (Burnham & Anderson 2002:
#: ΔAIC > 10 leaves essentially no support for the other model).
AIC_MARGIN = 10.0


@torch.no_grad()
def answer_scores(logits: torch.Tensor, target: torch.Tensor) -> dict[str, torch.Tensor]:
    """Per-answer scores of teacher-forced predictions.

    logits: (B, L, V); target: (B, L) int64.  Returns float64 tensors of shape (B,):
    ``token_acc`` (fraction of the L argmax tokens that are right), ``token_loss`` (mean
    cross-entropy in nats) and ``exact_match`` (1 when all L are right).
    """
    if logits.shape[:2] != target.shape:
        raise ValueError(f"logits {tuple(logits.shape)} and target {tuple(target.shape)} disagree")
    right = (logits.argmax(-1) == target).double()
    loss = F.cross_entropy(logits.transpose(1, 2).double(), target, reduction="none")
    return {"token_acc": right.mean(1), "token_loss": loss.mean(1), "exact_match": right.prod(1)}


def power_prediction(acc: float, acc_se: float, length: int) -> tuple[float, float]:
    """Exact match predicted from per-token accuracy, a^L, and its delta-method s.e. L a^{L−1} se(a)
    (Schaeffer et al. 2023, Eq. 3)."""
    return acc**length, length * acc ** (length - 1) * acc_se


def _crossing(x: np.ndarray, v: np.ndarray, level: float) -> float:
    for i in range(len(v)):
        if v[i] >= level:
            if i == 0:
                return float(x[0])
            return float(x[i - 1] + (x[i] - x[i - 1]) * (level - v[i - 1]) / (v[i] - v[i - 1]))
    return float("nan")


def rise_points(x: np.ndarray, v: np.ndarray) -> tuple[float, float, float]:
    """(x10, x90, x90 − x10): where an increasing metric ``v`` (sorted by ``x``) first covers 10% and
    90% of its rise from its first value to its maximum, linearly interpolated; NaNs when it does
    not rise or has fewer than 3 points."""
    x, v = np.asarray(x, float), np.asarray(v, float)
    if len(v) < 3 or v.max() <= v[0]:
        return (float("nan"),) * 3
    lo, hi = v[0], v.max()
    x10, x90 = _crossing(x, v, lo + 0.1 * (hi - lo)), _crossing(x, v, lo + 0.9 * (hi - lo))
    return x10, x90, x90 - x10


def rise_fraction(x: np.ndarray, token: np.ndarray, exact: np.ndarray) -> tuple[float, float, bool]:
    """(x10, f, resolved): the point x10 where exact match has made 10% of its rise, the fraction f
    of its own rise that per-token accuracy has made there (NaNs when either metric does not rise),
    and whether the grid resolves it: False when x10 falls strictly inside the first interval
    (x[0], x[1]), where f is set by the interpolation and not by a measurement.

    f near 1 means exact match shows nothing while most of the underlying skill is already learned:
    the "abrupt" exact-match curve is made by the metric.
    """
    x, token, exact = (np.asarray(a, float) for a in (x, token, exact))
    x10 = rise_points(x, exact)[0]
    if not math.isfinite(x10) or len(token) < 2 or token.max() <= token[0]:
        return float("nan"), float("nan"), False
    frac = (float(np.interp(x10, x, token)) - token[0]) / (token.max() - token[0])
    return x10, frac, not (x[0] < x10 < x[1])


def _sigmoid(s, lo, hi, centre, width):
    return lo + (hi - lo) / (1.0 + np.exp(-(s - centre) / width))


def _smooth(s, lo, hi, tau):
    return lo + (hi - lo) * (1.0 - np.exp(-s / tau))


def sigmoid_vs_smooth(x: np.ndarray, v: np.ndarray, se: np.ndarray) -> dict[str, float]:
    """Weighted least-squares fits of a sigmoid (4 parameters) and a saturating exponential
    (3 parameters, starting at the first x) to ``v`` against ``x``; AIC = χ² + 2k with Gaussian
    errors of s.e. ``se`` (floored at 1e-3).  ``delta`` = AIC(smooth) − AIC(sigmoid): positive when
    the sigmoid fits better.  NaNs with fewer than 6 points or when a fit does not converge."""
    x, v = np.asarray(x, float), np.asarray(v, float)
    se = np.maximum(np.asarray(se, float), 1e-3)
    out = {"aic_sigmoid": math.nan, "aic_smooth": math.nan, "delta": math.nan}
    if len(v) < 6:
        return out
    s = x - x.min()
    span = max(s.max(), 1e-9)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            p, _ = curve_fit(_sigmoid, s, v, p0=[v[0], v.max(), span / 2, span / 10], sigma=se,
                             maxfev=20000, bounds=([-1, -1, -span, span * 1e-4], [2, 2, 3 * span, span]))  # fmt: skip
            out["aic_sigmoid"] = float(np.sum(((v - _sigmoid(s, *p)) / se) ** 2) + 8)
        except RuntimeError:
            pass
        try:
            p, _ = curve_fit(_smooth, s, v, p0=[v[0], v.max(), span / 4], sigma=se, maxfev=20000,
                             bounds=([-1, -1, span * 1e-4], [2, 2, 100 * span]))  # fmt: skip
            out["aic_smooth"] = float(np.sum(((v - _smooth(s, *p)) / se) ** 2) + 6)
        except RuntimeError:
            pass
    out["delta"] = out["aic_smooth"] - out["aic_sigmoid"]
    return out
