"""Claim: in-context learning appears in an abrupt phase change, when a second-layer head starts to
match prefixes (an induction head); a one-layer attention-only model never makes the change (Olsson
et al. 2022, "In-context learning and induction heads", Argument 1 and Fig. 2; survey arXiv:2410.11444
§5).

Pipeline: attention-only transformers with 1 and 2 layers (``models/attn_only.py``) are trained with
the one training entry point on repeated random segments of variable period (``tasks/repeats.py``).
Every ``eval.every`` steps, on a fixed evaluation batch, the run records the loss on the first copy,
the loss on the second copy, their difference (the in-context loss, Olsson et al. §2: "loss on later
tokens minus loss on earlier tokens"), and each head's prefix-matching, previous-token and copying
scores (``probes/induction.py``) read through the hook points.

Why a variable period: with a fixed period P a one-layer model attends to position t − P + 1 by
position alone and solves the task without an induction head.
"""

from __future__ import annotations

import math
from typing import Any, Literal

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from pydantic import Field, field_validator, model_validator

from fmtheory.checks import bound_check, ci_row, exact_row, inconclusive, not_applicable
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
from fmtheory.models.hooks import run_with_cache
from fmtheory.probes.induction import copying_score, prefix_matching_score, previous_token_score
from fmtheory.sections import TrainSection
from fmtheory.tasks.repeats import sample_repeats
from fmtheory.train.fit import fit, make_generator, seeded

NAME = "induction-heads"
SOURCE = "Olsson et al. 2022, 'In-context learning and induction heads', Argument 1, Fig. 2"

#: The drop counts as made when the in-context loss falls by more than this fraction of log V.  An
#: in-context unigram model (no composition: predict uniformly among the tokens already seen) gains
#: about log V − E log(P − 1) ≈ 1.2 nats of log 64 = 4.16 for P in [8, 31]; induction gains ≈ log V.
DROP_FRACTION = 0.5
#: Abrupt: the 10%→90% part of the drop takes at most this multiple of the plateau before it (the
#: steps to reach 10%).  A smooth exponential decay from step 0 has width / onset ≈ 21.
ABRUPT_RATIO = 1.0
#: The prefix-matching jump and the loss drop are "at the same step" when their midpoints differ by
#: at most max(the loss drop's 10–90% width, SAME_STEP_EVALS evaluation intervals).
SAME_STEP_EVALS = 2
#: A jump of a head's prefix-matching score: it rises by at least this much (score in [0, 1]).
MIN_PREFIX_JUMP = 0.3
#: An induction head copies: its OV circuit's copying score is at least this (Olsson et al. report
#: induction heads with copying scores near 1).
MIN_COPYING = 0.5
#: At initialisation the first copy is unpredictable: its loss is within this of log V (nats).
INIT_LOSS_TOL = 0.15

PROBES = ("prefix-matching", "previous-token", "copying")


class TaskSection(Section):
    """Repeated random segments: x_t = s_{t mod P}, P uniform in [period_min, period_max]."""

    vocab: int = Field(64, ge=4, le=4096, description="token types V")
    seq_len: int = Field(64, ge=8, le=1024, description="sequence length T")
    period_min: int = Field(8, ge=2, le=512, description="smallest period P")
    period_max: int = Field(31, ge=2, le=512, description="largest period P")

    @model_validator(mode="after")
    def _periods(self) -> TaskSection:
        if self.period_min > self.period_max:
            raise ValueError(
                f"period_min = {self.period_min}: must be <= period_max = {self.period_max}"
            )
        if 2 * self.period_max > self.seq_len:
            raise ValueError(
                f"period_max = {self.period_max}: outside the sequence; two copies need "
                f"period_max <= seq_len / 2 = {self.seq_len // 2}"
            )
        if self.period_max > self.vocab:
            raise ValueError(
                f"period_max = {self.period_max}: must be <= vocab = {self.vocab} (distinct tokens)"
            )
        return self


class ModelSection(Section):
    """Attention-only transformers, one per depth in ``layers``."""

    layers: list[int] = Field(
        [1, 2], min_length=1, description="depths trained (1 and 2 for the checks)"
    )
    n_head: int = Field(4, ge=1, le=32, description="heads per layer")
    n_embd: int = Field(64, ge=4, le=1024, description="residual width")
    layernorm: bool = Field(True, description="pre-LayerNorm")

    @field_validator("layers")
    @classmethod
    def _layers(cls, v: list[int]) -> list[int]:
        if any(n < 1 or n > 4 for n in v) or len(set(v)) != len(v):
            raise ValueError(f"layers = {v}: distinct integers in [1, 4]")
        return sorted(v)

    @model_validator(mode="after")
    def _heads(self) -> ModelSection:
        if self.n_embd % self.n_head:
            raise ValueError(f"n_embd = {self.n_embd} must be divisible by n_head = {self.n_head}")
        return self


