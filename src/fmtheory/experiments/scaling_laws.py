"""Claim: the test loss of a decoder falls as a power law in model size N and data D towards the
source's entropy, L(N, D) = E + A/N^α + B/D^β, and the law fitted on smaller models predicts a larger
one (Kaplan et al. 2020; Hoffmann et al. 2022).

A stationary order-k Markov source over V tokens has a known floor: its entropy rate H.  Decoders of
several widths (GPT blocks from ``models/``, softmax attention) are trained once each with a constant
learning rate after warm-up on fresh sequences; the test loss is read at several token counts D along
the way (with a constant rate a run's intermediate points stand for shorter runs, as in Kaplan et
al.'s L(N, S) fits).  The law is fitted on every size but the largest; the largest is predicted.
"""

from __future__ import annotations

import math
from typing import Any, Literal

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from pydantic import Field, field_validator, model_validator

from fmtheory.checks import (
    Z95,
    Z_CHECK,
    ci_row,
    exact_row,
    exponent_check,
    inconclusive,
    not_applicable,
    z_check,
)
from fmtheory.contract import (
    Check,
    Experiment,
    ExperimentConfig,
    Result,
    RunContext,
    Section,
    register_experiment,
)
from fmtheory.models.gpt import GPTConfig
from fmtheory.models.icl import TokenTransformer
from fmtheory.probes.emergence import (
    HALF_LEARNED,
    answer_scores,
    power_prediction,
    rise_fraction,
    rise_points,
)
from fmtheory.sections import TrainSection
from fmtheory.tasks.markov import make_markov_source
from fmtheory.theory.scaling import compute_optimal_n, entropy_rate, fit_scaling_law
from fmtheory.train import fit, make_generator, seeded

NAME = "scaling-laws"
SOURCE = "Kaplan et al. 2020, eq. 1.5; Hoffmann et al. 2022, eq. 2 and 4"
SOURCE_MIRAGE = "Schaeffer, Miranda & Koyejo 2023, §2 Eq. 1–3 (emergence against model size)"
#: methods of the exact-match rows
ANSWER = "decoder: top-1 answer"
ANSWER_THEORY = "theory acc^L"
#: loss rows of the widths trained for the exact-match task only (not fitted)
EXTRA = "decoder: emergence width"


class SourceSection(Section):
    """The Markov source: V tokens, order k, Dirichlet(α) transition rows."""

    kind: Literal["markov"] = Field("markov", description="the source (its entropy is the floor)")
    vocab: int = Field(16, ge=2, le=256)
    order: int = Field(2, ge=1, le=4)
    alpha: float = Field(0.3, gt=0.0, le=100.0, description="Dirichlet concentration (decay unset)")
    decay: float | None = Field(
        0.75, gt=0.0, le=10.0,
        description="power-law decay γ of the logit matrix's singular values i^−γ (None: Dirichlet rows)",
    )  # fmt: skip
    scale: float = Field(20.0, gt=0.0, le=1000.0, description="logit scale (with decay)")
    seq_len: int = Field(32, ge=4, le=1024, description="tokens per training sequence")


class GridSection(Section):
    """Model sizes (width of a ``n_layer``-block GPT) and the token counts D read along training."""

    widths: list[int] = Field([8, 12, 16, 24, 32, 48], description="residual widths (≥ 3 sizes)")
    n_layer: int = Field(2, ge=1, le=24)
    n_head: int = Field(2, ge=1, le=16)
    eval_steps: list[int] = Field(
        [100, 200, 400, 800, 1600], description="steps at which L is read"
    )
    eval_sequences: int = Field(512, ge=16, le=100_000, description="held-out sequences")

    @field_validator("widths")
    @classmethod
    def _widths(cls, v: list[int]) -> list[int]:
        if len(v) < 3 or len(set(v)) != len(v) or any(w < 2 or w > 4096 for w in v):
            raise ValueError(
                f"widths = {v}: at least 3 distinct widths in [2, 4096] (a fit needs 3 sizes)"
            )
        return sorted(v)

    @field_validator("eval_steps")
    @classmethod
    def _steps(cls, v: list[int]) -> list[int]:
        if len(v) < 2 or len(set(v)) != len(v) or any(s < 1 for s in v):
            raise ValueError(f"eval_steps = {v}: at least 2 distinct step counts >= 1")
        return sorted(v)


