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

# Checks: tolerances are constants fixed here, before any run.
THEORY_Z = Z_CHECK  # |dMMSE estimator − exact dMMSE risk| <= THEORY_Z standard errors
RIDGE_GATE = 0.10  # trained enough: fresh-task error at the largest M <= (1 + RIDGE_GATE) × ridge's
MAX_CI_LOG2 = 2.0  # the 95% interval of log2 M* must be no wider than this (log2 units)
PAPER_DIM = 8  # Raventós et al. 2023: d = 8, n = 16
PAPER_LOG2_M = {"small model": (11.0, 12.0), "base model": (14.0, 15.0)}  # §3, Fig. 2
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


class GrowthConfig(Section):
    """How M* grows with the dimension: the whole sweep is repeated at each d of ``dims`` with
    ``n_points = points_per_dim · d`` (Raventós et al. use n = 2d: d = 8, 16 points).  Empty
    ``dims``: one dimension, ``task.dim`` with ``task.n_points``."""

    dims: list[int] = Field(
        default_factory=list, max_length=16, description="dimensions d to sweep (empty: task.dim)"
    )
    points_per_dim: int = Field(2, ge=1, le=64, description="n_points = points_per_dim · d")

    @model_validator(mode="after")
    def _dims(self) -> GrowthConfig:
        for d in self.dims:
            if not 1 <= d <= 256:
                raise ValueError(f"growth.dims contains {d}: each d must be in 1..256")
        if len(set(self.dims)) != len(self.dims):
            raise ValueError(f"growth.dims = {self.dims}: the dimensions must be distinct")
        return self


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
    growth: GrowthConfig = GrowthConfig()
    workers: int = Field(
        1,
        ge=1,
        le=64,
        description="processes training the (dimension, replicate) units at once "
        "(each unit is seeded on its own: the numbers do not depend on it)",
    )

    def dims(self) -> list[int]:
        """The dimensions of the run, sorted."""
        return sorted(self.growth.dims) if self.growth.dims else [self.task.dim]

    def at_dim(self, d: int) -> Config:
        """This config with ``task.dim = d`` (and ``n_points = points_per_dim·d`` when the run sweeps
        several dimensions)."""
        if not self.growth.dims:
            return self
        task = self.task.model_copy(update={"dim": d, "n_points": self.growth.points_per_dim * d})
        return self.model_copy(update={"task": task})


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


def _with_dim(table: pd.DataFrame, dim: int) -> pd.DataFrame:
    """The table with a ``dim`` column (filled with ``dim`` where it is absent or missing)."""
    if "dim" not in table.columns:
        return table.assign(dim=dim)
    return table.assign(dim=table["dim"].fillna(dim))


def _t_interval(values: list[float]) -> tuple[float, float, float, float]:
    """Mean, standard error and Student-t 95% interval of ``values`` (NaN with fewer than 2)."""
    mean = float(np.mean(values)) if values else math.nan
    if len(values) < 2:
        return mean, math.nan, math.nan, math.nan
    se = float(np.std(values, ddof=1) / math.sqrt(len(values)))
    half = float(stats.t.ppf(0.975, len(values) - 1)) * se
    return mean, se, mean - half, mean + half


def transition_rows(table: pd.DataFrame) -> list[dict[str, Any]]:
    """Per (dimension, replicate) M* (metric ``transition_log2_m``, NaN when none in range; -inf
    when ridge-like already at the smallest M) and, per dimension, the mean over the replicates with
    a Student-t 95% interval (seed = -1; NaN interval with < 2 crossings inside the sweep).  Without
    a ``dim`` column the rows carry none."""
    has_dim = "dim" in table.columns
    df = table[(table["method"] == "transformer") & (table["tasks"] == "fresh")
               & table["metric"].isin(["dist_to_dmmse", "dist_to_ridge"])]  # fmt: skip
    df = df.assign(_d=df["dim"] if has_dim else 0)
    rows = []
    for d, gd in df.groupby("_d"):
        extra = {"dim": int(d)} if has_dim else {}
        found = []
        for seed, g in gd.groupby("seed"):
            piv = g.pivot_table(index="n_tasks", columns="metric", values="value").sort_index()
            lr = np.log(piv["dist_to_dmmse"] / piv["dist_to_ridge"]).to_numpy()
            t = transition_log2(piv.index.to_numpy(), lr)
            v = math.nan if t is None else t
            rows.append(dict(method="transformer", metric="transition_log2_m", value=v, se=math.nan,
                             ci_low=v, ci_high=v, tasks="fresh", seed=int(seed), **extra))  # fmt: skip
            if math.isfinite(v):
                found.append(v)
        if found:
            mean, se, lo, hi = _t_interval(found)
            rows.append(dict(method="transformer", metric="transition_log2_m", value=mean, se=se,
                             ci_low=lo, ci_high=hi, tasks="fresh", seed=-1, **extra))  # fmt: skip
    if has_dim:
        rows += growth_rows(pd.DataFrame(rows))
    return rows


