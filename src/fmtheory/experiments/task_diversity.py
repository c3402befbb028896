"""Claim: with few pretraining tasks a transformer behaves like the Bayes estimator for its finite
task pool (dMMSE); past a task-diversity threshold M* it behaves like ridge regression, the Bayes
estimator for the Gaussian prior, and so generalises to tasks it never saw (Raventós, Paul, Chen &
Ganguli 2023, "Pretraining task diversity and the emergence of non-Bayesian in-context learning for
regression", NeurIPS, Figs. 1-3).

Pipeline, for each of ``pool.seeds`` replicates (own pool, own initialisation, own data stream):
(1) draw a pool of M_max Gaussian tasks; for each M in the sweep (M_min·factor^i, powers of two in the
presets) take its first M rows (nested pools) and train a GPT on prompts whose task is a uniformly
drawn pool task; (2) on held-out prompts with FRESH tasks w ~ N(0, τ²I) and with POOL tasks, compute
the transformer's error, the dMMSE estimator's (posterior mean over the pool) and ridge's (posterior
mean under the Gaussian prior, λ = σ²/τ²), and the mean squared distance of the transformer's
predictions to dMMSE and to ridge; (3) the dMMSE risk given the pool and the Bayes (ridge) risk from
:mod:`fmtheory.theory`; (4) the transition M*: where log(dist to dMMSE / dist to ridge) on fresh
tasks crosses 0, interpolated linearly in log2 M, with its interval over replicates; (5) verdicts.

Every error and distance is a squared difference divided by d and averaged over the context lengths
k = 0..n−1 of a prompt (Raventós et al. average over the context); intervals are 95% over prompts.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
import torch
from pydantic import Field, model_validator
from scipy import stats

from fmtheory.checks import (
    Z_CHECK,
    ci_row,
    difference_check,
    exact_row,
    inconclusive,
    not_applicable,
    z_check,
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
from fmtheory.models.icl import build_regression_transformer
from fmtheory.sections import FixedTrainSection, GPTSection, TrainSection
from fmtheory.tasks.regression import RegressionSpec, make_generator, sample_regression
from fmtheory.tasks.task_pool import nested_pools, sample_pool_regression, sample_task_pool
from fmtheory.theory.linear_regression import bayes_risk_curve
from fmtheory.theory.task_diversity import dmmse_risk_curve, dmmse_risk_given_pool
from fmtheory.train import fit, seeded

NAME = "task-diversity"
SOURCE = "Raventós et al. 2023 (NeurIPS), Figs. 1-3"


class TaskConfig(Section):
    """Isotropic Gaussian regression (the setting of Raventós et al. §2): x ~ N(0, I),
    w ~ N(0, τ²I), y = w·x + N(0, σ²)."""

    dim: int = Field(5, ge=1, le=256, description="task dimension d")
    n_points: int = Field(12, ge=1, le=512, description="pairs per prompt n (context 0..n-1)")
    noise_std: float = Field(
        0.5, gt=0.0, le=100.0, description="label noise σ (> 0: dMMSE weights need it)"
    )
    w_scale: float = Field(1.0, gt=0.0, le=100.0, description="prior standard deviation τ of w")

    def spec(self) -> RegressionSpec:
        return RegressionSpec(dim=self.dim, noise_std=self.noise_std, w_scale=self.w_scale)


class PoolConfig(Section):
    """The task-diversity sweep: M = m_min · factor^i for i = 0, 1, ... while M <= m_max."""

    m_min: int = Field(1, ge=1, le=2**24, description="smallest number of pretraining tasks M")
    m_max: int = Field(1024, ge=1, le=2**24, description="largest M (pool size)")
    factor: int = Field(2, ge=2, le=1024, description="ratio between consecutive M")
    seeds: int = Field(
        3, ge=1, le=64, description="replicates (pool, init, data) for the interval of M*"
    )

    @model_validator(mode="after")
    def _range(self) -> PoolConfig:
        if self.m_max < self.m_min:
            raise ValueError(f"m_max = {self.m_max} must be >= m_min = {self.m_min}")
        return self

    def values(self) -> list[int]:
        out, m = [], self.m_min
        while m <= self.m_max:
            out.append(m)
            m *= self.factor
        return out


class EvalConfig(Section):
    n_prompts: int = Field(2000, ge=10, le=1_000_000, description="held-out prompts per task kind")
    theory_mc: int = Field(
        2000, ge=100, le=1_000_000, description="Monte Carlo draws for the risks"
    )


class Config(ExperimentConfig):
    task: TaskConfig = TaskConfig()
    pool: PoolConfig = PoolConfig()
    model: GPTSection
    train: FixedTrainSection = TrainSection()
    eval: EvalConfig = EvalConfig()


def label(config: Config) -> str:
    """The trained model, named from its config."""
    return config.model.label()


# ---------------------------------------------------------------------------------------------
def train_on_pool(
    config: Config, ctx: RunContext, pool: torch.Tensor, *, train_seed: int, name: str
) -> tuple[torch.nn.Module, Any]:
    """A GPT (``config.model``) trained by :func:`fmtheory.train.fit` on prompts whose task is a
    uniformly drawn row of ``pool: (M, d)``; loss = squared error at every position."""
    t = config.task
    spec = t.spec()
    model = seeded(
        lambda: build_regression_transformer(config.model, dim=t.dim, n_points=t.n_points),
        train_seed,
    )
    pool_dev = pool.to(ctx.device)

    def loss_fn(m: torch.nn.Module, step: int, g: torch.Generator) -> torch.Tensor:
        b = sample_pool_regression(
            spec, pool_dev, batch=config.train.batch_size, n_points=t.n_points, generator=g
        )
        return (m(b.x, b.y) - b.y).pow(2).mean()

    result = fit(model, loss_fn, config.train, seed=train_seed, ctx=ctx, name=name)
    return model, result


def _replicate_seeds(config: Config, r: int) -> tuple[int, int, int]:
    """(pool seed, training seed, evaluation seed) of replicate r: distinct streams."""
    base = config.seed + 10_007 * r
    return base + 1, base + 2, base + 3


def _ridge(config: Config) -> Any:
    """The Gaussian posterior mean (ridge with λ = σ²/τ²): Bayes-optimal for fresh tasks."""
    t = config.task
    mean, cov = t.spec().w_prior(torch.float64)
    return create_estimator("bayes", prior_mean=mean, prior_cov=cov, noise_std=t.noise_std)


@torch.no_grad()
def _predict(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, device: Any) -> torch.Tensor:
    model.eval()
    return torch.cat(
        [model(a.to(device), b.to(device)).double().cpu() for a, b in
         zip(x.split(2000), y.split(2000), strict=True)]
    )  # fmt: skip


def _row(method: str, metric: str, per_prompt: torch.Tensor, **coords: Any) -> dict[str, Any]:
    """Mean over prompts of a per-prompt value with its standard error and 95% interval."""
    seed = coords.pop("seed")
    return ci_row(method, metric, per_prompt, seed=seed, **coords)


def evaluate_one(
    config: Config,
    model: torch.nn.Module,
    pool: torch.Tensor,
    *,
    eval_seed: int,
    fresh: Any,
    device: Any,
    coords: dict[str, Any],
) -> list[dict[str, Any]]:
    """Rows for one (replicate, M): errors and distances on fresh and on pool tasks.

    ``fresh``: the replicate's held-out fresh-task prompts (shared by every M).  Pool-task prompts
    are drawn from ``pool`` with a generator seeded by ``eval_seed`` and M.
    """
    t = config.task
    d, m = t.dim, pool.shape[0]
    dmmse = create_estimator("dmmse", pool=pool.double(), noise_std=t.noise_std)
    ridge = _ridge(config)
    g = make_generator(eval_seed * 31 + m, "cpu")
    on_pool = sample_pool_regression(
        t.spec(), pool, batch=config.eval.n_prompts, n_points=t.n_points, generator=g
    )
    rows = []
    for tasks, b in (("fresh", fresh), ("pool", on_pool)):
        x64, y64 = b.x.double(), b.y.double()
        preds = {
            "transformer": _predict(model, b.x, b.y, device),
            "dmmse": dmmse.predict_prefixes(x64, y64),
            "ridge": ridge.predict_prefixes(x64, y64),
        }
        for name, p in preds.items():  # error averaged over context lengths, per prompt
            rows.append(_row(name, "normalized_mse", ((p - y64) ** 2).mean(1) / d,
                             tasks=tasks, **coords))  # fmt: skip
        rows.append(_row("dmmse", "normalized_mse_k0", (preds["dmmse"][:, 0] - y64[:, 0]) ** 2 / d,
                         tasks=tasks, **coords))  # fmt: skip
        tr = preds["transformer"]
        for ref in ("dmmse", "ridge"):
            rows.append(_row("transformer", f"dist_to_{ref}", ((tr - preds[ref]) ** 2).mean(1) / d,
                             tasks=tasks, **coords))  # fmt: skip
        rows.append(_row("dmmse", "dist_to_ridge", ((preds["dmmse"] - preds["ridge"]) ** 2).mean(1)
                         / d, tasks=tasks, **coords))  # fmt: skip
    return rows


def theory_one(
    config: Config, pool: torch.Tensor, *, seed: int, coords: dict[str, Any]
) -> list[dict]:
    """Theory rows for one (replicate, M), per task kind, all divided by d:

    * ``theory: dmmse exact`` — the exact risk given the pool (:func:`dmmse_risk_given_pool`) at
      k = 0 (metric ``normalized_mse_k0``) and, for M = 1, averaged over the context
      (``normalized_mse``): independent of the estimator's code;
    * ``reference: dmmse simulated`` — the same posterior-mean formula simulated on the same pool
      (:func:`dmmse_risk_curve`), averaged over k = 0..n−1, with its standard error over 4 batches:
      a code cross-check of the estimator (a sanity reference), not independent theory.
    """
    t, e = config.task, config.eval
    d, m = t.dim, pool.shape[0]
    p64 = pool.double().numpy()
    rows = []
    for tasks in ("fresh", "pool"):
        kw = dict(sigma=t.noise_std, prior_scale=t.w_scale, tasks=tasks)
        r0 = dmmse_risk_given_pool(p64, k=0, **kw)
        rows.append(exact_row("theory: dmmse exact", "normalized_mse_k0", r0 / d, tasks=tasks,
                              **coords))  # fmt: skip
        if m == 1:
            rows.append(exact_row("theory: dmmse exact", "normalized_mse", r0 / d, tasks=tasks,
                                  **coords))  # fmt: skip
        reps = 4
        per = max(50, e.theory_mc // reps)
        means = [
            dmmse_risk_curve(d=d, n=t.n_points, m=m, sigma=t.noise_std, prior_scale=t.w_scale,
                             tasks=tasks, n_mc=per, seed=seed * 100 + r, pool=p64).risk.mean() / d
            for r in range(reps)
        ]  # fmt: skip
        ci = ci_row("reference: dmmse simulated", "normalized_mse", means, tasks=tasks, **coords)
        rows.append(ci)
    return rows


def bayes_rows(config: Config, *, seed: int) -> list[dict[str, Any]]:
    """The Bayes (ridge) risk on fresh tasks, averaged over k = 0..n-1, / d (for every M alike)."""
    t, e = config.task, config.eval
    reps = 4
    vals = [
        bayes_risk_curve(d=t.dim, n=t.n_points, sigma=t.noise_std, prior_scale=t.w_scale,
                         n_mc=max(50, e.theory_mc // reps), seed=seed * 100 + r).mean() / t.dim
        for r in range(reps)
    ]  # fmt: skip
    return [ci_row("theory: ridge (bayes) risk", "normalized_mse", vals, tasks="fresh", seed=-1)]


# ---------------------------------------------------------------------------------------------
def transition_log2(ms: np.ndarray, log_ratio: np.ndarray) -> float | None:
    """log2 M* where ``log_ratio`` = log(dist to dMMSE / dist to ridge) first turns positive.

    ``ms: (K,)`` increasing M, ``log_ratio: (K,)``.  Linear interpolation in log2 M between the
    last M with a ratio <= 0 before the first crossing and the next M.  None when there is no
    crossing (all on one side); ``-inf`` when already positive at the smallest M.
    """
    lm = np.log2(np.asarray(ms, dtype=float))
    r = np.asarray(log_ratio, dtype=float)
    pos = np.nonzero(r > 0)[0]
    if pos.size == 0:
        return None
    i = int(pos[0])
    if i == 0:
        return -math.inf
    a, b = r[i - 1], r[i]
    return float(lm[i - 1] + (lm[i] - lm[i - 1]) * (-a) / (b - a))


def transition_rows(table: pd.DataFrame) -> list[dict[str, Any]]:
    """Per-replicate M* (metric ``transition_log2_m``, NaN when none in range) and the mean over the
    replicates with a Student-t 95% interval (seed = -1; NaN interval with < 2 crossings)."""
    df = table[(table["method"] == "transformer") & (table["tasks"] == "fresh")]
    rows = []
    found = []
    for seed, g in df.groupby("seed"):
        piv = g.pivot_table(index="n_tasks", columns="metric", values="value").sort_index()
        lr = np.log(piv["dist_to_dmmse"] / piv["dist_to_ridge"]).to_numpy()
        t = transition_log2(piv.index.to_numpy(), lr)
        v = math.nan if t is None or not math.isfinite(t) else t
        rows.append(dict(method="transformer", metric="transition_log2_m", value=v, se=math.nan,
                         ci_low=v, ci_high=v, tasks="fresh", seed=int(seed)))  # fmt: skip
        if math.isfinite(v):
            found.append(v)
    if found:
        mean = float(np.mean(found))
        if len(found) >= 2:
            se = float(np.std(found, ddof=1) / math.sqrt(len(found)))
            half = float(stats.t.ppf(0.975, len(found) - 1)) * se
        else:
            se = half = math.nan
        rows.append(dict(method="transformer", metric="transition_log2_m", value=mean, se=se,
                         ci_low=mean - half, ci_high=mean + half, tasks="fresh", seed=-1))  # fmt: skip
    return rows


# ---------------------------------------------------------------------------------------------
# Checks: tolerances are constants fixed here, before any run.
THEORY_Z = Z_CHECK  # |dMMSE estimator − exact dMMSE risk| <= THEORY_Z standard errors


def _dist(table: pd.DataFrame, metric: str, m: int) -> tuple[float, float, int]:
    """Mean over replicates of a transformer distance on fresh tasks at M = m, its standard error
    (from the per-replicate standard errors over prompts) and the number of replicates."""
    df = table[(table["method"] == "transformer") & (table["metric"] == metric)
               & (table["tasks"] == "fresh") & (table["n_tasks"] == m)]  # fmt: skip
    r = len(df)
    if r == 0:
        return math.nan, math.nan, 0
    return float(df["value"].mean()), float(np.sqrt((df["se"] ** 2).sum()) / r), r


def _worst_pair(
    table: pd.DataFrame, method: str, ref: str, metrics: tuple[str, ...]
) -> tuple[dict[str, float], str] | None:
    """The (estimator, reference) pair with the largest z over (task kind, replicate, M, metric)."""
    keys = ["tasks", "seed", "n_tasks", "metric"]
    est = table[(table["method"] == method) & table["metric"].isin(metrics)].set_index(keys)
    th = table[(table["method"] == ref) & table["metric"].isin(metrics)].set_index(keys)
    worst, where = None, ""
    for key in est.index.intersection(th.index):
        e, t = est.loc[key], th.loc[key]
        se = math.hypot(float(e["se"]), float(t["se"]))
        z = abs(float(e["value"]) - float(t["value"])) / max(se, 1e-300)
        if worst is None or z > worst["z"]:
            worst = dict(z=z, m=float(e["value"]), m_se=float(e["se"]), p=float(t["value"]),
                         p_se=float(t["se"]))  # fmt: skip
            where = f"{key[3]}, {key[0]} tasks, replicate {key[1]}, M = {key[2]}"
    return None if worst is None else (worst, where)


def checks(table: pd.DataFrame, config: Config) -> list[Check]:
    """Claims on the trained transformers (dMMSE-like at small M, ridge-like at large M, a
    transition inside the sweep); theory: the dMMSE estimator against its exact risk given the pool
    (k = 0, and M = 1); sanity: the estimator against the simulated posterior-mean risk."""
    ms = sorted(int(m) for m in table["n_tasks"].dropna().unique() if m > 0)
    out: list[Check] = []
    lo, hi = ms[0], ms[-1]
    dd, dd_se, r = _dist(table, "dist_to_dmmse", lo)
    dr, dr_se, _ = _dist(table, "dist_to_ridge", lo)
    out.append(difference_check(
        f"at the smallest task diversity (M = {lo}) the transformer's predictions on fresh tasks "
        "are closer to dMMSE than to ridge", SOURCE, "claim", a=dr, a_se=dr_se, b=dd, b_se=dd_se,
        where=f"a = dist to ridge, b = dist to dMMSE, squared distance / d, mean of {r} "
              "replicates"))  # fmt: skip
    dd, dd_se, r = _dist(table, "dist_to_dmmse", hi)
    dr, dr_se, _ = _dist(table, "dist_to_ridge", hi)
    out.append(difference_check(
        f"at the largest task diversity (M = {hi}) the transformer's predictions on fresh tasks "
        "are closer to ridge than to dMMSE", SOURCE, "claim", a=dd, a_se=dd_se, b=dr, b_se=dr_se,
        where=f"a = dist to dMMSE, b = dist to ridge, squared distance / d, mean of {r} "
              "replicates"))  # fmt: skip
    tr = table[(table["metric"] == "transition_log2_m")]
    per = tr[tr["seed"] >= 0]["value"].to_numpy(dtype=float)
    agg = tr[tr["seed"] < 0]
    claim = (
        "a transition M* (transformer turns from dMMSE-like to ridge-like) lies inside the sweep"
    )
    pred = f"log2 M* in ({math.log2(lo):g}, {math.log2(hi):g}) for every replicate"
    tol = "every replicate crosses inside the swept range"
    if len(agg):
        a = agg.iloc[0]
        meas = (f"log2 M* = {a['value']:.2f}, 95% CI [{a['ci_low']:.2f}, {a['ci_high']:.2f}]; "
                f"per replicate: {', '.join('none' if np.isnan(v) else f'{v:.2f}' for v in per)}")  # fmt: skip
    else:
        meas = "no replicate crosses inside the sweep"
    if len(ms) < 2:
        out.append(not_applicable(claim, SOURCE, "claim", "the sweep has a single M", tol))
    else:
        ok = bool(per.size and np.all(np.isfinite(per)))
        out.append(Check(claim, SOURCE, "claim", pred, meas, tol, "holds" if ok else "fails"))
    theory_claim = (
        "the dMMSE estimator's error matches its exact risk given the pool (k = 0: ‖w̄‖² + τ²d + "
        "σ² fresh, mean ‖w_m − w̄‖² + σ² pool; M = 1: the same at every k)"
    )
    src = "Raventós et al. 2023 §2; fmtheory.theory.task_diversity.dmmse_risk_given_pool"
    w = _worst_pair(table, "dmmse", "theory: dmmse exact", ("normalized_mse_k0", "normalized_mse"))
    if w is None:
        out.append(inconclusive(theory_claim, src, "theory", "no exact theory rows in the table"))
    else:
        v, where = w
        out.append(z_check(theory_claim, src, "theory", measured=v["m"], measured_se=v["m_se"],
                           predicted=v["p"], predicted_se=v["p_se"], z=THEORY_Z,
                           where=f"worst of every pair: {where}"))  # fmt: skip
    w = _worst_pair(table, "dmmse", "reference: dmmse simulated", ("normalized_mse",))
    sanity_claim = (
        "the dMMSE estimator's error, averaged over the context, matches the same posterior-mean "
        "formula simulated on the same pool (a code cross-check)"
    )
    if w is None:
        out.append(inconclusive(sanity_claim, src, "sanity", "no simulated reference rows"))
    else:
        v, where = w
        out.append(z_check(sanity_claim, src, "sanity", measured=v["m"], measured_se=v["m_se"],
                           predicted=v["p"], predicted_se=v["p_se"], z=THEORY_Z,
                           where=f"worst of every pair: {where}"))  # fmt: skip
    return out


# ---------------------------------------------------------------------------------------------
def figures(table: pd.DataFrame) -> dict[str, Any]:
    """Drawn from the table alone: distances vs M; errors vs M on fresh and on pool tasks."""
    import matplotlib.pyplot as plt

    out: dict[str, Any] = {}
    fig, ax = plt.subplots(figsize=(7, 4.2))
    for metric, style in (("dist_to_dmmse", dict(color="tab:orange", marker="o")),
                          ("dist_to_ridge", dict(color="tab:blue", marker="s"))):  # fmt: skip
        df = table[(table["method"] == "transformer") & (table["metric"] == metric)
                   & (table["tasks"] == "fresh")]  # fmt: skip
        g = df.groupby("n_tasks")["value"].agg(["mean", "min", "max"]).sort_index()
        ax.plot(g.index, g["mean"], label=f"transformer {metric.replace('_', ' ')}", **style)
        ax.fill_between(g.index, g["min"], g["max"], alpha=0.15, color=style["color"])
    dd = table[(table["method"] == "dmmse") & (table["metric"] == "dist_to_ridge")
               & (table["tasks"] == "fresh")].groupby("n_tasks")["value"].mean()  # fmt: skip
    if len(dd):
        ax.plot(dd.index, dd.values, color="grey", ls="--", label="dMMSE to ridge")
    agg = table[(table["metric"] == "transition_log2_m") & (table["seed"] < 0)]
    if len(agg) and np.isfinite(agg["value"].iloc[0]):
        a = agg.iloc[0]
        ax.axvline(2 ** a["value"], color="black", ls=":", label="M* (mean)")
        if np.isfinite(a["ci_low"]):  # the interval, clipped to the swept range
            lo_m, hi_m = table["n_tasks"].min(), table["n_tasks"].max()
            ax.axvspan(max(2 ** a["ci_low"], lo_m), min(2 ** a["ci_high"], hi_m), color="black",
                       alpha=0.08, label="95% CI of M* (clipped to the sweep)")  # fmt: skip
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("number of pretraining tasks M")
    ax.set_ylabel("squared distance / d (fresh tasks)")
    ax.set_title("Which estimator does the transformer follow? (band: range over replicates)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    out["distance_vs_m"] = fig
    for tasks in ("fresh", "pool"):
        fig, ax = plt.subplots(figsize=(7, 4.2))
        df = table[(table["metric"] == "normalized_mse") & (table["tasks"] == tasks)]
        for method, g in df.groupby("method", sort=False):
            if str(method).startswith("theory: ridge"):
                ax.axhline(g["value"].mean(), color="tab:blue", ls=":", label=str(method))
                continue
            g = g.groupby("n_tasks")["value"].mean().sort_index()
            ax.plot(g.index, g.values, marker="o", ms=3, label=str(method),
                    ls="--" if str(method).startswith("theory") else "-")  # fmt: skip
        ax.set_xscale("log", base=2)
        ax.set_xlabel("number of pretraining tasks M")
        ax.set_ylabel("squared error / d (mean over context)")
        ax.set_title(f"Error on {tasks} tasks")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        fig.tight_layout()
        out[f"error_{tasks}_tasks"] = fig
    return out


def headline(table: pd.DataFrame, config: Config | None = None) -> dict[str, float]:
    """log2 M* (mean over replicates) and the transformer's fresh-task error at the largest M."""
    agg = table[(table["metric"] == "transition_log2_m") & (table["seed"] < 0)]
    ms = sorted(table["n_tasks"].dropna().unique())
    hi = ms[-1] if ms else math.nan
    err = table[(table["method"] == "transformer") & (table["metric"] == "normalized_mse")
                & (table["tasks"] == "fresh") & (table["n_tasks"] == hi)]["value"].mean()  # fmt: skip
    return {
        "log2_m_star": float(agg["value"].iloc[0]) if len(agg) else math.nan,
        "transformer_fresh_err_at_max_m": float(err),
    }


