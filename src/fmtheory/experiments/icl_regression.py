"""Claim: a transformer trained on linear-regression prompts predicts in context as well as the
Bayes-optimal estimator, at every context length (Garg et al. 2022, Fig. 2; Raventós et al. 2023,
§4; Akyürek et al. 2023).

Pipeline: (1) sample prompts y = <w, x> + noise; (2) train a GPT-style decoder on them (one loop,
optional curriculum as in Garg et al. §3); (3) run zero / averaging / k-NN / OLS / ridge / Bayes /
k-step GD (/ lasso for sparse w) on the SAME held-out prompts at every prefix length; (4) evaluate the
Bayes risk and the minimum-norm least-squares risk in closed form; (5) compare with verdicts.

Errors are squared errors divided by the dimension, with 95% intervals over prompts.
"""

from __future__ import annotations

import math
from typing import Any, Literal

import numpy as np
import pandas as pd
import torch
from pydantic import Field, model_validator

from fmtheory.checks import Z95, Z_CHECK, exact_row, inconclusive, not_applicable, z_check
from fmtheory.contract import (
    Check,
    ConfigError,
    Experiment,
    ExperimentConfig,
    Result,
    RunContext,
    Section,
    register_experiment,
)
from fmtheory.estimators import create_estimator
from fmtheory.models.icl import RegressionTransformer, build_regression_transformer
from fmtheory.sections import GPTSection, TrainSection
from fmtheory.tasks.regression import RegressionSpec, make_generator, sample_regression
from fmtheory.theory.linear_regression import bayes_risk_curve, ols_risk_curve
from fmtheory.train import save_model
from fmtheory.train.fit import fit, seeded
from fmtheory.train.loop import TrainResult

NAME = "icl-regression"
SOURCE = "Garg et al. 2022, Fig. 2; Raventós et al. 2023, §4"


class TaskConfig(Section):
    dim: int = Field(5, ge=1, le=256, description="task dimension d")
    n_points: int = Field(
        11, ge=1, le=512, description="pairs per prompt n (context lengths 0..n-1)"
    )
    noise_std: float = Field(0.5, ge=0.0, le=100.0, description="label noise σ")
    x_cond: float = Field(1.0, ge=1.0, le=1e6, description="condition number of Σx (1 = identity)")
    w_mean: float = Field(
        0.0, ge=-100.0, le=100.0, description="prior mean of each coordinate of w"
    )
    w_scale: float = Field(1.0, gt=0.0, le=100.0, description="prior standard deviation τ of w")
    sparsity: int | None = Field(None, ge=1, description="k nonzero coordinates of w (None: dense)")

    @model_validator(mode="after")
    def _sparsity_le_dim(self) -> TaskConfig:
        if self.sparsity is not None and self.sparsity > self.dim:
            raise ValueError(f"sparsity = {self.sparsity} must be <= dim = {self.dim}")
        return self

    def spec(self) -> RegressionSpec:
        return RegressionSpec(
            dim=self.dim,
            noise_std=self.noise_std,
            x_cond=self.x_cond,
            w_mean=self.w_mean,
            w_scale=self.w_scale,
            sparsity=self.sparsity,
        )


class EvalConfig(Section):
    n_prompts: int = Field(8000, ge=10, le=1_000_000, description="held-out prompts")
    knn_neighbors: int = Field(3, ge=1)
    ridge_alpha: float = Field(0.1, gt=0.0, description="λ of the (non-Bayes) ridge baseline")
    gd_steps: int = Field(1, ge=1, le=1000)
    gd_lr: float = Field(0.1, gt=0.0)
    lasso_alpha: float = Field(0.01, gt=0.0, description="lasso baseline (sparse tasks only)")
    theory_mc: int = Field(8000, ge=100, le=1_000_000, description="Monte Carlo draws for theory")


class ModelSection(GPTSection):
    """A :class:`~fmtheory.sections.GPTSection` with the initialisation of its linear read-in and
    read-out (the layers between the prompt's tokens and the residual stream)."""

    read_init: Literal["gpt2", "torch"] = Field(
        "gpt2",
        description="read-in/read-out weights: gpt2 = N(0, 0.02²) like the backbone (GPT-2); torch = "
        "PyTorch's nn.Linear default U(±1/√fan_in), as in Garg et al.'s code (models.py)",
    )

    def label(self) -> str:
        """The GPT's label, plus ", torch read-in init" when ``read_init = torch``."""
        base = super().label()
        return base + (", torch read-in init" if self.read_init == "torch" else "")


