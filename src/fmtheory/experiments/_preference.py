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


def bt_mle_counts(wins: np.ndarray, *, lam: float = 1e-6, iters: int = 100) -> np.ndarray:
    """Tabular Bradley–Terry MLE from win counts, by Newton's method.

    wins: (..., A, A) with wins[..., a, b] = how often a beat b.  Minimises
    Σ_{a,b} W_ab·log(1 + exp(r_b − r_a)) + (λ/2)‖r‖² over r: (..., A) -> (..., A).  Actions never
    compared stay at 0 (the ridge), as a reward table initialised at 0 does under gradient descent.
    """
    w = np.asarray(wins, dtype=float)
    r = np.zeros(w.shape[:-1])
    eye = np.eye(w.shape[-1])
    for _ in range(iters):
        diff = r[..., :, None] - r[..., None, :]  # r_a − r_b
        s = 1.0 / (1.0 + np.exp(-diff))  # σ(r_a − r_b)
        m = w * (1.0 - s)  # W_ab σ(r_b − r_a)
        grad = -m.sum(-1) + m.sum(-2) + lam * r
        h = w * s * (1.0 - s)
        hs = h + np.swapaxes(h, -1, -2)
        hess = eye * hs.sum(-1)[..., None] - hs + lam * eye
        step = np.linalg.solve(hess, grad[..., None])[..., 0]
        r = r - step
        if float(np.max(np.abs(step))) < 1e-12:
            break
    return r