class EmergenceSection(Section):
    """The exact-match task on the same family: the model's top-1 tokens at ``answer_len``
    consecutive positions of a held-out sequence (teacher-forced) against the source's most likely
    next tokens; all L right is an exact match (Schaeffer et al. 2023's multi-token answer)."""

    answer_len: int = Field(8, ge=2, le=256, description="answer length L in tokens")
    extra_widths: list[int] = Field(
        [], description="smaller widths trained for this task only (outside the law's fit)"
    )

    @field_validator("extra_widths")
    @classmethod
    def _extra(cls, v: list[int]) -> list[int]:
        if len(set(v)) != len(v) or any(w < 1 or w > 4096 for w in v):
            raise ValueError(f"extra_widths = {v}: distinct widths in [1, 4096]")
        return sorted(v)


class Config(ExperimentConfig):
    source: SourceSection = SourceSection()
    grid: GridSection = GridSection()
    emergence: EmergenceSection = EmergenceSection()
    train: TrainSection = TrainSection(steps=1600, batch_size=32, lr=3e-3, warmup_steps=50,
                                       schedule="constant", curriculum={})  # fmt: skip

    @model_validator(mode="after")
    def _answer_fits(self) -> Config:
        room = self.source.seq_len - self.source.order
        if self.emergence.answer_len > room:
            raise ValueError(f"emergence.answer_len = {self.emergence.answer_len}: must be <= "
                             f"source.seq_len − source.order = {room}")  # fmt: skip
        if set(self.emergence.extra_widths) & set(self.grid.widths):
            raise ValueError(f"emergence.extra_widths = {self.emergence.extra_widths}: must not "
                             f"repeat grid.widths = {self.grid.widths}")  # fmt: skip
        return self


def _gpt(config: Config, width: int) -> TokenTransformer:
    g = config.grid
    heads = g.n_head if width % g.n_head == 0 else 1
    cfg = GPTConfig(n_layer=g.n_layer, n_head=heads, n_embd=width,
                    n_positions=config.source.seq_len, attention="softmax")  # fmt: skip
    return TokenTransformer(config.source.vocab, config.source.seq_len, cfg)


def count_params(model: TokenTransformer) -> int:
    """N as Hoffmann et al. count it: every parameter, embeddings included (on a bigram-like
    source the token embeddings and the head are where the capacity lives)."""
    return sum(p.numel() for p in model.parameters())


def label(config: Config) -> str:
    g = config.grid
    w = ", ".join(str(x) for x in g.widths)
    return f"GPT {g.n_layer}L×{g.n_head}H×{{{w}}}, softmax attention, token layout"


def _train_width(
    config: Config,
    ctx: RunContext,
    model: TokenTransformer,
    src: Any,
    test: torch.Tensor,
    *,
    name: str,
    seed: int,
) -> tuple[dict[int, torch.Tensor], dict[str, torch.Tensor]]:
    """Train one model.  Returns the per-sequence held-out losses (positions ≥ k) at each of
    ``eval_steps``, and the final model's answer scores (``probes.emergence.answer_scores``) on the
    first ``emergence.answer_len`` predicted positions against the source's most likely tokens."""
    s, g, k = config.source, config.grid, config.source.order
    curve: dict[int, torch.Tensor] = {}

    def evaluate(m: torch.nn.Module, step: int) -> None:
        m.eval()
        with torch.no_grad():
            logits = m(test.to(ctx.device))[:, k - 1 : -1]
            nll = F.cross_entropy(logits.reshape(-1, s.vocab), test[:, k:].reshape(-1).to(ctx.device),
                                  reduction="none")  # fmt: skip
        curve[step] = nll.view(test.shape[0], -1).mean(1).cpu()
        m.train()

    def loss_fn(m: torch.nn.Module, step: int, gen: torch.Generator) -> torch.Tensor:
        if step in g.eval_steps and step not in curve:
            evaluate(m, step)
        x = src.sample(config.train.batch_size, s.seq_len, gen).to(ctx.device)
        logits = m(x)[:, k - 1 : -1]
        return F.cross_entropy(logits.reshape(-1, s.vocab), x[:, k:].reshape(-1))

    spec = config.train.model_copy(update={"steps": max(g.eval_steps)})
    fit(model, loss_fn, spec, seed=seed, ctx=ctx, name=name)
    if max(g.eval_steps) not in curve:
        evaluate(model, max(g.eval_steps))
    missing = [st for st in g.eval_steps if st not in curve]
    if missing:  # resumed past them: evaluate what this model now is would misdate the point
        raise RuntimeError(f"{name}: losses at steps {missing} were not recorded (resumed run)")
    n_ans = config.emergence.answer_len
    model.eval()
    with torch.no_grad():
        logits = model(test.to(ctx.device))[:, k - 1 : k - 1 + n_ans].cpu()
    target = src.argmax_next(test)[:, :n_ans]
    return curve, answer_scores(logits, target)


