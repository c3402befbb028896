"""ONE training loop for every experiment.

The caller supplies ``loss_fn(model, step, generator) -> scalar loss``: it samples its own batch for
that step (curriculum = a function of ``step``), so regression, cross-entropy on tokens, or any other
objective go through the same loop.  The loop owns the optimizer (AdamW), the learning-rate schedule
(linear warm-up, then constant or cosine decay), gradient clipping, periodic resumable checkpoints,
the non-finite-loss guard and the progress bar.

Interrupting (Ctrl-C) lets the current step finish, saves a checkpoint of it and re-raises; calling
:func:`train` again with the same ``checkpoint_path`` resumes from it and, on CPU, produces exactly the
numbers of an uninterrupted run (the data generator's state is part of the checkpoint).  A second
Ctrl-C stops at once, mid-step, and saves nothing: the last periodic checkpoint is the one resumed.
"""

from __future__ import annotations

import math
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import torch
from torch import nn

from fmtheory.progress import progress_bar
from fmtheory.train.checkpoint import load_checkpoint, save_checkpoint

__all__ = ["TrainSpec", "TrainResult", "NonFiniteLossError", "train", "lr_at"]


class NonFiniteLossError(RuntimeError):
    """The loss became NaN or inf; the last good checkpoint (if any) is kept on disk."""

    def __init__(self, step: int, loss: float, checkpoint: Path | None):
        self.step, self.loss, self.checkpoint = step, loss, checkpoint
        where = f"; last good checkpoint kept at {checkpoint}" if checkpoint else ""
        super().__init__(f"training loss became {loss} at step {step}{where}")


@dataclass(frozen=True)
class TrainSpec:
    """Optimisation hyperparameters.

    steps: number of optimizer steps.  lr: peak learning rate.  warmup_steps: linear warm-up from 0.
    schedule: "cosine" decays to ``min_lr_ratio·lr`` at the last step (Loshchilov & Hutter 2017);
    "constant" keeps the peak.  grad_clip: max global gradient norm (None: off).
    checkpoint_every: steps between resumable checkpoints (when a path is given).
    """

    steps: int
    lr: float
    warmup_steps: int = 0
    schedule: Literal["cosine", "constant"] = "cosine"
    min_lr_ratio: float = 0.0
    weight_decay: float = 0.0
    betas: tuple[float, float] = (0.9, 0.999)
    grad_clip: float | None = 1.0
    checkpoint_every: int = 500
    log_every: int = 25

    def __post_init__(self) -> None:
        if self.steps < 0:
            raise ValueError(f"steps = {self.steps}: must be >= 0")
        if not self.lr > 0:
            raise ValueError(f"lr = {self.lr}: must be > 0")
        if self.warmup_steps < 0:
            raise ValueError(f"warmup_steps = {self.warmup_steps}: must be >= 0")
        if self.checkpoint_every < 1:
            raise ValueError(f"checkpoint_every = {self.checkpoint_every}: must be >= 1")


@dataclass
class TrainResult:
    """``losses``: mean training loss of each logging window, at ``loss_steps``."""

    steps: int
    seconds: float
    resumed_from: int
    losses: list[float] = field(default_factory=list)
    loss_steps: list[int] = field(default_factory=list)

    @property
    def steps_per_second(self) -> float:
        done = self.steps - self.resumed_from
        return done / self.seconds if self.seconds > 0 else float("nan")


def lr_at(spec: TrainSpec, step: int) -> float:
    """Learning rate used for optimizer step ``step`` (0-based)."""
    if spec.warmup_steps > 0 and step < spec.warmup_steps:
        return spec.lr * (step + 1) / spec.warmup_steps
    if spec.schedule == "constant":
        return spec.lr
    span = max(1, spec.steps - spec.warmup_steps)
    t = min(1.0, (step - spec.warmup_steps) / span)
    lo = spec.lr * spec.min_lr_ratio
    return lo + 0.5 * (spec.lr - lo) * (1.0 + math.cos(math.pi * t))


