"""Claim: a one-layer transformer trained with weight decay on part of the table of addition mod p
fits its training set long before it generalises (grokking), a progress measure (the Fourier
sparsity of the embedding) rises before the test accuracy does, and without weight decay the
generalisation does not come in the same budget (Power et al. 2022, "Grokking", Fig. 1; Nanda et al.
2023, "Progress measures for grokking via mechanistic interpretability", §5 and Fig. 7; survey
arXiv:2410.11444 §5).

Pipeline: one split of the p² pairs (``tasks/modular.py``), one initialisation, two runs of the one
training entry point: AdamW with the preset's weight decay, and AdamW without weight decay for
``baseline.steps_factor`` times the budget.  Every ``eval.every`` steps the run records train and
test accuracy and loss (with binomial / sample standard errors over the pairs), the Fourier sparsity
of the embedding (``probes/fourier.py``) and the parameter norm.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Literal

import pandas as pd
import torch
import torch.nn.functional as F
from pydantic import Field, model_validator

from fmtheory.checks import ci_row, exact_row, inconclusive, not_applicable, z_check
from fmtheory.contract import (
    Chapter,
    Check,
    Experiment,
    ExperimentConfig,
    Result,
    RunContext,
    Section,
    register_experiment,
)
from fmtheory.models.attn_only import TokenTransformer, TokenTransformerConfig
from fmtheory.probes.fourier import fourier_sparsity, key_frequencies, key_frequency_losses
from fmtheory.sections import TrainSection
from fmtheory.tasks.modular import modular_addition_split
from fmtheory.train.fit import fit, make_generator, seeded

NAME = "grokking"
SOURCE = (
    "Power et al. 2022, Fig. 1; Nanda et al. 2023, 'Progress measures for grokking', §5, Fig. 7"
)

#: Memorised: training accuracy at least this.  Generalised: test accuracy at least TEST_GOOD.
TRAIN_FULL = 0.999
TEST_GOOD = 0.95
#: Grokking: the test accuracy reaches TEST_GOOD at least this many times later than the training
#: accuracy reaches TRAIN_FULL (the issue's statement of Power et al.'s Fig. 1).
DELAY_FACTOR = 5.0
#: "Rises before": the progress measure's half-rise comes more than this many evaluation intervals
#: before the test accuracy's half-rise (inside that margin the evaluation grid cannot order them).
ORDER_EVALS = 2
#: A progress measure that rises by less than this (sparsity in [0, 1]) has not risen.
MIN_RISE = 0.1
#: Without weight decay, generalising takes at least this many times the steps with it (or never).
NO_WD_FACTOR = 2.0

PROBES = ("fourier-sparsity", "weight-norm", "restricted-loss")
#: The restricted loss has fallen when it drops by at least this many nats from its first value.
MIN_LOSS_FALL = 0.5


class TaskSection(Section):
    p: int = Field(53, ge=3, le=257, description="the modulus p (tokens 0..p−1, '=' is p)")
    train_fraction: float = Field(
        0.3, gt=0.0, lt=1.0, description="fraction of the p² pairs trained on"
    )


class ModelSection(Section):
    """One-layer transformer with an MLP, no LayerNorm (Nanda et al. 2023 §3)."""

    n_head: int = Field(4, ge=1, le=32)
    n_embd: int = Field(64, ge=4, le=1024, description="residual width")
    mlp_ratio: int = Field(4, ge=1, le=16, description="MLP width / residual width")

    @model_validator(mode="after")
    def _heads(self) -> ModelSection:
        if self.n_embd % self.n_head:
            raise ValueError(f"n_embd = {self.n_embd} must be divisible by n_head = {self.n_head}")
        return self


class OptimSection(Section):
    """AdamW's betas (Nanda et al. 2023 §3 use β = (0.9, 0.98))."""

    beta1: float = Field(0.9, ge=0.0, lt=1.0)
    beta2: float = Field(0.98, ge=0.0, lt=1.0)


class BaselineSection(Section):
    steps_factor: int = Field(
        1, ge=1, le=50, description="the no-weight-decay run trains this many times train.steps"
    )


