"""Claim: an "emergent" ability can be a mirage of the metric.  Exact match on an answer of L tokens
rises abruptly while per-token accuracy and loss rise smoothly, and exact match is predicted by
per-token accuracy as acc^L (Schaeffer, Miranda & Koyejo 2023, "Are emergent abilities of large
language models a mirage?", §2, Eq. 1–3 and Fig. 2; survey arXiv:2410.11444 §5).

Pipeline: a one-layer attention-only transformer (``models/attn_only.py``) learns a fixed random
permutation of V tokens from chains x_{t+1} = perm[x_t] started at a Zipf-distributed token
(``tasks/chains.py``), through the one training entry point.  Every ``eval.every`` steps, on a fixed
evaluation batch, the run records the per-token accuracy and loss on the L answer tokens
(teacher-forced) and the exact match (all L right), with standard errors over chains.

The theory (Schaeffer et al. Eq. 3): if the L tokens are right independently with probability a, exact
match = a^L, a steep function of a; its delta-method standard error is L a^{L−1} se(a).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from pydantic import Field, model_validator

from fmtheory.checks import Z_CHECK, ci_row, exact_row, inconclusive, not_applicable, z_check
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
from fmtheory.probes.emergence import (
    AIC_MARGIN,
    HALF_LEARNED,
    answer_scores,
    power_prediction,
    rise_fraction,
    rise_points,
    sigmoid_vs_smooth,
)
from fmtheory.sections import TrainSection
from fmtheory.tasks.chains import random_permutation, sample_chains
from fmtheory.train.fit import fit, make_generator, seeded

NAME = "emergence-mirage"
SOURCE = "Schaeffer, Miranda & Koyejo 2023, §2 Eq. 1–3, Fig. 2"


class TaskSection(Section):
    vocab: int = Field(256, ge=4, le=65536, description="token types V (the permutation's size)")
    answer_len: int = Field(8, ge=2, le=256, description="answer length L (tokens after the start)")
    zipf_alpha: float = Field(1.0, ge=0.0, le=5.0, description="Zipf exponent of the start token")


class ModelSection(Section):
    n_head: int = Field(2, ge=1, le=32)
    n_embd: int = Field(32, ge=4, le=1024, description="residual width")

    @model_validator(mode="after")
    def _heads(self) -> ModelSection:
        if self.n_embd % self.n_head:
            raise ValueError(f"n_embd = {self.n_embd} must be divisible by n_head = {self.n_head}")
        return self


class EvalSection(Section):
    every: int = Field(25, ge=1, le=100_000, description="steps between measurements")
    batch: int = Field(2048, ge=16, le=1_000_000, description="fixed evaluation chains")


class Config(ExperimentConfig):
    task: TaskSection = TaskSection()
    model: ModelSection = ModelSection()
    train: TrainSection = TrainSection()
    eval: EvalSection = EvalSection()


def label(config: Config) -> str:
    m = config.model
    return f"attention-only 1L×{m.n_head}H×{m.n_embd}"


METHOD = "model"


@torch.no_grad()
def measure(
    model: TokenTransformer, chains: torch.Tensor, *, step: int, config: Config
) -> list[dict]:
    scores = answer_scores(model(chains[:, :-1]), chains[:, 1:])  # position t predicts t + 1
    rows = [ci_row(METHOD, name, scores[name], seed=config.seed, step=step)
            for name in ("token_acc", "token_loss", "exact_match")]  # fmt: skip
    em, em_se = power_prediction(rows[0]["value"], rows[0]["se"], config.task.answer_len)
    rows.append(exact_row("theory acc^L", "exact_match", em, se=em_se, seed=config.seed, step=step))
    return rows


def run(config: Config, ctx: RunContext | None = None) -> Result:
    ctx = ctx or RunContext()
    t = config.task
    perm = random_permutation(t.vocab, generator=make_generator(config.seed + 11, ctx.device))
    chains = sample_chains(perm=perm, batch=config.eval.batch, length=t.answer_len + 1,
                           zipf_alpha=t.zipf_alpha,
                           generator=make_generator(config.seed + 1_000_003, ctx.device))  # fmt: skip
    mcfg = TokenTransformerConfig(vocab=t.vocab, n_ctx=t.answer_len + 1, n_layer=1,
                                  n_head=config.model.n_head, n_embd=config.model.n_embd)  # fmt: skip
    model = seeded(lambda: TokenTransformer(mcfg), config.seed).to(ctx.device)
    rows: list[dict[str, Any]] = []

    def loss_fn(m: torch.nn.Module, step: int, g: torch.Generator) -> torch.Tensor:
        if step % config.eval.every == 0:
            rows.extend(measure(m, chains, step=step, config=config))
        x = sample_chains(perm=perm, batch=config.train.batch_size, length=t.answer_len + 1,
                          zipf_alpha=t.zipf_alpha, generator=g)  # fmt: skip
        logits = m(x[:, :-1])
        return F.cross_entropy(logits.reshape(-1, t.vocab), x[:, 1:].reshape(-1))

    res = fit(model, loss_fn, config.train, seed=config.seed, ctx=ctx, name="chains")
    rows.extend(measure(model, chains, step=config.train.steps, config=config))
    rows.append(exact_row(METHOD, "steps_per_second", res.steps_per_second, seed=config.seed,
                          step=config.train.steps))  # fmt: skip
    table = pd.DataFrame(rows).drop_duplicates(subset=["method", "metric", "step"], keep="last")
    table = table.reset_index(drop=True)
    return Result(table=table, checks=checks(table, config), figures=figures(table))


# ---------------------------------------------------------------------------------------------
def _curve(table: pd.DataFrame, method: str, metric: str) -> pd.DataFrame:
    return table[(table["method"] == method) & (table["metric"] == metric)].sort_values("step")


def rise_width(table: pd.DataFrame, metric: str) -> tuple[float, float, float]:
    """(s10, s90, s90 − s10) of ``metric`` along training (``probes.emergence.rise_points``)."""
    c = _curve(table, METHOD, metric)
    return rise_points(c["step"].to_numpy(float), c["value"].to_numpy(float))


def model_comparison(table: pd.DataFrame, metric: str) -> dict[str, float]:
    """Sigmoid against smooth saturating fit of ``metric`` along training
    (``probes.emergence.sigmoid_vs_smooth``)."""
    c = _curve(table, METHOD, metric)
    return sigmoid_vs_smooth(c["step"].to_numpy(float), c["value"].to_numpy(float),
                             c["se"].to_numpy(float))  # fmt: skip


def checks(table: pd.DataFrame, config: Config) -> list[Check]:
    out: list[Check] = []
    L = config.task.answer_len

    # claim 1: exact match shows nothing while per-token accuracy is already half learned
    claim = (
        "exact match looks abrupt while per-token accuracy is smooth: when exact match has made "
        f"10% of its rise, per-token accuracy has already made ≥ {HALF_LEARNED:.0%} of its own"
    )
    tol = f"token accuracy's rise fraction at exact match's 10% step ≥ {HALF_LEARNED:g}"
    tok = _curve(table, METHOD, "token_acc").set_index("step")["value"]
    em_curve = _curve(table, METHOD, "exact_match").set_index("step")["value"]
    steps = tok.index.intersection(em_curve.index).to_numpy(float)
    s10_em, frac, resolved = rise_fraction(steps, tok.loc[steps].to_numpy(float),
                                 em_curve.loc[steps].to_numpy(float))  # fmt: skip
    if not math.isfinite(frac):
        out.append(
            not_applicable(claim, SOURCE, "claim", "a metric did not rise during training", tol)
        )
    elif not resolved:
        out.append(inconclusive(claim, SOURCE, "claim",
                                f"exact match made 10% of its rise (step {s10_em:.0f}) before the "
                                "second measurement: measure more often", tolerance=tol))  # fmt: skip
    else:
        meas = f"exact match 10% at step {s10_em:.0f}; per-token accuracy had made {frac:.0%} of its rise"
        out.append(Check(claim, SOURCE, "claim", f"≥ {HALF_LEARNED:.0%}", meas, tol,
                         "holds" if frac >= HALF_LEARNED else "fails"))  # fmt: skip

    # claim 2: exact match = acc^L at every measured step
    claim = f"exact match equals per-token accuracy to the power L = {L} (independent tokens)"
    em = _curve(table, METHOD, "exact_match").set_index("step")
    th = _curve(table, "theory acc^L", "exact_match").set_index("step")
    common = em.index.intersection(th.index)
    if len(common) == 0:
        out.append(not_applicable(claim, SOURCE, "claim", "no exact-match rows"))
    else:
        # a sample of all-0 or all-1 exact matches has sample s.e. 0: floor it at one chain's worth
        em_se = em.loc[common, "se"].clip(lower=1.0 / config.eval.batch)
        z = (em.loc[common, "value"] - th.loc[common, "value"]).abs() / np.hypot(
            em_se, th.loc[common, "se"])  # fmt: skip
        worst = z.idxmax()
        out.append(z_check(claim, SOURCE, "claim", measured=float(em.loc[worst, "value"]),
                           measured_se=float(em_se.loc[worst]),
                           predicted=float(th.loc[worst, "value"]),
                           predicted_se=float(th.loc[worst, "se"]), z=Z_CHECK,
                           where=f"the worst of {len(common)} steps, step {int(worst)}"))  # fmt: skip

    # claim 3: no jump under the linear metric
    claim = (
        "under the linear metric (per-token accuracy) there is no jump: a sigmoid does not "
        "beat a smooth saturating curve"
    )
    tol = f"AIC(smooth) − AIC(sigmoid) < {AIC_MARGIN:g} for per-token accuracy"
    mc = model_comparison(table, "token_acc")
    me = model_comparison(table, "exact_match")
    if not math.isfinite(mc["delta"]):
        out.append(not_applicable(claim, SOURCE, "claim", "the fits did not converge", tol))
    else:
        meas = (f"per-token accuracy ΔAIC = {mc['delta']:.1f} "
                f"({'sigmoid' if mc['delta'] > 0 else 'smooth'} wins); exact match ΔAIC = "
                f"{me['delta']:.1f}")  # fmt: skip
        out.append(Check(claim, SOURCE, "claim", f"ΔAIC < {AIC_MARGIN:g}", meas, tol,
                         "holds" if mc["delta"] < AIC_MARGIN else "fails"))  # fmt: skip
    return out


# ---------------------------------------------------------------------------------------------
def figures(table: pd.DataFrame) -> dict[str, Any]:
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.2))
    for metric, name, color in (("token_acc", "per-token accuracy", "C0"),
                                ("exact_match", "exact match", "C3")):  # fmt: skip
        c = _curve(table, METHOD, metric)
        ax.plot(c["step"], c["value"], color=color, label=name)
        ax.fill_between(c["step"], c["ci_low"], c["ci_high"], color=color, alpha=0.2)
    th = _curve(table, "theory acc^L", "exact_match")
    ax.plot(th["step"], th["value"], "k--", label="predicted exact match = acc^L")
    ax2 = ax.twinx()
    c = _curve(table, METHOD, "token_loss")
    ax2.plot(c["step"], c["value"], color="C2", alpha=0.6, label="per-token loss")
    ax2.set_ylabel("loss (nats)")
    ax2.legend(loc="center right", fontsize=8)
    ax.set_xlabel("training step")
    ax.set_ylabel("accuracy")
    ax.set_ylim(0, 1.02)
    ax.set_title("Emergence mirage: exact match vs per-token accuracy")
    ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    return {"mirage": fig}


def headline(table: pd.DataFrame, config: Config) -> dict[str, float]:
    return {"step_exact_match_10": rise_width(table, "exact_match")[0],
            "step_token_acc_10": rise_width(table, "token_acc")[0],
            "delta_aic_token_acc": model_comparison(table, "token_acc")["delta"]}  # fmt: skip


EXPERIMENT = register_experiment(Experiment(
    name=NAME,
    claim="Exact match on an L-token answer jumps while per-token accuracy and loss improve smoothly; "
          "exact match ≈ acc^L, so the jump is made by the metric.",
    source=SOURCE,
    chapter=Chapter.DYNAMICS.value,
    config_cls=Config,
    run=run,
    checks=checks,
    figures=figures,
    headline=headline,
    label=label,
    formula="exact match = a^L for per-token accuracy a (Schaeffer et al. 2023, Eq. 3)",
    key_figure="mirage",
))  # fmt: skip
