"""Claim: a single linear self-attention layer trained on in-context linear regression computes one
step of preconditioned gradient descent, with the preconditioner in closed form (survey
arXiv:2410.11444 Thm 4.7; Zhang, Frei & Bartlett 2024, Thm 4.1; von Oswald et al. 2023, Prop. 1;
Ahn et al. 2023, Thm 1).

For x ~ N(0, Λ), w ~ N(0, I), labels with noise σ, the global minimiser of the population ICL loss
predicts ŷ = x_qᵀ Γ* (1/n) Σ y_i x_i with Γ* = ((1 + 1/n) Λ + (tr Λ + σ²)/n · I)⁻¹ (see
:mod:`fmtheory.theory.lsa`); for Λ = I this is one GD step from w = 0 with step 1/(n + 1 + d + σ²).

Pipeline: (1) train LSA stacks of L = 1, 2, ... layers (full ZFB parameterisation, small random
init, the one training loop); (2) fit L-step gradient descent with free step sizes (scalar η_l),
with free preconditioners (matrices P_l) and GD++ (von Oswald et al. §3) on the same training
distribution; (3) train the softmax GPT of ``icl-regression``; (4) on held-out prompts compare every
model with every algorithm: predictions (cosine, relative L2), gradients of the prediction with
respect to the context (x_i, y_i) and to the query x_q (von Oswald et al. §3), errors; the
single layer's effective Γ against Γ* (relative Frobenius error); (5) verdicts.
"""

from __future__ import annotations

import math
from typing import Any, Literal

import numpy as np
import pandas as pd
import torch
from pydantic import Field, field_validator

from fmtheory.checks import Z_CHECK, mean_ci, not_applicable, z_check
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
from fmtheory.models.lsa import LSAStack, PreconditionedGD
from fmtheory.sections import GPTRunSection, LSATrainSection
from fmtheory.tasks.regression import RegressionSpec, make_generator, sample_regression
from fmtheory.theory.linear_regression import x_variances
from fmtheory.theory.lsa import lsa_optimal_gamma, lsa_risk_of_gamma
from fmtheory.train import save_model
from fmtheory.train.icl import train_on_queries, train_regression_gpt

NAME = "lsa-gd"
SOURCE = (
    "survey arXiv:2410.11444 Thm 4.7; Zhang, Frei & Bartlett 2024 Thm 4.1; von Oswald et al. 2023"
)


class TaskConfig(Section):
    dim: int = Field(5, ge=1, le=128, description="task dimension d")
    n_context: int = Field(20, ge=1, le=1024, description="context pairs n before the query")
    noise_std: float = Field(0.0, ge=0.0, le=100.0, description="label noise σ")
    x_cond: float = Field(1.0, ge=1.0, le=1e6, description="condition number of Λ (1 = identity)")

    def spec(self) -> RegressionSpec:
        return RegressionSpec(dim=self.dim, noise_std=self.noise_std, x_cond=self.x_cond)


class LSAConfig(Section):
    layers: list[int] = Field([1, 2, 3], min_length=1, description="depths L of the LSA stacks")
    init_std: float = Field(0.1, ge=0.0, le=10.0, description="N(0, init_std²) initial weights")

    @field_validator("layers")
    @classmethod
    def _layers(cls, v: list[int]) -> list[int]:
        if any(l < 1 or l > 16 for l in v) or len(set(v)) != len(v):
            raise ValueError(f"layers = {v}: distinct integers in [1, 16]")
        return sorted(v)


def label(config: Config) -> str:
    """The models, named from the config: the LSA stacks and the GPT."""
    layers = ", ".join(str(L) for L in config.lsa.layers)
    gpt = f"; {config.gpt.model.label()}" if config.gpt.enabled else ""
    return f"linear self-attention stacks of {layers} layer(s){gpt}"


def _gpt_method(table: pd.DataFrame) -> str:
    names = [m for m in table["method"].unique() if str(m).startswith("GPT ")]
    return names[0] if names else "GPT"


