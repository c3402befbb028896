"""Bradley–Terry maximum likelihood, batched over independent data sets (numpy).

Minimises  −(1/n) Σᵢ [yᵢ log σ(θᵀxᵢ) + (1 − yᵢ) log σ(−θᵀxᵢ)] + (λ/2)‖θ‖²  by Newton's method, the
objective of scikit-learn's ``LogisticRegression(fit_intercept=False, C=1/(nλ))`` on the same
differences xᵢ = φ(preferred-or-not) − φ(other) (Zhu, Jordan & Jiao 2023, eq. (3)).
"""

from __future__ import annotations

import numpy as np

__all__ = ["bt_mle", "sigma_norm"]


def bt_mle(
    x: np.ndarray, y: np.ndarray, *, lam: float = 0.0, iters: int = 50, tol: float = 1e-10
) -> np.ndarray:
    """The (ridge-)MLE of every data set.  x: (reps, n, d), y: (reps, n) in {0, 1} -> (reps, d).

    A tiny ridge of 1e-10 keeps the Newton system solvable when λ = 0 and the data are separable.
    """
    reps, n, d = x.shape
    theta = np.zeros((reps, d))
    eye = np.eye(d)
    xt = np.swapaxes(x, 1, 2)
    lam_eff = max(lam, 1e-10)
    for _ in range(iters):
        z = np.matmul(x, theta[..., None])[..., 0]
        p = 1.0 / (1.0 + np.exp(-z))
        grad = np.matmul((p - y)[:, None, :], x)[:, 0] / n + lam_eff * theta
        w = p * (1.0 - p)
        hess = np.matmul(xt, x * w[..., None]) / n + lam_eff * eye
        step = np.linalg.solve(hess, grad[..., None])[..., 0]
        # damped Newton: cap each step's length so early steps on separable data stay finite
        norm = np.linalg.norm(step, axis=1, keepdims=True)
        step = step * np.minimum(1.0, 5.0 / np.maximum(norm, 1e-300))
        theta = theta - step
        if float(np.max(np.abs(step))) < tol:
            break
    return theta


def sigma_norm(v: np.ndarray, m: np.ndarray) -> np.ndarray:
    """‖v‖_M = sqrt(vᵀ M v).  v: (..., d), m: (..., d, d) -> (...)."""
    return np.sqrt(np.maximum(np.einsum("...d,...de,...e->...", v, m, v), 0.0))