def growth_fit(dims: Any, log2_m: Any, at: float = PAPER_DIM) -> dict[str, float]:
    """Least squares of per-replicate log2 M* on d (``dims``, ``log2_m``: (R,), finite values
    only): slope (log2 units per dimension) with its standard error and 95% interval, and the fitted
    mean log2 M* at d = ``at`` with its 95% confidence interval (Student t, R − 2 degrees of
    freedom).  NaN with fewer than two distinct d or fewer than three points."""
    x, y = np.asarray(dims, dtype=float), np.asarray(log2_m, dtype=float)
    keep = np.isfinite(x) & np.isfinite(y)
    x, y = x[keep], y[keep]
    nan = dict(slope=math.nan, slope_se=math.nan, slope_lo=math.nan, slope_hi=math.nan,
               at=math.nan, at_se=math.nan, at_lo=math.nan, at_hi=math.nan, n=float(x.size))  # fmt: skip
    if x.size < 3 or np.unique(x).size < 2:
        return nan
    xm, ym = x.mean(), y.mean()
    sxx = float(np.sum((x - xm) ** 2))
    slope = float(np.sum((x - xm) * (y - ym)) / sxx)
    icpt = ym - slope * xm
    s2 = float(np.sum((y - icpt - slope * x) ** 2)) / (x.size - 2)
    t = float(stats.t.ppf(0.975, x.size - 2))
    sse = math.sqrt(s2 / sxx)
    pred = float(icpt + slope * at)
    pse = math.sqrt(s2 * (1.0 / x.size + (at - xm) ** 2 / sxx))
    return dict(slope=slope, slope_se=sse, slope_lo=slope - t * sse, slope_hi=slope + t * sse,
                at=pred, at_se=pse, at_lo=pred - t * pse, at_hi=pred + t * pse, n=float(x.size))  # fmt: skip


def growth_rows(transitions: pd.DataFrame) -> list[dict[str, Any]]:
    """From per-(dim, replicate) M* rows: the slope of log2 M* in d (``growth_slope``) and the
    extrapolated log2 M* at d = 8 (``extrapolated_log2_m``), seed = -1, dim = 8 for the latter.
    Empty with fewer than two dimensions."""
    if transitions.empty or "dim" not in transitions.columns:
        return []
    per = transitions[(transitions["seed"] >= 0)]
    if per["dim"].nunique() < 2:
        return []
    f = growth_fit(per["dim"], per["value"])
    return [
        dict(method="transformer", metric="growth_slope", value=f["slope"], se=f["slope_se"],
             ci_low=f["slope_lo"], ci_high=f["slope_hi"], tasks="fresh", seed=-1, dim=-1),
        dict(method="transformer", metric="extrapolated_log2_m", value=f["at"], se=f["at_se"],
             ci_low=f["at_lo"], ci_high=f["at_hi"], tasks="fresh", seed=-1, dim=PAPER_DIM),
    ]  # fmt: skip


def _paired(table: pd.DataFrame, m: int, a: str, b: str) -> tuple[float, float, int]:
    """Mean over replicates of (a − b) at M = m on fresh tasks (transformer distances ``a``, ``b``)
    and its standard error: the larger of the spread over replicates (sd/√R, R >= 2) and the
    prompt-sampling error (from the per-replicate standard errors)."""
    df = table[(table["method"] == "transformer") & (table["tasks"] == "fresh")
               & (table["n_tasks"] == m) & table["metric"].isin([a, b])]  # fmt: skip
    piv = df.pivot_table(index="seed", columns="metric", values=["value", "se"])
    if piv.empty or a not in piv["value"] or b not in piv["value"]:
        return math.nan, math.nan, 0
    diff = (piv["value"][a] - piv["value"][b]).to_numpy(dtype=float)
    r = diff.size
    prompt_se = float(np.sqrt((piv["se"][a] ** 2 + piv["se"][b] ** 2).sum()) / r)
    rep_se = float(np.std(diff, ddof=1) / math.sqrt(r)) if r >= 2 else 0.0
    return float(diff.mean()), max(prompt_se, rep_se), r