def run(config: Config, ctx: RunContext | None = None) -> Result:
    """Train every width, read the test loss at each ``eval_steps``; ``ctx=None``: CPU, no disk."""
    ctx = ctx or RunContext()
    s, g = config.source, config.grid
    src = make_markov_source(vocab=s.vocab, order=s.order, alpha=s.alpha, seed=config.seed,
                             decay=s.decay, scale=s.scale)  # fmt: skip
    h = entropy_rate(src.transitions.numpy(), s.order)
    test = src.sample(g.eval_sequences, s.seq_len, make_generator(config.seed + 999))
    k = s.order
    rows = [exact_row("theory: entropy rate", "loss", h, seed=config.seed)]
    nll_true = -src.log_prob(test).mean(1)
    rows.append(ci_row("true source (Bayes predictor)", "loss", nll_true, seed=config.seed))
    tokens_per_step = config.train.batch_size * (s.seq_len - k)
    for w in sorted(g.widths + config.emergence.extra_widths):
        model = seeded(lambda w=w: _gpt(config, w), config.seed + w)
        n_params = count_params(model)
        curve, scores = _train_width(
            config, ctx, model, src, test, name=f"width{w}", seed=config.seed + 7 * w
        )
        method = "decoder" if w in g.widths else EXTRA
        for step in g.eval_steps:
            rows.append(ci_row(method, "loss", curve[step], seed=config.seed, width=w,
                               n_params=n_params, step=step, tokens=step * tokens_per_step))  # fmt: skip
        rows.extend(_answer_rows(scores, config, width=w, n_params=n_params))
    table = pd.DataFrame(rows)
    return Result(table=table, checks=checks(table, config), figures=figures(table))


def _answer_rows(scores: dict[str, torch.Tensor], config: Config, **grid: Any) -> list[dict]:
    rows = [ci_row(ANSWER, name, scores[name], seed=config.seed, **grid)
            for name in ("token_acc", "exact_match")]  # fmt: skip
    em, em_se = power_prediction(rows[0]["value"], rows[0]["se"], config.emergence.answer_len)
    rows.append(exact_row(ANSWER_THEORY, "exact_match", em, se=em_se, seed=config.seed, **grid))
    return rows


# ---------------------------------------------------------------------------------------------
#: the fitted law predicts the held-out largest model's loss within this fraction of its
#: reducible loss (L − H), at every D
PRED_TOL = 0.25
#: E is "pinned down" only when its 95% interval is narrower than this fraction of H on each side
E_WIDTH = 0.1
#: the grid's compute-optimal exponent is judged only with a fit of R² ≥ this
R2_MIN = 0.5
#: rival allocations: all compute into data (N_opt constant) or all into parameters (N_opt ∝ C)
RIVAL_EXPONENTS = (0.0, 1.0)


def _points(table: pd.DataFrame) -> pd.DataFrame:
    return table[(table["method"] == "decoder") & (table["metric"] == "loss")].copy()


def _fit(points: pd.DataFrame):
    return fit_scaling_law(points["n_params"].to_numpy(), points["tokens"].to_numpy(),
                           points["value"].to_numpy(), points["se"].to_numpy())  # fmt: skip


def checks(table: pd.DataFrame, config: Config) -> list[Check]:
    return _law_checks(table) + _emergence_checks(table, config)


