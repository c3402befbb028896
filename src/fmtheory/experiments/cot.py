"""`cot`: a fixed-depth transformer fails serial tasks in one pass and solves them with CoT.

Sources: Feng et al. 2023; Merrill & Sabharwal 2024; Li, Liu, Zhou & Ma 2024; Liu et al. 2023;
Hahn 2020, Hahn & Rofin 2024; Kim & Suzuki 2024 (survey arXiv:2410.11444 §3–4).  The same
token-level GPT (``models/icl.py`` TokenTransformer) is trained through ``train.fit`` with the same
steps, batch and width in the answer-only and the CoT format; accuracy is of the greedily decoded
final answer.
"""

from __future__ import annotations

from typing import Annotated, Literal

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from pydantic import Field, model_validator

from fmtheory.checks import bound_check, ci_row, exact_row, not_applicable, z_check
from fmtheory.contract import (
    Check,
    Experiment,
    ExperimentConfig,
    Result,
    RunContext,
    Section,
    register_experiment,
)
from fmtheory.sections import TrainSection
from fmtheory.tasks import cot as tasks

NAME = "cot"
SOURCE = "survey arXiv:2410.11444 §3–4; Feng et al. 2023; Merrill & Sabharwal 2024; Li et al. 2024"
COT_SOLVED = 0.99  # check 1
PARITY_BAND = 0.1  # check 2: |accuracy − 1/2| ≤ 0.1
S5_CEILING = 0.5  # check 2
SOLVED = 0.90  # check 3: "solved"
COT_DROP = 0.05  # check 3: CoT accuracy may fall at most this much from smallest to largest n
CONTROL_SOLVED = 0.95  # check 4
CHANCE_Z = 4.0  # check 5: empirical label rate vs exact chance
N_CHECK = 16  # the n of checks 1, 2
L_CHECK = 2  # the depth of checks 1, 2


class TaskRun(Section):
    """One task and the formats it is trained in."""

    task: Literal["parity", "s5", "s5full", "arith", "majority"] = Field(
        description="task name (tasks/cot.py)"
    )
    formats: list[Literal["answer", "cot"]] = Field(min_length=1, description="answer and/or cot")
    ns: list[Annotated[int, Field(ge=1, le=256)]] | None = Field(
        None, min_length=1, description="this task's n values (each ≥ 1); default Config.ns"
    )
    depths: list[Annotated[int, Field(ge=1, le=12)]] | None = Field(
        None,
        min_length=1,
        description="this task's depths L (each ≥ 1, ≤ 12); default Config.depths",
    )

    @model_validator(mode="after")
    def _has_cot(self) -> TaskRun:
        if "cot" in self.formats and self.task not in tasks.COT_TASKS:
            raise ValueError(
                f"formats = {self.formats}: task {self.task!r} has no CoT format "
                f"(CoT allowed for {', '.join(tasks.COT_TASKS)})"
            )
        return self


class ModelSection(Section):
    """Pre-LayerNorm softmax GPT over tokens; depth comes from ``Config.depths``."""

    n_head: int = Field(4, ge=1, le=64)
    n_embd: int = Field(64, ge=4, le=4096)

    @model_validator(mode="after")
    def _divides(self) -> ModelSection:
        if self.n_embd % self.n_head:
            raise ValueError(f"n_embd = {self.n_embd} must be divisible by n_head = {self.n_head}")
        return self


class Config(ExperimentConfig):
    """Grid: tasks × formats × ns × depths, one model per cell, same training everywhere."""

    tasks: list[TaskRun] = Field(min_length=1)
    ns: list[Annotated[int, Field(ge=1, le=256)]] = Field(
        min_length=1, description="sequence lengths n (each ≥ 1, ≤ 256)"
    )
    depths: list[Annotated[int, Field(ge=1, le=12)]] = Field(
        min_length=1, description="layers L (each ≥ 1, ≤ 12)"
    )
    model: ModelSection = ModelSection()
    train: TrainSection
    eval_size: int = Field(1024, ge=16, le=100_000, description="held-out sequences per cell")
    eval_every: int = Field(250, ge=1, description="steps between accuracy-curve evaluations")
    curve_size: int = Field(256, ge=16, le=10_000, description="sequences per curve point")
    p: int = Field(7, ge=2, le=97, description="modulus of the arith task (a prime ≤ 97)")

    @model_validator(mode="after")
    def _prime(self) -> Config:
        if not tasks.is_prime(self.p):
            raise ValueError(f"p = {self.p}: p not prime (allowed: a prime between 2 and 97)")
        return self


