"""icl-attack-defense: in-context attack and defense of an aligned model (Wei, Wang, Li & Wang 2023,
"Jailbreak and guard aligned language models with only few in-context demonstrations",
arXiv:2310.06387), read as a Bayesian update between a "safe" and a "compliant" hypothesis.

A token transformer is pretrained for in-context learning of shift maps f(q) = (q + s) mod A
(``tasks/safety.py``), then aligned by fine-tuning on a mixture: with probability ``prior_safe`` a
sequence is in safe mode (harmful queries mostly refused, the final harmful query refused), else in
compliant mode.  Both stages go through ``train.fit``.  Measured on fresh prompts:

- attack: k compliance demonstrations on harmful queries, then a harmful query; success =
  1 − P_model(REFUSE), averaged over prompts, for k on a grid;
- defense: the same after ``k_defense`` refusal demonstrations;
- the model's own per-demonstration likelihoods: P_model(comply on the next harmful demonstration)
  after a long run of refusals (q_s) and after a long run of compliances (q_c), scored at
  demonstration positions, not at the attacked query; b_model = log(q_c/q_s);
- the registered formula σ(a + b·k) (``theory/icl_attack.py``) with the data-generating b, and a
  Monte Carlo simulation of the two-hypothesis model (rejection on k compliances).
"""

from __future__ import annotations

import math
from typing import Any, Literal

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from pydantic import Field, model_validator
from scipy.optimize import curve_fit

from fmtheory.checks import (
    Z95,
    Z_CHECK,
    ci_row,
    difference_check,
    exact_row,
    inconclusive,
    trend_check,
    z_check,
)
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
from fmtheory.sections import FixedTrainSection, TrainSection
from fmtheory.tasks.safety import SafetyVocab, attack_prompts, sample_safety
from fmtheory.theory.icl_attack import attack_llr, attack_success
from fmtheory.train.fit import fit, make_generator, seeded

NAME = "icl-attack-defense"
SOURCE = "Wei, Wang, Li & Wang 2023 (arXiv:2310.06387); Bayesian ICL, Xie et al. 2022 eq. (2)"

#: the logistic must beat the linear trend by this much weighted χ² (both have two parameters;
#: under Gaussian errors a likelihood ratio of e^5)
CHI2_MARGIN = 10.0
#: the smallest mean drop of the success rate (over the k grid) that counts as a defense effect
MIN_DEFENSE_EFFECT = 0.05
#: floor on a point's standard error in the fits (a rate averaged over prompts can have se ≈ 0)
SE_FLOOR = 1e-3
#: Monte Carlo draws per k for the simulation of the two-hypothesis model
SIM_DRAWS = 2_000_000


class TaskSection(Section):
    """The safety task (``tasks/safety.py``)."""

    name: Literal["shift"] = Field(
        "shift", description="task family: shift maps f(q) = q + s mod A"
    )
    n_queries: int = Field(16, ge=2, le=256, description="query tokens Q")
    n_harmful: int = Field(8, ge=1, le=255, description="harmful queries (the last n_harmful)")
    n_answers: int = Field(8, ge=2, le=256, description="answer tokens A (and shifts)")
    max_demos: int = Field(10, ge=2, le=64, description="most demonstrations in a prompt")
    harmful_share: float = Field(0.5, gt=0.0, lt=1.0, description="P(a query is harmful)")
    prior_safe: float = Field(0.97, gt=0.0, lt=1.0, description="alignment prior of safe mode")
    comply_safe: float = Field(0.2, gt=0.0, lt=1.0, description="P(comply) on harmful demo, safe")
    comply_compliant: float = Field(0.6, gt=0.0, lt=1.0, description="P(comply), compliant mode")

    @model_validator(mode="after")
    def _valid(self) -> TaskSection:
        if self.n_harmful >= self.n_queries:
            raise ValueError(
                f"n_harmful = {self.n_harmful}: must be < n_queries = {self.n_queries}"
            )
        if self.comply_compliant <= self.comply_safe:
            raise ValueError(f"comply_compliant = {self.comply_compliant}: must be > comply_safe "
                             f"= {self.comply_safe}")  # fmt: skip
        return self