def _fresh_err(table: pd.DataFrame, method: str, m: int) -> tuple[float, float]:
    df = table[(table["method"] == method) & (table["metric"] == "normalized_mse")
               & (table["tasks"] == "fresh") & (table["n_tasks"] == m)]  # fmt: skip
    if df.empty:
        return math.nan, math.nan
    return float(df["value"].mean()), float(np.sqrt((df["se"] ** 2).sum()) / len(df))


def _worst_pair(
    table: pd.DataFrame, method: str, ref: str, metrics: tuple[str, ...]
) -> tuple[dict[str, float], str] | None:
    """The (estimator, reference) pair with the largest z over (task kind, replicate, M, metric,
    dimension); ``table`` has a ``dim`` column."""
    keys = ["tasks", "seed", "n_tasks", "metric", "dim"]
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
            where = f"{key[3]}, {key[0]} tasks, d = {key[4]}, replicate {key[1]}, M = {key[2]}"
    return None if worst is None else (worst, where)


def _gate(table: pd.DataFrame, d: int, hi: int) -> tuple[Check, bool, str]:
    """Sanity: the transformer at the largest M is within RIDGE_GATE of ridge on fresh tasks."""
    te, te_se = _fresh_err(table, "transformer", hi)
    re_, re_se = _fresh_err(table, "ridge", hi)
    claim = (f"trained to ridge (d = {d}): at the largest M = {hi} the transformer's fresh-task "
             f"error is within {RIDGE_GATE:.0%} of ridge's (the gate for every M* check)")  # fmt: skip
    tol = f"transformer / ridge <= {1 + RIDGE_GATE:.2f} (point estimate, mean over replicates)"
    pred = f"<= {1 + RIDGE_GATE:.2f}"
    if not (math.isfinite(te) and math.isfinite(re_) and re_ > 0):
        why = "no transformer or ridge fresh-task error at the largest M"
        return inconclusive(claim, SOURCE, "sanity", why, predicted=pred, tolerance=tol), False, why
    ratio = te / re_
    meas = f"{te:.4f}±{te_se:.2g} / {re_:.4f}±{re_se:.2g} = {ratio:.3f}"
    ok = ratio <= 1 + RIDGE_GATE
    reason = "" if ok else (f"training gate not met at d = {d}: the transformer's fresh-task error "
                            f"at M = {hi} is {ratio:.2f} × ridge's (> {1 + RIDGE_GATE:.2f}); an "
                            "under-trained model moves M*")  # fmt: skip
    return Check(claim, SOURCE, "sanity", pred, meas, tol, "holds" if ok else "fails"), ok, reason