def run(config: Config, ctx: RunContext | None = None) -> Result:
    """Train one transformer per (replicate, M), evaluate, compare with theory."""
    ctx = ctx or RunContext()
    t = config.task
    spec = t.spec()
    ms = config.pool.values()
    rows: list[dict[str, Any]] = []
    for r in range(config.pool.seeds):
        pool_seed, train_seed, eval_seed = _replicate_seeds(config, r)
        big = sample_task_pool(spec, n_tasks=ms[-1], generator=make_generator(pool_seed))
        fresh = sample_regression(spec, batch=config.eval.n_prompts, n_points=t.n_points,
                                  generator=make_generator(eval_seed))  # fmt: skip
        for m, pool in nested_pools(big, ms).items():
            model, tr = train_on_pool(config, ctx, pool, train_seed=train_seed,
                                      name=f"rep{r}_M{m}")  # fmt: skip
            coords = dict(n_tasks=m, seed=r)
            rows += evaluate_one(config, model, pool, eval_seed=eval_seed, fresh=fresh,
                                 device=ctx.device, coords=dict(coords))  # fmt: skip
            rows += theory_one(config, pool, seed=pool_seed + m, coords=dict(coords))
            rows += [exact_row("transformer", "train_loss", v, step=s, n_tasks=m, seed=r,
                               tasks="pool", se=math.nan)
                     for s, v in zip(tr.loss_steps, tr.losses, strict=True)]  # fmt: skip
    table = pd.DataFrame(rows)
    table = pd.concat(
        [table, pd.DataFrame(bayes_rows(config, seed=config.seed))], ignore_index=True
    )
    table = pd.concat([table, pd.DataFrame(transition_rows(table))], ignore_index=True)
    table.attrs = {}
    return Result(table=table, checks=checks(table, config), figures=figures(table))


EXPERIMENT = register_experiment(
    Experiment(
        name=NAME,
        claim="Below a task-diversity threshold M* a transformer follows the Bayes estimator of its "
        "finite pretraining pool (dMMSE); above it, ridge regression, and it generalises to new tasks.",
        source=SOURCE,
        chapter=Chapter.IN_CONTEXT_LEARNING,
        config_cls=Config,
        run=run,
        checks=checks,
        figures=figures,
        headline=headline,
        label=label,
        formula="dMMSE: ŵ = Σ_m π_m w_m, π_m ∝ exp(−Σ_i (y_i − w_mᵀx_i)²/2σ²); ridge: "
        "ŵ = (XᵀX + σ²/τ² I)⁻¹Xᵀy; exact dMMSE risk given the pool at k = 0 and M = 1",
        key_figure="distance_vs_m",
    )
)

__all__ = ["Config", "run", "train_on_pool", "evaluate_one", "theory_one", "transition_log2",
           "transition_rows", "checks", "figures", "headline", "label", "EXPERIMENT",
           "ConfigError"]  # fmt: skip