def _depths(config: Config) -> list[int]:
    """Every depth trained by some task (per-task ``depths`` or ``Config.depths``), sorted."""
    return sorted({d for t in config.tasks for d in (t.depths or config.depths)})


def label(config: Config) -> str:
    m = config.model
    ds = "/".join(str(d) for d in _depths(config))
    return f"GPT {ds}L×{m.n_head}H×{m.n_embd}, softmax attention, token model"


def _model(fmt: tasks.TaskFormat, depth: int, config: Config) -> torch.nn.Module:
    from fmtheory.models.gpt import GPTConfig
    from fmtheory.models.icl import TokenTransformer

    gc = GPTConfig(n_layer=depth, n_head=config.model.n_head, n_embd=config.model.n_embd,
                   n_positions=fmt.length, attention="softmax", layernorm=True)  # fmt: skip
    return TokenTransformer(fmt.vocab_size, fmt.length, gc)


def token_losses(model: torch.nn.Module, ids: torch.Tensor, n_prompt: int) -> torch.Tensor:
    """Cross-entropy of each target token: ``(batch, n_target)``; logit t predicts token t + 1."""
    logits = model(ids[:, :-1])[:, n_prompt - 1 :]  # (B, n_target, V)
    tgt = ids[:, n_prompt:]
    return F.cross_entropy(logits.transpose(1, 2), tgt, reduction="none")


@torch.no_grad()
def greedy_correct(
    model: torch.nn.Module, batch: tasks.CotBatch, task: str, n: int, cot: bool, p: int = 7
) -> torch.Tensor:
    """Per-sequence 0/1 correctness of the greedily decoded final answer: ``(batch,)``."""
    fmt = tasks.task_format(task, n, cot=cot, p=p)
    was = model.training
    model.eval()
    ids = batch.ids[:, : fmt.n_prompt].clone()
    for _ in range(fmt.n_target):
        nxt = model(ids)[:, -1].argmax(-1)
        ids = torch.cat([ids, nxt[:, None]], dim=1)
    model.train(was)
    return (tasks.decode_answer(task, n, ids, cot=cot, p=p) == batch.answer).float()


def _cell(task: str, fmt_name: str, n: int, depth: int, config: Config, ctx: RunContext):
    from fmtheory.train.fit import fit, make_generator, seeded

    cot = fmt_name == "cot"
    p = config.p
    fmt = tasks.task_format(task, n, cot=cot, p=p)
    method = f"{task}/{fmt_name}"
    key = dict(n=n, depth=depth)
    rows: list[dict] = []
    model = seeded(lambda: _model(fmt, depth, config), config.seed + 7919 * depth + n)
    curve_gen = make_generator(config.seed + 1, ctx.device)
    curve_batch = tasks.sample(task, n, config.curve_size, cot=cot, generator=curve_gen, p=p)
    every = config.eval_every

    def loss_fn(m: torch.nn.Module, step: int, g: torch.Generator) -> torch.Tensor:
        b = tasks.sample(task, n, config.train.batch_size, cot=cot, generator=g, p=p)
        per = token_losses(m, b.ids, fmt.n_prompt)
        if step % every == 0:
            acc = greedy_correct(m, curve_batch, task, n, cot, p)
            rows.append(ci_row(method, "accuracy_curve", acc, seed=config.seed, step=step, **key))
            if cot:
                for i, v in enumerate(per.detach().mean(0).tolist()):
                    rows.append(exact_row(method, "position_loss", v, seed=config.seed,
                                          step=step, position=i + 1, **key))  # fmt: skip
        return per.mean()

    res = fit(model, loss_fn, config.train, seed=config.seed + 31 * n + depth, ctx=ctx,
              name=f"{task}-{fmt_name}-n{n}-L{depth}")  # fmt: skip
    ev = tasks.sample(task, n, config.eval_size, cot=cot, p=p,
                      generator=make_generator(config.seed + 2, ctx.device))  # fmt: skip
    acc = greedy_correct(model, ev, task, n, cot, p)
    rows.append(ci_row(method, "accuracy", acc, seed=config.seed, step=res.steps, **key))
    rows.append(ci_row(method, "accuracy_curve", acc, seed=config.seed, step=res.steps, **key))
    rows.append(exact_row(method, "trace_length", fmt.n_steps, seed=config.seed, **key))
    return rows


