"""Helpers shared by experiment modules: 95% intervals, tidy CI rows, log-log fits, and the softmax
GPT of ``icl-regression`` trained as a forward predictor.

Kept private (leading underscore: not auto-imported as an experiment).

NOTE (ilr engineer, for the lead): this file was first created by the ``lsa-gd`` engineer and was
accidentally overwritten; :func:`mean_ci` and :func:`train_softmax_gpt` are reconstructed from their
use in ``lsa_gd.py`` (same names, arguments and return values) — please have the ``lsa-gd`` engineer
check them against the original.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from fmtheory.experiments.base import RunContext
from fmtheory.models.gpt import GPTConfig
from fmtheory.models.icl import RegressionTransformer
from fmtheory.tasks.regression import RegressionSpec, make_generator, sample_regression
from fmtheory.train import TrainResult, TrainSpec
from fmtheory.train import train as train_loop

__all__ = [
    "Z95",
    "MeanCI",
    "mean_ci",
    "ci_row",
    "LogLogFit",
    "loglog_fit",
    "build_softmax_gpt",
    "train_softmax_gpt",
]

#: two-sided 95% normal quantile
Z95 = 1.959963984540054


@dataclass(frozen=True)
class MeanCI:
    """Mean of a sample with its 95% normal interval ``mean ± 1.96·stderr``."""

    mean: float
    low: float
    high: float
    stderr: float
    n: int


def _as_numpy(values: Any) -> np.ndarray:
    if isinstance(values, torch.Tensor):
        values = values.detach().to("cpu", torch.float64).numpy()
    return np.asarray(values, dtype=float).ravel()


def mean_ci(values: Any) -> MeanCI:
    """Mean and 95% normal interval of a 1-D sample (torch tensor, array or list; N >= 1).

    stderr = sd (ddof = 1) / √N; a single value has stderr 0.
    """
    v = _as_numpy(values)
    if v.size == 0:
        raise ValueError("mean_ci: no values")
    mean = float(v.mean())
    se = float(v.std(ddof=1)) / math.sqrt(v.size) if v.size > 1 else 0.0
    return MeanCI(mean, mean - Z95 * se, mean + Z95 * se, se, int(v.size))


def ci_row(method: str, metric: str, values: Any, *, seed: int, **coords: Any) -> dict[str, Any]:
    """One tidy result row: :func:`mean_ci` of ``values`` as value / ci_low / ci_high, plus
    ``coords`` (grid-point columns)."""
    ci = mean_ci(values)
    return dict(method=method, metric=metric, value=ci.mean, ci_low=ci.low, ci_high=ci.high,
                seed=seed, **coords)  # fmt: skip


@dataclass(frozen=True)
class LogLogFit:
    """log y = intercept + slope · log x by least squares; ``r2`` its coefficient of determination."""

    slope: float
    intercept: float
    r2: float
    n_points: int


def loglog_fit(x: Any, y: Any) -> LogLogFit:
    """Least-squares line through (log x, log y) over the points with x > 0 and y > 0.

    NaN slope / R² when fewer than 2 such points or all x are equal.
    """
    x, y = _as_numpy(x), _as_numpy(y)
    keep = (x > 0) & (y > 0) & np.isfinite(x) & np.isfinite(y)
    lx, ly = np.log(x[keep]), np.log(y[keep])
    if lx.size < 2 or np.ptp(lx) == 0:
        return LogLogFit(math.nan, math.nan, math.nan, int(lx.size))
    slope, intercept = np.polyfit(lx, ly, 1)
    resid = ly - (intercept + slope * lx)
    ss = float(((ly - ly.mean()) ** 2).sum())
    r2 = 1.0 - float((resid**2).sum()) / ss if ss > 0 else 1.0
    return LogLogFit(float(slope), float(intercept), r2, int(lx.size))


# ---------------------------------------------------------------------------------------------
def build_softmax_gpt(*, dim: int, n_points: int, model: Any) -> RegressionTransformer:
    """The ``icl-regression`` transformer for prompts of ``n_points`` pairs from its ModelConfig
    section ``model`` (n_layer, n_head, n_embd, attention, layernorm, mask, window, layout)."""
    gpt = GPTConfig(
        n_layer=model.n_layer,
        n_head=model.n_head,
        n_embd=model.n_embd,
        n_positions=2 * n_points if model.layout == "interleaved" else n_points,
        attention=model.attention,
        layernorm=model.layernorm,
        mask=model.mask,
        window=model.window,
    )
    return RegressionTransformer(dim, n_points, gpt, layout=model.layout)


def train_softmax_gpt(
    *,
    dim: int,
    n_points: int,
    noise_std: float = 0.0,
    x_cond: float = 1.0,
    model: Any,
    train: Any,
    seed: int,
    ctx: RunContext,
    name: str = "gpt",
    sample: Callable[[int, int, torch.Generator], tuple[torch.Tensor, torch.Tensor]] | None = None,
) -> tuple[RegressionTransformer, TrainResult]:
    """Train the softmax GPT of ``icl-regression`` to predict every y of a prompt from the pairs
    before it (loss: mean squared error over positions); returns ``(model, TrainResult)``.

    ``model`` / ``train``: ``icl_regression.ModelConfig`` / ``TrainConfig`` sections (the
    curriculum's points schedule is honoured; its dims schedule applies to the default prompts).
    Prompts: ``sample(batch, n_points, generator) -> (x, y)`` if given, else linear regression
    y = <w, x> + N(0, noise_std²), w ~ N(0, I), x ~ N(0, Σx(x_cond)).  Weights initialised from
    ``seed``; resumable checkpoint ``checkpoints/<name>.safetensors`` in ``ctx``.
    """
    spec = RegressionSpec(dim=dim, noise_std=noise_std, x_cond=x_cond)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = build_softmax_gpt(dim=dim, n_points=n_points, model=model)
    net.to(ctx.device)
    cur = train.curriculum

    def loss_fn(m: torch.nn.Module, step: int, g: torch.Generator) -> torch.Tensor:
        k = step // cur.every
        pts = (
            n_points
            if cur.points_start is None
            else min(n_points, cur.points_start + k * cur.points_inc)
        )
        if sample is not None:
            x, y = sample(train.batch_size, pts, g)
        else:
            dims = dim if cur.dims_start is None else min(dim, cur.dims_start + k * cur.dims_inc)
            b = sample_regression(spec, batch=train.batch_size, n_points=pts, generator=g,
                                  active_dims=dims)  # fmt: skip
            x, y = b.x, b.y
        return (m(x, y) - y).pow(2).mean()

    result = train_loop(
        net,
        loss_fn=loss_fn,
        spec=TrainSpec(
            steps=train.steps,
            lr=train.lr,
            warmup_steps=min(train.warmup_steps, train.steps),
            schedule=train.schedule,
            min_lr_ratio=train.min_lr_ratio,
            weight_decay=train.weight_decay,
            grad_clip=train.grad_clip,
            checkpoint_every=train.checkpoint_every,
        ),
        generator=make_generator(seed, ctx.device),
        checkpoint_path=ctx.path(f"checkpoints/{name}.safetensors"),
        progress=ctx.progress,
        description=f"{name} train",
    )
    return net, result