class ModelRun(Section):
    """One more model trained on the same task and judged by the same claim check."""

    model: ModelSection
    train: TrainSection = TrainSection()


class Config(ExperimentConfig):
    task: TaskConfig = TaskConfig()
    model: ModelSection
    train: TrainSection = TrainSection()
    compare: list[ModelRun] = Field(
        default_factory=list,
        max_length=4,
        description="further models trained on the same prompts next to `model`, each with its "
        "own train section and its own verdict of check (a)",
    )
    eval: EvalConfig = EvalConfig()

    @model_validator(mode="after")
    def _distinct_labels(self) -> Config:
        seen = [self.model.label()]
        for i, run in enumerate(self.compare):
            lab = run.model.label()
            if lab in seen:
                raise ValueError(
                    f"compare.{i}.model has the label {lab!r} of another model: each compared "
                    "model must differ in its architecture (the label names the table's rows)"
                )
            seen.append(lab)
        return self

    def runs(self) -> list[tuple[ModelSection, TrainSection]]:
        """(model, train) of every trained model: ``model`` first, then ``compare`` in order."""
        return [(self.model, self.train)] + [(r.model, r.train) for r in self.compare]

    def labels(self) -> list[str]:
        """The trained models' labels, in the order of :meth:`runs` (the table's method names)."""
        return [m.label() for m, _ in self.runs()]


# ---------------------------------------------------------------------------------------------
def build_model(config: Config, model: ModelSection | None = None) -> RegressionTransformer:
    """The transformer of ``model`` (default ``config.model``) for prompts of ``config.task``
    (untrained; weights from torch's global generator — wrap in :func:`seeded`)."""
    section = config.model if model is None else model
    net = build_regression_transformer(section, dim=config.task.dim, n_points=config.task.n_points)
    if getattr(section, "read_init", "gpt2") == "torch":
        net.read_in.reset_parameters()  # nn.Linear default: U(±1/√fan_in), Garg et al.'s read-in
        net.read_out.reset_parameters()
    return net


def label(config: Config) -> str:
    """The trained models, named from their configs."""
    return " and ".join(config.labels())


def train_model(
    config: Config, ctx: RunContext, index: int = 0
) -> tuple[RegressionTransformer, TrainResult]:
    """Train model ``index`` of :meth:`Config.runs` (weights from ``config.seed``, resumes from
    ``ctx`` checkpoints, curriculum of Garg et al. §3) on the mean squared error over all positions
    of prompts of ``config.task``; return (model, TrainResult)."""
    section, train = config.runs()[index]
    spec, n = config.task.spec(), config.task.n_points
    model = seeded(lambda: build_model(config, section), config.seed)
    cur, bs = train.curriculum, train.batch_size

    def loss_fn(m: torch.nn.Module, step: int, g: torch.Generator) -> torch.Tensor:
        dims, pts = cur.at(step, dims=spec.dim, points=n)
        b = sample_regression(spec, batch=bs, n_points=pts, generator=g, active_dims=dims)
        return (m(b.x, b.y) - b.y).pow(2).mean()

    name = "train" if index == 0 else f"train_{index}"
    return model, fit(model, loss_fn, train, seed=config.seed, ctx=ctx, name=name)


def baselines(config: Config) -> dict[str, Any]:
    """The classical / Bayes estimators evaluated next to the transformer, by method name."""
    t, e = config.task, config.eval
    mean, cov = config.task.spec().w_prior(torch.float64)
    out = {
        "zero": create_estimator("zero"),
        "averaging": create_estimator("averaging"),
        f"knn (k={e.knn_neighbors})": create_estimator("knn", n_neighbors=e.knn_neighbors),
        "ols (min-norm)": create_estimator("ols"),
        f"ridge (λ={e.ridge_alpha:g})": create_estimator("ridge", alpha=e.ridge_alpha),
        "bayes (posterior mean)": create_estimator(
            "bayes", prior_mean=mean, prior_cov=cov, noise_std=t.noise_std
        ),
        f"gd ({e.gd_steps} step{'s' * (e.gd_steps > 1)})": create_estimator(
            "gd", steps=e.gd_steps, lr=e.gd_lr
        ),
    }
    if t.sparsity is not None:
        out[f"lasso (α={e.lasso_alpha:g})"] = create_estimator("lasso", alpha=e.lasso_alpha)
    return out