class EvalSection(Section):
    every: int = Field(25, ge=1, le=100_000, description="steps between measurements")
    batch: int = Field(256, ge=8, le=65536, description="fixed evaluation sequences")
    probes: list[Literal["prefix-matching", "previous-token", "copying"]] = Field(
        list(PROBES), description=f"head probes recorded: any of {', '.join(PROBES)}"
    )


class Config(ExperimentConfig):
    task: TaskSection = TaskSection()
    model: ModelSection = ModelSection()
    train: TrainSection = TrainSection()
    eval: EvalSection = EvalSection()


def model_config(config: Config, n_layer: int) -> TokenTransformerConfig:
    m = config.model
    return TokenTransformerConfig(vocab=config.task.vocab, n_ctx=config.task.seq_len, n_layer=n_layer,
                                  n_head=m.n_head, n_embd=m.n_embd, layernorm=m.layernorm)  # fmt: skip


def label(config: Config) -> str:
    m = config.model
    depths = "/".join(str(n) for n in m.layers)
    ln = "" if m.layernorm else ", no LayerNorm"
    return f"attention-only {depths}L×{m.n_head}H×{m.n_embd}{ln}"


def _method(n_layer: int) -> str:
    return f"{n_layer}-layer"


def _copy_losses(logits: torch.Tensor, tokens: torch.Tensor, period: torch.Tensor):
    """Per-sequence mean loss on the first copy (targets 1..P−1) and on the second copy (targets
    P+1..2P−1): two (B,) tensors."""
    ce = F.cross_entropy(
        logits[:, :-1].transpose(1, 2), tokens[:, 1:], reduction="none"
    )  # (B, T-1)
    j = torch.arange(1, tokens.shape[1], device=tokens.device)[None, :]  # target index, (1, T-1)
    P = period[:, None]
    first = (j <= P - 1).to(ce.dtype)
    second = ((j >= P + 1) & (j <= 2 * P - 1)).to(ce.dtype)
    return (ce * first).sum(1) / first.sum(1), (ce * second).sum(1) / second.sum(1)


@torch.no_grad()
def measure(model: TokenTransformer, tokens: torch.Tensor, period: torch.Tensor, *, step: int,
            config: Config, seed: int) -> list[dict[str, Any]]:  # fmt: skip
    """The rows of one measurement: losses (mean and se over the evaluation sequences) and probes."""
    n_layer = model.config.n_layer
    meth = _method(n_layer)
    res = run_with_cache(model, tokens, names=lambda n: n.endswith("hook_pattern"))
    first, second = _copy_losses(res.output.float(), tokens, period)
    coords = dict(step=step, n_layers=n_layer, layer=np.nan, head=np.nan)
    rows = [
        ci_row(meth, "loss_first", first, seed=seed, **coords),
        ci_row(meth, "loss_second", second, seed=seed, **coords),
        ci_row(meth, "icl_loss", second - first, seed=seed, **coords),
    ]
    probes = config.eval.probes
    for layer in range(n_layer):
        pattern = res.cache[f"blocks.{layer}.attn.hook_pattern"]  # (B, H, T, T)
        pm = prefix_matching_score(pattern, tokens) if "prefix-matching" in probes else None
        pt = previous_token_score(pattern) if "previous-token" in probes else None
        for h in range(model.config.n_head):
            hc = dict(step=step, n_layers=n_layer, layer=layer, head=h)
            if pm is not None:
                rows.append(ci_row(meth, "prefix_matching", pm[:, h], seed=seed, **hc))
            if pt is not None:
                rows.append(ci_row(meth, "previous_token", pt[:, h], seed=seed, **hc))
            if "copying" in probes:
                cs = copying_score(model.ov_circuit(layer, h))
                rows.append(exact_row(meth, "copying", cs, seed=seed, **hc))
    return rows