def _law_checks(table: pd.DataFrame) -> list[Check]:
    out: list[Check] = []
    h = float(table.loc[table["method"] == "theory: entropy rate", "value"].iloc[0])
    true = table[table["method"] == "true source (Bayes predictor)"].iloc[0]
    src_h = "Cover & Thomas 2006, Thm 4.2.4 (entropy rate of a stationary Markov chain)"
    out.append(z_check("the entropy rate formula equals the true source's loss on held-out sequences",
                       src_h, "theory", measured=float(true["value"]), measured_se=float(true["se"]),
                       predicted=h))  # fmt: skip
    pts = _points(table)
    below = pts[pts["value"] + 4 * pts["se"] < h]
    out.append(Check("no model's loss is below the entropy floor", src_h, "sanity", f"≥ {h:.4f}",
                     f"min {pts['value'].min():.4f}", "value + 4 s.e. ≥ H at every point",
                     "fails" if len(below) else "holds"))  # fmt: skip
    widths = sorted(pts["width"].unique())
    fit_pts, held = pts[pts["width"] < widths[-1]], pts[pts["width"] == widths[-1]]
    claim_p = (f"the law fitted on the {len(widths) - 1} smaller models predicts the largest model's "
               f"loss at every D within {PRED_TOL:.0%} of its reducible loss")  # fmt: skip
    claim_e = "the fitted irreducible loss E equals the source's entropy rate"
    try:
        f = _fit(fit_pts)
    except (RuntimeError, ValueError) as e:
        for c in (claim_p, claim_e):
            out.append(inconclusive(c, SOURCE, "claim", f"no fit: {e}"))
        return out
    pred = f.predict(held["n_params"].to_numpy(), held["tokens"].to_numpy())
    meas = held["value"].to_numpy()
    rel = np.abs(pred - meas) / np.clip(meas - h, 1e-9, None)
    i = int(np.argmax(rel))
    out.append(Check(claim_p, SOURCE, "claim", float(pred[i]), float(meas[i]),
                     f"|predicted − measured| ≤ {PRED_TOL:.0%} of (measured − H) at every D "
                     f"(worst D = {held['tokens'].iloc[i]:.3g}: {rel[i]:.0%})",
                     "holds" if rel[i] <= PRED_TOL else "fails"))  # fmt: skip
    src_e = "Hoffmann et al. 2022, eq. 2; Kaplan et al. 2020"
    if not math.isfinite(f.se["e"]) or Z95 * f.se["e"] > E_WIDTH * h:
        out.append(inconclusive(claim_e, src_e, "claim",
                                f"the fit does not pin E down: ±{Z95 * f.se['e']:.3g} is wider than "
                                f"{E_WIDTH:.0%} of H", predicted=h, measured=f.e))  # fmt: skip
    else:
        out.append(z_check(claim_e, src_e, "claim", measured=f.e, measured_se=f.se["e"],
                           predicted=h, z=Z95,
                           where=f"fit α = {f.alpha:.3f} ± {f.se['alpha']:.3f}, "
                                 f"β = {f.beta:.3f} ± {f.se['beta']:.3f}"))  # fmt: skip
    # compute-optimal allocation: the grid's best size at each compute level against the fit's
    cs, best = _grid_optimum(pts)
    a_implied = f.beta / (f.alpha + f.beta)
    claim_c = "the compute-optimal model size implied by the fit matches the grid's best size"
    if len(cs) >= 3 and len(set(best)) >= 2:
        out.append(exponent_check(
            claim_c, "Hoffmann et al. 2022, eq. 4 (N_opt ∝ C^{β/(α+β)})", "claim", x=cs, y=best,
            predicted=a_implied, alternatives=RIVAL_EXPONENTS, r2_min=R2_MIN,
            where=f"N_opt(C) of the grid (compute C = 6ND, log-interpolated in D) vs "
                  f"β/(α+β) = {a_implied:.3f}"))  # fmt: skip
    else:
        out.append(inconclusive(claim_c, "Hoffmann et al. 2022, eq. 4", "claim",
                                "the grid's best size does not change over its compute range",
                                predicted=a_implied))  # fmt: skip
    return out


def _answer_curve(table: pd.DataFrame, method: str, metric: str) -> pd.DataFrame:
    c = table[(table["method"] == method) & (table["metric"] == metric)]
    return c.sort_values("n_params").set_index("n_params")


