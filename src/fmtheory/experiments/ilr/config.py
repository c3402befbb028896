"""ilr's configuration, the plan of pretraining runs and the seeds: one place for every knob.

Method names of the result table are defined here too.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import Field, model_validator

from fmtheory.contract import ExperimentConfig, Section
from fmtheory.sections import GPTRunSection, GPTSection, TrainSection
from fmtheory.tasks.ilr import ILRPrior, ILRSpec, sample_ilr_prior
from fmtheory.train import make_generator

NAME = "ilr"
SOURCE = "Lu & Yu 2025, arXiv:2505.12138"

#: method names in the table
TRANSFORMER = "transformer (linear attn)"
ORE, TRE, RE, MINNORM = "ORE (oracle)", "TRE (two-stage EB)", "RE (ridge, GCV)", "min-norm LS"
TH_ORACLE, TH_SNR, TH_FLOOR = "theory: oracle MMSE", "theory: σ²r/(n−r−1)", "theory: floor"
ESTIMATORS = (ORE, TRE, RE, MINNORM)


class TaskConfig(Section):
    """The base task: the point every sweep passes through."""

    dim: int = Field(10, ge=1, le=256, description="dimension d of x and w")
    context: int = Field(8, ge=1, le=1024, description="base context length n")
    rank: int = Field(2, ge=1, le=256, description="base rank r of the prior (w = w0 + U v)")
    noise_std: float = Field(0.1, ge=0.0, le=100.0, description="base noise σ")
    x_cond: float = Field(1.0, ge=1.0, le=1e6, description="base condition number κ of Σx")
    prior_scale: float = Field(1.0, gt=0.0, le=100.0, description="std of v: Λ = scale² I_r")
    w0_norm: float = Field(1.0, ge=0.0, le=100.0, description="‖w0‖ (random direction)")
    alignment: Literal["random", "weakest"] = Field(
        "random",
        description="U Haar-random, or spanning the r weakest directions of Σx (where κ hurts)",
    )
    x_scale: Literal["trace", "max"] = Field(
        "trace",
        description="eigenvalues of Σx summing to d, or from 1 down to 1/κ (the largest fixed)",
    )

    @model_validator(mode="after")
    def _rank_le_dim(self) -> TaskConfig:
        if self.rank > self.dim:
            raise ValueError(f"rank = {self.rank} must be <= dim = {self.dim}")
        return self


class SweepConfig(Section):
    """Values swept inside the run, each with the other coordinates at the base task."""

    ranks: list[int] = Field([1, 2, 4], description="r at the base n, σ, κ (the r/n sweep)")
    noises: list[float] = Field([0.05, 0.1, 0.2, 0.4], description="σ at the base r, n, κ")
    conds: list[float] = Field([1.0, 4.0, 16.0], description="κ at the base r, n, σ")
    phase_ranks: list[int] = Field([1, 2, 4, 8], description="r of the (r, n) phase diagram")
    phase_contexts: list[int] = Field([2, 4, 8, 12], description="n of the phase diagram")

    @model_validator(mode="after")
    def _values(self) -> SweepConfig:
        for name in ("ranks", "phase_ranks", "phase_contexts"):
            if any(v < 1 for v in getattr(self, name)):
                raise ValueError(f"{name} = {getattr(self, name)}: every value must be >= 1")
        if any(not (0 <= s <= 100) for s in self.noises):
            raise ValueError(f"noises = {self.noises}: every value must be in [0, 100]")
        if any(not (1 <= k <= 1e6) for k in self.conds):
            raise ValueError(f"conds = {self.conds}: every value must be in [1, 1e6]")
        if bool(self.phase_ranks) != bool(self.phase_contexts):
            raise ValueError("phase_ranks and phase_contexts: give both or neither")
        return self


class ModelConfig(Section):
    n_layer: int = Field(4, ge=1, le=32, description="L linear-attention layers")
    n_head: int = Field(2, ge=1, le=32)
    n_embd: int = Field(32, ge=2, le=1024)
    layernorm: bool = Field(True, description="LayerNorm after each layer (the paper's)")
    loss: Literal["context", "heldout", "supervised"] = Field(
        "context",
        description="context: mean ‖Xŵ − Y‖² on the context itself (the paper's unsupervised "
        "loss); heldout: the same on fresh pairs of the task; supervised: ‖ŵ − w‖²",
    )
    heldout_points: int = Field(16, ge=1, le=4096, description="fresh pairs for loss=heldout")

    @model_validator(mode="after")
    def _heads_divide(self) -> ModelConfig:
        if self.n_embd % self.n_head:
            raise ValueError(f"n_embd = {self.n_embd} must be divisible by n_head = {self.n_head}")
        return self


class EvalConfig(Section):
    n_prompts: int = Field(2000, ge=10, le=1_000_000, description="held-out prompts per cell")
    tre_tasks: int = Field(10_000, ge=2, le=10_000_000, description="pretraining tasks for TRE")
    theory_mc: int = Field(4000, ge=100, le=1_000_000, description="Monte Carlo draws of theory")


class Config(ExperimentConfig):
    task: TaskConfig = TaskConfig()
    sweep: SweepConfig = SweepConfig()
    model: ModelConfig = ModelConfig()
    train: TrainSection = TrainSection(steps=1500, batch_size=128, lr=3e-3, warmup_steps=50)
    gpt: GPTRunSection = GPTRunSection(
        model=GPTSection(n_layer=3, n_head=2, n_embd=64, attention="softmax"),
        train=TrainSection(steps=2000, batch_size=64, lr=1e-3, warmup_steps=50),
    )
    eval: EvalConfig = EvalConfig()

    @model_validator(mode="after")
    def _ranks_le_dim(self) -> Config:
        d = self.task.dim
        for name in ("ranks", "phase_ranks"):
            bad = [r for r in getattr(self.sweep, name) if r > d]
            if bad:
                raise ValueError(
                    f"sweep.{name} = {getattr(self.sweep, name)}: ranks {bad} > dim {d}"
                )
        return self


@dataclass
class Run:
    """One pretraining run: a prior (rank r), noise σ, condition κ; the context lengths it is
    evaluated at, and the sweeps each evaluated cell belongs to (n -> set of sweep names)."""

    rank: int
    noise: float
    cond: float
    cells: dict[int, set[str]] = field(default_factory=dict)

    @property
    def key(self) -> str:
        return f"r{self.rank}_s{self.noise:g}_k{self.cond:g}"


def plan(config: Config) -> list[Run]:
    """The pretraining runs and their evaluated cells, in a fixed order (by r, σ, κ)."""
    t, s = config.task, config.sweep
    runs: dict[tuple[int, float, float], Run] = {}

    def add(r: int, sig: float, k: float, n: int, sweep: str) -> None:
        run = runs.setdefault((r, sig, k), Run(r, sig, k))
        run.cells.setdefault(n, set()).add(sweep)

    add(t.rank, t.noise_std, t.x_cond, t.context, "base")
    for r in s.ranks:
        add(r, t.noise_std, t.x_cond, t.context, "rank")
    for sig in s.noises:
        add(t.rank, float(sig), t.x_cond, t.context, "noise")
    for k in s.conds:
        add(t.rank, t.noise_std, float(k), t.context, "cond")
    for r in s.phase_ranks:
        for n in s.phase_contexts:
            add(r, t.noise_std, t.x_cond, n, "phase")
    return [runs[k] for k in sorted(runs)]


def train_contexts(config: Config) -> list[int]:
    """Context lengths every pretraining run trains on (cycled step by step): the base n and the
    phase diagram's n, so one run serves every cell of its prior."""
    return sorted({config.task.context, *config.sweep.phase_contexts})