def _dim_checks(table: pd.DataFrame, d: int, ms: list[int]) -> tuple[list[Check], bool, str]:
    """The checks of one dimension; also whether its training gate is met (and why not)."""
    out: list[Check] = []
    lo, hi = ms[0], ms[-1]
    at = f" (d = {d})"
    diff, se, r = _paired(table, lo, "dist_to_ridge", "dist_to_dmmse")
    out.append(difference_check(
        f"at the smallest task diversity (M = {lo}){at} the transformer's predictions on fresh "
        "tasks are closer to dMMSE than to ridge", SOURCE, "claim", a=diff, a_se=se, b=0.0,
        b_se=0.0, where=f"a = dist to ridge − dist to dMMSE (squared distance / d), paired mean "
                        f"of {r} replicates; b = 0"))  # fmt: skip
    diff, se, r = _paired(table, hi, "dist_to_dmmse", "dist_to_ridge")
    out.append(difference_check(
        f"at the largest task diversity (M = {hi}){at} the transformer's predictions on fresh "
        "tasks are closer to ridge than to dMMSE", SOURCE, "claim", a=diff, a_se=se, b=0.0,
        b_se=0.0, where=f"a = dist to dMMSE − dist to ridge (squared distance / d), paired mean "
                        f"of {r} replicates; b = 0"))  # fmt: skip
    gate, ok, reason = _gate(table, d, hi)
    out.append(gate)
    tr = table[(table["metric"] == "transition_log2_m") & (table["dim"] == d)]
    per = tr[tr["seed"] >= 0]["value"].to_numpy(dtype=float)
    agg = tr[tr["seed"] < 0]
    claim = (f"a transition M*{at} (the transformer turns from dMMSE-like to ridge-like) lies "
             "inside the sweep: every replicate crosses and the whole 95% interval is inside")  # fmt: skip
    l2lo, l2hi = math.log2(lo), math.log2(hi)
    pred = f"95% CI of log2 M* inside ({l2lo:g}, {l2hi:g})"
    tol = "every replicate crosses inside the swept range and the interval is inside it"
    per_txt = ", ".join("none" if np.isnan(v) else f"{v:.2f}" for v in per)
    if len(agg):
        a = agg.iloc[0]
        meas = (f"log2 M* = {a['value']:.2f}, 95% CI [{a['ci_low']:.2f}, {a['ci_high']:.2f}]; "
                f"per replicate: {per_txt}")  # fmt: skip
    else:
        meas = f"no replicate crosses inside the sweep (per replicate: {per_txt})"
    if len(ms) < 2:
        out.append(not_applicable(claim, SOURCE, "claim", "the sweep has a single M", tol))
        return out, ok, reason
    if not ok:
        out.append(inconclusive(claim, SOURCE, "claim", reason, predicted=pred, measured=meas,
                                tolerance=tol))  # fmt: skip
    elif not (per.size and np.all(np.isfinite(per))):
        out.append(Check(claim, SOURCE, "claim", pred, meas, tol, "fails"))
    else:
        a = agg.iloc[0]
        clo, chi = float(a["ci_low"]), float(a["ci_high"])
        if not (math.isfinite(clo) and math.isfinite(chi)):
            out.append(inconclusive(claim, SOURCE, "claim", "fewer than 2 replicates: no interval",
                                    predicted=pred, measured=meas, tolerance=tol))  # fmt: skip
        elif l2lo < clo and chi < l2hi:
            out.append(Check(claim, SOURCE, "claim", pred, meas, tol, "holds"))
        elif chi <= l2lo or clo >= l2hi:
            out.append(Check(claim, SOURCE, "claim", pred, meas, tol, "fails"))
        else:
            out.append(inconclusive(claim, SOURCE, "claim", "the 95% interval of log2 M* reaches "
                                    "outside the sweep: widen the sweep or add replicates",
                                    predicted=pred, measured=meas, tolerance=tol))  # fmt: skip
        claim_w = f"log2 M*{at} is estimated to within {MAX_CI_LOG2:g} log2 units (95% interval)"
        width = chi - clo
        if not math.isfinite(width):
            out.append(inconclusive(claim_w, SOURCE, "sanity", "no interval (< 2 replicates)",
                                    predicted=f"width <= {MAX_CI_LOG2:g}", measured=meas))  # fmt: skip
        else:
            out.append(Check(claim_w, SOURCE, "sanity", f"width <= {MAX_CI_LOG2:g}",
                             f"width = {width:.2f} ({meas})", f"width <= {MAX_CI_LOG2:g} log2 units",
                             "holds" if width <= MAX_CI_LOG2 else "fails"))  # fmt: skip
    return out, ok, reason