class EvalSection(Section):
    every: int = Field(100, ge=1, le=1_000_000, description="steps between measurements")
    fourier_top: int = Field(5, ge=1, le=128, description="frequencies counted by the sparsity")
    probes: list[Literal["fourier-sparsity", "weight-norm", "restricted-loss"]] = Field(
        list(PROBES), description=f"progress measures recorded: any of {', '.join(PROBES)}"
    )


class Config(ExperimentConfig):
    task: TaskSection = TaskSection()
    model: ModelSection = ModelSection()
    train: TrainSection = TrainSection(weight_decay=1.0, schedule="constant")
    optim: OptimSection = OptimSection()
    baseline: BaselineSection = BaselineSection()
    eval: EvalSection = EvalSection()

    @model_validator(mode="after")
    def _top(self) -> Config:
        if self.eval.fourier_top > self.task.p // 2:
            raise ValueError(
                f"eval.fourier_top = {self.eval.fourier_top}: must be <= p // 2 = {self.task.p // 2}"
            )
        if self.train.weight_decay <= 0:
            raise ValueError(f"train.weight_decay = {self.train.weight_decay}: must be > 0 "
                             "(the run without weight decay is the baseline)")  # fmt: skip
        return self


def label(config: Config) -> str:
    m = config.model
    return f"transformer 1L×{m.n_head}H×{m.n_embd}, MLP ×{m.mlp_ratio}, no LayerNorm"


def _wd_method(config: Config) -> str:
    return f"weight decay {config.train.weight_decay:g}"


NO_WD = "no weight decay"


@torch.no_grad()
def measure(
    model: TokenTransformer, split: Any, *, step: int, method: str, config: Config
) -> list[dict]:
    p = config.task.p
    rows = []
    c = dict(step=step)
    for part, x, y in (
        ("train", split.x_train, split.y_train),
        ("test", split.x_test, split.y_test),
    ):
        logits = model(x)[:, -1, :p].double()
        rows.append(
            ci_row(method, f"{part}_acc", (logits.argmax(-1) == y).double(), seed=config.seed, **c)
        )
        rows.append(ci_row(method, f"{part}_loss", F.cross_entropy(logits, y, reduction="none"),
                           seed=config.seed, **c))  # fmt: skip
    if "fourier-sparsity" in config.eval.probes:
        fs = fourier_sparsity(model.embed.weight[:p], top=config.eval.fourier_top)
        rows.append(exact_row(method, "fourier_sparsity", fs, seed=config.seed, **c))
    if "weight-norm" in config.eval.probes:
        norm = math.sqrt(sum(float(w.double().pow(2).sum()) for w in model.parameters()))
        rows.append(exact_row(method, "weight_norm", norm, seed=config.seed, **c))
    return rows


@torch.no_grad()
def progress_losses(model: TokenTransformer, snaps: dict[int, dict[str, torch.Tensor]], split: Any,
                    *, method: str, config: Config) -> list[dict]:  # fmt: skip
    """Nanda et al. 2023 §5.1: the key frequencies are those of the final embedding (its
    ``fourier_top`` strongest); at each saved step, the restricted loss over all p² pairs and the
    excluded loss over the training pairs (``probes/fourier.py``)."""
    p = config.task.p
    freqs = key_frequencies(model.embed.weight[:p], top=config.eval.fourier_top)
    dev = split.x_train.device
    a = torch.arange(p, device=dev)
    x_all = torch.stack([a.repeat_interleave(p), a.repeat(p), torch.full((p * p,), p, device=dev)],
                        dim=1)  # (p², 3), pair index a·p + b  # fmt: skip
    mask = torch.zeros(p * p, dtype=torch.bool, device=dev)
    mask[split.x_train[:, 0] * p + split.x_train[:, 1]] = True
    final = {k: v.clone() for k, v in model.state_dict().items()}
    rows = []
    for step in sorted(snaps):
        model.load_state_dict(snaps[step])
        logits = model(x_all)[:, -1, :p].reshape(p, p, p)
        restricted, excluded = key_frequency_losses(logits, freqs=freqs, mask=None)
        _, excluded = key_frequency_losses(logits, freqs=freqs, mask=mask.reshape(p, p))
        rows.append(exact_row(method, "restricted_loss", restricted, seed=config.seed, step=step))
        rows.append(exact_row(method, "excluded_loss", excluded, seed=config.seed, step=step))
    model.load_state_dict(final)
    last = max(snaps) if snaps else 0
    for rank, k in enumerate(freqs, start=1):
        rows.append(exact_row(method, f"key_frequency_{rank}", k, seed=config.seed, step=last))
    return rows