def _seed(seed: int, *parts: Any) -> int:
    """A stable seed from the run's seed and named parts (independent of list order)."""
    return zlib.crc32(repr((seed, *parts)).encode()) & 0x7FFFFFFF


def _spec(config: Config, run: Run) -> ILRSpec:
    t = config.task
    return ILRSpec(dim=t.dim, rank=run.rank, noise_std=run.noise, x_cond=run.cond,
                   prior_scale=t.prior_scale, w0_norm=t.w0_norm, alignment=t.alignment,
                   x_scale=t.x_scale)  # fmt: skip


def run_prior(config: Config, run: Run) -> ILRPrior:
    """The prior of a pretraining run: seeded by (seed, r) only, so the σ and κ sweeps share it."""
    return sample_ilr_prior(
        _spec(config, run), generator=make_generator(_seed(config.seed, "prior", run.rank))
    )


def gpt_method(config: Config) -> str:
    """The GPT's name in the table: its label from the config."""
    return config.gpt.model.label()


def label(config: Config) -> str:
    """The models, named from the config."""
    m = config.model
    lt = (f"linear transformer {m.n_layer}L×{m.n_head}H×{m.n_embd} ({m.loss} loss"
          f"{', LayerNorm' if m.layernorm else ''}) reading out ŵ")  # fmt: skip
    return lt + (f"; forward predictor {config.gpt.model.label()}" if config.gpt.enabled else "")
