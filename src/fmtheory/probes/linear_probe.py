"""A weighted linear probe: least squares onto one-hot labels, then argmax (numpy).

The probe of HaoChen et al. 2021 (NeurIPS, §3.2): the best linear function of the features in
w-weighted squared error, judged by the w-weighted fraction of vertices it misclassifies.
"""

from __future__ import annotations

import numpy as np

__all__ = ["weighted_probe_error"]


def weighted_probe_error(features: np.ndarray, labels: np.ndarray, weights: np.ndarray | None = None,
                         *, intercept: bool = False) -> float:  # fmt: skip
    """Weighted error of the least-squares linear probe: ``features: (n, k)``, ``labels: (n,)`` ints.

    weights: (n,) nonnegative (None: uniform); intercept: add a constant feature.
    """
    x = np.asarray(features, dtype=float)
    y = np.asarray(labels)
    n = x.shape[0]
    w = np.full(n, 1.0 / n) if weights is None else np.asarray(weights, dtype=float)
    if x.ndim != 2 or y.shape != (n,) or w.shape != (n,):
        raise ValueError(
            f"features {x.shape}, labels {y.shape}, weights {w.shape}: need (n, k), (n,), (n,)"
        )
    if intercept:
        x = np.hstack([x, np.ones((n, 1))])
    classes, idx = np.unique(y, return_inverse=True)
    onehot = np.eye(len(classes))[idx]  # (n, C)
    sw = np.sqrt(w / w.sum())[:, None]
    coef, *_ = np.linalg.lstsq(sw * x, sw * onehot, rcond=None)
    pred = (x @ coef).argmax(axis=1)
    return float((w * (pred != idx)).sum() / w.sum())
