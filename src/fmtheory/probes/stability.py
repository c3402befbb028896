"""Prompt-sensitivity probes: how much an in-context prediction moves when the prompt changes a little.

Every probe takes *predictors*, ``name -> fn(x, y) -> predictions`` with ``x: (B, k, d)``,
``y: (B, k)`` and ``out: (B, k)`` where ``out[:, j]`` is the prediction at ``x[:, j]`` from the pairs
before j (a causal transformer's forward, or an estimator's ``predict_prefixes``), and runs them all
on the SAME perturbed prompts, so a transformer and ridge are compared example by example.

* :func:`prompt_sensitivity` — replace one context example by a fresh one, or add noise of norm ε to
  one example (x_j, y_j); measure |ŷ' − ŷ| of the query prediction at each context length n.  This is
  the empirical counterpart of algorithmic stability (Bousquet & Elisseeff 2002; for in-context
  learning, Li et al. 2023, "Transformers as Algorithms", ICML, §3: an algorithm is O(1/n)-stable when
  replacing one of n examples moves its output by O(1/n)).
* :func:`label_corruption` — "typos in the prompt" (survey arXiv:2410.11444 §4.1): corrupt k of the n
  context labels and measure the squared error of the query prediction and its change.
* :func:`attention_logit_bound` — Γ, the largest absolute attention logit the weights of a GPT
  backbone allow on LayerNorm-bounded inputs (the Γ of the stability bound, see
  :mod:`fmtheory.theory.stability`).  Reads weights only.

Probes never patch a module; randomness comes only from the ``generator`` passed in.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
from torch import Tensor, nn

__all__ = [
    "Predictor",
    "SensitivityCurve",
    "SensitivityResult",
    "prompt_sensitivity",
    "CorruptionCurve",
    "CorruptionResult",
    "label_corruption",
    "LogitBound",
    "attention_logit_bound",
]

Predictor = Callable[[Tensor, Tensor], Tensor]


def _check_prompts(x: Tensor, y: Tensor) -> tuple[int, int, int]:
    if not isinstance(x, Tensor) or x.ndim != 3 or not x.is_floating_point():
        raise ValueError(
            f"x: expected a float tensor (batch, n_points, dim), got {getattr(x, 'shape', x)}"
        )
    if not isinstance(y, Tensor) or tuple(y.shape) != tuple(x.shape[:2]):
        raise ValueError(
            f"y.shape = {tuple(getattr(y, 'shape', ()))}: expected {tuple(x.shape[:2])}"
        )
    return int(x.shape[0]), int(x.shape[1]), int(x.shape[2])


def _check_predictors(predictors: Mapping[str, Predictor]) -> None:
    if not predictors or not all(callable(f) for f in predictors.values()):
        raise ValueError("predictors: expected a non-empty mapping name -> callable(x, y)")


def _mean_se(v: Tensor) -> tuple[float, float]:
    v = v.double()
    se = float(v.std(unbiased=True)) / math.sqrt(v.numel()) if v.numel() > 1 else math.nan
    return float(v.mean()), se


@torch.no_grad()
def _query_prediction(fn: Predictor, x: Tensor, y: Tensor) -> Tensor:
    """Prediction at the last position of ``x: (B, k+1, d)`` from the k pairs before it: ``(B,)``."""
    return fn(x, y)[:, -1].double().cpu()


# --------------------------------------------------------------------------------- sensitivity


@dataclass(frozen=True)
class SensitivityCurve:
    """One predictor's sensitivity. ``context_lengths: (K,)`` n; ``mean_abs: (K,)`` E|ŷ' − ŷ| of the
    query prediction after n context pairs; ``stderr: (K,)`` its standard error over prompts;
    ``rms: (K,)`` sqrt(E(ŷ' − ŷ)²)."""

    context_lengths: np.ndarray
    mean_abs: np.ndarray
    stderr: np.ndarray
    rms: np.ndarray


@dataclass(frozen=True)
class SensitivityResult:
    """``mode`` ("replace" or "noise"), ``epsilon`` (noise norm; None for "replace"), the number of
    prompts, and one :class:`SensitivityCurve` per predictor name in ``curves``."""

    mode: str
    epsilon: float | None
    n_prompts: int
    curves: dict[str, SensitivityCurve]


def prompt_sensitivity(
    predictors: Mapping[str, Predictor],
    x: Tensor,
    y: Tensor,
    *,
    context_lengths: Sequence[int],
    generator: torch.Generator,
    mode: Literal["replace", "noise"] = "replace",
    x_new: Tensor | None = None,
    y_new: Tensor | None = None,
    epsilon: float | None = None,
) -> SensitivityResult:
    """Change of the query prediction when ONE context example is perturbed.

    ``x: (B, N, d)``, ``y: (B, N)`` clean prompts.  For each context length n in
    ``context_lengths`` (1 <= n <= N − 1) the prompt is cut to its first n + 1 pairs (pair n is the
    query), an index j ~ Unif{0..n−1} is drawn per prompt and pair j is perturbed:

    * ``mode="replace"``: (x_j, y_j) ← (``x_new``, ``y_new``), a fresh example of the same task
      (``x_new: (B, d)``, ``y_new: (B,)``, supplied by the caller, who knows the task);
    * ``mode="noise"``: (x_j, y_j) ← (x_j, y_j) + ε·u with u uniform on the unit sphere of R^{d+1}.

    Every predictor sees the same perturbed prompts.  Returns |ŷ' − ŷ| statistics per n.
    """
    _check_predictors(predictors)
    batch, n_max, d = _check_prompts(x, y)
    ks = [int(k) for k in context_lengths]
    if not ks or any(k < 1 or k > n_max - 1 for k in ks):
        raise ValueError(f"context_lengths = {ks}: each must be in [1, {n_max - 1}] (n_points - 1)")
    if mode == "replace":
        if x_new is None or y_new is None:
            raise ValueError("mode = 'replace' needs x_new: (batch, dim) and y_new: (batch,)")
        if tuple(x_new.shape) != (batch, d) or tuple(y_new.shape) != (batch,):
            raise ValueError(
                f"x_new.shape = {tuple(x_new.shape)}, y_new.shape = {tuple(y_new.shape)}: "
                f"expected ({batch}, {d}) and ({batch},)"
            )
    elif mode == "noise":
        if epsilon is None or not math.isfinite(float(epsilon)) or float(epsilon) <= 0:
            raise ValueError(f"epsilon = {epsilon!r}: mode = 'noise' needs a finite epsilon > 0")
    else:
        raise ValueError(f"mode = {mode!r}: must be 'replace' or 'noise'")
    gdev = generator.device
    diffs: dict[str, list[Tensor]] = {name: [] for name in predictors}
    rows = torch.arange(batch)
    for k in ks:
        j = torch.randint(k, (batch,), generator=generator, device=gdev).cpu()
        xc, yc = x[:, : k + 1].clone(), y[:, : k + 1].clone()
        xp, yp = xc.clone(), yc.clone()
        if mode == "replace":
            xp[rows, j] = x_new.to(xp.dtype)
            yp[rows, j] = y_new.to(yp.dtype)
        else:
            u = torch.randn(
                batch, d + 1, generator=generator, device=gdev, dtype=torch.float64
            ).cpu()
            u = float(epsilon) * u / u.norm(dim=1, keepdim=True)
            xp[rows, j] = xp[rows, j] + u[:, :d].to(xp.dtype)
            yp[rows, j] = yp[rows, j] + u[:, d].to(yp.dtype)
        both_x, both_y = torch.cat([xc, xp]), torch.cat([yc, yp])
        for name, fn in predictors.items():
            pred = _query_prediction(fn, both_x, both_y)
            diffs[name].append(pred[batch:] - pred[:batch])
    curves = {}
    for name, dl in diffs.items():
        stats = [_mean_se(v.abs()) for v in dl]
        curves[name] = SensitivityCurve(
            context_lengths=np.array(ks),
            mean_abs=np.array([s[0] for s in stats]),
            stderr=np.array([s[1] for s in stats]),
            rms=np.array([float(v.pow(2).mean().sqrt()) for v in dl]),
        )
    return SensitivityResult(
        mode=mode,
        epsilon=None if mode == "replace" else float(epsilon),
        n_prompts=batch,
        curves=curves,
    )


# --------------------------------------------------------------------------------- corruption


@dataclass(frozen=True)
class CorruptionCurve:
    """One predictor under label corruption, per number of corrupted labels k:

    ``n_corrupt: (K,)`` k; ``fraction: (K,)`` k / n; ``mse: (K,)``, ``mse_se: (K,)`` mean squared
    error of the query prediction against the clean query label and its standard error;
    ``change: (K,)``, ``change_se: (K,)`` mean |ŷ_k − ŷ_0| (prediction moved by the corruption)."""

    n_corrupt: np.ndarray
    fraction: np.ndarray
    mse: np.ndarray
    mse_se: np.ndarray
    change: np.ndarray
    change_se: np.ndarray


@dataclass(frozen=True)
class CorruptionResult:
    """``n_context`` n, the corruption ``kind``, the number of prompts, one curve per predictor."""

    n_context: int
    kind: str
    n_prompts: int
    curves: dict[str, CorruptionCurve]


def label_corruption(
    predictors: Mapping[str, Predictor],
    x: Tensor,
    y: Tensor,
    *,
    n_context: int,
    n_corrupt: Sequence[int],
    generator: torch.Generator,
    kind: Literal["resample", "sign_flip"] = "resample",
    label_scale: float = 1.0,
) -> CorruptionResult:
    """Corrupt k of the first ``n_context`` labels of each prompt; predict the query ``x[:, n]``.

    ``x: (B, N, d)``, ``y: (B, N)`` with N > n_context.  Per prompt one random order of the n context
    positions is drawn and the first k positions of that order are corrupted, so the corrupted sets
    are nested in k (common random numbers across k).  ``kind="resample"``: the label is replaced by
    an independent N(0, label_scale²) draw (drawn once per position, shared by every k);
    ``kind="sign_flip"``: y_i → −y_i.  The query label ``y[:, n]`` is never corrupted and is the
    target of the squared error.
    """
    _check_predictors(predictors)
    batch, n_max, _ = _check_prompts(x, y)
    n = n_context
    if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= n_max - 1:
        raise ValueError(f"n_context = {n!r}: must be an integer in [1, {n_max - 1}]")
    ks = [int(k) for k in n_corrupt]
    if not ks or any(k < 0 or k > n for k in ks):
        raise ValueError(f"n_corrupt = {ks}: each must be in [0, n_context = {n}]")
    if kind not in ("resample", "sign_flip"):
        raise ValueError(f"kind = {kind!r}: must be 'resample' or 'sign_flip'")
    if not (math.isfinite(label_scale) and label_scale > 0):
        raise ValueError(f"label_scale = {label_scale!r}: must be a finite number > 0")
    gdev = generator.device
    order = torch.rand(batch, n, generator=generator, device=gdev).argsort(dim=1).cpu()  # (B, n)
    rank = torch.empty_like(order).scatter_(1, order, torch.arange(n).expand(batch, n))  # (B, n)
    fresh = label_scale * torch.randn(batch, n, generator=generator, device=gdev).cpu()
    xc, yc = x[:, : n + 1], y[:, : n + 1]
    target = yc[:, n].double().cpu()
    preds: dict[str, list[Tensor]] = {name: [] for name in predictors}
    for k in ks:
        mask = rank < k  # (B, n): positions corrupted at level k
        bad = fresh.to(yc.dtype) if kind == "resample" else -yc[:, :n].cpu()
        yk = yc.clone()
        yk[:, :n] = torch.where(mask.to(yk.device), bad.to(yk.device), yc[:, :n])
        for name, fn in predictors.items():
            preds[name].append(_query_prediction(fn, xc, yk))
    clean = {
        name: _query_prediction(fn, xc, yc) if 0 not in ks else preds[name][ks.index(0)]
        for name, fn in predictors.items()
    }
    curves = {}
    for name, pl in preds.items():
        mse = [_mean_se((p - target) ** 2) for p in pl]
        chg = [_mean_se((p - clean[name]).abs()) for p in pl]
        curves[name] = CorruptionCurve(
            n_corrupt=np.array(ks),
            fraction=np.array(ks) / n,
            mse=np.array([m[0] for m in mse]),
            mse_se=np.array([m[1] for m in mse]),
            change=np.array([c[0] for c in chg]),
            change_se=np.array([c[1] for c in chg]),
        )
    return CorruptionResult(n_context=n, kind=kind, n_prompts=batch, curves=curves)


# --------------------------------------------------------------------------------- Γ from weights


@dataclass(frozen=True)
class LogitBound:
    """Γ = max over layers of ``per_layer: (L,)``, the largest |attention logit| each layer's weights
    allow; ``input_radius: (L,)`` the bound R on the norm of that layer's LayerNorm output; ``depth``
    L.  ``temperature`` T divides the logits (Γ scales as 1/T).  ``gamma = inf`` when a layer has no
    LayerNorm (its input norm, hence its logits, are unbounded)."""

    gamma: float
    per_layer: np.ndarray
    input_radius: np.ndarray
    depth: int
    temperature: float


@torch.no_grad()
def attention_logit_bound(backbone: nn.Module, *, temperature: float = 1.0) -> LogitBound:
    """Γ of a :class:`~fmtheory.models.gpt.GPT` backbone (any module with ``blocks`` of pre-LN blocks).

    Block ℓ attends over u = LN(h) with ‖u‖ ≤ R = sqrt(C)·max|γ| + ‖β‖ (LayerNorm's normalised vector
    has norm sqrt(C)).  Head h's logit is (W_q u + b_q)·(W_k v + b_k) / (sqrt(D)·T), bounded by
    [R²‖W_qᵀW_k‖₂ + R(‖W_kᵀb_q‖ + ‖W_qᵀb_k‖) + |b_qᵀb_k|] / (sqrt(D)·T).  Γ is the maximum over heads
    and layers.  This is the quantity the stability bound's Γ measures (largest logit magnitude);
    Li et al. 2023 state it for unit-norm tokens, where it reduces to ‖W‖.
    """
    if not (math.isfinite(temperature) and temperature > 0):
        raise ValueError(f"temperature = {temperature!r}: must be a finite number > 0")
    blocks = getattr(backbone, "blocks", None)
    if blocks is None:
        raise ValueError("backbone: expected a GPT backbone with .blocks (e.g. model.backbone)")
    attention = getattr(getattr(backbone, "config", None), "attention", "softmax")
    if attention != "softmax":
        raise ValueError(f"backbone.config.attention = {attention!r}: Γ bounds softmax logits only")
    per, radii = [], []
    for block in blocks:
        ln, attn = block.ln_1, block.attn
        if not isinstance(ln, nn.LayerNorm):
            per.append(math.inf)
            radii.append(math.inf)
            continue
        c = attn.c_attn.in_features
        gain = ln.weight.abs().max().item() if ln.weight is not None else 1.0
        shift = ln.bias.norm().item() if ln.bias is not None else 0.0
        r = math.sqrt(c) * gain + shift
        w = attn.c_attn.weight.double()  # (3C, C)
        b = attn.c_attn.bias.double() if attn.c_attn.bias is not None else torch.zeros(3 * c)
        hs, nh = attn.head_size, attn.n_head
        worst = 0.0
        for h in range(nh):
            sl_q = slice(h * hs, (h + 1) * hs)
            sl_k = slice(c + h * hs, c + (h + 1) * hs)
            wq, wk, bq, bk = w[sl_q], w[sl_k], b[sl_q].double(), b[sl_k].double()
            s = (
                r * r * torch.linalg.matrix_norm(wq.T @ wk, ord=2).item()
                + r * ((wk.T @ bq).norm().item() + (wq.T @ bk).norm().item())
                + abs(float(bq @ bk))
            )
            worst = max(worst, s / math.sqrt(hs))
        per.append(worst / temperature)
        radii.append(r)
    per_a = np.array(per)
    return LogitBound(
        gamma=float(per_a.max()) if per_a.size else 0.0,
        per_layer=per_a,
        input_radius=np.array(radii),
        depth=len(per),
        temperature=float(temperature),
    )