def run(config: Config, ctx: RunContext | None = None) -> Result:
    ctx = ctx or RunContext()
    split = modular_addition_split(p=config.task.p, fraction=config.task.train_fraction,
                                   generator=make_generator(config.seed + 7))  # fmt: skip
    split = dataclasses.replace(split, **{k: getattr(split, k).to(ctx.device)
                                          for k in ("x_train", "y_train", "x_test", "y_test")})  # fmt: skip
    m = config.model
    mcfg = TokenTransformerConfig(vocab=config.task.p + 1, n_ctx=3, n_layer=1, n_head=m.n_head,
                                  n_embd=m.n_embd, layernorm=False, mlp=True,
                                  mlp_ratio=m.mlp_ratio)  # fmt: skip
    n_train = split.x_train.shape[0]
    rows: list[dict[str, Any]] = []
    base = config.train.spec()
    runs = ((_wd_method(config), base),
            (NO_WD, dataclasses.replace(base, weight_decay=0.0,
                                        steps=base.steps * config.baseline.steps_factor)))  # fmt: skip
    for method, spec in runs:
        model = seeded(lambda: TokenTransformer(mcfg), config.seed).to(ctx.device)

        snaps: dict[int, dict[str, torch.Tensor]] = {}
        keep_snaps = method != NO_WD and "restricted-loss" in config.eval.probes

        def loss_fn(mod: torch.nn.Module, step: int, g: torch.Generator, method: str = method,
                    snaps: dict = snaps, keep_snaps: bool = keep_snaps):  # fmt: skip
            if step % config.eval.every == 0:
                rows.extend(measure(mod, split, step=step, method=method, config=config))
                if keep_snaps:
                    snaps[step] = {k: v.detach().clone() for k, v in mod.state_dict().items()}
            if config.train.batch_size >= n_train:
                x, y = split.x_train, split.y_train
            else:
                idx = torch.randint(
                    0, n_train, (config.train.batch_size,), generator=g, device=g.device
                )
                x, y = split.x_train[idx], split.y_train[idx]
            return F.cross_entropy(mod(x)[:, -1, : config.task.p], y)

        opt = torch.optim.AdamW(model.parameters(), lr=spec.lr, weight_decay=spec.weight_decay,
                                betas=(config.optim.beta1, config.optim.beta2))  # fmt: skip
        res = fit(model, loss_fn, config.train, seed=config.seed, ctx=ctx, spec=spec, optimizer=opt,
                  name="wd" if method != NO_WD else "no-wd")  # fmt: skip
        rows.extend(measure(model, split, step=spec.steps, method=method, config=config))
        rows.append(exact_row(method, "steps_per_second", res.steps_per_second, seed=config.seed,
                              step=spec.steps))  # fmt: skip
        if keep_snaps:
            snaps[spec.steps] = {k: v.detach().clone() for k, v in model.state_dict().items()}
            rows.extend(progress_losses(model, snaps, split, method=method, config=config))
    table = pd.DataFrame(rows).drop_duplicates(subset=["method", "metric", "step"], keep="last")
    table = table.reset_index(drop=True)
    return Result(table=table, checks=checks(table, config), figures=figures(table))


# ---------------------------------------------------------------------------------------------
def _curve(table: pd.DataFrame, method: str, metric: str) -> pd.DataFrame:
    return table[(table["method"] == method) & (table["metric"] == metric)].sort_values("step")


def first_step(table: pd.DataFrame, method: str, metric: str, level: float,
               max_step: float = math.inf) -> float:  # fmt: skip
    """First evaluated step (≤ ``max_step``) where ``metric`` ≥ ``level``; NaN if none."""
    c = _curve(table, method, metric)
    c = c[(c["value"] >= level) & (c["step"] <= max_step)]
    return float(c["step"].iloc[0]) if len(c) else float("nan")