def _growth_checks(table: pd.DataFrame, gates: dict[int, tuple[bool, str]]) -> list[Check]:
    """M* grows with d (slope > 0) and the extrapolation to d = 8 next to the paper's threshold."""
    out: list[Check] = []
    claim = "the threshold M* grows with the dimension d (slope of log2 M* in d > 0)"
    claim8 = (f"log2 M* extrapolated to d = {PAPER_DIM} (linear in d) falls in the paper's range "
              f"for its small model, {PAPER_LOG2_M['small model'][0]:g}–"
              f"{PAPER_LOG2_M['small model'][1]:g}")  # fmt: skip
    src = "Raventós et al. 2023 §3, Fig. 2 (d = 8); growth in d: fmtheory's fit"
    bad = [f"d = {d}: {why}" for d, (ok, why) in gates.items() if not ok]
    tr = table[(table["metric"] == "transition_log2_m") & (table["seed"] >= 0)]
    for d in sorted(gates):
        v = tr[tr["dim"] == d]["value"].to_numpy(dtype=float)
        missing = int(np.sum(~np.isfinite(v)))
        if missing:
            bad.append(f"d = {d}: {missing} of {v.size} replicates never cross inside the sweep "
                       "(a fit over the others would be biased)")  # fmt: skip
    sl = table[table["metric"] == "growth_slope"]
    ex = table[table["metric"] == "extrapolated_log2_m"]
    if bad:
        why = "; ".join(bad)
        return [inconclusive(claim, src, "claim", why), inconclusive(claim8, src, "claim", why)]
    if sl.empty or not np.isfinite(sl["value"].iloc[0]):
        why = "M* is needed at >= 2 dimensions (>= 3 finite per-replicate values)"
        return [inconclusive(claim, src, "claim", why), inconclusive(claim8, src, "claim", why)]
    s = sl.iloc[0]
    out.append(difference_check(claim, src, "claim", a=float(s["value"]), a_se=float(s["se"]),
                                b=0.0, b_se=0.0, where="a = slope (log2 units per dimension), "
                                "fit over every replicate's M*"))  # fmt: skip
    e = ex.iloc[0]
    lo8, hi8 = PAPER_LOG2_M["small model"]
    meas = (f"log2 M*(d = {PAPER_DIM}) = {e['value']:.2f}, 95% CI [{e['ci_low']:.2f}, "
            f"{e['ci_high']:.2f}]; paper: small model {lo8:g}–{hi8:g}, base model "
            f"{PAPER_LOG2_M['base model'][0]:g}–{PAPER_LOG2_M['base model'][1]:g}")  # fmt: skip
    tol = f"the 95% CI meets [{lo8:g}, {hi8:g}] and is no wider than {2 * MAX_CI_LOG2:g}"
    pred = f"[{lo8:g}, {hi8:g}]"
    clo, chi = float(e["ci_low"]), float(e["ci_high"])
    if chi < lo8 or clo > hi8:
        out.append(Check(claim8, src, "claim", pred, meas, tol, "fails"))
    elif chi - clo > 2 * MAX_CI_LOG2:
        out.append(inconclusive(claim8, src, "claim", "the extrapolated interval is wider than "
                                f"{2 * MAX_CI_LOG2:g} log2 units", predicted=pred, measured=meas,
                                tolerance=tol))  # fmt: skip
    else:
        out.append(Check(claim8, src, "claim", pred, meas, tol, "holds"))
    return out


