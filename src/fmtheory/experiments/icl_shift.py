"""Claim: in-context learners trained on one prompt distribution behave predictably under task, query
and covariate shift; for the single-layer linear self-attention (LSA) optimum two predictions are
exact (survey arXiv:2410.11444 §4.3; Zhang, Frei & Bartlett 2024 §4; Garg et al. 2022 §4):

* a query orthogonal to the span of the context inputs gets the prediction 0, exactly (Γ* ∝ I for
  isotropic x, and (1/n) Σ y_i x_i lies in that span);
* under covariate scaling x → c·x (context and query) the error is the closed form (6) of
  :mod:`fmtheory.theory.lsa` — more generally eq. (3) for every shift with Gaussian inputs — which
  grows like c⁶: the LSA does not re-normalise by the sample covariance, unlike least squares.

Task and query shifts are tolerated as n grows (the LSA's error under them falls with n).

Pipeline: (1) train one single-layer LSA per context length (the one loop of ``lsa-gd``) and the
softmax GPT of ``icl-regression`` on the training distribution; (2) for every configured shift
(:mod:`fmtheory.tasks.shift`) and context length, sample held-out prompts and measure the error of
the trained LSA, the exact LSA optimum (Γ*), the GPT, OLS and ridge on the same prompts; (3) the
closed-form LSA risk at Γ* and at the trained model's own Γ̂ for the Gaussian shifts; (4) verdicts.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
import torch
from pydantic import Field, field_validator, model_validator

from fmtheory.checks import Z_CHECK, difference_check, mean_ci, not_applicable, z_check
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
from fmtheory.models.lsa import LSAStack
from fmtheory.sections import GPTRunSection, LSATrainSection
from fmtheory.tasks.regression import RegressionSpec, make_generator
from fmtheory.tasks.shift import ShiftError, get_shift
from fmtheory.theory.lsa import lsa_optimal_gamma, lsa_orthogonal_query_risk, lsa_risk_of_gamma
from fmtheory.train import save_model
from fmtheory.train.icl import train_on_queries, train_regression_gpt

NAME = "icl-shift"
SOURCE = "survey arXiv:2410.11444 §4.3; Zhang, Frei & Bartlett 2024 §4; Garg et al. 2022 §4"


class TaskConfig(Section):
    """The training distribution: x ~ N(0, I_d), w ~ N(0, I_d), noise σ (isotropic, as in ZFB)."""

    dim: int = Field(5, ge=1, le=128, description="task dimension d")
    n_contexts: list[int] = Field(
        [5, 10, 20], min_length=1, description="context lengths n (one LSA trained per n)"
    )
    noise_std: float = Field(0.0, ge=0.0, le=100.0, description="training label noise σ")

    @field_validator("n_contexts")
    @classmethod
    def _lengths(cls, v: list[int]) -> list[int]:
        if any(n < 1 or n > 1024 for n in v) or len(set(v)) != len(v):
            raise ValueError(f"n_contexts = {v}: distinct integers in [1, 1024]")
        return sorted(v)

    def spec(self) -> RegressionSpec:
        return RegressionSpec(dim=self.dim, noise_std=self.noise_std)


class ShiftItem(Section):
    """One evaluated shift: a registered name, its parameters, and optionally its own context length."""

    name: str = Field(description="a registered shift (fmtheory.tasks.shift)")
    params: dict[str, float] = Field(default_factory=dict, description="the shift's parameters")
    n_context: int | None = Field(
        None, ge=1, le=1024, description="evaluate at this context length only (None: all)"
    )

    @field_validator("name")
    @classmethod
    def _known(cls, v: str) -> str:
        get_shift(v)  # ValueError listing the valid names
        return v

    @model_validator(mode="after")
    def _params(self) -> ShiftItem:
        get_shift(self.name).resolve(self.params)  # ValueError naming the parameter
        return self

    def label(self) -> str:
        p = get_shift(self.name).resolve(self.params)
        given = {k: v for k, v in p.items() if k in self.params} or p
        args = ", ".join(f"{k}={v:g}" for k, v in given.items())
        return f"{self.name}({args})" if args else self.name


def _default_shifts() -> list[ShiftItem]:
    return [ShiftItem(name="none"), ShiftItem(name="covariate-scale", params={"c": 2.0})]


class LSASection(Section):
    init_std: float = Field(0.1, ge=0.0, le=10.0, description="N(0, init_std²) initial weights")
    train: LSATrainSection = LSATrainSection(steps=3000)


class EvalConfig(Section):
    n_prompts: int = Field(8000, ge=10, le=1_000_000, description="held-out prompts per cell")
    ridge_alpha: float = Field(0.1, gt=0.0, description="λ of the ridge baseline")


class Config(ExperimentConfig):
    task: TaskConfig = TaskConfig()
    shifts: list[ShiftItem] = Field(default_factory=_default_shifts, min_length=1)
    lsa: LSASection = LSASection()
    gpt: GPTRunSection = GPTRunSection()
    eval: EvalConfig = EvalConfig()

    @classmethod
    def model_validate(cls, obj: Any, **kwargs: Any) -> Config:  # type: ignore[override]
        """Field validation, then the cross-field size checks (ConfigError naming the field)."""
        cfg = super().model_validate(obj, **kwargs)
        cfg.check_sizes()
        return cfg

    def lengths(self, item: ShiftItem) -> list[int]:
        """Context lengths at which ``item`` is evaluated."""
        return [item.n_context] if item.n_context is not None else list(self.task.n_contexts)

    def check_sizes(self) -> None:
        """Every (shift, context length) must suit the shift, e.g. n < d for query-orthogonal."""
        base = self.task.spec()
        for i, item in enumerate(self.shifts):
            for n in self.lengths(item):
                try:
                    get_shift(item.name).validate(base, n, item.params)
                except ShiftError as err:
                    value = n if err.field == "n_context" else item.params
                    where = (
                        ""
                        if item.n_context is not None or err.field != "n_context"
                        else (" (from task.n_contexts; set this shift's own n_context)")
                    )
                    raise ConfigError(f"shifts.{i}.{err.field}", value, f"{err}{where}") from None


# ------------------------------------------------------------------------------ evaluation
def _row(method: str, metric: str, value: float, lo: float | None = None,
         hi: float | None = None, *, seed: int, shift: str, shift_name: str, n_context: int,
         se: float = float("nan"), **extra: Any) -> dict[str, Any]:  # fmt: skip
    r = dict(method=method, metric=metric, value=float(value), se=float(se),
             ci_low=float(value if lo is None else lo), ci_high=float(value if hi is None else hi),
             seed=seed, shift=shift, shift_name=shift_name, n_context=int(n_context))  # fmt: skip
    r.update(extra)
    return r


LSA_TRAINED, LSA_OPT = "lsa (trained)", "lsa optimum (Γ*)"


def label(config: Config) -> str:
    """The models, named from the config."""
    gpt = f"; {config.gpt.model.label()}" if config.gpt.enabled else ""
    return f"one-layer linear self-attention per context length{gpt}"


def _train_lsa(config: Config, n: int, ctx: RunContext) -> tuple[LSAStack, Any]:
    t, seed = config.task, config.seed + n
    init = torch.Generator().manual_seed(seed * 7919 + 17 + 1)
    lsa = LSAStack(t.dim, 1, init_std=config.lsa.init_std, generator=init).to(ctx.device)
    tc = config.lsa.train
    tr = train_on_queries(lsa, spec=t.spec(), n_context=n, batch_size=tc.batch_size,
                          train_spec=tc.spec(), seed=seed * 7919 + 31 + 2, ctx=ctx, name=f"lsa_n{n}")  # fmt: skip
    return lsa, tr


def run(config: Config, ctx: RunContext | None = None) -> Result:
    """Train, evaluate every shift, compare with the closed forms.  ``ctx=None``: CPU, no disk."""
    config.check_sizes()
    ctx = ctx or RunContext()
    t, e, seed = config.task, config.eval, config.seed
    d, spec, dev = t.dim, t.spec(), ctx.device
    lengths = sorted({n for item in config.shifts for n in config.lengths(item)})

    lsas: dict[int, LSAStack] = {}
    rows: list[dict[str, Any]] = []
    for n in lengths:
        lsa, tr = _train_lsa(config, n, ctx)
        lsa.eval()
        lsas[n] = lsa
        p = ctx.path(f"lsa_n{n}.safetensors")
        if p is not None:
            save_model(p, lsa, {"experiment": NAME, "n_context": str(n)})
        rows += [_row(LSA_TRAINED, "train_loss", v, seed=seed, shift="", shift_name="",
                      n_context=n, step=s) for s, v in zip(tr.loss_steps, tr.losses, strict=True)]  # fmt: skip
    gpt, gpt_name = None, config.gpt.model.label()
    if config.gpt.enabled:
        gpt, gtr = train_regression_gpt(config.gpt.model, config.gpt.train, spec=spec,
                                        n_points=max(lengths) + 1, seed=seed, ctx=ctx)  # fmt: skip
        gpt.eval()
        p = ctx.path("gpt.safetensors")
        if p is not None:
            save_model(p, gpt, {"experiment": NAME})
        rows += [_row(gpt_name, "train_loss", v, seed=seed, shift="", shift_name="",
                      n_context=max(lengths), step=s)
                 for s, v in zip(gtr.loss_steps, gtr.losses, strict=True)]  # fmt: skip

    ridge_name = f"ridge (λ={e.ridge_alpha:g})"
    estimators = {"ols": create_estimator("ols"),
                  ridge_name: create_estimator("ridge", alpha=e.ridge_alpha)}  # fmt: skip
    for i, item in enumerate(config.shifts):
        shift = get_shift(item.name)
        label = item.label()
        for n in config.lengths(item):
            g = make_generator(seed + 1_000_003 + 7919 * i + 104_729 * n, "cpu")
            b = shift.sample(spec, n_context=n, batch=e.n_prompts, generator=g,
                             params=item.params, dtype=torch.float64)  # fmt: skip
            x, y, target = b.x, b.y, b.y[:, -1]
            gamma_star = lsa_optimal_gamma(cov=np.ones(d), n=n, sigma=t.noise_std)
            g_hat = lsas[n].gamma().detach().double().cpu().numpy()
            opt = LSAStack.from_preconditioners(torch.tensor(gamma_star)[None]).double()
            preds: dict[str, torch.Tensor] = {}
            with torch.no_grad():
                preds[LSA_TRAINED] = lsas[n](x.to(dev), y.to(dev)).double().cpu()
                preds[LSA_OPT] = opt(x, y)
                if gpt is not None:
                    preds[gpt_name] = (
                        gpt(x.float().to(dev), y.float().to(dev))[:, -1].double().cpu()
                    )
            for name, est in estimators.items():
                preds[name] = est.fit(x[:, :-1], y[:, :-1]).predict(x[:, -1:])[:, 0]
            values = list(shift.resolve(item.params).values())
            common = dict(seed=seed, shift=label, shift_name=item.name, n_context=n,
                          shift_value=float(values[0]) if len(values) == 1 else math.nan)  # fmt: skip
            for name, pred in preds.items():
                ci = mean_ci((pred - target) ** 2 / d)
                rows.append(_row(name, "normalized_mse", ci.mean, ci.low, ci.high, se=ci.se,
                                 **common))  # fmt: skip
                rows.append(_row(name, "pred_rms", float(pred.pow(2).mean().sqrt()), **common))
            moments = shift.moments(spec, n_context=n, params=item.params)
            if moments is not None:
                kw = dict(n=n, ctx_cov=moments.ctx_cov, query_cov=moments.query_cov,
                          w_cov=moments.w_cov, sigma=moments.noise_std)  # fmt: skip
                rows.append(_row("theory: lsa optimum", "normalized_mse",
                                 lsa_risk_of_gamma(gamma=gamma_star, **kw) / d, se=0.0, **common))  # fmt: skip
                rows.append(_row("theory: trained lsa (its Γ̂)", "normalized_mse",
                                 lsa_risk_of_gamma(gamma=g_hat, **kw) / d, se=0.0, **common))  # fmt: skip
            if item.name == "query-orthogonal":
                # E[x_q x_qᵀ] = I for the isotropic base (projection rescaled by sqrt(d/(d − n)))
                risk = lsa_orthogonal_query_risk(query_second_moment=np.eye(d),
                                                 w_cov=np.eye(d) * spec.w_scale**2,
                                                 sigma=t.noise_std)  # fmt: skip
                rows.append(
                    _row("theory: lsa optimum", "normalized_mse", risk / d, se=0.0, **common)
                )
                # the predictions' size relative to in-distribution queries at the same n
                g_in = make_generator(seed + 2_000_003 + 7919 * i + 104_729 * n, "cpu")
                b_in = get_shift("none").sample(spec, n_context=n, batch=e.n_prompts,
                                                generator=g_in, dtype=torch.float64)  # fmt: skip
                with torch.no_grad():
                    ref = {LSA_TRAINED: lsas[n](b_in.x.to(dev), b_in.y.to(dev)).double().cpu(),
                           LSA_OPT: opt(b_in.x, b_in.y)}  # fmt: skip
                for name, r in ref.items():
                    rms_in = float(r.pow(2).mean().sqrt())
                    rel = float(preds[name].pow(2).mean().sqrt()) / rms_in
                    mx = float(preds[name].abs().max()) / rms_in
                    rows.append(_row(name, "orth_pred_rms_relative", rel, **common))
                    rows.append(_row(name, "orth_pred_max_relative", mx, **common))
    table = pd.DataFrame(rows)
    table.attrs = {}
    return Result(table=table, checks=checks(table, config), figures=figures(table))


# ------------------------------------------------------------------------------ checks
# Tolerances fixed before any run.
EXACT_ZERO_TOL = 1e-9  # max |ŷ| / RMS(in-distribution ŷ) of the exact optimum, float64
TRAINED_ZERO_TOL = 0.05  # RMS(ŷ_orth) / RMS(ŷ_in) of the trained LSA: the 5% Γ budget of lsa-gd


def _cells(table: pd.DataFrame, method: str, metric: str, shift_name: str | None = None,
           exclude: tuple[str, ...] = ()) -> pd.DataFrame:  # fmt: skip
    df = table[(table["method"] == method) & (table["metric"] == metric)]
    if shift_name is not None:
        df = df[df["shift_name"] == shift_name]
    if exclude:
        df = df[~df["shift_name"].isin(exclude)]
    return df.set_index(["shift", "n_context"])


def _z_check(table: pd.DataFrame, method: str, theory: str, shift_name: str | None,
             exclude: tuple[str, ...], claim: str, source: str) -> Check:  # fmt: skip
    """The worst cell's |measured − closed form| against ``Z_CHECK`` standard errors (theory)."""
    me = _cells(table, method, "normalized_mse", shift_name, exclude)
    th = _cells(table, theory, "normalized_mse", shift_name, exclude)
    keys = [k for k in me.index if k in th.index]
    if not keys:
        return not_applicable(claim, source, "theory", "no such shift configured")
    z = {
        k: abs(me.loc[k, "value"] - th.loc[k, "value"]) / max(me.loc[k, "se"], 1e-300) for k in keys
    }
    w = max(z, key=z.get)
    return z_check(claim, source, "theory", measured=float(me.loc[w, "value"]),
                   measured_se=float(me.loc[w, "se"]), predicted=float(th.loc[w, "value"]),
                   z=Z_CHECK, where=f"{len(keys)} cells; worst {w[0]} at n={w[1]}")  # fmt: skip