def _emergence_checks(table: pd.DataFrame, config: Config) -> list[Check]:
    """The emergence-mirage contrast along model size N (x = log N): exact match looks abrupt,
    per-token accuracy is smooth, and exact match = acc^L."""
    out: list[Check] = []
    L = config.emergence.answer_len
    tok = _answer_curve(table, ANSWER, "token_acc")
    em = _answer_curve(table, ANSWER, "exact_match")
    th = _answer_curve(table, ANSWER_THEORY, "exact_match")
    claims = (
        f"against model size, exact match on an L = {L}-token answer looks abrupt while per-token "
        f"accuracy is smooth: when exact match has made 10% of its rise in log N, per-token "
        f"accuracy has already made ≥ {HALF_LEARNED:.0%} of its own",
        f"at every model size, exact match equals per-token accuracy to the power L = {L}",
        "exact match rises more sharply with model size than per-token accuracy (the rise from 10% "
        "to 90% spans a smaller factor in N)",
    )
    if len(tok) < 3:
        return [not_applicable(c, SOURCE_MIRAGE, "claim", "fewer than 3 model sizes have "
                               "exact-match rows") for c in claims]  # fmt: skip
    x = np.log(tok.index.to_numpy(float))
    x10, frac, resolved = rise_fraction(
        x, tok["value"].to_numpy(float), em.loc[tok.index, "value"].to_numpy(float)
    )
    tol = f"token accuracy's rise fraction at exact match's 10% point ≥ {HALF_LEARNED:g}"
    if not math.isfinite(frac):
        out.append(not_applicable(claims[0], SOURCE_MIRAGE, "claim",
                                  "a metric does not rise with model size", tol))  # fmt: skip
    elif not resolved:
        out.append(inconclusive(claims[0], SOURCE_MIRAGE, "claim",
                                f"exact match made 10% of its rise (N = {math.exp(x10):,.0f}) "
                                "between the two smallest sizes: add smaller sizes", tolerance=tol))  # fmt: skip
    else:
        meas = (f"exact match 10% at N = {math.exp(x10):,.0f}; per-token accuracy had made "
                f"{frac:.0%} of its rise")  # fmt: skip
        out.append(Check(claims[0], SOURCE_MIRAGE, "claim", f"≥ {HALF_LEARNED:.0%}", meas, tol,
                         "holds" if frac >= HALF_LEARNED else "fails"))  # fmt: skip
    common = em.index.intersection(th.index)
    em_se = em.loc[common, "se"].clip(lower=1.0 / config.grid.eval_sequences)
    z = (em.loc[common, "value"] - th.loc[common, "value"]).abs() / np.hypot(
        em_se, th.loc[common, "se"]
    )
    worst = z.idxmax()
    out.append(z_check(claims[1], SOURCE_MIRAGE, "claim", measured=float(em.loc[worst, "value"]),
                       measured_se=float(em_se.loc[worst]), predicted=float(th.loc[worst, "value"]),
                       predicted_se=float(th.loc[worst, "se"]), z=Z_CHECK,
                       where=f"the worst of {len(common)} sizes, N = {int(worst):,}"))  # fmt: skip
    tol = "exact match's 10→90% rise spans a smaller range of log N than per-token accuracy's"
    _, _, w_em = rise_points(x, em.loc[tok.index, "value"].to_numpy(float))
    _, _, w_tok = rise_points(x, tok["value"].to_numpy(float))
    if not (math.isfinite(w_em) and math.isfinite(w_tok)):
        out.append(not_applicable(claims[2], SOURCE_MIRAGE, "claim",
                                  "a metric does not rise with model size", tol))  # fmt: skip
    else:
        meas = f"exact match ×{math.exp(w_em):.2f} in N, per-token accuracy ×{math.exp(w_tok):.2f}"
        out.append(Check(claims[2], SOURCE_MIRAGE, "claim", "exact match narrower", meas, tol,
                         "holds" if w_em < w_tok else "fails"))  # fmt: skip
    return out


