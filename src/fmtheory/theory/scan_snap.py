"""Scan and snap: training dynamics of a 1-layer transformer's attention (pure numpy/scipy).

Tian, Wang, Chen & Du 2023, "Scan and Snap: understanding training dynamics and token composition in
1-layer transformer", NeurIPS (arXiv:2305.16380); survey arXiv:2410.11444 Thm 5.2.

The paper reparameterises a 1-layer transformer (no positional encoding, ℓ2-normalised attention
output, decoder) by two pairwise matrices: Z (query token × context token, the attention logits) and
Y (next token × context token, the decoder).  For a sequence of class n (next token n, query q(n),
context tokens drawn i.i.d. from P(l | n)) and an infinitely long context, the attention over
context *token types* is ``c_n(l) ∝ P(l | n) exp(Z[q(n), l])``, the decoder sees
``f_n = c_n / ‖c_n‖`` and the loss is the cross-entropy of ``softmax(Y f_n)`` at n.  Y is trained
with learning rate η_Y, Z with η_Z.

Two pieces live here:

* :func:`logit_growth` / :func:`snap_time` — the closed form of the paper's two-stage growth in its
  reduced form.  While the decoder's margin u (correct logit minus the others) is learned, the error
  signal 1 − p = (K − 1)/(e^u + K − 1) that drives both layers is shared: u̇ = η_Y (1 − p),
  ż = κ η_Z (1 − p), so z(t) = κ (η_Z/η_Y) u(t) exactly, with u solving
  ``e^u + (K − 1) u = 1 + (K − 1) η_Y t`` (u(0) = 0).  Before the snap (η_Y t ≪ 1) the logit grows
  linearly, z ≈ κ η_Z (K − 1)/K · t; after it, logarithmically, z ≈ κ (η_Z/η_Y) ln((K − 1) η_Y t).
  The snap time (p = 1/2, u = ln(K − 1)) is t₀ = [(K − 1)(1 + ln(K − 1)) − 1] / ((K − 1) η_Y) ∝ 1/η_Y:
  a faster decoder snaps earlier and leaves the attention logits smaller (less sparse), the paper's
  Sec. 5 phase transition.  κ is the per-token coupling (the paper's frequency factor; 1 here unless
  given).
* :func:`population_dynamics` — gradient descent on the infinite-context population loss of the
  Y/Z model for a general data model P(l | n), returning the entropy of c_n and the attention mass
  on each class's distinct tokens after every step.  This is the prediction the experiment's
  finite-context SGD is compared with (the theory's assumptions: T → ∞, expected gradient).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.optimize import brentq

from fmtheory.theory.registry import Param, TheoryValue, formula

__all__ = [
    "DataModel",
    "PopulationTrajectory",
    "data_model",
    "decoder_margin",
    "logit_growth",
    "population_dynamics",
    "snap_time",
]


def decoder_margin(*, t: float, eta_y: float, n_classes: int) -> float:
    """Decoder margin u(t) solving e^u + (K − 1) u = 1 + (K − 1) η_Y t, u(0) = 0 (see module doc)."""
    if t < 0 or eta_y <= 0 or n_classes < 2:
        raise ValueError(f"t = {t}, eta_y = {eta_y}, n_classes = {n_classes}: need t >= 0, "
                         "eta_y > 0, n_classes >= 2")  # fmt: skip
    k1 = n_classes - 1
    a = 1.0 + k1 * eta_y * t
    if a == 1.0:
        return 0.0
    # e^u + k1 u is increasing; the root lies in (0, min(ln a, a / k1)] + slack.
    hi = min(math.log(a), a / k1) + 1.0
    return float(brentq(lambda u: math.exp(u) + k1 * u - a, 0.0, hi, xtol=1e-14, rtol=1e-14))


def logit_growth(
    *, t: float, eta_y: float, eta_z: float, n_classes: int, kappa: float = 1.0
) -> float:
    """Attention-logit growth z(t) = κ (η_Z/η_Y) u(t) (Tian et al. 2023 §5, reduced form)."""
    if eta_z <= 0 or kappa <= 0:
        raise ValueError(f"eta_z = {eta_z}, kappa = {kappa}: must be > 0")
    return kappa * eta_z / eta_y * decoder_margin(t=t, eta_y=eta_y, n_classes=n_classes)


def snap_time(*, eta_y: float, n_classes: int) -> float:
    """t₀ = [(K − 1)(1 + ln(K − 1)) − 1] / ((K − 1) η_Y): the step where the decoder error halves."""
    if eta_y <= 0 or n_classes < 2:
        raise ValueError(
            f"eta_y = {eta_y}, n_classes = {n_classes}: need eta_y > 0, n_classes >= 2"
        )
    k1 = n_classes - 1
    return (k1 * (1.0 + math.log(k1)) - 1.0) / (k1 * eta_y)


# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class DataModel:
    """The paper's sequence classes (Tian et al. 2023 §3.2, Fig. 1b; code ``Dataset2``).

    probs: (K, M) conditional probabilities P(l | n) of the M context tokens for class n.
    query: (K,) the query token index q(n) (classes sharing a query must be told apart by context).
    distinct: (K, M) boolean, token l is distinct to class n (P(l | n') = 0 for every n' ≠ n).
    """

    probs: np.ndarray
    query: np.ndarray
    distinct: np.ndarray

    @property
    def n_classes(self) -> int:
        return int(self.probs.shape[0])

    @property
    def n_queries(self) -> int:
        return int(self.query.max()) + 1


def data_model(
    *, n_queries: int, next_per_query: int, n_common: int, n_distinct: int,
    distinct_min: float = 0.1, common_weight: float = 1.0,
) -> DataModel:  # fmt: skip
    """Classes n = q·next_per_query + j; tokens 0..C−1 are common to every class (weight
    ``common_weight`` each); class n's D distinct tokens C + n·D .. C + (n+1)·D − 1 have weights
    linspace(distinct_min, 1, D) (the authors' ``Dataset2`` with ``num_common_per_last = 0``)."""
    if min(n_queries, next_per_query, n_distinct) < 1 or n_common < 0:
        raise ValueError("n_queries, next_per_query, n_distinct must be >= 1 and n_common >= 0")
    k = n_queries * next_per_query
    m = n_common + k * n_distinct
    w = np.zeros((k, m))
    w[:, :n_common] = common_weight
    dist = np.zeros((k, m), dtype=bool)
    for n in range(k):
        sl = slice(n_common + n * n_distinct, n_common + (n + 1) * n_distinct)
        w[n, sl] = np.linspace(distinct_min, 1.0, n_distinct)
        dist[n, sl] = True
    return DataModel(probs=w / w.sum(1, keepdims=True),
                     query=np.arange(k) // next_per_query, distinct=dist)  # fmt: skip


@dataclass(frozen=True)
class PopulationTrajectory:
    """entropy: (steps + 1,) mean over classes of H(c_n) in nats after each step (index 0 = init).
    distinct_mass: (steps + 1,) mean over classes of Σ_{l distinct to n} c_n(l).  loss: (steps + 1,).
    z: (steps + 1, Q, M) the attention logits Z after each step."""

    entropy: np.ndarray
    distinct_mass: np.ndarray
    loss: np.ndarray
    z: np.ndarray


def _attention(z_rows: np.ndarray, probs: np.ndarray) -> np.ndarray:
    """c_n ∝ P(l|n) e^{z}: z_rows (K, M), probs (K, M) -> (K, M), zero off the support."""
    logit = np.where(probs > 0, np.log(np.where(probs > 0, probs, 1.0)) + z_rows, -np.inf)
    logit -= logit.max(1, keepdims=True)
    e = np.exp(logit)
    return e / e.sum(1, keepdims=True)


def population_loss_grad(
    y: np.ndarray, z: np.ndarray, model: DataModel
) -> tuple[float, np.ndarray, np.ndarray]:
    """Population cross-entropy (uniform over classes) and its gradients in Y (K, M) and Z (Q, M)."""
    k = model.n_classes
    c = _attention(z[model.query], model.probs)  # (K, M)
    norm = np.linalg.norm(c, axis=1, keepdims=True)  # (K, 1)
    f = c / norm
    logits = f @ y.T  # (K, K): row n = logits of class n's sequences
    logits -= logits.max(1, keepdims=True)
    p = np.exp(logits)
    p /= p.sum(1, keepdims=True)
    loss = float(-np.log(p[np.arange(k), np.arange(k)]).mean())
    err = (p - np.eye(k)) / k  # (K, K): dL/dlogits, 1/K per class
    gy = err.T @ f  # (K, M)
    gf = err @ y  # (K, M)
    gc = (gf - f * (f * gf).sum(1, keepdims=True)) / norm
    gzr = c * gc - c * (c * gc).sum(1, keepdims=True)  # (K, M) per class
    gz = np.zeros_like(z)
    np.add.at(gz, model.query, gzr)
    return loss, gy, gz


def population_dynamics(
    model: DataModel, *, eta_y: float, eta_z: float, steps: int
) -> PopulationTrajectory:
    """Gradient descent from Y = Z = 0 on the infinite-context population loss (the paper's
    assumptions), ``steps`` steps with learning rates η_Y, η_Z."""
    if eta_y <= 0 or eta_z <= 0 or steps < 0:
        raise ValueError(f"eta_y = {eta_y}, eta_z = {eta_z}, steps = {steps}: need > 0, > 0, >= 0")
    k, m = model.probs.shape
    y = np.zeros((k, m))
    z = np.zeros((model.n_queries, m))
    ent, mass, losses, zs = [], [], [], []
    for s in range(steps + 1):
        zs.append(z.copy())
        c = _attention(z[model.query], model.probs)
        with np.errstate(divide="ignore", invalid="ignore"):
            ent.append(float(-np.where(c > 0, c * np.log(c), 0.0).sum(1).mean()))
        mass.append(float((c * model.distinct).sum(1).mean()))
        loss, gy, gz = population_loss_grad(y, z, model)
        losses.append(loss)
        if s < steps:
            y -= eta_y * gy
            z -= eta_z * gz
    return PopulationTrajectory(np.array(ent), np.array(mass), np.array(losses), np.array(zs))


# ---------------------------------------------------------------------------------------------
@formula(
    "scan-snap-logit",
    params=[
        Param("t", float, 100.0, 0.0, None, "training time (steps of unit-time gradient flow)"),
        Param("eta_y", float, 1.0, 1e-9, None, "decoder learning rate η_Y"),
        Param("eta_z", float, 1.0, 1e-9, None, "self-attention learning rate η_Z"),
        Param("n_classes", int, 4, 2, 1_000_000, "number of next tokens K"),
        Param("kappa", float, 1.0, 1e-9, None, "per-token coupling κ"),
    ],
    source="Tian, Wang, Chen & Du 2023 (NeurIPS) §5 phase transition; survey 2410.11444 Thm 5.2",
    summary="attention logit z(t) = κ (η_Z/η_Y) u(t), e^u + (K−1)u = 1 + (K−1)η_Y t: linear "
    "before the snap, κ(η_Z/η_Y) ln((K−1)η_Y t) after",
)
def _logit(*, t: float, eta_y: float, eta_z: float, n_classes: int, kappa: float) -> TheoryValue:
    return TheoryValue(
        logit_growth(t=t, eta_y=eta_y, eta_z=eta_z, n_classes=n_classes, kappa=kappa)
    )


@formula(
    "scan-snap-time",
    params=[
        Param("eta_y", float, 1.0, 1e-9, None, "decoder learning rate η_Y"),
        Param("n_classes", int, 4, 2, 1_000_000, "number of next tokens K"),
    ],
    source="Tian, Wang, Chen & Du 2023 (NeurIPS) §5 phase transition; survey 2410.11444 Thm 5.2",
    summary="snap time t0 = [(K−1)(1+ln(K−1)) − 1]/((K−1) η_Y) ∝ 1/η_Y (decoder error halves)",
)
def _snap(*, eta_y: float, n_classes: int) -> TheoryValue:
    return TheoryValue(snap_time(eta_y=eta_y, n_classes=n_classes))