class EvalConfig(Section):
    n_prompts: int = Field(8000, ge=10, le=1_000_000, description="held-out prompts")
    grad_prompts: int = Field(1000, ge=2, le=100_000, description="prompts for gradient cosines")


class Config(ExperimentConfig):
    task: TaskConfig = TaskConfig()
    lsa: LSAConfig = LSAConfig()
    train: LSATrainSection = LSATrainSection()
    gpt: GPTRunSection = GPTRunSection()
    eval: EvalConfig = EvalConfig()


# ------------------------------------------------------------------------------ training
def train_lsa(
    *,
    spec: RegressionSpec,
    n_context: int,
    n_layer: int,
    tc: LSATrainSection,
    init_std: float,
    seed: int,
    ctx: RunContext,
    name: str,
) -> tuple[LSAStack, Any]:
    """Train an L-layer :class:`LSAStack` on prompts of ``n_context`` pairs + a query; returns
    ``(model, TrainResult)``.  Loss: squared error of the query prediction.  Checkpoint
    ``checkpoints/<name>.safetensors`` (resumable)."""
    init = torch.Generator().manual_seed(seed * 7919 + 17 * n_layer + 1)
    model = LSAStack(spec.dim, n_layer, init_std=init_std, generator=init).to(ctx.device)
    return model, _fit(model, spec=spec, n_context=n_context, steps=tc.steps, lr=tc.lr, tc=tc,
                       seed=seed * 7919 + 31 * n_layer + 2, ctx=ctx, name=name)  # fmt: skip


def fit_gd(
    *,
    spec: RegressionSpec,
    n_context: int,
    n_steps: int,
    kind: Literal["scalar", "matrix", "gdpp"],
    tc: LSATrainSection,
    seed: int,
    ctx: RunContext,
) -> PreconditionedGD:
    """Fit the step sizes / preconditioners of L-step GD (``kind``) to the ICL loss on fresh prompts
    of the training distribution (started at the single-step optimum's step for isotropic x)."""
    init_step = n_context / (n_context + 1 + spec.dim + spec.noise_std**2)
    model = PreconditionedGD(spec.dim, n_steps, kind=kind, init_step=init_step / n_steps)
    model.to(ctx.device)
    tag = {"scalar": 1, "matrix": 2, "gdpp": 3}[kind]
    _fit(model, spec=spec, n_context=n_context, steps=tc.fit_steps, lr=tc.fit_lr, tc=tc,
         seed=seed * 7919 + 101 * n_steps + tag, ctx=ctx, name=f"gd_{kind}_L{n_steps}")  # fmt: skip
    return model


def _fit(
    model: torch.nn.Module,
    *,
    spec: RegressionSpec,
    n_context: int,
    steps: int,
    lr: float,
    tc: LSATrainSection,
    seed: int,
    ctx: RunContext,
    name: str,
) -> Any:
    return train_on_queries(model, spec=spec, n_context=n_context, batch_size=tc.batch_size,
                            train_spec=tc.spec(steps=steps, lr=lr), seed=seed, ctx=ctx, name=name)  # fmt: skip


def train_gpt(config: Config, ctx: RunContext) -> tuple[torch.nn.Module, Any]:
    """The GPT of ``config.gpt`` on (n + 1)-pair prompts of the task; ``(model, TrainResult)``."""
    t, g = config.task, config.gpt
    return train_regression_gpt(g.model, g.train, spec=t.spec(), n_points=t.n_context + 1,
                                seed=config.seed, ctx=ctx)  # fmt: skip


# ------------------------------------------------------------------------------ measurements
def cosine(a: torch.Tensor, b: torch.Tensor) -> float:
    """cos∠(a, b) of two prediction vectors over prompts ``(B,)`` (von Oswald et al. 2023 §3)."""
    a, b = a.double().flatten(), b.double().flatten()
    return float((a @ b) / (a.norm() * b.norm()).clamp_min(1e-300))


def rel_l2(a: torch.Tensor, b: torch.Tensor) -> float:
    """‖a − b‖ / ‖b‖ over prompts."""
    a, b = a.double().flatten(), b.double().flatten()
    return float((a - b).norm() / b.norm().clamp_min(1e-300))