def half_rise(table: pd.DataFrame, method: str, metric: str) -> tuple[float, float]:
    """(first step where ``metric`` reaches half-way from its first value to its maximum, the rise)."""
    c = _curve(table, method, metric)
    if len(c) < 2:
        return float("nan"), float("nan")
    v0, vmax = float(c["value"].iloc[0]), float(c["value"].max())
    return first_step(table, method, metric, v0 + (vmax - v0) / 2), vmax - v0


def checks(table: pd.DataFrame, config: Config) -> list[Check]:
    out: list[Check] = []
    wd = _wd_method(config)
    every, steps = config.eval.every, config.train.steps
    p = config.task.p

    # sanity: chance accuracy at initialisation
    c = _curve(table, wd, "test_acc")
    claim = "at initialisation the test accuracy is chance, 1/p"
    if c.empty:
        out.append(not_applicable(claim, SOURCE, "sanity", "no run with weight decay in the table"))
    else:
        r = c.iloc[0]
        se = math.sqrt((1 / p) * (1 - 1 / p) / max(1, p * p * (1 - config.task.train_fraction)))
        out.append(z_check(claim, SOURCE, "sanity", measured=float(r["value"]), measured_se=se,
                           predicted=1 / p, where="binomial s.e. at chance"))  # fmt: skip

    s_train = first_step(table, wd, "train_acc", TRAIN_FULL)
    s_test = first_step(table, wd, "test_acc", TEST_GOOD)

    # claim 1: memorisation long before generalisation
    claim = (f"training accuracy reaches 100% at least {DELAY_FACTOR:g}× earlier than test accuracy "
             f"reaches {TEST_GOOD:.0%}")  # fmt: skip
    tol = (
        f"s_test ≥ {DELAY_FACTOR:g}·s_train (s_train known to one evaluation interval, {every} "
        f"steps: inconclusive when the ratio bound depends on it); train ≥ {TRAIN_FULL}"
    )
    meas = f"s_train {s_train:.0f}, s_test {s_test:.0f}"
    if math.isnan(s_train):
        out.append(inconclusive(claim, SOURCE, "claim", "the training set was never fitted",
                                measured=meas, tolerance=tol))  # fmt: skip
    elif math.isnan(s_test):
        out.append(inconclusive(claim, SOURCE, "claim",
                                f"the test accuracy never reached {TEST_GOOD:.0%} in {steps} steps",
                                measured=meas, tolerance=tol))  # fmt: skip
    elif s_test >= DELAY_FACTOR * s_train:
        out.append(Check(claim, SOURCE, "claim", f"≥ {DELAY_FACTOR:g}", meas, tol, "holds"))
    elif s_test < DELAY_FACTOR * max(0.0, s_train - every):
        out.append(Check(claim, SOURCE, "claim", f"≥ {DELAY_FACTOR:g}", meas, tol, "fails"))
    else:
        out.append(inconclusive(claim, SOURCE, "claim", "the evaluation grid cannot decide the ratio",
                                predicted=f"≥ {DELAY_FACTOR:g}", measured=meas, tolerance=tol))  # fmt: skip

    # claim 2: a progress measure rises before the test accuracy
    claim = "the embedding's Fourier sparsity rises before the test accuracy does"
    tol = (
        f"sparsity's half-rise more than {ORDER_EVALS} evaluation intervals before the test "
        f"accuracy's half-rise; both rise by ≥ {MIN_RISE:g}"
    )
    if "fourier-sparsity" not in config.eval.probes or _curve(table, wd, "fourier_sparsity").empty:
        out.append(
            not_applicable(
                claim, SOURCE, "claim", "the fourier-sparsity probe was not recorded", tol
            )
        )
    else:
        s_fs, r_fs = half_rise(table, wd, "fourier_sparsity")
        s_acc, r_acc = half_rise(table, wd, "test_acc")
        meas = (f"sparsity half-rise at {s_fs:.0f} (rise {r_fs:.2f}); test accuracy half-rise at "
                f"{s_acc:.0f} (rise {r_acc:.2f})")  # fmt: skip
        if not (r_fs >= MIN_RISE and r_acc >= MIN_RISE):
            out.append(inconclusive(claim, SOURCE, "claim", "one of the two curves did not rise",
                                    measured=meas, tolerance=tol))  # fmt: skip
        elif s_fs < s_acc - ORDER_EVALS * every:
            out.append(Check(claim, SOURCE, "claim", "sparsity first", meas, tol, "holds"))
        elif s_fs >= s_acc:
            out.append(Check(claim, SOURCE, "claim", "sparsity first", meas, tol, "fails"))
        else:
            out.append(inconclusive(claim, SOURCE, "claim", "the two half-rises are within the grid",
                                    predicted="sparsity first", measured=meas, tolerance=tol))  # fmt: skip

    # claim 2b: the restricted loss (key frequencies only) falls before the test accuracy rises
    claim = ("the restricted loss on the key Fourier frequencies falls before the test accuracy "
             "rises (Nanda et al. 2023 §5.1)")  # fmt: skip
    tol = (f"restricted loss's half-fall more than {ORDER_EVALS} evaluation intervals before the "
           f"test accuracy's half-rise; it falls by ≥ {MIN_LOSS_FALL:g} nats, the accuracy rises "
           f"by ≥ {MIN_RISE:g}")  # fmt: skip
    rl = _curve(table, wd, "restricted_loss")
    if "restricted-loss" not in config.eval.probes or rl.empty:
        out.append(not_applicable(claim, SOURCE, "claim", "the restricted-loss probe was not recorded",
                                  tol))  # fmt: skip
    else:
        v0, vmin = float(rl["value"].iloc[0]), float(rl["value"].min())
        fall = v0 - vmin
        half = rl[rl["value"] <= v0 - fall / 2]
        s_rl = float(half["step"].iloc[0]) if fall > 0 and len(half) else float("nan")
        s_acc, r_acc = half_rise(table, wd, "test_acc")
        meas = (f"restricted loss {v0:.2f} → min {vmin:.2f}, half-fall at {s_rl:.0f}; test "
                f"accuracy half-rise at {s_acc:.0f} (rise {r_acc:.2f})")  # fmt: skip
        if not (fall >= MIN_LOSS_FALL and r_acc >= MIN_RISE):
            out.append(inconclusive(claim, SOURCE, "claim", "one of the two curves did not move",
                                    measured=meas, tolerance=tol))  # fmt: skip
        elif s_rl < s_acc - ORDER_EVALS * every:
            out.append(Check(claim, SOURCE, "claim", "restricted loss first", meas, tol, "holds"))
        elif s_rl >= s_acc:
            out.append(Check(claim, SOURCE, "claim", "restricted loss first", meas, tol, "fails"))
        else:
            out.append(inconclusive(claim, SOURCE, "claim", "the two half-points are within the grid",
                                    predicted="restricted loss first", measured=meas,
                                    tolerance=tol))  # fmt: skip

    # claim 3: without weight decay, no generalisation in the budget (or a much longer one)
    claim = (
        f"without weight decay the test accuracy does not reach {TEST_GOOD:.0%} in the same budget, "
        f"or needs ≥ {NO_WD_FACTOR:g}× the steps"
    )
    tol = f"no-wd s_test > {steps} steps, or ≥ {NO_WD_FACTOR:g}·(wd s_test)"
    if _curve(table, NO_WD, "test_acc").empty:
        out.append(not_applicable(claim, SOURCE, "claim", "no run without weight decay", tol))
    elif math.isnan(s_test):
        out.append(inconclusive(claim, SOURCE, "claim", "the run with weight decay did not generalise either",
                                tolerance=tol))  # fmt: skip
    else:
        s_no = first_step(table, NO_WD, "test_acc", TEST_GOOD)
        longest = float(_curve(table, NO_WD, "test_acc")["step"].max())
        meas = (
            f"no-wd s_test {s_no:.0f}"
            if not math.isnan(s_no)
            else f"no-wd never reached {TEST_GOOD:.0%} in {longest:.0f} steps"
        ) + f"; wd s_test {s_test:.0f}"
        ok = math.isnan(s_no) or s_no > steps or s_no >= NO_WD_FACTOR * s_test
        out.append(Check(claim, SOURCE, "claim", f"> {steps} or ≥ {NO_WD_FACTOR:g}× {s_test:.0f}", meas,
                         tol, "holds" if ok else "fails"))  # fmt: skip
    return out