def run(config: Config, ctx: RunContext | None = None) -> Result:
    """Train one model per (task, format, n, depth); tidy table of accuracies and traces."""
    from fmtheory.train.fit import make_generator

    ctx = ctx or RunContext()
    rows: list[dict] = []
    seen: set[tuple[str, int]] = set()
    for tr in config.tasks:
        for n in tr.ns or config.ns:
            if (tr.task, n) not in seen:
                seen.add((tr.task, n))
                chance = tasks.chance_level(tr.task, n, config.p)
                lab = tasks.sample(tr.task, n, config.eval_size, cot=False, p=config.p,
                                   generator=make_generator(config.seed + 3))  # fmt: skip
                mode = tasks.mode_class(tr.task, n, config.p)
                rows.append(exact_row(tr.task, "chance", chance, seed=config.seed, n=n))
                rows.append(ci_row(tr.task, "label_rate", (lab.answer == mode).float(),
                                   seed=config.seed, n=n))  # fmt: skip
            for fmt_name in tr.formats:
                for depth in tr.depths or config.depths:
                    rows.extend(_cell(tr.task, fmt_name, n, depth, config, ctx))
    table = pd.DataFrame(rows)
    return Result(table=table, checks=checks(table, config), figures=figures(table))


# --------------------------------------------------------------------------------------------
def _acc(table: pd.DataFrame, method: str, n: int, depth: int) -> tuple[float, float] | None:
    t = table[(table.method == method) & (table.metric == "accuracy")]
    t = t[(t.n == n) & (t.depth == depth)]
    if t.empty:
        return None
    return float(t.value.iloc[0]), float(t.se.iloc[0])


def _max_solved(table: pd.DataFrame, method: str, depth: int) -> float:
    t = table[(table.method == method) & (table.metric == "accuracy") & (table.depth == depth)]
    t = t.sort_values("n")
    best = 0.0
    for _, r in t.iterrows():
        if r.value < SOLVED:
            break
        best = float(r.n)
    return best


def checks(table: pd.DataFrame, config: Config) -> list[Check]:
    """Checks 1–5 of the issue, read from the table alone."""
    out: list[Check] = []
    for task in ("parity", "s5"):
        claim = f"With CoT a {L_CHECK}-layer model reaches ≥ {COT_SOLVED:.0%} on {task} at n = {N_CHECK}"
        a = _acc(table, f"{task}/cot", N_CHECK, L_CHECK)
        out.append(
            not_applicable(
                claim, SOURCE, "claim", f"no {task}/cot cell at n={N_CHECK}, L={L_CHECK}"
            )
            if a is None
            else bound_check(
                claim, SOURCE, "claim", value=a[0], value_se=a[1], bound=COT_SOLVED, below=False
            )  # fmt: skip
        )
    claim = f"Without CoT, parity at n = {N_CHECK} stays within {PARITY_BAND} of chance 1/2"
    a = _acc(table, "parity/answer", N_CHECK, L_CHECK)
    out.append(
        not_applicable(claim, "Hahn 2020; Hahn & Rofin 2024", "claim", "no parity/answer cell")
        if a is None
        else bound_check(
            claim,
            "Hahn 2020; Hahn & Rofin 2024",
            "claim",
            value=abs(a[0] - 0.5),
            value_se=a[1],
            bound=PARITY_BAND,
            below=True,
            where="value = |accuracy − 1/2|",
        )  # fmt: skip
    )
    claim = f"Without CoT, S5 tracking at n = {N_CHECK} stays below {S5_CEILING:.0%}"
    a = _acc(table, "s5/answer", N_CHECK, L_CHECK)
    src = "Merrill & Sabharwal 2024; Liu et al. 2023 (Barrington)"
    out.append(
        not_applicable(claim, src, "claim", "no s5/answer cell")
        if a is None
        else bound_check(claim, src, "claim", value=a[0], value_se=a[1], bound=S5_CEILING)
    )
    out.extend(_check3(table, config))
    claim = f"The control (majority) is solved without CoT (≥ {CONTROL_SOLVED:.0%}) at every n"
    t = table[(table.method == "majority/answer") & (table.metric == "accuracy")]
    if t.empty:
        out.append(not_applicable(claim, "TC⁰ threshold gate", "claim", "no majority/answer cell"))
    else:
        worst = t.loc[t.value.idxmin()]
        out.append(bound_check(claim, "TC⁰ threshold gate", "claim", value=float(worst.value),
                               value_se=float(worst.se), bound=CONTROL_SOLVED, below=False,
                               where=f"worst cell n={int(worst.n)}, L={int(worst.depth)}"))  # fmt: skip
    out.extend(_check5(table))
    return out


