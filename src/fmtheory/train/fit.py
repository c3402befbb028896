"""The one training entry point of every experiment: seeded init, generator, checkpoint path,
progress, all taken from the run's context and the config's :class:`~fmtheory.sections.TrainSection`.

    model = seeded(lambda: build(config), seed)
    result = fit(model, loss_fn, config.train, seed=seed, ctx=ctx, name="gpt")

``loss_fn(model, step, generator) -> scalar`` samples its own batch (a curriculum is a function of
``step``).  Interrupted runs resume from ``checkpoints/<name>.safetensors`` in the run folder.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import torch
from torch import nn

from fmtheory.train.loop import TrainResult, TrainSpec, train

__all__ = ["fit", "seeded", "make_generator"]

M = TypeVar("M", bound=nn.Module)


def make_generator(seed: int, device: Any = "cpu") -> torch.Generator:
    """A fresh generator seeded with ``seed`` on ``device`` (nothing reads global random state)."""
    g = torch.Generator(device=torch.device(device))
    g.manual_seed(int(seed))
    return g


def seeded(build: Callable[[], M], seed: int) -> M:
    """``build()`` with torch's global generator seeded by ``seed``, restored afterwards: the
    weights depend on the seed alone, and the caller's random state is left as it was."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed))
        return build()


def fit(
    model: nn.Module,
    loss_fn: Callable[[nn.Module, int, torch.Generator], torch.Tensor],
    train_config: Any,
    *,
    seed: int,
    ctx: Any,
    name: str = "train",
    optimizer: torch.optim.Optimizer | None = None,
    spec: TrainSpec | None = None,
) -> TrainResult:
    """Train ``model`` (moved to ``ctx.device``) with the loop of ``train/loop.py``.

    train_config: a :class:`~fmtheory.sections.TrainSection` (or any section with ``spec()``);
    ``spec`` overrides it.  seed: the data generator's seed.  ctx: the run's
    :class:`~fmtheory.contract.RunContext` (device, checkpoint folder, progress).  name: the
    checkpoint's and progress bar's name, unique within a run.
    """
    model.to(ctx.device)
    return train(
        model,
        loss_fn=loss_fn,
        spec=spec if spec is not None else train_config.spec(),
        generator=make_generator(seed, ctx.device),
        checkpoint_path=ctx.path(f"checkpoints/{name}.safetensors"),
        progress=ctx.progress,
        description=name,
        optimizer=optimizer,
    )