def checks(table: pd.DataFrame, config: Config) -> list[Check]:
    """The LSA checks (:func:`lsa_checks`), then Garg et al.'s robustness checks of the GPT
    (:func:`garg_checks`) when the config has one of their shifts."""
    return lsa_checks(table, config) + garg_checks(table, config)


def lsa_checks(table: pd.DataFrame, config: Config) -> list[Check]:
    """Orthogonal queries (sanity for the exact optimum, claim for the trained LSA), the closed
    forms under shift (theory), and the tolerance of task/query shifts as n grows (claim)."""
    out: list[Check] = []
    src = "Zhang, Frei & Bartlett 2024 §4 (query shift); fmtheory.theory.lsa"
    for method, metric, tol, what, kind in (
        (LSA_OPT, "orth_pred_max_relative", EXACT_ZERO_TOL, "max |ŷ|", "sanity"),
        (LSA_TRAINED, "orth_pred_rms_relative", TRAINED_ZERO_TOL, "RMS(ŷ)", "claim"),
    ):
        claim = f"the {method} predicts 0 for a query orthogonal to the context span"
        df = _cells(table, method, metric, "query-orthogonal")
        if df.empty:
            out.append(not_applicable(claim, src, kind, "no query-orthogonal shift configured"))
            continue
        worst = float(df["value"].max())
        out.append(Check(claim, src, kind, 0.0, worst,
                         f"{what} on orthogonal queries ≤ {tol:g} × RMS(ŷ) on in-distribution "
                         "queries (worst n)", "holds" if worst <= tol else "fails"))  # fmt: skip
    src_c = (
        "fmtheory.theory.lsa eq. (6) (derived via Isserlis' theorem); ZFB 2024 §4 (covariate shift)"
    )
    out.append(_z_check(table, LSA_TRAINED, "theory: trained lsa (its Γ̂)", "covariate-scale", (),
                        "the trained LSA's error under covariate scaling x → c·x follows the "
                        "closed form at its own Γ̂", src_c))  # fmt: skip
    out.append(_z_check(table, LSA_OPT, "theory: lsa optimum", "covariate-scale", (),
                        "the LSA optimum's error under covariate scaling x → c·x follows the "
                        "closed form (6)", src_c))  # fmt: skip
    out.append(_z_check(table, LSA_TRAINED, "theory: trained lsa (its Γ̂)", None,
                        ("covariate-scale", "query-orthogonal"),
                        "under every other shift with Gaussian inputs the trained LSA's error "
                        "follows the closed form eq. (3) at its own Γ̂",
                        "fmtheory.theory.lsa eq. (3); ZFB 2024 §4"))  # fmt: skip
    claim = "the LSA's error under task and query shifts falls as the context length n grows"
    src_t = "Zhang, Frei & Bartlett 2024 §4 (task and query shift)"
    parts = []
    for shift_name in ("task-scale", "task-sparse", "query-scale"):
        me = _cells(table, LSA_TRAINED, "normalized_mse", shift_name).reset_index()
        for lab, df in me.groupby("shift"):
            if df["n_context"].nunique() < 2:
                continue
            df = df.sort_values("n_context")
            lo, hi = df.iloc[0], df.iloc[-1]
            parts.append((lab, difference_check(
                claim, src_t, "claim", a=float(lo["value"]), a_se=float(lo["se"]),
                b=float(hi["value"]), b_se=float(hi["se"]),
                where=f"{lab}: n={lo['n_context']} → {hi['n_context']}")))  # fmt: skip
    if not parts:
        out.append(
            not_applicable(claim, src_t, "claim", "no task or query shift at ≥ 2 context lengths")
        )
        return out
    statuses = [c.status for _, c in parts]
    status = (
        "fails"
        if "fails" in statuses
        else "inconclusive"
        if "inconclusive" in statuses
        else "holds"
    )
    measured = "; ".join(f"{lab}: {c.measured}" for lab, c in parts)
    why = (
        "; ".join(f"{lab}: {c.why}" for lab, c in parts if c.why)
        if status == "inconclusive"
        else ""
    )
    out.append(Check(claim, src_t, "claim", "error(n_min) > error(n_max) for every shift", measured,
                     parts[0][1].tolerance.split(" (")[0] + ", for every shift", status, why))  # fmt: skip
    return out


