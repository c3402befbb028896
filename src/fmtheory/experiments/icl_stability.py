"""Claim: in-context learning is stable — replacing one of the n examples of a prompt moves a trained
transformer's prediction by O(1/n), the stability rate of the algorithm it implements (survey
arXiv:2410.11444, Thm 4.5; Li, Ildiz, Papailiopoulos & Oymak 2023, "Transformers as Algorithms",
ICML, §3, who bound the change by (1 + Γe^Γ)^D / (2n − 1) for D layers with logits bounded by Γ).

Pipeline: (1) train a GPT on linear-regression prompts at each depth D of ``probe.depths`` (and at
``model.n_layer``, the main model); (2) on held-out prompts, for every context length n, replace one
uniformly chosen context example by a fresh example of the same task, or add noise of norm ε to it,
and measure |ŷ' − ŷ| of the query prediction for the transformer and for ridge (the Bayes posterior
mean) on the SAME perturbed prompts (:mod:`fmtheory.probes.stability`); (3) the same for the main
model at several attention temperatures T (logits divided by T at inference, see
:func:`attention_temperature`); (4) fit the rate: log-log least squares of the mean change against n
over n >= ``probe.fit_min_context``; (5) Γ from the trained weights
(:func:`fmtheory.probes.stability.attention_logit_bound`) and the bound beside the measurement, with
a plain statement of when it is vacuous (>= 2); (6) typos: corrupt k of the n context labels (k/n in
``probe.corrupt_fractions``) and measure the query error of the transformer and of ridge on the same
corrupted prompts; (7) verdicts.

Sensitivities are in label units (not divided by d); errors are squared errors divided by d.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator
from typing import Any, Literal

import numpy as np
import pandas as pd
import torch
from pydantic import Field, ValidationInfo, field_validator

from fmtheory.checks import (
    bound_check,
    fit_power_law,
    inconclusive,
    not_applicable,
)
from fmtheory.contract import (
    Chapter,
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
from fmtheory.models.hooks import hook_points
from fmtheory.models.icl import build_regression_transformer
from fmtheory.probes.stability import (
    attention_logit_bound,
    label_corruption,
    prompt_sensitivity,
)
from fmtheory.sections import FixedTrainSection, GPTSection, TrainSection
from fmtheory.tasks.regression import RegressionSpec, make_generator, sample_regression
from fmtheory.theory.stability import is_vacuous, log_stability_bound
from fmtheory.train import fit, seeded

NAME = "icl-stability"
SOURCE = "survey arXiv:2410.11444 Thm 4.5; Li et al. 2023 (ICML) §3"


class ProbeConfig(Section):
    n_prompts: int = Field(2000, ge=10, le=1_000_000, description="held-out prompts per probe")
    depths: list[int] = Field(
        [1, 2, 4], min_length=1, description="depths D of the transformers trained for the sweep"
    )
    temperatures: list[float] = Field(
        [0.5, 1.0, 2.0], min_length=1, description="attention temperatures T (logits / T)"
    )
    epsilon: float = Field(
        0.1, gt=0.0, le=1e3, description="norm ε of the noise added to one example"
    )
    fit_min_context: int | None = Field(
        None, ge=1, description="smallest n in the rate fit (None: 3·dim, where n >> d begins)"
    )
    corrupt_fractions: list[float] = Field(
        [0.0, 0.05, 0.1, 0.2, 0.3, 0.5], min_length=2, description="k/n of corrupted labels"
    )
    corruption: Literal["resample", "sign_flip"] = Field(
        "resample", description="resample: label ← N(0, Var y); sign_flip: label ← −label"
    )

    @field_validator("depths")
    @classmethod
    def _depths(cls, v: list[int]) -> list[int]:
        if any(d < 1 or d > 48 for d in v):
            raise ValueError(f"depths = {v}: each must be an integer in [1, 48]")
        return sorted(set(v))

    @field_validator("temperatures")
    @classmethod
    def _temps(cls, v: list[float]) -> list[float]:
        if any(not (math.isfinite(t) and t > 0) for t in v):
            raise ValueError(f"temperatures = {v}: each must be a finite number > 0")
        return sorted(set(v))

    @field_validator("corrupt_fractions")
    @classmethod
    def _fracs(cls, v: list[float]) -> list[float]:
        if any(not 0.0 <= f <= 1.0 for f in v):
            raise ValueError(f"corrupt_fractions = {v}: each must be in [0, 1]")
        return sorted(set(v))


class TaskConfig(Section):
    """Gaussian linear regression: x ~ N(0, I), w ~ N(w_mean·1, τ²I), y = w·x + N(0, σ²)."""

    dim: int = Field(3, ge=1, le=256, description="task dimension d")
    n_points: int = Field(32, ge=1, le=512, description="pairs per prompt (context 0..n-1)")
    noise_std: float = Field(0.5, ge=0.0, le=100.0, description="label noise σ")
    w_mean: float = Field(0.0, ge=-100.0, le=100.0, description="prior mean of each coordinate")
    w_scale: float = Field(1.0, gt=0.0, le=100.0, description="prior standard deviation τ of w")

    def spec(self) -> RegressionSpec:
        return RegressionSpec(
            dim=self.dim, noise_std=self.noise_std, w_mean=self.w_mean, w_scale=self.w_scale
        )


class Config(ExperimentConfig):
    task: TaskConfig = TaskConfig()
    model: GPTSection
    train: FixedTrainSection = TrainSection()
    probe: ProbeConfig = ProbeConfig()

    @field_validator("model")
    @classmethod
    def _softmax(cls, v: GPTSection) -> GPTSection:
        if v.attention != "softmax":
            raise ValueError(
                f"attention = {v.attention!r}: icl-stability needs softmax attention (Γ and the "
                "temperature are defined for softmax logits)"
            )
        return v

    @field_validator("task")
    @classmethod
    def _enough_points(cls, v: TaskConfig) -> TaskConfig:
        if v.n_points < 4:
            raise ValueError(f"task.n_points = {v.n_points}: the rate fit needs n_points >= 4")
        return v

    @field_validator("probe")
    @classmethod
    def _fit_window(cls, v: ProbeConfig, info: ValidationInfo) -> ProbeConfig:
        task = info.data.get("task")
        if task is not None:
            lo = 3 * task.dim if v.fit_min_context is None else v.fit_min_context
            if lo > task.n_points - 3:
                raise ValueError(
                    f"probe.fit_min_context = {lo} (None means 3·dim): must be <= n_points - 3 = "
                    f"{task.n_points - 3}, so that the rate fit has three context lengths"
                )
        return v

    def fit_min(self) -> int:
        p = self.probe.fit_min_context
        return 3 * self.task.dim if p is None else p


# ---------------------------------------------------------------------------------------------
@contextlib.contextmanager
def attention_temperature(model: torch.nn.Module, temperature: float) -> Iterator[None]:
    """Divide every attention logit of ``model`` by ``temperature`` inside the ``with`` block.

    Mechanism: a forward hook on each ``blocks.{i}.attn.hook_q`` hook point returns q / T, so the
    logits q·k / sqrt(D) become q·k / (T·sqrt(D)) on both the fused (SDPA) and the explicit path of
    :class:`~fmtheory.models.gpt.Attention`.  T > 1 flattens attention towards averaging, T < 1
    sharpens it towards hard attention.  The hooks are removed on exit, also on error; T = 1 adds
    none.  (An inference-time knob: the weights are untouched.)
    """
    if not (math.isfinite(temperature) and temperature > 0):
        raise ValueError(f"temperature = {temperature!r}: must be a finite number > 0")
    handles = []
    try:
        if temperature != 1.0:
            scale = 1.0 / temperature
            for name, hp in hook_points(model).items():
                if name.endswith("attn.hook_q"):
                    handles.append(hp.register_forward_hook(lambda m, i, out: out * scale))
        yield
    finally:
        for h in handles:
            h.remove()


def label(config: Config) -> str:
    """The main model, named from its config (the depth sweep changes n_layer only)."""
    depths = sorted(set(config.probe.depths) | {config.model.n_layer})
    return f"{config.model.label()}; depth sweep D ∈ {{{', '.join(map(str, depths))}}}"


def _build(config: Config, depth: int) -> torch.nn.Module:
    section = config.model.model_copy(update={"n_layer": depth})
    return build_regression_transformer(section, dim=config.task.dim, n_points=config.task.n_points)


def train_depths(config: Config, ctx: RunContext) -> dict[int, tuple[torch.nn.Module, Any]]:
    """One transformer per depth (``probe.depths`` ∪ {model.n_layer}), same data stream and seed,
    trained by :func:`fmtheory.train.fit` on the squared error at every position."""
    spec = config.task.spec()
    n = config.task.n_points
    bs = config.train.batch_size

    def loss_fn(m: torch.nn.Module, step: int, g: torch.Generator) -> torch.Tensor:
        b = sample_regression(spec, batch=bs, n_points=n, generator=g)
        return (m(b.x, b.y) - b.y).pow(2).mean()

    out = {}
    for depth in sorted(set(config.probe.depths) | {config.model.n_layer}):
        model = seeded(lambda depth=depth: _build(config, depth), config.seed)
        tr = fit(model, loss_fn, config.train, seed=config.seed, ctx=ctx, name=f"depth{depth}")
        out[depth] = (model, tr)
    return out


def _ridge(config: Config) -> Any:
    t = config.task
    mean, cov = t.spec().w_prior(torch.float64)
    return create_estimator("bayes", prior_mean=mean, prior_cov=cov, noise_std=t.noise_std)


def _model_predictor(model: torch.nn.Module, device: Any) -> Any:
    @torch.no_grad()
    def predict(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        model.eval()
        return torch.cat(
            [model(a.to(device), b.to(device)).cpu() for a, b in
             zip(x.split(4000), y.split(4000), strict=True)]
        )  # fmt: skip

    return predict


def _estimator_predictor(est: Any) -> Any:
    return lambda x, y: est.predict_prefixes(x.double(), y.double())


def _eval_prompts(config: Config) -> tuple[Any, torch.Tensor, torch.Tensor]:
    """Held-out prompts and, per prompt, one fresh example of the same task (for replacement)."""
    t = config.task
    g = make_generator(config.seed + 1_000_003)
    b = sample_regression(t.spec(), batch=config.probe.n_prompts, n_points=t.n_points + 1,
                          generator=g)  # fmt: skip
    # The extra pair n_points is the fresh replacement example (same task, independent x, noise).
    return (b.x[:, :-1], b.y[:, :-1]), b.x[:, -1], b.y[:, -1]


def _ci(mean: float, se: float) -> tuple[float, float]:
    return mean - 1.96 * se, mean + 1.96 * se


def _sens_rows(res: Any, *, metric: str, coords: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for method, c in res.curves.items():
        for k, m, s in zip(c.context_lengths, c.mean_abs, c.stderr, strict=True):
            lo, hi = _ci(float(m), float(s))
            rows.append(dict(method=method, metric=metric, n_context=int(k), value=float(m),
                             se=float(s), ci_low=lo, ci_high=hi, **coords))  # fmt: skip
    return rows


def _error_rows(
    method: str, pred: torch.Tensor, y: torch.Tensor, d: int, coords: dict
) -> list[dict]:
    e = ((pred.double() - y.double()) ** 2 / d).numpy()
    mean, se = e.mean(0), e.std(0, ddof=1) / math.sqrt(e.shape[0])
    return [dict(method=method, metric="normalized_mse", n_context=k, value=float(mean[k]),
                 se=float(se[k]), ci_low=float(mean[k] - 1.96 * se[k]), ci_high=float(mean[k] + 1.96 * se[k]),
                 **coords) for k in range(e.shape[1])]  # fmt: skip


def _fit_rows(table: pd.DataFrame, config: Config) -> list[dict[str, Any]]:
    """Fitted exponent of the mean change vs n over n >= fit_min, per (method, metric, depth, T)."""
    lo = config.fit_min()
    rows = []
    sens = table[table["metric"].isin(["sensitivity_replace", "sensitivity_noise"])]
    for (method, metric, depth, temp), g in sens.groupby(
        ["method", "metric", "depth", "temperature"], dropna=False
    ):
        g = g[g["n_context"] >= lo].sort_values("n_context")
        if len(g) < 3 or not (g["value"] > 0).all():
            continue
        f = fit_power_law(g["n_context"], g["value"], g["se"])
        rows.append(dict(method=method, metric=f"rate_{metric.removeprefix('sensitivity_')}",
                         value=f.slope, se=f.slope_se, ci_low=f.slope_low, ci_high=f.slope_high,
                         depth=depth, temperature=temp, r2=f.r2, n_context=np.nan,
                         seed=-1))  # fmt: skip
    return rows


def run(config: Config, ctx: RunContext | None = None) -> Result:
    """Train the depth sweep, probe sensitivity / temperature / corruption, compare with the bound."""
    ctx = ctx or RunContext()
    t, p = config.task, config.probe
    d, n_max = t.dim, t.n_points
    models = train_depths(config, ctx)
    (x, y), x_new, y_new = _eval_prompts(config)
    ks = list(range(1, n_max))
    ridge = _estimator_predictor(_ridge(config))
    rows: list[dict[str, Any]] = []
    main = config.model.n_layer
    ridge_coords = dict(depth=np.nan, temperature=np.nan, seed=config.seed)
    rows += _error_rows("ridge", ridge(x, y), y, d, ridge_coords)
    # Control: the main architecture at initialisation (near-uniform attention = averaging, which is
    # trivially O(1/n)-stable): the rate alone cannot tell a learned algorithm from averaging.
    untrained = seeded(lambda: _build(config, main), config.seed).to(ctx.device)
    g = make_generator(config.seed + 7)
    ctl = prompt_sensitivity({"transformer (untrained)": _model_predictor(untrained, ctx.device)},
                             x, y, context_lengths=ks, generator=g, mode="replace", x_new=x_new,
                             y_new=y_new)  # fmt: skip
    rows += _sens_rows(ctl, metric="sensitivity_replace",
                       coords=dict(depth=main, temperature=1.0, seed=config.seed))  # fmt: skip
    for depth, (model, tr) in models.items():
        temps = p.temperatures if depth == main else [1.0]
        if depth == main and 1.0 not in temps:
            temps = sorted(set(temps) | {1.0})
        for temp in temps:
            coords = dict(depth=depth, temperature=temp, seed=config.seed)
            pred = _model_predictor(model, ctx.device)
            with attention_temperature(model, temp):
                g = make_generator(config.seed + 7)  # same perturbations for every model
                fns = {"transformer": pred}
                if depth == main and temp == 1.0:
                    fns["ridge"] = ridge
                rep = prompt_sensitivity(fns, x, y, context_lengths=ks, generator=g,
                                         mode="replace", x_new=x_new, y_new=y_new)  # fmt: skip
                g = make_generator(config.seed + 8)
                noi = prompt_sensitivity(fns, x, y, context_lengths=ks, generator=g, mode="noise",
                                         epsilon=p.epsilon)  # fmt: skip
                clean = pred(x, y)
            for r_ in _sens_rows(rep, metric="sensitivity_replace", coords=coords):
                rows.append(r_ if r_["method"] == "transformer" else {**r_, **ridge_coords})
            for r_ in _sens_rows(noi, metric="sensitivity_noise", coords=coords):
                rows.append(r_ if r_["method"] == "transformer" else {**r_, **ridge_coords})
            rows += _error_rows("transformer", clean, y, d, coords)
            # The theorem's normalisation: outputs in the unit ball -> divide by max |ŷ| at each n.
            scale = clean.abs().amax(0).double()  # (n,)
            c = rep.curves["transformer"]
            lb = attention_logit_bound(model.backbone, temperature=temp)
            for k, m, s in zip(c.context_lengths, c.mean_abs, c.stderr, strict=True):
                sc = float(scale[k])
                rows.append(dict(method="transformer", metric="sensitivity_unit", n_context=int(k),
                                 value=m / sc, se=s / sc, ci_low=(m - 1.96 * s) / sc,
                                 ci_high=(m + 1.96 * s) / sc, **coords))  # fmt: skip
                lg = log_stability_bound(gamma=lb.gamma, depth=lb.depth, n=int(k) + 1)
                b = math.exp(lg) if lg < 709 else math.inf
                rows.append(dict(method="theory: stability bound (Thm 4.5)",
                                 metric="stability_bound", n_context=int(k), value=b, se=0.0,
                                 ci_low=b,
                                 ci_high=b, log10_value=lg / math.log(10), **coords))  # fmt: skip
            rows.append(dict(method="transformer", metric="gamma", n_context=np.nan,
                             value=lb.gamma, se=0.0, ci_low=lb.gamma, ci_high=lb.gamma, **coords))  # fmt: skip
        rows += [dict(method="transformer", metric="train_loss", step=s, value=v, se=math.nan,
                      ci_low=v,
                      ci_high=v, depth=depth, temperature=1.0, seed=config.seed)
                 for s, v in zip(tr.loss_steps, tr.losses, strict=True)]  # fmt: skip
    # Typos: k of n labels corrupted, main model at T = 1, and ridge, on the same prompts.
    n_ctx = n_max - 1
    # k = 1 is always included: the single-corruption reference of the linear-composition check.
    k_list = sorted({1} | {int(round(f * n_ctx)) for f in p.corrupt_fractions})
    label_sd = math.sqrt(t.w_scale**2 * d + t.w_mean**2 * d + t.noise_std**2)
    cor = label_corruption({"transformer": _model_predictor(models[main][0], ctx.device),
                            "ridge": ridge}, x, y, n_context=n_ctx, n_corrupt=k_list,
                           generator=make_generator(config.seed + 9), kind=p.corruption,
                           label_scale=label_sd)  # fmt: skip
    for method, c in cor.curves.items():
        co = dict(depth=main, temperature=1.0) if method == "transformer" else ridge_coords
        for i, k in enumerate(c.n_corrupt):
            for metric, v, s, scale in (
                ("corruption_mse", c.mse[i], c.mse_se[i], d),
                ("corruption_change", c.change[i], c.change_se[i], 1),
            ):
                rows.append(dict(method=method, metric=metric, n_corrupt=int(k),
                                 fraction=float(c.fraction[i]), n_context=n_ctx, value=v / scale,
                                 se=s / scale,
                                 ci_low=(v - 1.96 * s) / scale, ci_high=(v + 1.96 * s) / scale,
                                 **{**co, "seed": config.seed}))  # fmt: skip
    table = pd.DataFrame(rows)
    table = pd.concat([table, pd.DataFrame(_fit_rows(table, config))], ignore_index=True)
    table.attrs = {}
    return Result(table=table, checks=checks(table, config), figures=figures(table))


# ---------------------------------------------------------------------------------------------
# Checks: tolerances are constants fixed here, before any run.
RATE_PREDICTED = -1.0  # O(1/n) stability (survey Thm 4.5): change ≤ C·n^−1
RATE_RIVAL = -0.5  # the rival hypothesis O(1/√n) (and anything slower)
RATE_BOUNDARY = (RATE_PREDICTED + RATE_RIVAL) / 2  # −0.75: the decision boundary between the two
R2_MIN = 0.8  # a rate fit explaining less than this is inconclusive
ICL_FRACTION = 0.25  # "learned in context": error at n max <= this fraction of the no-context risk


def _sens(table: pd.DataFrame, method: str, depth: float | None, lo: int) -> pd.DataFrame:
    df = table[(table["metric"] == "sensitivity_replace") & (table["method"] == method)
               & (table["n_context"] >= lo)]  # fmt: skip
    if depth is not None:
        df = df[(df["depth"] == depth) & (df["temperature"] == 1.0)]
    return df.sort_values("n_context")


def rate_check(claim: str, kind: str, df: pd.DataFrame, *, where: str) -> Check:
    """O(1/n) against the rival O(1/√n), through the fitted exponent's 95% interval.

    O(1/n) is an upper bound on the change, so any exponent ≤ −1 satisfies it; the rival (≥ −0.5)
    does not.  Holds when the whole interval lies below the midpoint :data:`RATE_BOUNDARY`
    (excluding the rival), fails when it lies entirely above it, inconclusive when it straddles it
    or the fit explains little (R² < :data:`R2_MIN`).
    """
    f = fit_power_law(df["n_context"], df["value"], df["se"])
    tol = (f"fitted exponent's 95% interval entirely below {RATE_BOUNDARY:g} (between O(1/n): "
           f"{RATE_PREDICTED:g} and O(1/√n): {RATE_RIVAL:g}); R² ≥ {R2_MIN:g} ({where})")  # fmt: skip
    if not math.isfinite(f.slope):
        return inconclusive(claim, SOURCE, kind, f"{f.n_points} usable points: no fit",
                            predicted=f"≤ {RATE_PREDICTED:g}", tolerance=tol)  # fmt: skip
    measured = f"{f.slope:.3f} [{f.slope_low:.3f}, {f.slope_high:.3f}], R² {f.r2:.2f}"
    pred = f"≤ {RATE_PREDICTED:g}"
    if f.r2 < R2_MIN:
        return inconclusive(claim, SOURCE, kind, f"the fit explains little (R² = {f.r2:.2f})",
                            predicted=pred, measured=measured, tolerance=tol)  # fmt: skip
    if f.slope_high < RATE_BOUNDARY:
        return Check(claim, SOURCE, kind, pred, measured, tol, "holds")
    if f.slope_low > RATE_BOUNDARY:
        return Check(claim, SOURCE, kind, pred, measured, tol, "fails")
    return inconclusive(claim, SOURCE, kind,
                        f"the interval contains the boundary {RATE_BOUNDARY:g} between O(1/n) and "
                        "O(1/√n)", predicted=pred, measured=measured, tolerance=tol)  # fmt: skip


def checks(table: pd.DataFrame, config: Config) -> list[Check]:
    """Sanity: the main model learned in context; claim: its prediction changes as O(1/n), not
    O(1/√n) (fitted exponent through its 95% interval, :func:`rate_check`); theory: ridge's rate
    from the same probe; claim: the measured change stays below the Thm 4.5 bound (n/a when the
    bound is vacuous); sanity: k corrupted labels move the prediction at most k times as much as one.
    """
    t = config.task
    main, lo, n_max = config.model.n_layer, config.fit_min(), t.n_points - 1
    out: list[Check] = []
    err = table[(table["metric"] == "normalized_mse") & (table["method"] == "transformer")
                & (table["depth"] == main) & (table["temperature"] == 1.0)
                & (table["n_context"] == n_max)]  # fmt: skip
    prior = (t.w_scale**2 * t.dim + t.w_mean**2 * t.dim + t.noise_std**2) / t.dim
    learned = None
    if len(err):
        e = err.iloc[0]
        c = bound_check(
            f"the trained transformer (D={main}) learned in context: its error / d at n = {n_max} "
            f"is at most {ICL_FRACTION} × the no-context risk {prior:.3f} (precondition of the rate "
            "check)", "Garg et al. 2022 §3", "sanity", value=float(e["value"]),
            value_se=float(e["se"]), bound=ICL_FRACTION * prior)  # fmt: skip
        out.append(c)
        learned = c.status == "holds"
    where = f"n in [{lo}, {n_max}]"
    for method, depth, who, kind in (
        ("transformer", main, f"trained transformer (D={main})", "claim"),
        ("ridge", None, "ridge (Bayes posterior mean)", "theory"),
    ):
        claim = (f"the {who}'s prediction changes by O(1/n), not O(1/√n), when one of n examples "
                 "is replaced (fitted exponent ≤ −1 rather than ≥ −0.5)")  # fmt: skip
        df = _sens(table, method, depth, lo)
        if method == "transformer" and learned is False:
            out.append(inconclusive(claim, SOURCE, kind, "the transformer did not learn in context "
                                    "(precondition fails): its rate says nothing about ICL",
                                    predicted=RATE_PREDICTED))  # fmt: skip
            continue
        out.append(rate_check(claim, kind, df, where=where))
    b = table[(table["metric"] == "stability_bound") & (table["depth"] == main)
              & (table["temperature"] == 1.0) & (table["n_context"] == n_max)]  # fmt: skip
    s = table[(table["metric"] == "sensitivity_unit") & (table["depth"] == main)
              & (table["temperature"] == 1.0) & (table["n_context"] == n_max)]  # fmt: skip
    gam = table[(table["metric"] == "gamma") & (table["depth"] == main)
                & (table["temperature"] == 1.0)]["value"]  # fmt: skip
    claim = (f"the change of a unit-ball output at n = {n_max} stays below the Thm 4.5 bound "
             "(1 + Γe^Γ)^D / (2n − 1), Γ from the trained weights")  # fmt: skip
    if len(b) and len(s):
        bv, lg = float(b["value"].iloc[0]), float(b["log10_value"].iloc[0])
        if is_vacuous(bv):
            out.append(not_applicable(
                claim, SOURCE, "claim",
                f"the bound is vacuous: 10^{lg:.3g} ≥ 2 (Γ = {float(gam.iloc[0]):.3g}, D = {main}), "
                "and no unit-ball output can change by more than 2, so nothing can exceed it",
                tolerance="bound < 2 needed for a test"))  # fmt: skip
        else:
            out.append(bound_check(claim, SOURCE, "claim", value=float(s["value"].iloc[0]),
                                   value_se=float(s["se"].iloc[0]), bound=bv))  # fmt: skip
    ch = table[(table["metric"] == "corruption_change") & (table["method"] == "transformer")]
    ch = ch.set_index("n_corrupt").sort_index()
    ks = [int(k) for k in ch.index if k >= 2]
    claim = ("corrupting k labels moves the transformer's prediction at most k times as much as "
             "corrupting one (a triangle-inequality invariant)")  # fmt: skip
    if 1 not in ch.index or not ks:
        out.append(not_applicable(claim, SOURCE, "sanity", "needs k = 1 and some k >= 2"))
    else:
        c1, s1 = float(ch.loc[1, "value"]), float(ch.loc[1, "se"])
        worst = max(ks, key=lambda k: float(ch.loc[k, "value"]) / (k * c1))
        ck, sk = float(ch.loc[worst, "value"]), float(ch.loc[worst, "se"])
        out.append(bound_check(claim, SOURCE, "sanity", value=ck - worst * c1,
                               value_se=math.hypot(sk, worst * s1), bound=0.0,
                               where=f"value = change(k) − k·change(1) at the worst k = {worst}"))  # fmt: skip
    return out


# ---------------------------------------------------------------------------------------------
def figures(table: pd.DataFrame) -> dict[str, Any]:
    """Drawn from the table alone: sensitivity vs n (main, depths, temperatures, bound); typos."""
    import matplotlib.pyplot as plt

    out: dict[str, Any] = {}
    sens = table[table["metric"] == "sensitivity_replace"]
    tr = sens[sens["method"] == "transformer"]
    depths = sorted(tr["depth"].dropna().unique())
    temps = tr.groupby("depth")["temperature"].nunique()
    main = float(temps.idxmax()) if len(temps) else None

    def fitted(method: str, depth: Any, temp: Any) -> str:
        r = table[(table["metric"] == "rate_replace") & (table["method"] == method)]
        if depth is not None:
            r = r[(r["depth"] == depth) & (r["temperature"] == temp)]
        return f" (slope {r['value'].iloc[0]:.2f})" if len(r) else ""

    def panel(ax: Any, df: pd.DataFrame, label: str, **style: Any) -> None:
        df = df.sort_values("n_context")
        (line,) = ax.plot(df["n_context"], df["value"], label=label, **style)
        ax.fill_between(df["n_context"], df["ci_low"].clip(lower=1e-12), df["ci_high"],
                        alpha=0.15, color=line.get_color())  # fmt: skip

    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    ax = axes[0]
    if main is not None:
        panel(ax, tr[(tr["depth"] == main) & (tr["temperature"] == 1.0)],
              f"transformer D={main:g}" + fitted("transformer", main, 1.0), color="black", marker="o",
              ms=3)  # fmt: skip
    rg = sens[sens["method"] == "ridge"]
    if len(rg):
        panel(ax, rg, "ridge" + fitted("ridge", None, None), color="tab:blue", marker="s", ms=3)
    un = sens[sens["method"] == "transformer (untrained)"]
    if len(un):
        panel(ax, un, "untrained (control)" + fitted("transformer (untrained)", main, 1.0),
              color="grey", ls="--")  # fmt: skip
    ax.set_title("one example replaced")
    ax = axes[1]
    for depth in depths:
        panel(ax, tr[(tr["depth"] == depth) & (tr["temperature"] == 1.0)],
              f"D={depth:g}" + fitted("transformer", depth, 1.0), marker="o", ms=3)  # fmt: skip
    ax.set_title("depth (T = 1)")
    ax = axes[2]
    if main is not None:
        for temp in sorted(tr[tr["depth"] == main]["temperature"].unique()):
            panel(ax, tr[(tr["depth"] == main) & (tr["temperature"] == temp)],
                  f"T={temp:g}" + fitted("transformer", main, temp), marker="o", ms=3)  # fmt: skip
    ax.set_title(f"attention temperature (D = {main:g})" if main is not None else "temperature")
    for ax in axes:
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("context length n")
        ax.set_ylabel("mean |Δŷ|")
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=8)
    fig.tight_layout()
    out["sensitivity_vs_n"] = fig

    fig, ax = plt.subplots(figsize=(7, 4.2))
    u = table[(table["metric"] == "sensitivity_unit") & (table["temperature"] == 1.0)]
    bd = table[(table["metric"] == "stability_bound") & (table["temperature"] == 1.0)]
    for depth in depths:
        g = u[u["depth"] == depth].sort_values("n_context")
        (line,) = ax.plot(g["n_context"], g["value"], marker="o", ms=3,
                          label=f"measured / max|ŷ|, D={depth:g}")  # fmt: skip
        gb = bd[bd["depth"] == depth].sort_values("n_context")
        if len(gb):
            ax.plot(gb["n_context"], 10 ** gb["log10_value"].clip(upper=300), ls="--",
                    color=line.get_color(),
                    label=f"bound, D={depth:g} (10^{gb['log10_value'].iloc[-1]:.3g} at n max)")  # fmt: skip
    ax.axhline(2.0, color="red", ls=":", label="2 = vacuous above")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("context length n")
    ax.set_ylabel("change of a unit-ball output")
    ax.set_title("Thm 4.5 bound vs measured (bounds above 1e300 clipped)")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=7)
    fig.tight_layout()
    out["bound_vs_measured"] = fig

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for ax, metric, ylabel in ((axes[0], "corruption_mse", "squared error / d at the query"),
                               (axes[1], "corruption_change", "mean |ŷ_k − ŷ_0|")):  # fmt: skip
        df = table[table["metric"] == metric]
        for method, g in df.groupby("method", sort=False):
            g = g.sort_values("fraction")
            (line,) = ax.plot(g["fraction"], g["value"], marker="o", label=str(method))
            ax.fill_between(g["fraction"], g["ci_low"], g["ci_high"], alpha=0.15,
                            color=line.get_color())  # fmt: skip
        ax.set_xlabel("fraction k/n of corrupted labels")
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    axes[0].set_title("typos: error vs corrupted fraction")
    axes[1].set_title("typos: prediction change")
    fig.tight_layout()
    out["label_corruption"] = fig
    return out


def headline(table: pd.DataFrame, config: Config | None = None) -> dict[str, float]:
    """Fitted exponents (transformer main model at T = 1, ridge) and log10 of the bound at n max."""
    r = table[table["metric"] == "rate_replace"]
    tr = r[(r["method"] == "transformer") & (r["temperature"] == 1.0)]
    temps = table[table["metric"] == "gamma"].groupby("depth")["temperature"].nunique()
    main = float(temps.idxmax()) if len(temps) else math.nan
    trm = tr[tr["depth"] == main]
    rg = r[r["method"] == "ridge"]
    b = table[(table["metric"] == "stability_bound") & (table["depth"] == main)
              & (table["temperature"] == 1.0)].sort_values("n_context")  # fmt: skip
    return {
        "transformer_rate": float(trm["value"].iloc[0]) if len(trm) else math.nan,
        "ridge_rate": float(rg["value"].iloc[0]) if len(rg) else math.nan,
        "log10_bound_at_n_max": float(b["log10_value"].iloc[-1]) if len(b) else math.nan,
    }


EXPERIMENT = register_experiment(
    Experiment(
        name=NAME,
        claim="Replacing one of n in-context examples moves a trained transformer's prediction by "
        "O(1/n); the Thm 4.5 bound has this rate but its constant is vacuous for trained weights.",
        source=SOURCE,
        chapter=Chapter.IN_CONTEXT_LEARNING,
        config_cls=Config,
        run=run,
        checks=checks,
        figures=figures,
        headline=headline,
        label=label,
        formula="|ŷ(S) − ŷ(S')| ≤ (1 + Γe^Γ)^D / (2n − 1) when S' replaces one of n examples "
        "(Li et al. 2023, survey Thm 4.5): O(1/n)",
        key_figure="sensitivity_vs_n",
    )
)

__all__ = ["Config", "run", "attention_temperature", "train_depths", "checks", "figures",
           "headline", "label", "EXPERIMENT", "ConfigError"]  # fmt: skip