def _check3(table: pd.DataFrame, config: Config) -> list[Check]:
    src = "Li et al. 2024; Merrill & Sabharwal 2024"
    c_a = "Without CoT, the largest n solved (≥ 90%) on S5 grows with depth and is bounded at fixed depth"
    c_b = f"With CoT, accuracy does not fall by more than {COT_DROP} from the smallest to largest n"
    s5a = [t for t in config.tasks if t.task == "s5" and "answer" in t.formats]
    ns = sorted({n for t in s5a for n in (t.ns or config.ns)}) or sorted(config.ns)
    ds = sorted({d for t in s5a for d in (t.depths or config.depths)}) or _depths(config)
    if len(ns) < 3 or len(ds) < 2:
        why = f"needs ≥ 3 values of n and ≥ 2 depths; this config has ns={ns}, depths={ds}"
        return [not_applicable(c_a, src, "claim", why), not_applicable(c_b, src, "claim", why)]
    out: list[Check] = []
    if table[(table.method == "s5/answer") & (table.metric == "accuracy")].empty:
        out.append(not_applicable(c_a, src, "claim", "no s5/answer cells"))
    else:
        solved = [_max_solved(table, "s5/answer", d) for d in ds]
        grows = (
            all(b >= a for a, b in zip(solved, solved[1:], strict=False)) and solved[-1] > solved[0]
        )
        bounded = solved[0] < ns[-1]
        out.append(Check(c_a, src, "claim", "nondecreasing in L, larger at max L, < max n at min L",
                         "; ".join(f"L={d}: n*={s:g}" for d, s in zip(ds, solved, strict=True)),
                         f"solved = accuracy ≥ {SOLVED}", "holds" if grows and bounded else "fails"))  # fmt: skip
    acc_rows = table[table.metric == "accuracy"]
    cot_methods = sorted(m for m in acc_rows.method.unique() if m.endswith("/cot"))
    if not cot_methods:
        out.append(not_applicable(c_b, src, "claim", "no CoT cells"))
        return out
    worst: tuple[float, float, str] | None = None
    for m in cot_methods:
        rows_m = acc_rows[acc_rows.method == m]
        for d in sorted(rows_m.depth.unique()):
            m_ns = sorted(rows_m[rows_m.depth == d].n.unique())
            if len(m_ns) < 2:
                continue
            lo, hi = _acc(table, m, m_ns[0], d), _acc(table, m, m_ns[-1], d)
            if lo is None or hi is None:
                continue
            drop = (lo[0] - hi[0], float(np.hypot(lo[1], hi[1])),
                    f"{m}, L={d:g}, n={m_ns[0]:g}→{m_ns[-1]:g}")  # fmt: skip
            if worst is None or drop[0] > worst[0]:
                worst = drop
    if worst is None:
        out.append(
            not_applicable(c_b, src, "claim", "no CoT cell at both the smallest and largest n")
        )
    else:
        out.append(bound_check(c_b, src, "claim", value=worst[0], value_se=worst[1], bound=COT_DROP,
                               where=f"largest drop: {worst[2]}"))  # fmt: skip
    return out