def prompt_gradients(fn: Any, x: torch.Tensor, y: torch.Tensor) -> dict[str, torch.Tensor]:
    """∂ŷ/∂(x_i, y_i) of the context ``(B, n·(d+1))`` and ∂ŷ/∂x_q ``(B, d)`` for ``fn(x, y) -> (B,)``.

    Each prompt's prediction depends only on its own inputs, so the gradient of the sum is the
    per-prompt gradient.
    """
    x = x.detach().clone().requires_grad_(True)
    y = y.detach().clone().requires_grad_(True)
    with torch.enable_grad():
        gx, gy = torch.autograd.grad(fn(x, y).sum(), (x, y), allow_unused=True)
    gy = torch.zeros_like(y) if gy is None else gy
    ctx = torch.cat([gx[:, :-1].flatten(1), gy[:, :-1]], dim=1)  # (B, n·d + n)
    return {"context": ctx.detach(), "query": gx[:, -1].detach()}


def _row_cos(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    a, b = a.double(), b.double()
    return (a * b).sum(1) / (a.norm(dim=1) * b.norm(dim=1)).clamp_min(1e-300)


def _row(method: str, metric: str, value: float, lo: float | None = None,
         hi: float | None = None, seed: int = 0, se: float = math.nan,
         **extra: Any) -> dict[str, Any]:  # fmt: skip
    """One row; ``se`` NaN for a number without a sampling error computed (a cosine over all
    prompts, a trained weight), 0 for an exact one."""
    r = dict(method=method, metric=metric, value=float(value), se=float(se),
             ci_low=float(value if lo is None else lo), ci_high=float(value if hi is None else hi),
             seed=seed, reference="", n_layers=math.nan, n_context=math.nan, step=math.nan,
             i=math.nan, j=math.nan)  # fmt: skip
    r.update(extra)
    return r


def _mse_row(method: str, pred: torch.Tensor, target: torch.Tensor, d: int, seed: int,
             **extra: Any) -> dict[str, Any]:  # fmt: skip
    ci = mean_ci((pred.double() - target.double()) ** 2 / d)
    return _row(method, "normalized_mse", ci.mean, ci.low, ci.high, seed, se=ci.se, **extra)


def compare_rows(
    method: str,
    reference: str,
    fn_a: Any,
    fn_b: Any,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    grad_prompts: int,
    seed: int,
    **extra: Any,
) -> list[dict[str, Any]]:
    """Prediction cosine / relative L2 on all prompts; per-prompt gradient cosines (mean, 95% CI)
    on the first ``grad_prompts``."""
    with torch.no_grad():
        pa, pb = fn_a(x, y), fn_b(x, y)
    rows = [
        _row(method, "pred_cosine", cosine(pa, pb), seed=seed, reference=reference, **extra),
        _row(method, "pred_rel_l2", rel_l2(pa, pb), seed=seed, reference=reference, **extra),
    ]
    xs, ys = x[:grad_prompts], y[:grad_prompts]
    ga, gb = prompt_gradients(fn_a, xs, ys), prompt_gradients(fn_b, xs, ys)
    for part in ("context", "query"):
        ci = mean_ci(_row_cos(ga[part], gb[part]))
        rows.append(_row(method, f"grad_{part}_cosine", ci.mean, ci.low, ci.high, seed,
                         se=ci.se, reference=reference, **extra))  # fmt: skip
    return rows


def _last(model: torch.nn.Module) -> Any:
    """The GPT's prediction at the last position (the query) as ``fn(x, y) -> (B,)``."""
    return lambda x, y: model(x, y)[:, -1]


PGD1 = "pgd (1 step, Γ*)"


def run(config: Config, ctx: RunContext | None = None) -> Result:
    """Train, fit, evaluate, compare with theory.  ``ctx=None``: CPU, nothing on disk."""
    ctx = ctx or RunContext()
    t, e, seed = config.task, config.eval, config.seed
    d, n, spec = t.dim, t.n_context, t.spec()
    dev = ctx.device
    lam = x_variances(d=d, cond=t.x_cond)
    gamma_star = lsa_optimal_gamma(cov=lam, n=n, sigma=t.noise_std)
    risk_star = lsa_risk_of_gamma(gamma=gamma_star, n=n, ctx_cov=lam, sigma=t.noise_std)
    rows: list[dict[str, Any]] = []

    g_eval = make_generator(seed + 1_000_003, "cpu")
    b = sample_regression(spec, batch=e.n_prompts, n_points=n + 1, generator=g_eval)
    x, y = b.x.to(dev), b.y.to(dev)
    target = y[:, -1]
    exact = LSAStack.from_preconditioners(torch.tensor(gamma_star, dtype=torch.float32)[None])
    exact.to(dev)
    models: dict[str, Any] = {PGD1: exact}

    # theory rows
    rows.append(
        _row("theory: lsa optimum", "normalized_mse", risk_star / d, seed=seed, se=0.0, n_context=n)
    )
    for i in range(d):
        for j in range(d):
            rows.append(_row("theory: Γ*", "gamma", gamma_star[i, j], seed=seed, se=0.0, i=i, j=j))

    # (1) LSA stacks and the GD variants of the same depth
    for L in config.lsa.layers:
        lsa, tr = train_lsa(spec=spec, n_context=n, n_layer=L, tc=config.train,
                            init_std=config.lsa.init_std, seed=seed, ctx=ctx, name=f"lsa_L{L}")  # fmt: skip
        lsa.eval()
        name = f"lsa (L={L})"
        models[name] = lsa
        p = ctx.path(f"lsa_L{L}.safetensors")
        if p is not None:
            save_model(p, lsa, {"experiment": NAME, "n_layer": str(L)})
        rows += [_row(name, "train_loss", v, seed=seed, step=s, n_layers=L)
                 for s, v in zip(tr.loss_steps, tr.losses, strict=True)]  # fmt: skip
        for kind, label in (("matrix", "pgd"), ("gdpp", "gd++")):
            ref = f"{label} ({L} step{'s' * (L > 1)}, fitted)"
            gd = fit_gd(spec=spec, n_context=n, n_steps=L, kind=kind, tc=config.train, seed=seed,
                        ctx=ctx)  # fmt: skip
            gd.eval()
            models[ref] = gd
            # step sizes: η_l (GD++), tr(P_l)/d (preconditioned GD)
            eta = gd.preconditioners().detach().cpu().double().diagonal(dim1=1, dim2=2).mean(1)
            rows += [_row(ref, "step_size", float(eta[s]), seed=seed, step=s + 1, n_layers=L)
                     for s in range(L)]  # fmt: skip
            if kind == "gdpp":
                gam = gd.gamma.detach().cpu().numpy()
                rows += [_row(ref, "gdpp_gamma", float(gam[s]), seed=seed, step=s + 1,
                              n_layers=L) for s in range(L)]  # fmt: skip
            rows += compare_rows(name, ref, lsa, gd, x, y, grad_prompts=e.grad_prompts, seed=seed,
                                 n_layers=L)  # fmt: skip
        if L == 1:
            rows += compare_rows(name, PGD1, lsa, exact, x, y, grad_prompts=e.grad_prompts,
                                 seed=seed, n_layers=1)  # fmt: skip
            g_hat = lsa.gamma().detach().cpu().double().numpy()
            err = np.linalg.norm(g_hat - gamma_star) / np.linalg.norm(gamma_star)
            rows.append(_row(name, "gamma_rel_frobenius", err, seed=seed, n_layers=1))
            rows.append(_row(name, "nuisance_norm", lsa.layers[0].nuisance_norm(), seed=seed,
                             n_layers=1))  # fmt: skip
            rows += [_row(name, "gamma", g_hat[i, j], seed=seed, i=i, j=j, n_layers=1)
                     for i in range(d) for j in range(d)]  # fmt: skip

    # (2) the GPT of icl-regression (softmax attention by default), against the same algorithms
    bayes = create_estimator("bayes", prior_cov=1.0, noise_std=t.noise_std)
    ols = create_estimator("ols")
    if config.gpt.enabled:
        gpt, gtr = train_gpt(config, ctx)
        gpt.eval()
        p = ctx.path("gpt.safetensors")
        if p is not None:
            save_model(p, gpt, {"experiment": NAME})
        gname = config.gpt.model.label()
        rows += [_row(gname, "train_loss", v, seed=seed, step=s)
                 for s, v in zip(gtr.loss_steps, gtr.losses, strict=True)]  # fmt: skip
        fn = _last(gpt)
        models[gname] = fn
        for ref, m in list(models.items()):
            if ref.startswith(("pgd", "gd")):
                rows += compare_rows(gname, ref, fn, m, x, y,
                                     grad_prompts=e.grad_prompts, seed=seed)  # fmt: skip
        with torch.no_grad():
            pg = gpt(x, y).double().cpu()  # (B, n + 1): every prefix
        pb = bayes.predict_prefixes(x.double().cpu(), y.double().cpu())
        for k in range(1, n + 1):
            gk = lsa_optimal_gamma(cov=lam, n=k, sigma=t.noise_std)
            ek = LSAStack.from_preconditioners(torch.tensor(gk)[None])
            with torch.no_grad():
                pk = ek(x[:, : k + 1].double().cpu(), y[:, : k + 1].double().cpu())
            rows.append(_row(gname, "pred_cosine", cosine(pg[:, k], pk), seed=seed,
                             reference="pgd (1 step, Γ*(k))", n_context=k))  # fmt: skip
            rows.append(_row(gname, "pred_cosine", cosine(pg[:, k], pb[:, k]), seed=seed,
                             reference="bayes (posterior mean)", n_context=k))  # fmt: skip

    # (3) errors of everything on the same held-out prompts
    with torch.no_grad():
        for name, m in models.items():
            rows.append(_mse_row(name, m(x, y), target, d, seed, n_context=n))
    xc, yc, xq = x[:, :-1].double().cpu(), y[:, :-1].double().cpu(), x[:, -1:].double().cpu()
    for name, est in (("bayes (posterior mean)", bayes), ("ols", ols)):
        rows.append(_mse_row(name, est.fit(xc, yc).predict(xq)[:, 0], target.cpu(), d, seed,
                             n_context=n))  # fmt: skip
    table = pd.DataFrame(rows)
    table.attrs = {}
    return Result(table=table, checks=checks(table, config), figures=figures(table))


# ------------------------------------------------------------------------------ checks
# Tolerances fixed before any run.
GAMMA_REL_TOL = 0.05  # ‖Γ̂ − Γ*‖_F / ‖Γ*‖_F
PRED_COS_MIN = 0.99  # cosine of predictions over held-out prompts


def _value(table: pd.DataFrame, method: str, metric: str, reference: str = "") -> pd.Series | None:
    df = table[(table["method"] == method) & (table["metric"] == metric)]
    if reference:
        df = df[df["reference"] == reference]
    return None if df.empty else df.iloc[0]


def _at_least(claim: str, src: str, value: float, minimum: float, tol: str) -> Check:
    return Check(claim, src, "claim", f"≥ {minimum}", float(value), tol,
                 "holds" if value >= minimum else "fails")  # fmt: skip


def checks(table: pd.DataFrame, config: Config) -> list[Check]:
    """The trained LSA against Γ* and one PGD step (claims), the closed-form risk against the
    held-out error of the exact optimum (theory), deeper stacks against fitted GD++ (claims)."""
    out: list[Check] = []
    one = "lsa (L=1)"
    src1 = "Zhang, Frei & Bartlett 2024, Thm 4.1; survey arXiv:2410.11444 Thm 4.7"
    claim_g = "the trained single-layer LSA's effective Γ equals the closed form Γ*"
    r = _value(table, one, "gamma_rel_frobenius")
    if r is None:
        out.append(not_applicable(claim_g, src1, "claim", "lsa.layers does not include 1"))
    else:
        v = float(r["value"])
        out.append(Check(claim_g, src1, "claim", 0.0, v, f"‖Γ̂ − Γ*‖_F / ‖Γ*‖_F ≤ {GAMMA_REL_TOL}",
                         "holds" if v <= GAMMA_REL_TOL else "fails"))  # fmt: skip
    claim_c = "the trained single-layer LSA predicts like one step of preconditioned GD (Γ*)"
    r = _value(table, one, "pred_cosine", PGD1)
    src2 = "von Oswald et al. 2023, Prop. 1 and §3; Ahn et al. 2023, Thm 1"
    if r is None:
        out.append(not_applicable(claim_c, src2, "claim", "lsa.layers does not include 1"))
    else:
        out.append(_at_least(claim_c, src2, float(r["value"]), PRED_COS_MIN,
                             f"cosine of predictions on held-out prompts ≥ {PRED_COS_MIN}"))  # fmt: skip
    th, me = (_value(table, "theory: lsa optimum", "normalized_mse"),
              _value(table, PGD1, "normalized_mse"))  # fmt: skip
    out.append(z_check("the LSA optimum's error on held-out prompts matches its closed-form risk",
                       "fmtheory.theory.lsa eq. (3) (Isserlis); ZFB 2024 Thm 4.1", "theory",
                       measured=float(me["value"]), measured_se=float(me["se"]),
                       predicted=float(th["value"]), z=Z_CHECK))  # fmt: skip
    for L in config.lsa.layers:
        if L == 1:
            continue
        r = _value(table, f"lsa (L={L})", "pred_cosine", f"gd++ ({L} steps, fitted)")
        out.append(_at_least(
            f"the trained {L}-layer LSA predicts like {L} steps of GD++ with fitted step sizes",
            "von Oswald et al. 2023, §3 (GD++) and Fig. 3", float(r["value"]), PRED_COS_MIN,
            f"cosine of predictions on held-out prompts ≥ {PRED_COS_MIN}"))  # fmt: skip
    return out


# ------------------------------------------------------------------------------ figures
def figures(table: pd.DataFrame) -> dict[str, Any]:
    """From the table alone: Γ̂ vs Γ*, equivalence bars, GPT vs context length, errors, losses."""
    import matplotlib.pyplot as plt

    from fmtheory.report.plots import training_loss_plot

    out: dict[str, Any] = {}
    gh = table[(table["metric"] == "gamma") & (table["method"] == "lsa (L=1)")]
    gs = table[(table["metric"] == "gamma") & (table["method"] == "theory: Γ*")]
    if len(gh) and len(gs):
        d = int(gs["i"].max()) + 1
        mats = []
        for df in (gh, gs):
            m = np.zeros((d, d))
            m[df["i"].astype(int), df["j"].astype(int)] = df["value"]
            mats.append(m)
        vmax = max(abs(mats[0]).max(), abs(mats[1]).max())
        fig, axes = plt.subplots(1, 3, figsize=(10, 3.4))
        for ax, m, title in zip(axes, [mats[0], mats[1], mats[0] - mats[1]],
                                ["trained Γ̂ (L=1)", "closed form Γ*", "Γ̂ − Γ*"], strict=True):  # fmt: skip
            im = ax.imshow(m, cmap="RdBu_r", vmin=-vmax, vmax=vmax)
            ax.set_title(title)
            ax.set_xticks([])
            ax.set_yticks([])
        fig.colorbar(im, ax=axes, shrink=0.8)
        out["gamma"] = fig
    cos = table[(table["metric"] == "pred_cosine") & table["n_context"].isna()]
    if len(cos):
        grad = table[table["metric"] == "grad_context_cosine"].set_index(["method", "reference"])
        fig, axes = plt.subplots(1, 2, figsize=(11, 0.35 * len(cos) + 1.6), sharey=True)
        labels = [f"{m}  vs  {r}" for m, r in zip(cos["method"], cos["reference"], strict=True)]
        keys = list(zip(cos["method"], cos["reference"], strict=True))
        gvals = [float(grad.loc[k, "value"]) if k in grad.index else np.nan for k in keys]
        for ax, vals, xlabel in (
            (axes[0], cos["value"].to_numpy(), "cosine of predictions"),
            (axes[1], np.array(gvals), "cosine of ∂ŷ/∂(x_i, y_i) (mean over prompts)"),
        ):
            ax.barh(range(len(cos)), vals, color="tab:blue")
            ax.axvline(PRED_COS_MIN, color="red", ls="--", lw=1, label=f"{PRED_COS_MIN}")
            ax.set_xlim(min(0.0, float(np.nanmin(vals))), 1.0)
            ax.set_xlabel(xlabel)
            ax.grid(alpha=0.3, axis="x")
        axes[0].set_yticks(range(len(cos)), labels, fontsize=7)
        axes[0].invert_yaxis()
        axes[0].legend(fontsize=8)
        fig.suptitle("trained models vs gradient-descent algorithms (held-out prompts)")
        fig.tight_layout()
        out["equivalence"] = fig
    byk = table[(table["metric"] == "pred_cosine") & table["n_context"].notna()]
    if len(byk):
        fig, ax = plt.subplots(figsize=(6, 3.6))
        for ref, df in byk.groupby("reference", sort=False):
            ax.plot(df["n_context"], df["value"], marker="o", ms=3, label=f"gpt vs {ref}")
        ax.set_xlabel("context length k")
        ax.set_ylabel("prediction cosine")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        fig.tight_layout()
        out["gpt_vs_context"] = fig
    err = table[table["metric"] == "normalized_mse"]
    if len(err):
        fig, ax = plt.subplots(figsize=(7, 0.35 * len(err) + 1.5))
        ax.barh(range(len(err)), err["value"], color="grey",
                xerr=[err["value"] - err["ci_low"], err["ci_high"] - err["value"]])  # fmt: skip
        ax.set_yticks(range(len(err)), err["method"], fontsize=7)
        ax.invert_yaxis()
        ax.set_xlabel("squared error of the query / d (95% CI)")
        fig.tight_layout()
        out["error"] = fig
    loss_fig = training_loss_plot(table)
    if loss_fig is not None:
        out["training_loss"] = loss_fig
    return out


def headline(table: pd.DataFrame, config: Config) -> dict[str, float]:
    """For sweeps: Γ error, the single layer's and the GPT's cosine with one PGD step, errors."""
    out: dict[str, float] = {}
    gpt = _gpt_method(table)
    for key, method, metric, ref in (
        ("gamma_rel_err", "lsa (L=1)", "gamma_rel_frobenius", ""),
        ("lsa1_pgd1_cosine", "lsa (L=1)", "pred_cosine", PGD1),
        ("gpt_pgd1_cosine", gpt, "pred_cosine", PGD1),
        ("lsa1_err", "lsa (L=1)", "normalized_mse", ""),
        ("gpt_err", gpt, "normalized_mse", ""),
        ("lsa_opt_theory_err", "theory: lsa optimum", "normalized_mse", ""),
    ):
        r = _value(table, method, metric, ref)
        if r is not None:
            out[key] = float(r["value"])
    return out


EXPERIMENT = register_experiment(
    Experiment(
        name=NAME,
        claim="One trained linear self-attention layer computes one step of preconditioned gradient "
        "descent with the closed-form preconditioner Γ* = ((1 + 1/n)Λ + (trΛ + σ²)/n·I)⁻¹.",
        source=SOURCE,
        chapter="in-context-learning",
        config_cls=Config,
        run=run,
        checks=checks,
        figures=figures,
        headline=headline,
        label=label,
        formula="Γ* = ((1 + 1/n)Λ + (trΛ + σ²)/n·I)⁻¹; ŷ = x_qᵀ Γ* Xᵀy / n",
        key_figure="error",
    )
)

__all__ = ["Config", "run", "train_lsa", "fit_gd", "train_gpt", "compare_rows",
           "prompt_gradients", "cosine", "rel_l2", "checks", "figures", "headline", "label",
           "EXPERIMENT", "ConfigError"]  # fmt: skip
