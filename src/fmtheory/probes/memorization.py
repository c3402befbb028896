"""Memorization by subsampling (Feldman 2020; Feldman & Zhang 2020) and model-free atypicality.

Feldman & Zhang 2020, eq. (1)-(2): for models trained on random subsets S of the data,

    mem(i) = P[h_S(x_i) = y_i | i ∈ S] − P[h_S(x_i) = y_i | i ∉ S],

estimated from M models with in-masks ``in_mask`` (M, n) and correctness ``correct`` (M, n) as the
difference of the two empirical frequencies, with the binomial standard error
√(p_in(1−p_in)/m_in + p_out(1−p_out)/m_out).
"""

from __future__ import annotations

import numpy as np


def memorization_scores(correct: np.ndarray, in_mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(mem, se), each of shape (n,), from ``correct`` and ``in_mask`` of shape (M, n).

    NaN where an example was never in (or never out of) a training set."""
    correct = np.asarray(correct, dtype=float)
    in_mask = np.asarray(in_mask, dtype=bool)
    m_in, m_out = in_mask.sum(0), (~in_mask).sum(0)
    with np.errstate(invalid="ignore", divide="ignore"):
        p_in = np.where(in_mask, correct, 0.0).sum(0) / m_in
        p_out = np.where(~in_mask, correct, 0.0).sum(0) / m_out
        se = np.sqrt(p_in * (1 - p_in) / m_in + p_out * (1 - p_out) / m_out)
    ok = (m_in > 0) & (m_out > 0)
    return np.where(ok, p_in - p_out, np.nan), np.where(ok, se, np.nan)


def _sq_dists(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.maximum((a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2 * a @ b.T, 0.0)


def knn_label_disagreement(x: np.ndarray, y: np.ndarray, k: int) -> np.ndarray:
    """Atypicality of each example without any model: the fraction of its ``k`` nearest other
    examples (Euclidean, in input space) whose label differs from its own.  x: (n, d), y: (n,)."""
    d = _sq_dists(x, x)
    np.fill_diagonal(d, np.inf)
    nn_idx = np.argsort(d, axis=1, kind="stable")[:, :k]
    return (y[nn_idx] != y[:, None]).mean(1)


def nearest_neighbours(x_from: np.ndarray, x_to: np.ndarray) -> np.ndarray:
    """Index into ``x_to`` of the nearest row to each row of ``x_from`` (Euclidean), shape (n_from,)."""
    return np.argmin(_sq_dists(x_from, x_to), axis=1)


def top_fraction_difference(score: np.ndarray, key: np.ndarray, frac: float) -> tuple[float, float]:
    """Mean ``score`` over the ``frac`` of examples with the largest ``key`` minus the mean over the
    rest, and its standard error (each group's sample variance over its size; the between-example
    variance already contains the estimator's own noise).  Ties in ``key`` are broken by index."""
    order = np.argsort(-key, kind="stable")
    n_top = max(1, int(round(frac * len(key))))
    top, rest = order[:n_top], order[n_top:]

    def _m(ix: np.ndarray) -> tuple[float, float]:
        v = score[ix]
        var = v.var(ddof=1) if len(v) > 1 else 0.0
        return float(v.mean()), float(var / len(v))

    (a, va), (b, vb) = _m(top), _m(rest)
    return a - b, float(np.sqrt(va + vb))