def run(config: Config, ctx: RunContext | None = None) -> Result:
    ctx = ctx or RunContext()
    t = config.task
    ev = make_generator(config.seed + 1_000_003, ctx.device)
    batch = sample_repeats(batch=config.eval.batch, seq_len=t.seq_len, vocab=t.vocab,
                           period_min=t.period_min, period_max=t.period_max, generator=ev)  # fmt: skip
    rows: list[dict[str, Any]] = []
    for n_layer in config.model.layers:
        mcfg = model_config(config, n_layer)
        model = seeded(lambda mcfg=mcfg: TokenTransformer(mcfg), config.seed + n_layer)
        model.to(ctx.device)

        def loss_fn(m: torch.nn.Module, step: int, g: torch.Generator) -> torch.Tensor:
            if step % config.eval.every == 0:
                rows.extend(measure(m, batch.tokens, batch.period, step=step, config=config,
                                    seed=config.seed))  # fmt: skip
            b = sample_repeats(batch=config.train.batch_size, seq_len=t.seq_len, vocab=t.vocab,
                               period_min=t.period_min, period_max=t.period_max, generator=g)  # fmt: skip
            logits = m(b.tokens)
            return F.cross_entropy(logits[:, :-1].reshape(-1, t.vocab), b.tokens[:, 1:].reshape(-1))

        result = fit(model, loss_fn, config.train, seed=config.seed + 100 + n_layer, ctx=ctx,
                     name=f"attn-only-{n_layer}L")  # fmt: skip
        rows.extend(measure(model, batch.tokens, batch.period, step=config.train.steps,
                            config=config, seed=config.seed))  # fmt: skip
        rows.append(exact_row(_method(n_layer), "steps_per_second", result.steps_per_second,
                              seed=config.seed, step=config.train.steps, n_layers=n_layer,
                              layer=np.nan, head=np.nan))  # fmt: skip
    table = pd.DataFrame(rows).drop_duplicates(subset=["method", "metric", "step", "layer", "head"],
                                               keep="last")  # fmt: skip
    table = table.reset_index(drop=True)
    return Result(table=table, checks=checks(table, config), figures=figures(table))


# ---------------------------------------------------------------------------------------------
def _curve(table: pd.DataFrame, n_layers: int, metric: str, layer: float = np.nan,
           head: float = np.nan) -> pd.DataFrame:  # fmt: skip
    sel = (table["n_layers"] == n_layers) & (table["metric"] == metric)
    if not math.isnan(layer):
        sel &= (table["layer"] == layer) & (table["head"] == head)
    return table[sel].sort_values("step")


def _crossing(steps: np.ndarray, values: np.ndarray, level: float) -> float:
    """First step where a decreasing curve reaches ``level`` (linear interpolation); NaN if never."""
    for i in range(len(values)):
        if values[i] <= level:
            if i == 0:
                return float(steps[0])
            s0, s1, v0, v1 = steps[i - 1], steps[i], values[i - 1], values[i]
            return float(s0 + (s1 - s0) * (v0 - level) / (v0 - v1))
    return float("nan")


def phase_change(table: pd.DataFrame, n_layers: int) -> dict[str, float]:
    """Of a depth's in-context-loss curve: the drop (first − last value, nats) and the steps where
    10%, 50% and 90% of it is reached."""
    c = _curve(table, n_layers, "icl_loss")
    s, v = c["step"].to_numpy(float), c["value"].to_numpy(float)
    if len(v) < 3:
        nan = float("nan")
        return dict(drop=nan, s10=nan, s50=nan, s90=nan)
    drop = v[0] - v[-1]
    out = {"drop": float(drop)}
    for q in (10, 50, 90):
        out[f"s{q}"] = _crossing(s, v, v[0] - q / 100 * drop) if drop > 0 else float("nan")
    return out


def _best_head(table: pd.DataFrame, n_layers: int) -> tuple[int, pd.DataFrame] | None:
    """The last layer's head with the highest final prefix-matching score, and its curve."""
    c = table[(table["n_layers"] == n_layers) & (table["metric"] == "prefix_matching")
              & (table["layer"] == n_layers - 1)]  # fmt: skip
    if c.empty:
        return None
    last = c[c["step"] == c["step"].max()]
    h = int(last.loc[last["value"].idxmax(), "head"])
    return h, _curve(table, n_layers, "prefix_matching", n_layers - 1, h)