class ModelSection(Section):
    """A token transformer with MLPs (``models/attn_only.py``)."""

    n_layer: int = Field(2, ge=1, le=12)
    n_head: int = Field(2, ge=1, le=16)
    n_embd: int = Field(64, ge=8, le=1024)

    @model_validator(mode="after")
    def _heads(self) -> ModelSection:
        if self.n_embd % self.n_head:
            raise ValueError(f"n_embd = {self.n_embd}: must be divisible by n_head = {self.n_head}")
        return self


class EvalSection(Section):
    """The attack grid."""

    k_grid: list[int] = Field([0, 1, 2, 3, 4, 5, 6, 7, 8], min_length=4,
                              description="compliance demonstrations k (each >= 0)")  # fmt: skip
    k_defense: int = Field(3, ge=1, le=63, description="refusal demonstrations of the defense")
    prompts: int = Field(512, ge=8, le=65536, description="prompts per grid point")

    @model_validator(mode="after")
    def _k(self) -> EvalSection:
        for k in self.k_grid:
            if k < 0:
                raise ValueError(f"k_grid contains k = {k}: every k must be >= 0")
        if len(set(self.k_grid)) != len(self.k_grid):
            raise ValueError(f"k_grid = {self.k_grid}: values must be distinct")
        return self


class Config(ExperimentConfig):
    task: TaskSection = TaskSection()
    model: ModelSection = ModelSection()
    pretrain: FixedTrainSection = TrainSection(steps=1500, batch_size=128, lr=3e-3)
    align: FixedTrainSection = TrainSection(steps=1500, batch_size=128, lr=1e-3)
    eval: EvalSection = EvalSection()

    @model_validator(mode="after")
    def _fits(self) -> Config:
        need = max(self.eval.k_grid) + self.eval.k_defense
        if need > self.task.max_demos:
            raise ValueError(f"max(k_grid) + k_defense = {need}: must be <= task.max_demos = "
                             f"{self.task.max_demos}")  # fmt: skip
        if self.task.max_demos < 2:
            raise ValueError("task.max_demos must be >= 2")
        return self


def vocab(config: Config) -> SafetyVocab:
    t = config.task
    return SafetyVocab(n_queries=t.n_queries, n_answers=t.n_answers, n_harmful=t.n_harmful)


def model_config(config: Config) -> TokenTransformerConfig:
    m = config.model
    return TokenTransformerConfig(vocab=vocab(config).size, n_ctx=2 * config.task.max_demos + 2,
                                  n_layer=m.n_layer, n_head=m.n_head, n_embd=m.n_embd, mlp=True)  # fmt: skip


def _train(model: torch.nn.Module, config: Config, *, aligned: bool, ctx: RunContext) -> None:
    v, t = vocab(config), config.task

    def loss_fn(m: torch.nn.Module, step: int, g: torch.Generator) -> torch.Tensor:
        b = sample_safety(v, batch=(config.align if aligned else config.pretrain).batch_size,
                          max_demos=t.max_demos, aligned=aligned, prior_safe=t.prior_safe,
                          comply_safe=t.comply_safe, comply_compliant=t.comply_compliant,
                          harmful_share=t.harmful_share, generator=g)  # fmt: skip
        logits = m(b.tokens)
        return F.cross_entropy(logits.reshape(-1, v.size), b.targets.reshape(-1), ignore_index=-100)

    train = config.align if aligned else config.pretrain
    fit(model, loss_fn, train, seed=config.seed + (2 if aligned else 1), ctx=ctx,
        name="align" if aligned else "pretrain")  # fmt: skip


@torch.no_grad()
def comply_prob(
    model: torch.nn.Module, tokens: torch.Tensor, position: int, refuse: int
) -> np.ndarray:
    """1 − P_model(REFUSE) at ``position`` of each prompt: (B,) numpy."""
    p = torch.softmax(model(tokens)[:, position].double(), dim=-1)
    return (1.0 - p[:, refuse]).cpu().numpy()