def _rows(method: str, err: torch.Tensor, d: int, seed: int) -> list[dict[str, Any]]:
    """err: (prompts, n) squared errors -> one row per context length with a 95% normal CI."""
    e = (err.double() / d).cpu().numpy()
    mean = e.mean(0)
    se = e.std(0, ddof=1) / math.sqrt(e.shape[0])
    return [exact_row(method, "normalized_mse", float(mean[k]), se=float(se[k]), seed=seed, n_context=k)
            for k in range(e.shape[1])]  # fmt: skip


@torch.no_grad()
def evaluate(
    config: Config, models: dict[str, torch.nn.Module], device: torch.device
) -> pd.DataFrame:
    """Every method's normalised error at every context length on the same held-out prompts;
    ``models`` maps each trained model's label (its method name) to the model."""
    t, e = config.task, config.eval
    g = make_generator(config.seed + 1_000_003, "cpu")  # held-out prompts: a different stream
    b = sample_regression(t.spec(), batch=e.n_prompts, n_points=t.n_points, generator=g)
    rows: list[dict[str, Any]] = []
    for name, model in models.items():
        model.eval()
        preds = torch.cat(
            [model(x.to(device), y.to(device)).cpu() for x, y in
             zip(b.x.split(2000), b.y.split(2000), strict=True)]
        )  # fmt: skip
        rows += _rows(name, (preds - b.y) ** 2, t.dim, config.seed)
    x64, y64 = b.x.double(), b.y.double()
    for name, est in baselines(config).items():
        rows += _rows(name, (est.predict_prefixes(x64, y64) - y64) ** 2, t.dim, config.seed)
    return pd.DataFrame(rows)