def checks(table: pd.DataFrame, config: Config) -> list[Check]:
    out: list[Check] = []
    logv = math.log(config.task.vocab)
    need = DROP_FRACTION * logv
    layers = set(int(x) for x in table["n_layers"].dropna().unique())
    every = config.eval.every

    # sanity: the first copy is unpredictable at initialisation
    c = _curve(table, min(layers), "loss_first") if layers else table.iloc[:0]
    claim = "at initialisation the first copy's loss is that of a uniform guess, log V"
    if c.empty:
        out.append(not_applicable(claim, SOURCE, "sanity", "no model was trained"))
    else:
        r = c.iloc[0]
        ok = abs(r["value"] - logv) <= INIT_LOSS_TOL
        out.append(Check(claim, SOURCE, "sanity", logv, float(r["value"]),
                         f"|loss − log V| ≤ {INIT_LOSS_TOL} nats", "holds" if ok else "fails"))  # fmt: skip

    # claim 1: abrupt drop of the 2-layer model
    claim = ("the 2-layer model's in-context loss drops abruptly: the 10%→90% part of the drop "
             f"takes at most {ABRUPT_RATIO:g}× the plateau before it")  # fmt: skip
    tol = (f"drop > {DROP_FRACTION:g}·log V = {need:.2f} nats and (s90 − s10) ≤ {ABRUPT_RATIO:g}·s10; "
           f"inconclusive within {SAME_STEP_EVALS} evaluation intervals of the bound")  # fmt: skip
    pc = phase_change(table, 2) if 2 in layers else None
    if pc is None:
        out.append(not_applicable(claim, SOURCE, "claim", "no 2-layer model in model.layers", tol))
    elif not pc["drop"] > need:
        out.append(Check(claim, SOURCE, "claim", f"drop > {need:.2f} nats",
                         f"drop {pc['drop']:.3f} nats: no phase change", tol, "fails"))  # fmt: skip
    else:
        width, onset = pc["s90"] - pc["s10"], pc["s10"]
        meas = (
            f"drop {pc['drop']:.2f} nats; s10 {onset:.0f}, s90 {pc['s90']:.0f}, width {width:.0f}"
        )
        margin = ABRUPT_RATIO * onset - width
        if abs(margin) < SAME_STEP_EVALS * every:
            out.append(inconclusive(claim, SOURCE, "claim",
                                    "width and plateau differ by less than the evaluation grid",
                                    predicted=f"width ≤ {ABRUPT_RATIO:g}·onset", measured=meas,
                                    tolerance=tol))  # fmt: skip
        else:
            out.append(Check(claim, SOURCE, "claim", f"width ≤ {ABRUPT_RATIO:g}·onset", meas, tol,
                             "holds" if margin > 0 else "fails"))  # fmt: skip

    # claim 2: a layer-2 head's prefix-matching score jumps at the same step
    claim = "at the same step, a layer-2 head's prefix-matching score jumps"
    tol = (
        f"the head's score rises by ≥ {MIN_PREFIX_JUMP:g} and its half-rise step is within "
        f"max(loss 10–90% width, {SAME_STEP_EVALS} evaluation intervals) of the loss's half-drop step"
    )
    best = _best_head(table, 2) if 2 in layers else None
    if best is None or pc is None:
        out.append(not_applicable(claim, SOURCE, "claim",
                                  "needs the 2-layer model and the prefix-matching probe", tol))  # fmt: skip
    elif not pc["drop"] > need or math.isnan(pc["s50"]):
        out.append(inconclusive(claim, SOURCE, "claim", "the loss made no drop to align with",
                                tolerance=tol))  # fmt: skip
    else:
        h, hc = best
        s, v = hc["step"].to_numpy(float), hc["value"].to_numpy(float)
        rise = v[-1] - v[0]
        half = _crossing(s, -v, -(v[0] + rise / 2)) if rise > 0 else float("nan")
        window = max(pc["s90"] - pc["s10"], SAME_STEP_EVALS * every)
        meas = (f"head {h}: score {v[0]:.2f} → {v[-1]:.2f}, half-rise at step {half:.0f}; "
                f"loss half-drop at {pc['s50']:.0f}")  # fmt: skip
        ok = rise >= MIN_PREFIX_JUMP and abs(half - pc["s50"]) <= window
        out.append(Check(claim, SOURCE, "claim", f"jump at step {pc['s50']:.0f} ± {window:.0f}",
                         meas, tol, "holds" if ok else "fails"))  # fmt: skip

    # claim 3: the 1-layer model never makes the drop
    claim = "the 1-layer model never makes the drop"
    tol = f"largest drop of the in-context loss ≤ {DROP_FRACTION:g}·log V = {need:.2f} nats, judged ± 1.96 s.e."
    if 1 not in layers:
        out.append(not_applicable(claim, SOURCE, "claim", "no 1-layer model in model.layers", tol))
    else:
        c1 = _curve(table, 1, "icl_loss")
        r = c1.loc[c1["value"].idxmin()]
        drop = c1.iloc[0]["value"] - r["value"]
        out.append(bound_check(claim, SOURCE, "claim", value=float(drop), value_se=float(r["se"]),
                               bound=need, below=True,
                               where=f"lowest in-context loss at step {int(r['step'])}"))  # fmt: skip

    # claim 4: the induction head copies
    claim = "the layer-2 head that matches prefixes copies (positive OV eigenvalues)"
    tol = f"copying score ≥ {MIN_COPYING:g}"
    cp = table[(table["metric"] == "copying") & (table["n_layers"] == 2)]
    if best is None or cp.empty:
        out.append(not_applicable(claim, SOURCE, "claim", "needs the 2-layer model, prefix-matching "
                                  "and copying probes", tol))  # fmt: skip
    else:
        h = best[0]
        r = cp[(cp["layer"] == 1) & (cp["head"] == h)].sort_values("step").iloc[-1]
        out.append(Check(claim, SOURCE, "claim", f"≥ {MIN_COPYING:g}", float(r["value"]), tol,
                         "holds" if r["value"] >= MIN_COPYING else "fails"))  # fmt: skip
    return out