def _check5(table: pd.DataFrame) -> list[Check]:
    out: list[Check] = []
    tl = table[table.metric == "trace_length"]
    cot = tl[tl.method.str.endswith("/cot")]
    claim = "CoT trace length used = n steps the serial tasks require (one state per input)"
    if cot.empty:
        out.append(not_applicable(claim, "Li et al. 2024, Thm 3.3", "sanity", "no CoT cells"))
    else:
        bad = cot[cot.value != cot.n]
        out.append(Check(claim, "Li et al. 2024, Thm 3.3", "sanity", "n",
                         f"{len(cot) - len(bad)}/{len(cot)} cells equal n", "exact",
                         "holds" if bad.empty else "fails"))  # fmt: skip
    for _, r in table[table.metric == "chance"].iterrows():
        lr = table[(table.metric == "label_rate") & (table.method == r.method) & (table.n == r.n)]
        if lr.empty:
            continue
        out.append(z_check(f"Sampled answer rate of {r.method} at n={int(r.n)} = exact chance",
                           "exact (1/2, 1/5, 1/120, binomial, arith law)", "sanity", measured=float(lr.value.iloc[0]),
                           measured_se=float(lr.se.iloc[0]), predicted=float(r.value), z=CHANCE_Z))  # fmt: skip
    return out


# --------------------------------------------------------------------------------------------
def figures(table: pd.DataFrame) -> dict:
    """accuracy_vs_n, accuracy_vs_step, position_loss — from the table alone."""
    import matplotlib.pyplot as plt

    figs = {}
    acc = table[table.metric == "accuracy"]
    tnames = sorted({m.split("/")[0] for m in acc.method.unique()})
    if tnames:
        fig, axes = plt.subplots(1, len(tnames), figsize=(4 * len(tnames), 3.2), squeeze=False)
        for ax, tn in zip(axes[0], tnames, strict=True):
            for (m, d), g in acc[acc.method.str.startswith(tn + "/")].groupby(["method", "depth"]):
                g = g.sort_values("n")
                ax.errorbar(
                    g.n, g.value, yerr=1.96 * g.se, marker="o", label=f"{m.split('/')[1]} L={d}"
                )
            ch = table[(table.metric == "chance") & (table.method == tn)].sort_values("n")
            ax.plot(ch.n, ch.value, "k:", label="chance")
            ax.set(title=tn, xlabel="n", ylabel="final-answer accuracy", ylim=(0, 1.05))
            ax.legend(fontsize=7)
        fig.tight_layout()
        figs["accuracy_vs_n"] = fig
    cur = table[table.metric == "accuracy_curve"]
    if not cur.empty:
        fig, ax = plt.subplots(figsize=(5.5, 3.5))
        for (m, n, d), g in cur.groupby(["method", "n", "depth"]):
            g = g.sort_values("step")
            ax.plot(g.step, g.value, marker=".", label=f"{m} n={n} L={d}")
        ax.set(xlabel="training step", ylabel="accuracy (greedy)", ylim=(0, 1.05))
        ax.legend(fontsize=6)
        fig.tight_layout()
        figs["accuracy_vs_step"] = fig
    pl = table[table.metric == "position_loss"]
    if not pl.empty:
        groups = list(pl.groupby(["method", "n", "depth"]))
        fig, axes = plt.subplots(1, len(groups), figsize=(4 * len(groups), 3.2), squeeze=False)
        for ax, ((m, n, d), g) in zip(axes[0], groups, strict=True):
            for s, gs in g.groupby("step"):
                gs = gs.sort_values("position")
                ax.plot(gs.position, gs.value, label=f"step {s}")
            ax.set(title=f"{m} n={n} L={d}", xlabel="CoT position", ylabel="loss", yscale="log")
            ax.legend(fontsize=6)
        fig.tight_layout()
        figs["position_loss"] = fig
    return figs


def headline(table: pd.DataFrame, config: Config) -> dict[str, float]:
    acc = table[table.metric == "accuracy"]
    acc = acc[acc.n == acc.groupby("method").n.transform("max")]
    return {f"{r.method} n={r.n:g} L={r.depth:g}": float(r.value) for r in acc.itertuples()}


EXPERIMENT = register_experiment(
    Experiment(
        name=NAME,
        claim="A fixed-depth transformer fails inherently serial tasks (parity, S5 tracking) "
        "answer-only and solves them with a chain of thought of n steps.",
        source=SOURCE,
        chapter="expressivity",
        config_cls=Config,
        run=run,
        checks=checks,
        figures=figures,
        headline=headline,
        label=label,
        formula="constant-depth, log-precision transformers ⊆ TC⁰ (Merrill & Sabharwal); "
        "with T CoT steps they simulate T serial steps (Li et al. 2024); S5 word problem is NC¹-complete",
        key_figure="accuracy_vs_n",
    )
)