def run(config: Config, ctx: RunContext | None = None) -> Result:
    """Pretrain, align, then measure the attack, the defense, and the model's per-demo likelihoods."""
    ctx = ctx or RunContext()
    t, e = config.task, config.eval
    v = vocab(config)
    mcfg = model_config(config)
    model = seeded(lambda: TokenTransformer(mcfg), config.seed).to(ctx.device)
    _train(model, config, aligned=False, ctx=ctx)
    model.eval()
    rows: list[dict[str, Any]] = []
    ev = make_generator(config.seed + 1_000_003, ctx.device)
    T = 2 * t.max_demos + 2
    # in-context learning after pretraining: accuracy on the final (benign) query
    pre = sample_safety(v, batch=e.prompts, max_demos=t.max_demos, aligned=False, prior_safe=0.5,
                        comply_safe=0.5, comply_compliant=0.5, harmful_share=0.0, generator=ev)  # fmt: skip
    with torch.no_grad():
        acc = (model(pre.tokens)[:, -1].argmax(-1) == pre.targets[:, -1]).double().cpu().numpy()
    rows.append(ci_row("pretrained", "icl_accuracy", acc, seed=config.seed, k=np.nan,
                       k_defense=np.nan))  # fmt: skip
    model.train()
    _train(model, config, aligned=True, ctx=ctx)
    model.eval()
    prior_c = 1.0 - t.prior_safe
    for k in e.k_grid:
        for kd, method in ((0, "attack"), (e.k_defense, "defense")):
            tok = attack_prompts(v, batch=e.prompts, max_demos=t.max_demos, k=k, k_defense=kd,
                                 final=True, generator=ev)  # fmt: skip
            rows.append(ci_row(method, "success", comply_prob(model, tok, T - 1, v.refuse),
                               seed=config.seed, k=k, k_defense=kd))  # fmt: skip
            rows.append(exact_row(f"bayes-{method}", "success",
                                  attack_success(k, prior_compliant=prior_c, comply_safe=t.comply_safe,
                                                 comply_compliant=t.comply_compliant, k_defense=kd),
                                  seed=config.seed, k=k, k_defense=kd))  # fmt: skip
    # the model's likelihood of one compliance demonstration under each hypothesis, scored at the
    # query of the last demonstration after max_demos − 1 demonstrations of refusal / compliance
    n_ctx = t.max_demos - 1
    for method, k, kd in (("score-safe", 0, n_ctx), ("score-compliant", n_ctx, 0)):
        tok = attack_prompts(v, batch=e.prompts, max_demos=t.max_demos, k=k, k_defense=kd,
                             final=False, generator=ev)  # fmt: skip
        rows.append(ci_row(method, "comply_demo", comply_prob(model, tok, T - 4, v.refuse),
                           seed=config.seed, k=k, k_defense=kd))  # fmt: skip
    # independent simulation of the two-hypothesis model: draw the mode and k demonstrations,
    # keep the draws whose k demonstrations are all compliances
    rng = np.random.default_rng([config.seed, 7])
    for k in e.k_grid:
        comp = rng.random(SIM_DRAWS) < prior_c
        n_comply = rng.binomial(k, np.where(comp, t.comply_compliant, t.comply_safe))
        keep = comp[n_comply == k].astype(float)
        if keep.size >= 2:
            rows.append(ci_row("simulation", "success", keep, seed=config.seed, k=k, k_defense=0))
    rows.append(exact_row("data", "attack_llr", attack_llr(t.comply_safe, t.comply_compliant),
                          seed=config.seed, k=np.nan, k_defense=np.nan))  # fmt: skip
    table = pd.DataFrame(rows)
    return Result(table=table, checks=checks(table, config), figures=figures(table))


# ---------------------------------------------------------------------------------------------
def _sel(table: pd.DataFrame, method: str, metric: str) -> pd.DataFrame:
    return table[(table.method == method) & (table.metric == metric)].sort_values("k")


def _logistic(k: np.ndarray, a: float, b: float) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-(a + b * k)))