def theory_rows(config: Config, replicates: int = 8) -> pd.DataFrame:
    """Closed forms at every context length, divided by d.

    Bayes risk: the mean of ``replicates`` independent Monte Carlo curves; its interval is
    ±1.96 × their standard error.  OLS risk (isotropic x only): exact; inf at the peak k ∈ {d-1, d, d+1}.
    """
    t, e = config.task, config.eval
    d, n = t.dim, t.n_points
    if t.sparsity is not None:  # the Gaussian formulas do not describe a sparse prior
        return pd.DataFrame(
            columns=["method", "n_context", "metric", "value", "se", "ci_low", "ci_high", "seed"]
        )
    per = max(50, e.theory_mc // replicates)
    curves = np.stack(
        [bayes_risk_curve(d=d, n=n, sigma=t.noise_std, prior_scale=t.w_scale, cond=t.x_cond,
                          n_mc=per, seed=config.seed * 1000 + r) for r in range(replicates)]
    ) / d  # fmt: skip
    mean = curves.mean(0)
    se = curves.std(0, ddof=1) / math.sqrt(replicates)
    rows = [exact_row("theory: bayes risk", "normalized_mse", float(mean[k]), se=float(se[k]),
                      seed=config.seed, n_context=k) for k in range(n)]  # fmt: skip
    if t.x_cond == 1.0 and t.w_mean == 0.0:
        ols = ols_risk_curve(d=d, n=n, sigma=t.noise_std, prior_scale=t.w_scale) / d
        rows += [exact_row("theory: ols risk", "normalized_mse", float(ols[k]), seed=config.seed,
                           n_context=k) for k in range(n)]  # fmt: skip
    return pd.DataFrame(rows)


# ---------------------------------------------------------------------------------------------
# Checks: tolerances are constants fixed here, before any run.
TRANSFORMER_RATIO, TRANSFORMER_SLACK = 1.2, 0.02
SRC_A = SOURCE
SRC_OLS = "Hastie et al. 2022, Thm 1; Belkin, Hsu & Xu 2020, Thm 1"
SRC_BAYES = "Bishop 2006 §3.3 (Gaussian posterior); Raventós et al. 2023 §2"


def _curve(table: pd.DataFrame, method: str) -> pd.DataFrame:
    df = table[(table["method"] == method) & (table["metric"] == "normalized_mse")]
    return df.groupby("n_context")[["value", "se"]].mean().sort_index()


def _method(table: pd.DataFrame, prefix: str) -> str | None:
    names = [m for m in table["method"].unique() if str(m).startswith(prefix)]
    return names[0] if names else None


def _transformer_check(config: Config, table: pd.DataFrame, method: str) -> Check:
    """(a) claim: the trained model ``method`` ≤ ratio·Bayes + slack at every k in 1..min(2d, n−1),
    each k judged by its 95% interval: holds when every interval is below, fails when one is
    entirely above; inconclusive when the model has no rows in the table."""
    t = config.task
    d, n = t.dim, t.n_points
    ks = list(range(1, min(2 * d, n - 1) + 1))
    claim = (f"{method}: the transformer's error is ≤ {TRANSFORMER_RATIO}× the Bayes-optimal error "
             f"+ {TRANSFORMER_SLACK} at every context length 1..{ks[-1] if ks else 0}")  # fmt: skip
    tol = f"transformer − ({TRANSFORMER_RATIO}·Bayes + {TRANSFORMER_SLACK}) ± {Z95:.2f} s.e. ≤ 0 at every k"
    if t.sparsity is not None:
        return not_applicable(claim, SRC_A, "claim", "sparse w: the Gaussian posterior mean is not "
                              "Bayes-optimal, so there is no closed-form optimum to compare with", tol)  # fmt: skip
    if not ks:
        return not_applicable(
            claim, SRC_A, "claim", "n_points = 1: no context length to check", tol
        )
    tr, by = _curve(table, method), _curve(table, _method(table, "bayes") or "")
    missing = [k for k in ks if k not in tr.index or k not in by.index]
    if missing:
        return inconclusive(claim, SRC_A, "claim", f"no rows for {method!r} or the Bayes "
                            f"estimator at k = {missing}", tolerance=tol)  # fmt: skip
    excess = {k: tr.loc[k, "value"] - (TRANSFORMER_RATIO * by.loc[k, "value"] + TRANSFORMER_SLACK)
              for k in ks}  # fmt: skip
    se = {k: math.hypot(tr.loc[k, "se"], TRANSFORMER_RATIO * by.loc[k, "se"]) for k in ks}
    worst = max(ks, key=lambda k: excess[k] + Z95 * se[k])
    bound = TRANSFORMER_RATIO * by.loc[worst, "value"] + TRANSFORMER_SLACK
    pred = f"≤ {bound:.4f} at k={worst}"
    meas = (
        f"{tr.loc[worst, 'value']:.4f} at k={worst} (worst k; Bayes {by.loc[worst, 'value']:.4f})"
    )
    if any(excess[k] - Z95 * se[k] > 0 for k in ks):
        return Check(claim, SRC_A, "claim", pred, meas, tol, "fails")
    if excess[worst] + Z95 * se[worst] <= 0:
        return Check(claim, SRC_A, "claim", pred, meas, tol, "holds")
    return Check(claim, SRC_A, "claim", pred, meas, tol, "inconclusive",
                 f"at k={worst} the interval of the excess straddles 0")  # fmt: skip


def checks(table: pd.DataFrame, config: Config) -> list[Check]:
    """(a) every trained model against the Bayes-optimal error (claim, one per model, in the order
    of :meth:`Config.runs`); (b) the OLS estimator's peak at
    k = d and its closed form (theory); (c) the Bayes estimator against the Bayes risk (theory)."""
    t = config.task
    d, n = t.dim, t.n_points
    out = [_transformer_check(config, table, m) for m in config.labels()]
    ols_name = _method(table, "ols")
    ols = _curve(table, ols_name) if ols_name else None
    claim_b1 = "the OLS (minimum-norm) error peaks at context length k = d (double descent)"
    if ols is None or d > n - 1 or t.noise_std == 0:
        why = (
            "noiseless task: OLS has no peak" if t.noise_std == 0 else "k = d is beyond the prompt"
        )
        out.append(not_applicable(claim_b1, SRC_OLS, "theory", why, "argmax"))
    else:
        arg = int(ols["value"].idxmax())
        out.append(Check(claim_b1, SRC_OLS, "theory", d, arg, "argmax over k = 0..n-1 equals d",
                         "holds" if arg == d else "fails"))  # fmt: skip
    th_ols = _curve(table, "theory: ols risk")
    claim_b2 = "the OLS error matches its closed form (isotropic x) within Monte Carlo error"
    ks_b = [k for k in range(n) if (k <= d - 4 or k >= d + 4)] if len(th_ols) else []
    if not ks_b or ols is None:
        out.append(not_applicable(claim_b2, SRC_OLS, "theory", "no context length with "
                                  "finite-variance OLS error (k ≤ d-4 or k ≥ d+4), or x not isotropic"))  # fmt: skip
    else:
        z = {k: abs(ols.loc[k, "value"] - th_ols.loc[k, "value"]) / max(ols.loc[k, "se"], 1e-12)
             for k in ks_b}  # fmt: skip
        w = max(z, key=z.get)
        out.append(z_check(claim_b2, SRC_OLS, "theory", measured=float(ols.loc[w, "value"]),
                           measured_se=float(ols.loc[w, "se"]), predicted=float(th_ols.loc[w, "value"]),
                           z=Z_CHECK, where=f"worst k={w} of {ks_b}"))  # fmt: skip
    th_b = _curve(table, "theory: bayes risk")
    claim_c = "the Bayes estimator's error matches the Bayes risk (theory) within Monte Carlo error"
    by = _curve(table, _method(table, "bayes") or "")
    if t.sparsity is not None or not len(th_b):
        out.append(not_applicable(claim_c, SRC_BAYES, "theory",
                                  "sparse w: the Gaussian risk formula does not apply"))  # fmt: skip
    else:
        z = {k: abs(by.loc[k, "value"] - th_b.loc[k, "value"])
             / max(math.hypot(by.loc[k, "se"], th_b.loc[k, "se"]), 1e-12) for k in range(n)}  # fmt: skip
        w = max(z, key=z.get)
        out.append(z_check(claim_c, SRC_BAYES, "theory", measured=float(by.loc[w, "value"]),
                           measured_se=float(by.loc[w, "se"]), predicted=float(th_b.loc[w, "value"]),
                           predicted_se=float(th_b.loc[w, "se"]), z=Z_CHECK,
                           where=f"worst of {n} context lengths: k={w}"))  # fmt: skip
    return out


# ---------------------------------------------------------------------------------------------
_STYLES = {
    "theory: bayes risk": dict(color="tab:red", ls="--", lw=1.5),
    "theory: ols risk": dict(color="tab:blue", ls="--", lw=1.5),
}
# blue and red are kept for OLS and Bayes (their theory curves share the colour)
_PALETTE = ["tab:gray", "tab:orange", "tab:green", "tab:purple", "tab:pink", "tab:olive", "tab:cyan",
            "tab:brown"]  # fmt: skip


# trained models (methods "GPT ..."): thick dark lines, one marker each
_MODEL_STYLES = [dict(color="black", marker="o"), dict(color="tab:brown", marker="s"),
                 dict(color="darkslategray", marker="^"), dict(color="indigo", marker="D")]  # fmt: skip


def _is_model(method: str) -> bool:
    return method.startswith("GPT ")


def _styles(methods: list[str]) -> dict[str, dict[str, Any]]:
    """Fixed styles for the trained models and theory; the estimator whose theory curve is drawn
    gets the curve's colour (ols: blue, bayes: red)."""
    out, i, j = dict(_STYLES), 0, 0
    for m in methods:
        if m in out:
            continue
        if _is_model(m):
            out[m] = dict(lw=2.5, ms=4, zorder=5, **_MODEL_STYLES[j % len(_MODEL_STYLES)])
            j += 1
        elif m.startswith("ols"):
            out[m] = dict(color="tab:blue")
        elif m.startswith("bayes"):
            out[m] = dict(color="tab:red")
        else:
            out[m] = dict(color=_PALETTE[i % len(_PALETTE)])
            i += 1
    return out


def figures(table: pd.DataFrame) -> dict[str, Any]:
    """Drawn from the table alone: error vs context length; training loss."""

    from fmtheory.report.plots import line_plot, training_loss_plot

    icl = table[table["metric"] == "normalized_mse"].copy()
    finite = icl[np.isfinite(icl["value"])]
    out = {}
    methods = [str(m) for m in finite["method"].unique()]
    fig = line_plot(finite, x="n_context", metric="normalized_mse", logy=True,
                    styles=_styles(methods), title="In-context regression: squared error / d (95% CI)",
                    ylabel="squared error / d")  # fmt: skip
    # The OLS peak at k = d is unbounded: clip the axis at 4x the zero predictor's error (the prior).
    zero = finite[finite["method"] == "zero"]["value"]
    if len(zero):
        lo = max(finite["value"][finite["value"] > 0].min() * 0.7, 1e-4)
        fig.axes[0].set_ylim(lo, 4 * float(zero.max()))
        fig.axes[0].text(0.01, 0.98, "axis clipped at 4× the zero predictor's error",
                         transform=fig.axes[0].transAxes, fontsize=7, va="top", color="gray")  # fmt: skip
    out["error_vs_context"] = fig
    loss_fig = training_loss_plot(table, ylabel="training loss (MSE)")
    if loss_fig is not None:
        out["training_loss"] = loss_fig
    return out


def headline(table: pd.DataFrame, config: Config) -> dict[str, float]:
    """For sweeps: the errors at the longest context and the transformer / Bayes ratio there, of
    ``model`` (``transformer_*``) and of each compared model i (``compare{i}_*``)."""
    by = _curve(table, _method(table, "bayes") or "")
    out: dict[str, float] = {}
    for i, lab in enumerate(config.labels()):
        tr = _curve(table, lab)
        k = int(tr.index.max())
        key = "transformer" if i == 0 else f"compare{i}"
        if i == 0:
            out["bayes_err"] = float(by.loc[k, "value"])
        out[f"{key}_err"] = float(tr.loc[k, "value"])
        out[f"{key}_over_bayes"] = float(tr.loc[k, "value"] / by.loc[k, "value"])
    return out


def run(config: Config, ctx: RunContext | None = None) -> Result:
    """Train, evaluate, compare with theory.  ``ctx=None`` runs on CPU and keeps nothing on disk."""
    ctx = ctx or RunContext()
    models: dict[str, torch.nn.Module] = {}
    losses = []
    for i, lab in enumerate(config.labels()):
        model, tr = train_model(config, ctx, i)
        path = ctx.path("model.safetensors" if i == 0 else f"model_{i}.safetensors")
        if path is not None:
            save_model(path, model, {"experiment": NAME, "model": lab})
        models[lab] = model
        losses.append(pd.DataFrame(dict(method=lab, step=tr.loss_steps, metric="train_loss",
                                        value=tr.losses, se=float("nan"), ci_low=tr.losses,
                                        ci_high=tr.losses, seed=config.seed)))  # fmt: skip
    table = pd.concat([evaluate(config, models, ctx.device), theory_rows(config), *losses],
                      ignore_index=True)  # fmt: skip
    table.attrs = {}
    return Result(table=table, checks=checks(table, config), figures=figures(table))


EXPERIMENT = register_experiment(
    Experiment(
        name=NAME,
        claim="A transformer trained on linear-regression prompts matches the Bayes-optimal "
        "estimator at every context length.",
        source=SOURCE,
        chapter="in-context-learning",
        config_cls=Config,
        run=run,
        checks=checks,
        figures=figures,
        headline=headline,
        label=label,
        formula="Bayes risk(k) = E[σ² + x_qᵀ(Σ_w⁻¹ + XᵀX/σ²)⁻¹x_q]; OLS risk = σ²(1 + d/(k−d−1))",
        key_figure="error_vs_context",
    )
)

__all__ = ["Config", "ModelSection", "ModelRun", "run", "build_model", "train_model", "evaluate", "theory_rows", "checks",
           "figures", "headline", "label", "EXPERIMENT", "ConfigError"]  # fmt: skip