# Garg et al. 2022 §4: the softmax GPT under query and scale shifts.  Tolerances fixed before any run.
SRC_GARG = "Garg et al. 2022 §4 (robustness to query and scale shifts)"
#: on a query equal to a context input, at n < d, the GPT's error must be below this fraction of its
#: in-distribution error at the same n (OLS, which interpolates its context, has error 0 there)
IN_CONTEXT_FRACTION = 0.25
#: the scale factor at which Garg et al. report that the transformer degrades (x or w scaled ×3)
DEGRADE_SCALE = 3.0


def _gpt_error(table: pd.DataFrame, method: str, label: str, n: int) -> tuple[float, float] | None:
    df = table[(table["method"] == method) & (table["metric"] == "normalized_mse")
               & (table["shift"] == label) & (table["n_context"] == n)]  # fmt: skip
    return None if df.empty else (float(df["value"].iloc[0]), float(df["se"].iloc[0]))


def garg_checks(table: pd.DataFrame, config: Config) -> list[Check]:
    """Garg et al.'s robustness claims for the GPT, where the config has the shifts they need:
    (1) on a query equal to a context input it tracks OLS (error ≪ its in-distribution error at
    the smallest common n < d); (2, 3) with x or w scaled by 3 it degrades: its error exceeds 9× its
    in-distribution error, the error of a learner that is equivariant to the scale, at the largest
    common n.  No checks when the config has none of these shifts; each is n/a when its shift, the
    "none" shift or the GPT is absent."""

    def factor(it: ShiftItem) -> float:
        return float(next(iter(get_shift(it.name).resolve(it.params).values())))

    if not any(it.name == "query-in-context" or (it.name in ("covariate-scale", "task-scale")
               and abs(factor(it) - DEGRADE_SCALE) < 1e-9) for it in config.shifts):  # fmt: skip
        return []
    out: list[Check] = []
    gpt = config.gpt.model.label()
    d = config.task.dim
    none = [it for it in config.shifts if it.name == "none"]
    none_label = none[0].label() if none else None
    claim_q = ("the GPT tracks OLS on a query equal to one of the context inputs: its error is "
               f"≤ {IN_CONTEXT_FRACTION:g} × its in-distribution error at the same n < d (OLS: 0)")  # fmt: skip
    qic = [it for it in config.shifts if it.name == "query-in-context"]
    common = sorted(
        n for n in range(1, d)
        if config.gpt.enabled and none_label and qic
        and _gpt_error(table, gpt, qic[0].label(), n) and _gpt_error(table, gpt, none_label, n)
    )  # fmt: skip
    if not common:
        out.append(not_applicable(claim_q, SRC_GARG, "claim", "needs the GPT, the none shift and "
                                  "query-in-context at a common context length n < d"))  # fmt: skip
    else:
        n = common[0]
        a, a_se = _gpt_error(table, gpt, qic[0].label(), n)  # type: ignore[misc]
        b, b_se = _gpt_error(table, gpt, none_label, n)  # type: ignore[misc, arg-type]
        out.append(difference_check(claim_q, SRC_GARG, "claim", a=a, a_se=a_se,
                                    b=IN_CONTEXT_FRACTION * b, b_se=IN_CONTEXT_FRACTION * b_se,
                                    greater=False, where=f"n={n}: a = query in context, "
                                    f"b = {IN_CONTEXT_FRACTION:g} × in-distribution"))  # fmt: skip
    for name, what in (("covariate-scale", "x"), ("task-scale", "w")):
        claim = (f"the GPT degrades with {what} scaled by {DEGRADE_SCALE:g}: its error exceeds "
                 f"{DEGRADE_SCALE**2:g} × its in-distribution error (what a scale-equivariant "
                 "learner such as OLS would incur)")  # fmt: skip
        items = [it for it in config.shifts
                 if it.name == name and abs(factor(it) - DEGRADE_SCALE) < 1e-9]  # fmt: skip
        ns = sorted(
            n for n in config.task.n_contexts + [it.n_context for it in items if it.n_context]
            if config.gpt.enabled and none_label and items
            and _gpt_error(table, gpt, items[0].label(), n) and _gpt_error(table, gpt, none_label, n)
        )  # fmt: skip
        if not ns:
            out.append(not_applicable(claim, SRC_GARG, "claim", f"needs the GPT, the none shift and "
                                      f"{name} with factor {DEGRADE_SCALE:g} at a common n"))  # fmt: skip
            continue
        n = ns[-1]
        a, a_se = _gpt_error(table, gpt, items[0].label(), n)  # type: ignore[misc]
        b, b_se = _gpt_error(table, gpt, none_label, n)  # type: ignore[misc, arg-type]
        f = DEGRADE_SCALE**2
        out.append(difference_check(claim, SRC_GARG, "claim", a=a, a_se=a_se, b=f * b,
                                    b_se=f * b_se, greater=True,
                                    where=f"n={n}: a = scaled, b = {f:g} × in-distribution"))  # fmt: skip
    return out