def fit_logistic(k: Any, y: Any, se: Any) -> dict[str, float]:
    """Weighted least squares of y on σ(a + b·k) and on a line; χ² of both, b with its s.e.

    The s.e. of b is scaled by the reduced χ² (``absolute_sigma=False``).  NaN when the fit fails.
    """
    k, y = np.asarray(k, float), np.asarray(y, float)
    s = np.maximum(np.asarray(se, float), SE_FLOOR)
    out = dict(a=math.nan, b=math.nan, b_se=math.nan, chi2_logistic=math.nan, chi2_linear=math.nan)
    if k.size < 3:
        return out
    w = 1.0 / s**2
    lin = np.polyfit(k, y, 1, w=1.0 / s)
    out["chi2_linear"] = float(np.sum(w * (y - np.polyval(lin, k)) ** 2))
    yc = np.clip(y, 1e-3, 1 - 1e-3)
    b0, a0 = np.polyfit(k, np.log(yc / (1 - yc)), 1)
    try:
        p, cov = curve_fit(_logistic, k, y, p0=(a0, b0), sigma=s, maxfev=20000)
    except (RuntimeError, ValueError):
        return out
    out.update(a=float(p[0]), b=float(p[1]), b_se=float(math.sqrt(max(cov[1, 1], 0.0))))
    out["chi2_logistic"] = float(np.sum(w * (y - _logistic(k, *p)) ** 2))
    return out


def checks(table: pd.DataFrame, config: Config) -> list[Check]:
    out: list[Check] = []
    att, dfn = _sel(table, "attack", "success"), _sel(table, "defense", "success")
    if att.empty:
        return [inconclusive("The attack success rate follows a logistic in k", SOURCE, "claim",
                             "no attack rows in the table")]  # fmt: skip
    out.append(trend_check("The attack success rate rises with the number k of compliance "
                           "demonstrations", SOURCE, "sanity", x=att.k, y=att.value, y_se=att.se))  # fmt: skip
    f = fit_logistic(att.k, att.value, att.se)
    claim = "The attack success rate fits σ(a + b·k) better than a linear trend in k"
    tol = f"χ²_linear − χ²_logistic ≥ {CHI2_MARGIN:g} (holds); ≤ 0 (fails); weighted by 1/se²"
    meas = f"χ²_logistic {f['chi2_logistic']:.4g}, χ²_linear {f['chi2_linear']:.4g}"
    gap = f["chi2_linear"] - f["chi2_logistic"]
    if not math.isfinite(gap):
        out.append(inconclusive(claim, SOURCE, "claim", "the logistic fit failed",
                                predicted="logistic", measured=meas, tolerance=tol))  # fmt: skip
    elif gap >= CHI2_MARGIN:
        out.append(Check(claim, SOURCE, "claim", "logistic", meas, tol, "holds"))
    elif gap <= 0:
        out.append(Check(claim, SOURCE, "claim", "logistic", meas, tol, "fails"))
    else:
        out.append(inconclusive(claim, SOURCE, "claim", f"the χ² gap {gap:.3g} is below the margin",
                                predicted="logistic", measured=meas, tolerance=tol))  # fmt: skip
    ss, sc = _sel(table, "score-safe", "comply_demo"), _sel(table, "score-compliant", "comply_demo")
    claim_s = ("The fitted slope b equals the model's log-likelihood ratio per compliance "
               "demonstration, log(q_c/q_s), scored at demonstration positions")  # fmt: skip
    if ss.empty or sc.empty or not math.isfinite(f["b"]):
        out.append(inconclusive(claim_s, SOURCE, "claim", "no scores or no logistic fit"))
        b_model = b_model_se = math.nan
    else:
        qs, qc = ss.iloc[0], sc.iloc[0]
        b_model = math.log(qc.value / qs.value)
        b_model_se = math.hypot(qc.se / qc.value, qs.se / qs.value)
        out.append(z_check(claim_s, SOURCE, "claim", measured=f["b"], measured_se=f["b_se"],
                           predicted=b_model, predicted_se=b_model_se, z=Z95,
                           where=f"q_s = {qs.value:.3f}, q_c = {qc.value:.3f}"))  # fmt: skip
    claim_d = ("Refusal demonstrations shift the curve right: the mean success over the k grid "
               "drops under the defense")  # fmt: skip
    if dfn.empty:
        out.append(inconclusive(claim_d, SOURCE, "claim", "no defense rows in the table"))
    else:
        n = len(att)
        out.append(difference_check(
            claim_d, SOURCE, "claim", a=float(att.value.mean()),
            a_se=float(np.sqrt(np.sum(att.se**2)) / n), b=float(dfn.value.mean()),
            b_se=float(np.sqrt(np.sum(dfn.se**2)) / n), min_effect=MIN_DEFENSE_EFFECT,
            where=f"k_defense = {config.eval.k_defense}",
        ))  # fmt: skip
    sim, bay = _sel(table, "simulation", "success"), _sel(table, "bayes-attack", "success")
    claim_t = ("The posterior σ(logit π_c + b·k) equals a Monte Carlo simulation of the "
               "two-hypothesis model at every k")  # fmt: skip
    m = sim.merge(bay, on="k", suffixes=("_s", "_b"))
    if m.empty:
        out.append(inconclusive(claim_t, SOURCE, "theory", "no simulation rows in the table"))
    else:
        z = np.abs(m.value_s - m.value_b) / np.maximum(m.se_s, 1e-12)
        worst = int(np.argmax(z.to_numpy()))
        out.append(z_check(claim_t, SOURCE, "theory", measured=float(m.value_s.iloc[worst]),
                           measured_se=float(m.se_s.iloc[worst]),
                           predicted=float(m.value_b.iloc[worst]), z=Z_CHECK,
                           where=f"worst of {len(m)} k, at k = {int(m.k.iloc[worst])}"))  # fmt: skip
    llr = _sel(table, "data", "attack_llr")
    if not llr.empty and math.isfinite(b_model):
        out.append(z_check("The model's per-demonstration log-likelihood ratio equals the one of "
                           "the alignment data, log(c_c/c_s)", SOURCE, "sanity", measured=b_model,
                           measured_se=b_model_se, predicted=float(llr.value.iloc[0]), z=Z_CHECK))  # fmt: skip
    return out