def _grid_optimum(pts: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """For 12 compute levels C over the grid's range, the size with the lowest loss at D = C/(6N)
    among the sizes (at least 3) whose measured D range covers it (each curve interpolated
    linearly in log D)."""
    curves = {}
    for n, g in pts.groupby("n_params"):
        g = g.sort_values("tokens")
        curves[float(n)] = (np.log(g["tokens"].to_numpy(float)), g["value"].to_numpy(float))
    c_lo = min(6 * n * math.exp(x[0]) for n, (x, _) in curves.items())
    c_hi = max(6 * n * math.exp(x[-1]) for n, (x, _) in curves.items())
    cs, best = [], []
    for c in np.geomspace(c_lo, c_hi, 12):
        cand = {}
        for n, (x, y) in curves.items():
            ld = math.log(c / (6 * n))
            if x[0] <= ld <= x[-1]:
                cand[n] = float(np.interp(ld, x, y))
        if len(cand) >= 3:
            cs.append(c)
            best.append(min(cand, key=cand.get))
    return np.array(cs), np.array(best)


def figures(table: pd.DataFrame) -> dict[str, Any]:
    import matplotlib.pyplot as plt

    pts = _points(table)
    h = float(table.loc[table["method"] == "theory: entropy rate", "value"].iloc[0])
    fig, ax = plt.subplots(figsize=(6.5, 4))
    widths = sorted(pts["width"].unique())
    try:
        f = _fit(pts[pts["width"] < widths[-1]])
    except (RuntimeError, ValueError):
        f = None
    for w in widths:
        g = pts[pts["width"] == w].sort_values("tokens")
        held = w == widths[-1]
        line = ax.errorbar(g["tokens"], g["value"], yerr=1.96 * g["se"], marker="o", ms=3,
                           label=f"N = {int(g['n_params'].iloc[0]):,}" + (" (held out)" if held else ""),
                           ls="-" if not held else ":")  # fmt: skip
        if f is not None:
            d = np.geomspace(g["tokens"].min(), g["tokens"].max(), 50)
            ax.plot(d, f.predict(np.full_like(d, g["n_params"].iloc[0]), d), ls="--",
                    color=line[0].get_color(), lw=1)  # fmt: skip
    ax.axhline(h, color="black", lw=1, label=f"entropy rate H = {h:.3f}")
    ax.set(xscale="log", xlabel="training tokens D", ylabel="test loss (nats/token)",
           title="Scaling law: measured (markers), fitted without the largest model (dashed)")  # fmt: skip
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    out = {"loss_vs_tokens": fig}
    if (table["method"] == ANSWER).any():
        out["emergence_vs_size"] = _emergence_figure(table)
    return out


def _emergence_figure(table: pd.DataFrame) -> Any:
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.5, 4))
    for method, metric, name, style in (
        (ANSWER, "token_acc", "per-token accuracy", "o-"),
        (ANSWER, "exact_match", "exact match", "s-"),
        (ANSWER_THEORY, "exact_match", "predicted exact match = acc^L", "k--"),
    ):
        c = _answer_curve(table, method, metric)
        ax.errorbar(c.index, c["value"], yerr=1.96 * c["se"], fmt=style, ms=4, label=name)
    ax.set(xscale="log", xlabel="parameters N", ylabel="agreement with the source's top-1 token",
           ylim=(0, 1.02), title="Emergence against model size: exact match vs per-token accuracy")  # fmt: skip
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return fig


def headline(table: pd.DataFrame, config: Config) -> dict[str, float]:
    pts = _points(table)
    h = float(table.loc[table["method"] == "theory: entropy rate", "value"].iloc[0])
    try:
        f = _fit(pts[pts["width"] < pts["width"].max()])
    except (RuntimeError, ValueError):
        return {"entropy_rate": h}
    return {"entropy_rate": h, "fit_e": f.e, "fit_alpha": f.alpha, "fit_beta": f.beta,
            "n_opt_1e9": compute_optimal_n(1e9, a=f.a, alpha=f.alpha, b=f.b, beta=f.beta)}  # fmt: skip


EXPERIMENT = register_experiment(
    Experiment(
        name=NAME,
        claim="Test loss falls as a power law in model size and data towards the source's entropy, "
        "and the law fitted on smaller models predicts a larger one.",
        source=SOURCE,
        chapter="robustness-and-scale",
        config_cls=Config,
        run=run,
        checks=checks,
        figures=figures,
        headline=headline,
        label=label,
        formula="L(N, D) = E + A/N^α + B/D^β, E = entropy rate; N_opt ∝ C^{β/(α+β)}",
        key_figure="loss_vs_tokens",
    )
)