# ------------------------------------------------------------------------------ figures
_STYLES = {
    LSA_TRAINED: dict(color="tab:blue", marker="o"),
    LSA_OPT: dict(color="tab:cyan", marker="x", ls=":"),
    "gpt": dict(color="black", marker="s"),  # any "GPT ..." model
    "ols": dict(color="tab:green", marker="^"),
    "theory: lsa optimum": dict(color="tab:red", ls="--"),
    "theory: trained lsa (its Γ̂)": dict(color="tab:orange", ls=":"),
}


PLOT_FLOOR = 1e-6  # errors below this are drawn at it (log axis)
_RIDGE_STYLE = dict(color="tab:purple", marker="v")


def figures(table: pd.DataFrame) -> dict[str, Any]:
    """From the table alone: error vs context length, one panel per shift; training losses."""
    import matplotlib.pyplot as plt

    from fmtheory.report.plots import training_loss_plot

    out: dict[str, Any] = {}
    err = table[table["metric"] == "normalized_mse"]
    shifts = list(dict.fromkeys(err["shift"]))
    if shifts:
        cols = min(4, len(shifts))
        nrows = math.ceil(len(shifts) / cols)
        fig, axes = plt.subplots(nrows, cols, figsize=(3.6 * cols, 3.0 * nrows), squeeze=False)
        for ax, s in zip(axes.flat, shifts, strict=False):
            df = err[err["shift"] == s]
            for m, g in df.groupby("method", sort=False):
                g = g.sort_values("n_context")
                st = _STYLES.get("gpt" if str(m).startswith("GPT ") else str(m), dict(marker="."))
                # exact fits (OLS on noiseless prompts: ~1e-31) are drawn at the floor
                ax.plot(g["n_context"], g["value"].clip(lower=PLOT_FLOOR), label=str(m), ms=4, **st)
            ax.set_yscale("log")
            ax.set_title(s, fontsize=9)
            ax.set_xlabel("n", fontsize=8)
            ax.grid(alpha=0.3)
        for ax in list(axes.flat)[len(shifts) :]:
            ax.axis("off")
        handles, labels = axes.flat[0].get_legend_handles_labels()
        fig.legend(handles, labels, loc="lower center", ncol=4, fontsize=8)
        fig.suptitle(f"squared error of the query / d under each shift (floor {PLOT_FLOOR:g})")
        fig.tight_layout(rect=(0, 0.06, 1, 0.97))
        out["error_by_shift"] = fig
    scaling = scaling_figure(table)
    if scaling is not None:
        out["error_vs_scale"] = scaling
    loss_fig = training_loss_plot(
        table, by=["method", "n_context"], label=lambda m, n: f"{m} (n={n})"
    )
    if loss_fig is not None:
        out["training_loss"] = loss_fig
    return out