def figures(table: pd.DataFrame) -> dict[str, Any]:
    import matplotlib.pyplot as plt

    figs: dict[str, Any] = {}
    att = _sel(table, "attack", "success")
    if att.empty:
        return figs
    fig, ax = plt.subplots(figsize=(5.2, 3.6))
    for method, color in (("attack", "tab:red"), ("defense", "tab:blue")):
        s = _sel(table, method, "success")
        b = _sel(table, f"bayes-{method}", "success")
        if not s.empty:
            ax.errorbar(
                s.k, s.value, yerr=1.96 * s.se, fmt="o", color=color, label=f"model, {method}"
            )
        if not b.empty:
            ax.plot(b.k, b.value, "--", color=color, label=f"Bayes σ(a + b·k), {method}")
    f = fit_logistic(att.k, att.value, att.se)
    if math.isfinite(f["b"]):
        kk = np.linspace(att.k.min(), att.k.max(), 100)
        ax.plot(kk, _logistic(kk, f["a"], f["b"]), "-", color="tab:red", alpha=0.5,
                label=f"logistic fit, b = {f['b']:.2f}")  # fmt: skip
    ax.set_xlabel("compliance demonstrations k")
    ax.set_ylabel("attack success 1 − P(REFUSE)")
    ax.set_title("In-context attack and defense")
    ax.legend(fontsize=7)
    fig.tight_layout()
    figs["attack_curve"] = fig
    return figs


def headline(table: pd.DataFrame, config: Config) -> dict[str, float]:
    out: dict[str, float] = {}
    att = _sel(table, "attack", "success")
    if not att.empty:
        f = fit_logistic(att.k, att.value, att.se)
        out["fitted_slope"] = f["b"]
        out["success_at_max_k"] = float(att.value.iloc[-1])
    dfn = _sel(table, "defense", "success")
    if not dfn.empty:
        out["defended_success_at_max_k"] = float(dfn.value.iloc[-1])
    return out


def label(config: Config) -> str:
    m = config.model
    return (f"token transformer {m.n_layer}L×{m.n_head}H×{m.n_embd} (MLP), shift-map ICL, "
            f"aligned with prior_safe = {config.task.prior_safe}")  # fmt: skip


EXPERIMENT = register_experiment(
    Experiment(
        name=NAME,
        claim="k in-context demonstrations of compliance break an aligned model's refusal along a "
        "logistic curve whose slope is the per-demonstration log-likelihood ratio, and refusal "
        "demonstrations shift the curve to the right.",
        source=SOURCE,
        chapter=Chapter.ALIGNMENT.value,
        config_cls=Config,
        run=run,
        checks=checks,
        figures=figures,
        headline=headline,
        label=label,
        formula="success(k) = σ(logit π_c + b·k − b_r·k_d), b = log(c_c/c_s)",
        key_figure="attack_curve",
    )
)
