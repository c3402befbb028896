"""Config sections shared by experiments: the GPT decoder, its training, the curriculum.

One module, so no experiment imports another's config.  Every default is spelled out; the attention
of a GPT has no default (a preset must say which), so a model is always what its label says.
Torch-free: :meth:`TrainSection.spec` imports the training loop only when called.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Literal

from pydantic import AfterValidator, Field, model_validator

from fmtheory.contract import Section

if TYPE_CHECKING:
    from fmtheory.train.loop import TrainSpec

__all__ = [
    "CurriculumSection",
    "FixedTrainSection",
    "GPTRunSection",
    "GPTSection",
    "LSATrainSection",
    "TrainSection",
    "gpt_label",
]


class GPTSection(Section):
    """A GPT-style decoder for prompts of (x, y) pairs (``models/icl.py``)."""

    n_layer: int = Field(4, ge=1, le=48, description="transformer blocks")
    n_head: int = Field(4, ge=1, le=64, description="attention heads per block")
    n_embd: int = Field(64, ge=4, le=4096, description="residual-stream width")
    attention: Literal["softmax", "linear"] = Field(
        description="softmax (Garg et al. 2022) or linear (Katharopoulos et al. 2020): required"
    )
    layernorm: bool = Field(True, description="pre-LayerNorm blocks")
    mask: Literal["causal", "sliding"] = "causal"
    window: int | None = Field(None, ge=1, description="keys seen per query when mask = sliding")
    layout: Literal["carry", "pairs", "interleaved"] = Field(
        "carry",
        description="carry: token k = (x_{k-1}, y_{k-1}, x_k); pairs: (x_k, y_{k-1}); "
        "interleaved: Garg et al.'s x, y, x, y (see models/icl.py)",
    )

    @model_validator(mode="after")
    def _heads_divide(self) -> GPTSection:
        if self.n_embd % self.n_head:
            raise ValueError(f"n_embd = {self.n_embd} must be divisible by n_head = {self.n_head}")
        if self.mask == "sliding" and self.window is None:
            raise ValueError("mask = sliding needs a window")
        return self

    def label(self) -> str:
        """e.g. "GPT 4L×4H×64, linear attention, carry layout" (see :func:`gpt_label`)."""
        return gpt_label(self)


def gpt_label(m: GPTSection) -> str:
    """The model's name in every table, legend and report, built from its config."""
    extra = []
    if not m.layernorm:
        extra.append("no LayerNorm")
    if m.mask == "sliding":
        extra.append(f"window {m.window}")
    tail = "".join(f", {e}" for e in extra)
    return (
        f"GPT {m.n_layer}L×{m.n_head}H×{m.n_embd}, {m.attention} attention, {m.layout} layout{tail}"
    )


class CurriculumSection(Section):
    """Garg et al. 2022 §3: start with fewer active dimensions / points, grow every ``every`` steps."""

    dims_start: int | None = Field(None, ge=1, description="active dims at step 0 (None: off)")
    dims_inc: int = Field(1, ge=1)
    points_start: int | None = Field(None, ge=1, description="points at step 0 (None: off)")
    points_inc: int = Field(2, ge=1)
    every: int = Field(200, ge=1, description="steps between increments")

    def at(self, step: int, *, dims: int, points: int) -> tuple[int, int]:
        """(active dims, points) at ``step`` for a task of ``dims`` dimensions and ``points`` pairs."""
        k = step // self.every
        d = dims if self.dims_start is None else min(dims, self.dims_start + k * self.dims_inc)
        p = (
            points
            if self.points_start is None
            else min(points, self.points_start + k * self.points_inc)
        )
        return d, p


class TrainSection(Section):
    """AdamW with linear warm-up and cosine (or constant) decay; see ``train/loop.py``."""

    steps: int = Field(3000, ge=0, le=10_000_000)
    batch_size: int = Field(128, ge=1, le=65536)
    lr: float = Field(2e-3, gt=0.0, le=1.0)
    warmup_steps: int = Field(100, ge=0)
    schedule: Literal["cosine", "constant"] = "cosine"
    min_lr_ratio: float = Field(0.05, ge=0.0, le=1.0)
    weight_decay: float = Field(0.0, ge=0.0)
    grad_clip: float | None = Field(1.0, gt=0.0)
    checkpoint_every: int = Field(250, ge=1)
    curriculum: CurriculumSection = CurriculumSection()

    def spec(self) -> TrainSpec:
        """The training loop's hyperparameters (warm-up capped at the number of steps)."""
        from fmtheory.train.loop import TrainSpec

        return TrainSpec(
            steps=self.steps,
            lr=self.lr,
            warmup_steps=min(self.warmup_steps, self.steps),
            schedule=self.schedule,
            min_lr_ratio=self.min_lr_ratio,
            weight_decay=self.weight_decay,
            grad_clip=self.grad_clip,
            checkpoint_every=self.checkpoint_every,
        )


def _no_curriculum(v: TrainSection) -> TrainSection:
    c = v.curriculum
    if c.dims_start is not None or c.points_start is not None:
        raise ValueError("curriculum is not supported here: prompts have a fixed size")
    return v


#: a :class:`TrainSection` whose curriculum must stay off (experiments with fixed-size prompts)
FixedTrainSection = Annotated[TrainSection, AfterValidator(_no_curriculum)]


class GPTRunSection(Section):
    """A GPT decoder trained next to another model on the same prompts (a forward predictor at
    every position).  Defaults: 4 layers, 2 heads, width 64, softmax attention, LayerNorm, causal
    mask, "carry" tokens; 2500 AdamW steps, batch 64, lr 1e-3, 100 warm-up steps, cosine decay to 5%,
    clipping at 1.  Tables name it from its config (:meth:`GPTSection.label`)."""

    enabled: bool = True
    model: GPTSection = GPTSection(n_layer=4, n_head=2, n_embd=64, attention="softmax")
    train: TrainSection = TrainSection(steps=2500, batch_size=64, lr=1e-3, warmup_steps=100)


class LSATrainSection(Section):
    """Training of linear self-attention stacks (and, with ``fit_*``, of GD step sizes): AdamW,
    cosine decay."""

    steps: int = Field(2000, ge=0, le=10_000_000)
    batch_size: int = Field(256, ge=1, le=65536)
    lr: float = Field(0.01, gt=0.0, le=1.0)
    warmup_steps: int = Field(50, ge=0)
    min_lr_ratio: float = Field(0.0, ge=0.0, le=1.0)
    grad_clip: float | None = Field(
        1.0, gt=0.0, description="max gradient norm (deep LSA stacks diverge without it)"
    )
    checkpoint_every: int = Field(500, ge=1)
    fit_steps: int = Field(2500, ge=0, le=10_000_000, description="steps to fit GD step sizes")
    fit_lr: float = Field(0.05, gt=0.0, le=1.0)

    def spec(self, *, steps: int | None = None, lr: float | None = None) -> TrainSpec:
        """The loop's hyperparameters, for ``steps`` / ``lr`` (default: this section's)."""
        from fmtheory.train.loop import TrainSpec

        steps = self.steps if steps is None else steps
        return TrainSpec(
            steps=steps,
            lr=self.lr if lr is None else lr,
            warmup_steps=min(self.warmup_steps, steps),
            schedule="cosine",
            min_lr_ratio=self.min_lr_ratio,
            grad_clip=self.grad_clip,
            checkpoint_every=self.checkpoint_every,
        )
