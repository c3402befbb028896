"""Training of the in-context regression models shared by several claims, through :func:`fit`:

- :func:`train_regression_gpt`: a GPT decoder predicting every y of a prompt from the pairs before
  it (mean squared error over positions), with Garg et al.'s curriculum;
- :func:`train_on_queries`: any model ``(x, y) -> prediction of the last y`` (an LSA stack, fitted
  GD step sizes) on the squared error of the query.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from fmtheory.models.icl import RegressionTransformer, build_regression_transformer
from fmtheory.tasks.regression import RegressionSpec, sample_regression
from fmtheory.train.fit import fit, seeded
from fmtheory.train.loop import TrainResult, TrainSpec

__all__ = ["train_regression_gpt", "train_on_queries"]

Sampler = Callable[[int, int, torch.Generator], tuple[torch.Tensor, torch.Tensor]]


def train_regression_gpt(
    model_section: Any,
    train_section: Any,
    *,
    spec: RegressionSpec,
    n_points: int,
    seed: int,
    ctx: Any,
    name: str = "gpt",
    sample: Sampler | None = None,
) -> tuple[RegressionTransformer, TrainResult]:
    """Build (weights from ``seed``) and train the GPT of ``model_section`` (a GPTSection) with
    ``train_section`` (a TrainSection, curriculum honoured) on prompts of ``n_points`` pairs drawn
    from ``spec`` — or from ``sample(batch, points, generator) -> (x, y)`` when given."""
    model = seeded(
        lambda: build_regression_transformer(model_section, dim=spec.dim, n_points=n_points), seed
    )
    cur, bs = train_section.curriculum, train_section.batch_size

    def loss_fn(m: nn.Module, step: int, g: torch.Generator) -> torch.Tensor:
        dims, pts = cur.at(step, dims=spec.dim, points=n_points)
        if sample is not None:
            x, y = sample(bs, pts, g)
        else:
            b = sample_regression(spec, batch=bs, n_points=pts, generator=g, active_dims=dims)
            x, y = b.x, b.y
        return (m(x, y) - y).pow(2).mean()

    return model, fit(model, loss_fn, train_section, seed=seed, ctx=ctx, name=name)


def train_on_queries(
    model: nn.Module,
    *,
    spec: RegressionSpec,
    n_context: int,
    batch_size: int,
    train_spec: TrainSpec,
    seed: int,
    ctx: Any,
    name: str,
) -> TrainResult:
    """Train ``model(x, y) -> (B,)`` on the squared error of the query of (n_context + 1)-pair
    prompts from ``spec``."""

    def loss_fn(m: nn.Module, step: int, g: torch.Generator) -> torch.Tensor:
        b = sample_regression(spec, batch=batch_size, n_points=n_context + 1, generator=g)
        return (m(b.x, b.y) - b.y[:, -1]).pow(2).mean()

    return fit(model, loss_fn, None, spec=train_spec, seed=seed, ctx=ctx, name=name)