def checks(table: pd.DataFrame, config: Config) -> list[Check]:
    """Per dimension: claims on the trained transformers (dMMSE-like at small M, ridge-like at large
    M — paired differences over replicates), the training gate (sanity: within 10% of ridge at the
    largest M), the transition inside the sweep (its whole interval; inconclusive when the gate is
    not met) and the interval's width (sanity).  Across dimensions (>= 2): M* grows with d and its
    extrapolation to d = 8 against the paper.  Theory: the dMMSE estimator against its exact risk
    given the pool (k = 0, and M = 1); sanity: the estimator against the simulated risk."""
    table = _with_dim(table, config.task.dim)
    ms = sorted(int(m) for m in table["n_tasks"].dropna().unique() if m > 0)
    dist = table[(table["method"] == "transformer") & (table["metric"] == "dist_to_ridge")]
    dims = sorted(int(d) for d in dist["dim"].dropna().unique())
    out: list[Check] = []
    gates: dict[int, tuple[bool, str]] = {}
    for d in dims:
        cs, ok, why = _dim_checks(table[table["dim"] == d], d, ms)
        out += cs
        gates[d] = (ok, why)
    if len(dims) >= 2:
        out += _growth_checks(table, gates)
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
    """Drawn from the table alone: distances vs M (one panel per dimension); errors vs M on fresh
    and on pool tasks (the largest dimension); M* against d with the fit and the paper's d = 8."""
    import matplotlib.pyplot as plt

    table = _with_dim(table, -1)
    dist = table[(table["method"] == "transformer") & (table["metric"] == "dist_to_ridge")]
    dims = sorted(int(d) for d in dist["dim"].dropna().unique())
    out: dict[str, Any] = {}
    fig, axes = plt.subplots(1, max(1, len(dims)), figsize=(4.2 * max(1, len(dims)) + 1, 4.2),
                             squeeze=False)  # fmt: skip
    for ax, d in zip(axes[0], dims, strict=False):
        td = table[table["dim"] == d]
        for metric, style in (("dist_to_dmmse", dict(color="tab:orange", marker="o")),
                              ("dist_to_ridge", dict(color="tab:blue", marker="s"))):  # fmt: skip
            df = td[(td["method"] == "transformer") & (td["metric"] == metric)
                    & (td["tasks"] == "fresh")]  # fmt: skip
            g = df.groupby("n_tasks")["value"].agg(["mean", "min", "max"]).sort_index()
            ax.plot(g.index, g["mean"], label=f"transformer {metric.replace('_', ' ')}", **style)
            ax.fill_between(g.index, g["min"], g["max"], alpha=0.15, color=style["color"])
        dd = td[(td["method"] == "dmmse") & (td["metric"] == "dist_to_ridge")
                & (td["tasks"] == "fresh")].groupby("n_tasks")["value"].mean()  # fmt: skip
        if len(dd):
            ax.plot(dd.index, dd.values, color="grey", ls="--", label="dMMSE to ridge")
        agg = td[(td["metric"] == "transition_log2_m") & (td["seed"] < 0)]
        if len(agg) and np.isfinite(agg["value"].iloc[0]):
            a = agg.iloc[0]
            ax.axvline(2 ** a["value"], color="black", ls=":", label="M* (mean)")
            if np.isfinite(a["ci_low"]):  # the interval, clipped to the swept range
                lo_m, hi_m = td["n_tasks"].min(), td["n_tasks"].max()
                ax.axvspan(max(2 ** a["ci_low"], lo_m), min(2 ** a["ci_high"], hi_m),
                           color="black", alpha=0.08, label="95% CI of M* (clipped)")  # fmt: skip
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel("number of pretraining tasks M")
        ax.set_ylabel("squared distance / d (fresh tasks)")
        ax.set_title(f"d = {d}: which estimator? (band: replicates)", fontsize=9)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    out["distance_vs_m"] = fig
    top = table[table["dim"] == (dims[-1] if dims else -1)]
    for tasks in ("fresh", "pool"):
        fig, ax = plt.subplots(figsize=(7, 4.2))
        df = top[(top["metric"] == "normalized_mse") & (top["tasks"] == tasks)]
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
        ax.set_title(f"Error on {tasks} tasks (d = {dims[-1] if dims else '?'})")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        fig.tight_layout()
        out[f"error_{tasks}_tasks"] = fig
    tr = table[(table["metric"] == "transition_log2_m") & (table["seed"] >= 0)]
    ex = table[table["metric"] == "extrapolated_log2_m"]
    if tr["dim"].nunique() >= 2 and len(ex):
        fig, ax = plt.subplots(figsize=(6, 4.2))
        ax.plot(tr["dim"], tr["value"], "o", color="tab:blue", alpha=0.6, label="M* per replicate")
        sl = table[table["metric"] == "growth_slope"].iloc[0]
        e = ex.iloc[0]
        xs = np.linspace(tr["dim"].min(), PAPER_DIM, 50)
        icpt = e["value"] - sl["value"] * PAPER_DIM
        ax.plot(xs, icpt + sl["value"] * xs, color="tab:blue", ls="--", label="fit, linear in d")
        ax.errorbar([PAPER_DIM], [e["value"]], yerr=[[e["value"] - e["ci_low"]],
                    [e["ci_high"] - e["value"]]], fmt="s", color="tab:blue", capsize=4,
                    label="extrapolated to d = 8 (95% CI)")  # fmt: skip
        for (name, (lo, hi)), c in zip(PAPER_LOG2_M.items(), ("tab:red", "tab:purple"),
                                       strict=True):  # fmt: skip
            ax.plot([PAPER_DIM + 0.15] * 2, [lo, hi], color=c, lw=4, label=f"paper, {name}")
        ax.set_xlabel("dimension d")
        ax.set_ylabel("log2 M*")
        ax.set_title("Task-diversity threshold against d")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        fig.tight_layout()
        out["m_star_vs_d"] = fig
    return out