# ---------------------------------------------------------------------------------------------
def figures(table: pd.DataFrame) -> dict[str, Any]:
    import matplotlib.pyplot as plt

    figs: dict[str, Any] = {}
    methods = [m for m in table["method"].unique() if m != NO_WD] + (
        [NO_WD] if NO_WD in set(table["method"]) else []
    )
    fig, ax = plt.subplots(figsize=(7.5, 4.2))
    styles = {NO_WD: ":"}
    for m in methods:
        ls = styles.get(m, "-")
        for part, color in (("train", "C0"), ("test", "C3")):
            c = _curve(table, m, f"{part}_acc")
            ax.plot(
                c["step"].clip(lower=1), c["value"], ls, color=color, label=f"{part} accuracy, {m}"
            )
    wd = methods[0] if methods else None
    if wd is not None and wd != NO_WD:
        s_train = first_step(table, wd, "train_acc", TRAIN_FULL)
        if math.isfinite(s_train) and s_train > 0:
            ax.axvline(DELAY_FACTOR * s_train, color="k", lw=0.8,
                       label=f"{DELAY_FACTOR:g}× the step of 100% training accuracy")  # fmt: skip
        fs = _curve(table, wd, "fourier_sparsity")
        if not fs.empty:
            ax2 = ax.twinx()
            ax2.plot(
                fs["step"].clip(lower=1), fs["value"], color="C2", label="Fourier sparsity (wd)"
            )
            ax2.set_ylabel("Fourier sparsity of the embedding")
            ax2.set_ylim(0, 1.02)
            ax2.legend(loc="center right", fontsize=8)
    ax.axhline(TEST_GOOD, color="0.6", lw=0.6)
    ax.set_xscale("log")
    ax.set_xlabel("training step")
    ax.set_ylabel("accuracy")
    ax.set_ylim(0, 1.02)
    ax.set_title("Grokking: modular addition")
    ax.legend(loc="upper left", fontsize=7)
    fig.tight_layout()
    figs["grokking"] = fig

    fig, ax = plt.subplots(figsize=(6, 3.5))
    for m in methods:
        for part, color in (("train", "C0"), ("test", "C3")):
            c = _curve(table, m, f"{part}_loss")
            ax.plot(c["step"].clip(lower=1), c["value"], styles.get(m, "-"), color=color,
                    label=f"{part} loss, {m}")  # fmt: skip
    for metric, color, name in (("restricted_loss", "C2", "restricted loss (key frequencies)"),
                                ("excluded_loss", "C4", "excluded loss (train)")):  # fmt: skip
        for m in methods:
            c = _curve(table, m, metric)
            if not c.empty:
                ax.plot(
                    c["step"].clip(lower=1), c["value"], "--", color=color, label=f"{name}, {m}"
                )
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("training step")
    ax.set_ylabel("cross-entropy")
    ax.legend(fontsize=7)
    fig.tight_layout()
    figs["losses"] = fig
    return figs


def headline(table: pd.DataFrame, config: Config) -> dict[str, float]:
    wd = _wd_method(config)
    s_train = first_step(table, wd, "train_acc", TRAIN_FULL)
    s_test = first_step(table, wd, "test_acc", TEST_GOOD)
    return {"step_train_100": s_train, "step_test_95": s_test,
            "delay_ratio": s_test / s_train if s_train > 0 else float("nan"),
            "step_test_95_no_wd": first_step(table, NO_WD, "test_acc", TEST_GOOD)}  # fmt: skip


EXPERIMENT = register_experiment(Experiment(
    name=NAME,
    claim="With weight decay, a one-layer transformer memorises modular addition long before it "
          "generalises, a Fourier progress measure rises first, and without weight decay it does not "
          "generalise in the same budget.",
    source=SOURCE,
    chapter=Chapter.DYNAMICS.value,
    config_cls=Config,
    run=run,
    checks=checks,
    figures=figures,
    headline=headline,
    label=label,
    formula="generalising circuit: logits(c | a, b) ∝ Σ_k cos(ω_k (a + b − c)), ω_k = 2πk/p for a "
            "few key frequencies k (Nanda et al. 2023 §4)",
    key_figure="grokking",
))  # fmt: skip