# ---------------------------------------------------------------------------------------------
def figures(table: pd.DataFrame) -> dict[str, Any]:
    import matplotlib.pyplot as plt

    figs: dict[str, Any] = {}
    fig, ax = plt.subplots(figsize=(7, 4.2))
    layers = sorted(int(x) for x in table["n_layers"].dropna().unique())
    for n in layers:
        c = _curve(table, n, "icl_loss")
        ax.plot(c["step"], c["value"], label=f"{n}-layer: in-context loss")
        ax.fill_between(c["step"], c["ci_low"], c["ci_high"], alpha=0.25)
    if 2 in layers:
        pc = phase_change(table, 2)
        if math.isfinite(pc["s10"]) and math.isfinite(pc["s90"]):
            ax.axvspan(pc["s10"], pc["s90"], color="0.85", label="2-layer phase change (10–90%)")
        best = _best_head(table, 2)
        if best is not None:
            ax2 = ax.twinx()
            h, hc = best
            ax2.plot(hc["step"], hc["value"], "k--", label=f"layer-2 head {h}: prefix matching")
            ax2.set_ylabel("prefix-matching score")
            ax2.set_ylim(0, 1)
            ax2.legend(loc="center right", fontsize=8)
    ax.set_xlabel("training step")
    ax.set_ylabel("loss(second copy) − loss(first copy), nats")
    ax.set_title("Induction heads: the in-context loss and the prefix-matching head")
    ax.legend(loc="lower left", fontsize=8)
    fig.tight_layout()
    figs["phase_change"] = fig

    pm = table[table["metric"] == "prefix_matching"]
    if not pm.empty:
        fig, axes = plt.subplots(1, len(layers), figsize=(4.5 * len(layers), 3.5), squeeze=False)
        for ax, n in zip(axes[0], layers, strict=True):
            for (layer, head), c in pm[pm["n_layers"] == n].groupby(["layer", "head"]):
                c = c.sort_values("step")
                ax.plot(c["step"], c["value"], label=f"L{int(layer) + 1}H{int(head)}")
            ax.set_title(f"{n}-layer model: prefix matching per head")
            ax.set_xlabel("training step")
            ax.set_ylim(0, 1)
            ax.legend(fontsize=7, ncol=2)
        fig.tight_layout()
        figs["prefix_matching"] = fig
    return figs


def headline(table: pd.DataFrame, config: Config) -> dict[str, float]:
    out: dict[str, float] = {}
    for n in sorted(int(x) for x in table["n_layers"].dropna().unique()):
        c = _curve(table, n, "icl_loss")
        out[f"icl_loss_final_{n}L"] = float(c.iloc[-1]["value"])
        if n == 2:
            out["phase_change_step"] = phase_change(table, 2)["s50"]
    return out


EXPERIMENT = register_experiment(Experiment(
    name=NAME,
    claim="In-context learning appears in an abrupt phase change when a layer-2 head learns to match "
          "prefixes; a 1-layer attention-only model never makes it.",
    source=SOURCE,
    chapter=Chapter.DYNAMICS.value,
    config_cls=Config,
    run=run,
    checks=checks,
    figures=figures,
    headline=headline,
    label=label,
    formula="induction = previous-token head (layer 1) ∘ prefix-matching copying head (layer 2); "
            "needs K-composition, impossible in one layer",
    key_figure="phase_change",
))  # fmt: skip