def headline(table: pd.DataFrame, config: Config | None = None) -> dict[str, float]:
    """At the largest dimension: log2 M* (mean over replicates), the transformer's fresh-task error
    at the largest M and its ratio to ridge's (the training gate); log2 M* extrapolated to d = 8
    (NaN with one dimension)."""
    table = _with_dim(table, config.task.dim if config is not None else -1)
    dist = table[(table["method"] == "transformer") & (table["metric"] == "dist_to_ridge")]
    dims = sorted(dist["dim"].dropna().unique())
    top = table[table["dim"] == (dims[-1] if dims else -1)]
    agg = top[(top["metric"] == "transition_log2_m") & (top["seed"] < 0)]
    ms = sorted(top["n_tasks"].dropna().unique())
    hi = ms[-1] if ms else math.nan
    err, _ = _fresh_err(top, "transformer", hi)
    ridge, _ = _fresh_err(top, "ridge", hi)
    ex = table[table["metric"] == "extrapolated_log2_m"]
    return {
        "log2_m_star": float(agg["value"].iloc[0]) if len(agg) else math.nan,
        "transformer_fresh_err_at_max_m": err,
        "gate_ratio_to_ridge": err / ridge if ridge > 0 else math.nan,
        "log2_m_star_extrapolated_d8": float(ex["value"].iloc[0]) if len(ex) else math.nan,
    }


def _run_replicate(config: Config, ctx: RunContext, r: int) -> list[dict[str, Any]]:
    """The rows of replicate r of one dimension (``config.task``): one trained GPT per M."""
    t = config.task
    spec = t.spec()
    ms = config.pool.values()
    pool_seed, train_seed, eval_seed = _replicate_seeds(config, r)
    big = sample_task_pool(spec, n_tasks=ms[-1], generator=make_generator(pool_seed))
    fresh = sample_regression(spec, batch=config.eval.n_prompts, n_points=t.n_points,
                              generator=make_generator(eval_seed))  # fmt: skip
    rows: list[dict[str, Any]] = []
    for m, pool in nested_pools(big, ms).items():
        model, tr = train_on_pool(config, ctx, pool, train_seed=train_seed,
                                  name=f"d{t.dim}_rep{r}_M{m}")  # fmt: skip
        coords = dict(n_tasks=m, seed=r)
        rows += evaluate_one(config, model, pool, eval_seed=eval_seed, fresh=fresh,
                             device=ctx.device, coords=dict(coords))  # fmt: skip
        rows += theory_one(config, pool, seed=pool_seed + m, coords=dict(coords))
        rows += [exact_row("transformer", "train_loss", v, step=s, n_tasks=m, seed=r,
                           tasks="pool", se=math.nan)
                 for s, v in zip(tr.loss_steps, tr.losses, strict=True)]  # fmt: skip
    return [dict(row, dim=t.dim) for row in rows]


def _unit(args: tuple[Config, RunContext, int, int, int]) -> list[dict[str, Any]]:
    """One (dimension, replicate) unit in a worker process with ``threads`` torch threads."""
    config, ctx, d, r, threads = args
    torch.set_num_threads(threads)
    return _run_replicate(config.at_dim(d), ctx, r)


def run(config: Config, ctx: RunContext | None = None) -> Result:
    """Train one transformer per (dimension, replicate, M), evaluate, compare with theory.  With
    ``workers > 1`` the (dimension, replicate) units run in that many spawned processes, each with
    this process's number of torch threads; the rows are gathered in the same order."""
    ctx = ctx or RunContext()
    units = [(d, r) for d in config.dims() for r in range(config.pool.seeds)]
    if config.workers > 1 and len(units) > 1:
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor

        quiet = RunContext(device=ctx.device, workdir=ctx.workdir, progress=False)
        args = [(config, quiet, d, r, torch.get_num_threads()) for d, r in units]
        n = min(config.workers, len(units))
        with ProcessPoolExecutor(n, mp_context=mp.get_context("spawn")) as ex:
            parts = list(ex.map(_unit, args))
    else:
        parts = [_run_replicate(config.at_dim(d), ctx, r) for d, r in units]
    rows: list[dict[str, Any]] = [row for part in parts for row in part]
    for d in config.dims():
        rows += [dict(row, dim=d) for row in bayes_rows(config.at_dim(d), seed=config.seed)]
    table = pd.DataFrame(rows)
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
           "transition_rows", "growth_fit", "growth_rows", "checks", "figures", "headline", "label", "EXPERIMENT",
           "ConfigError"]  # fmt: skip