def train(
    model: nn.Module,
    *,
    loss_fn: Callable[[nn.Module, int, torch.Generator], torch.Tensor],
    spec: TrainSpec,
    generator: torch.Generator,
    checkpoint_path: Path | None = None,
    progress: bool = False,
    description: str = "train",
    optimizer: torch.optim.Optimizer | None = None,
) -> TrainResult:
    """Train ``model`` in place for ``spec.steps`` steps; resume from ``checkpoint_path`` if it exists.

    ``optimizer`` defaults to AdamW over all parameters (Loshchilov & Hutter 2019) — pass one to train
    with another (e.g. an Opacus-wrapped optimizer); its learning rate is set by the schedule each step.
    """
    if optimizer is None:
        optimizer = torch.optim.AdamW(
            model.parameters(), lr=spec.lr, betas=spec.betas, weight_decay=spec.weight_decay
        )
    start = 0
    if checkpoint_path is not None and Path(checkpoint_path).exists():
        meta = load_checkpoint(
            checkpoint_path, model=model, optimizer=optimizer, generator=generator
        )
        start = int(meta["step"])
    result = TrainResult(steps=start, seconds=0.0, resumed_from=start)
    if start > 0:
        result.losses = list(meta["extra"].get("losses", []))
        result.loss_steps = list(meta["extra"].get("loss_steps", []))
    have_good_ckpt = start > 0
    # Losses of the logging window in flight at the checkpoint (so resumed logs equal unbroken ones).
    window: list[torch.Tensor] = [
        torch.tensor(v) for v in (meta["extra"].get("window", []) if start > 0 else [])
    ]

    def checkpoint(step: int) -> None:
        nonlocal have_good_ckpt
        if checkpoint_path is not None:
            save_checkpoint(
                checkpoint_path,
                model=model,
                optimizer=optimizer,
                generator=generator,
                step=step,
                extra={
                    "losses": result.losses,
                    "loss_steps": result.loss_steps,
                    "window": [float(v) for v in window],
                },
            )
            have_good_ckpt = True

    bar = progress_bar(description, spec.steps, start=start, loss=True, enabled=progress)
    model.train()
    t0 = time.perf_counter()
    step = start
    interrupt = _DeferredInterrupt()
    try:
        for step in range(start, spec.steps):
            if interrupt.requested:
                raise _AtStepBoundary
            lr = lr_at(spec, step)
            for group in optimizer.param_groups:
                group["lr"] = lr
            loss = loss_fn(model, step, generator)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            window.append(loss.detach())
            log_now = (step + 1) % spec.log_every == 0 or step + 1 == spec.steps
            if log_now:
                # One host sync per window; the guard sees every step's loss.
                values = _stack(window)
                window.clear()
                if not bool(torch.isfinite(values).all()):
                    bad = float(values[~torch.isfinite(values)][0])
                    raise NonFiniteLossError(
                        step + 1, bad, Path(checkpoint_path) if have_good_ckpt else None
                    )
                result.losses.append(float(values.mean()))
                result.loss_steps.append(step + 1)
                bar.update(step + 1, result.losses[-1])
            if spec.grad_clip is not None:
                nn.utils.clip_grad_norm_(model.parameters(), spec.grad_clip)
            optimizer.step()
            # A non-finite loss in an unlogged step would poison the weights: check cheaply
            # before any checkpoint is written, so a checkpoint is always a good one.
            if (step + 1) % spec.checkpoint_every == 0 and step + 1 < spec.steps:
                if window:
                    values = _stack(window)
                    if not bool(torch.isfinite(values).all()):
                        bad = float(values[~torch.isfinite(values)][0])
                        raise NonFiniteLossError(
                            step + 1, bad, Path(checkpoint_path) if have_good_ckpt else None
                        )
                checkpoint(step + 1)
        step = spec.steps
        if interrupt.requested:
            raise _AtStepBoundary
    except _AtStepBoundary:
        # The first Ctrl-C waits for a step boundary, so `step` steps finished exactly.  Save only
        # if the losses seen since the last check are finite.
        if not window or bool(torch.isfinite(_stack(window)).all()):
            checkpoint(step)
        raise KeyboardInterrupt from None
    # Any other KeyboardInterrupt (a second Ctrl-C, one raised by user code) may land mid-step:
    # nothing is saved, and the last periodic checkpoint stays the one to resume from.
    finally:
        interrupt.restore()
        bar.close()
    result.steps = spec.steps
    result.seconds = time.perf_counter() - t0
    model.eval()
    return result


def _stack(window: list[torch.Tensor]) -> torch.Tensor:
    dev = window[-1].device
    return torch.stack([v.to(dev) for v in window])


class _AtStepBoundary(KeyboardInterrupt):
    """Ctrl-C, re-raised between two steps (nothing half-applied: safe to checkpoint)."""


class _DeferredInterrupt:
    """Turn SIGINT into a flag checked between steps, so no step is ever half-applied."""

    def __init__(self) -> None:
        self.requested = False
        self._old = None
        if threading.current_thread() is threading.main_thread():
            self._old = signal.signal(signal.SIGINT, self._handle)

    def _handle(self, signum: int, frame: object) -> None:
        if self.requested:  # a second Ctrl-C stops at once
            raise KeyboardInterrupt
        self.requested = True

    def restore(self) -> None:
        if self._old is not None:
            signal.signal(signal.SIGINT, self._old)
            self._old = None