def scaling_figure(table: pd.DataFrame) -> Any | None:
    """Garg et al. 2022 §4 (scaled inputs and weights): the error at the largest n against the factor on x
    (covariate-scale) and on w (task-scale), the "none" shift drawn at factor 1; every method and
    the LSA closed form.  None when the table has no scaled shift with a stored factor."""
    import matplotlib.pyplot as plt

    if "shift_value" not in table.columns:
        return None
    err = table[table["metric"] == "normalized_mse"]
    panels = [(name, what) for name, what in (("covariate-scale", "x"), ("task-scale", "w"))
              if (err["shift_name"] == name).any()]  # fmt: skip
    if not panels:
        return None
    fig, axes = plt.subplots(1, len(panels), figsize=(5.2 * len(panels), 3.8), squeeze=False)
    for ax, (name, what) in zip(axes[0], panels, strict=True):
        scaled = err[err["shift_name"] == name]
        n = int(scaled["n_context"].max())
        base = err[(err["shift_name"] == "none") & (err["n_context"] == n)].assign(shift_value=1.0)
        df = pd.concat([scaled[scaled["n_context"] == n], base])
        for m, g in df.groupby("method", sort=False):
            g = g.sort_values("shift_value")
            key = "gpt" if str(m).startswith("GPT ") else str(m)
            st = _STYLES.get(key, _RIDGE_STYLE if key.startswith("ridge") else dict(marker="."))
            ax.plot(g["shift_value"], g["value"].clip(lower=PLOT_FLOOR), label=str(m), ms=4, **st)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ticks = sorted(df["shift_value"].unique())
        ax.set_xticks(ticks, [f"1/{1 / v:.0f}" if v < 1 and abs(1 / v - round(1 / v)) < 1e-6
                              else f"{v:g}" for v in ticks])  # fmt: skip
        ax.minorticks_off()
        ax.set_xlabel(f"factor on {what}")
        ax.set_ylabel(f"squared error / d (floor {PLOT_FLOOR:g})")
        ax.set_title(f"{what} scaled ({name}), n = {n}", fontsize=9)
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=7)
    fig.tight_layout()
    return fig


def headline(table: pd.DataFrame, config: Config) -> dict[str, float]:
    """For sweeps: the largest n's error of every method per shift (``<method>@<shift>``)."""
    err = table[table["metric"] == "normalized_mse"]
    out: dict[str, float] = {}
    for (m, s), df in err.groupby(["method", "shift"]):
        out[f"{m}@{s}"] = float(df.sort_values("n_context").iloc[-1]["value"])
    return out


EXPERIMENT = register_experiment(
    Experiment(
        name=NAME,
        claim="Under distribution shift the LSA optimum predicts exactly 0 for a query orthogonal "
        "to the context and its error under covariate scaling follows a closed form; LSA, the "
        "softmax GPT, OLS and ridge are measured under task, query and covariate shifts.",
        source=SOURCE,
        chapter="in-context-learning",
        config_cls=Config,
        run=run,
        checks=checks,
        figures=figures,
        headline=headline,
        label=label,
        formula="risk(Γ) = E[(x_qᵀΓXᵀy/n − y_q)²] under the shifted moments (Isserlis)",
        key_figure="error_by_shift",
    )
)

__all__ = ["Config", "ShiftItem", "run", "checks", "figures", "headline", "label", "EXPERIMENT",
           "ConfigError"]  # fmt: skip
