"""ilr's measurements: every method's E‖ŵ − w‖² at every cell, the theory next to it, the learned
prior at the base cell, and the forward target; :func:`run` assembles the table."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
import torch

from fmtheory.checks import ci_row, exact_row
from fmtheory.contract import RunContext
from fmtheory.estimators import create_estimator
from fmtheory.experiments.ilr.config import (
    MINNORM,
    ORE,
    RE,
    TH_FLOOR,
    TH_ORACLE,
    TH_SNR,
    TRANSFORMER,
    TRE,
    Config,
    Run,
    _seed,
    _spec,
    gpt_method,
    plan,
    run_prior,
    train_contexts,
)
from fmtheory.experiments.ilr.training import train_gpt, train_run
from fmtheory.tasks.ilr import ILRPrior, sample_ilr
from fmtheory.theory.ilr import (
    expected_posterior_cov,
    floor_mse,
    high_snr_mse,
    oracle_forward_risk,
    oracle_mse,
    spectral_gap_rank,
)
from fmtheory.train import make_generator

__all__ = ["run_table", "evaluate_cell", "theory_rows", "learned_prior_rows", "forward_rows"]


def tre_tasks(config: Config, run: Run, prior: ILRPrior) -> Any:
    """TRE's pretraining data: ``eval.tre_tasks`` tasks of the run's prior, each with the longest
    training context (TRE never sees their w)."""
    g = make_generator(_seed(config.seed, "tre", run.key))
    return sample_ilr(_spec(config, run), prior, batch=config.eval.tre_tasks,
                      n_points=max(train_contexts(config)), generator=g, dtype=torch.float64)  # fmt: skip


def _coords(run: Run, n: int, sweeps: set[str]) -> dict[str, Any]:
    return dict(rank=run.rank, context=n, noise=run.noise, cond=run.cond,
                sweeps=",".join(sorted(sweeps)))  # fmt: skip


def _sq_err(w_hat: torch.Tensor, w: torch.Tensor) -> np.ndarray:
    return ((w_hat.double() - w.double()) ** 2).sum(-1).cpu().numpy()


@torch.no_grad()
def evaluate_cell(
    config: Config, run: Run, prior: ILRPrior, model: torch.nn.Module, tre: Any, n: int,
    device: torch.device,
) -> tuple[list[dict[str, Any]], dict[str, torch.Tensor], Any]:  # fmt: skip
    """Rows of E‖ŵ − w‖² for every method and the theory at one cell; also (ŵ by method, batch)."""
    spec, e = _spec(config, run), config.eval
    g = make_generator(_seed(config.seed, "eval", run.rank, n))  # shared across σ, κ
    b = sample_ilr(spec, prior, batch=e.n_prompts, n_points=n, generator=g, dtype=torch.float64)
    coords = _coords(run, n, run.cells[n])
    w_hat = {TRANSFORMER: model(b.x.float().to(device), b.y.float().to(device)).double().cpu()}
    ests = {
        ORE: create_estimator("ore", w0=prior.w0, basis=prior.basis, spectrum=prior.spectrum,
                              noise_std=run.noise),
        TRE: create_estimator("tre", tasks_x=tre.x, tasks_y=tre.y),
        RE: create_estimator("ridge_gcv"),
        MINNORM: create_estimator("ols"),
    }  # fmt: skip
    rows = []
    for name, est in ests.items():
        est.fit(b.x, b.y)
        w_hat[name] = est.coef_
        if name == TRE:
            rows.append(exact_row(TRE, "tre_rank", float(est.prior_.rank), seed=config.seed,
                                  se=math.nan, **coords))  # fmt: skip
    for name, wh in w_hat.items():
        rows.append(ci_row(name, "mse_w", _sq_err(wh, b.w), seed=config.seed, **coords))
    rows += theory_rows(config, run, prior, n, coords)
    return rows, w_hat, b


def theory_rows(
    config: Config, run: Run, prior: ILRPrior, n: int, coords: dict[str, Any]
) -> list[dict[str, Any]]:
    """Oracle MMSE (Monte Carlo with the run's U, ±1.96 s.e.), σ²r/(n−r−1) (κ = 1), the floor."""
    x_var = _spec(config, run).x_variances(torch.float64).numpy()
    lam = prior.spectrum.numpy()
    th = oracle_mse(n=n, sigma=run.noise, spectrum=lam, x_var=x_var, basis=prior.basis.numpy(),
                    n_mc=config.eval.theory_mc, seed=_seed(config.seed, "theory", run.key, n))  # fmt: skip
    rows = [
        exact_row(TH_ORACLE, "mse_w", th.value, se=th.stderr or 0.0, seed=config.seed, **coords)
    ]
    if run.cond == 1.0 and run.rank < n - 1 and np.all(lam == lam[0]):
        v = high_snr_mse(r=run.rank, n=n, sigma=run.noise)
        rows.append(exact_row(TH_SNR, "mse_w", v, seed=config.seed, **coords))
    fl = floor_mse(spectrum=lam, n=n)
    rows.append(exact_row(TH_FLOOR, "mse_w", fl, seed=config.seed, **coords))
    return rows


def learned_prior_rows(
    config: Config, run: Run, prior: ILRPrior, n: int, w_hat: dict[str, torch.Tensor]
) -> list[dict[str, Any]]:
    """Mean of ŵ over tasks vs w0; Cov(ŵ) + E[Post] vs Σw (law of total covariance:
    Σw = Cov(E[w|D]) + E Cov(w|D), with E Cov(w|D) = σ²C); rank of that estimate by spectral gap."""
    x_var = _spec(config, run).x_variances(torch.float64).numpy()
    post = expected_posterior_cov(n=n, sigma=run.noise, spectrum=prior.spectrum.numpy(),
                                  basis=prior.basis.numpy(), x_var=x_var,
                                  n_mc=config.eval.theory_mc,
                                  seed=_seed(config.seed, "post", run.key, n))  # fmt: skip
    sigma_w = prior.cov.numpy()
    w0 = prior.w0.numpy()
    scale = float(np.linalg.norm(w0)) or math.sqrt(float(np.trace(sigma_w)))
    coords = _coords(run, n, run.cells[n])
    rows = []

    def row(method: str, metric: str, value: float, **extra: Any) -> dict[str, Any]:
        return exact_row(method, metric, float(value), se=math.nan, seed=config.seed, **coords,
                         **extra)  # fmt: skip

    for name in (TRANSFORMER, ORE):
        wh = w_hat[name].double().cpu().numpy()
        mean = wh.mean(0)
        est = np.cov(wh, rowvar=False) + post
        ev = np.sort(np.linalg.eigvalsh((est + est.T) / 2))[::-1]
        rows.append(row(name, "prior_mean_rel_err", np.linalg.norm(mean - w0) / scale))
        rows.append(row(name, "prior_cov_rel_err",
                        np.linalg.norm(est - sigma_w) / np.linalg.norm(sigma_w)))  # fmt: skip
        rows.append(row(name, "prior_rank", spectral_gap_rank(ev)))
        rows += [row(name, "prior_eigenvalue", v, k=i + 1) for i, v in enumerate(ev)]
    true_ev = np.sort(np.linalg.eigvalsh(sigma_w))[::-1]
    rows += [row("truth: Σw", "prior_eigenvalue", v, k=i + 1) for i, v in enumerate(true_ev)]
    return rows


@torch.no_grad()
def forward_rows(
    config: Config, run: Run, prior: ILRPrior, model: torch.nn.Module, gpt: Any,
    device: torch.device,
) -> list[dict[str, Any]]:  # fmt: skip
    """Forward target at the base cell: (prediction − y_k)² from the k pairs before it, k = 0..n,
    for the GPT, the linear transformer (<ŵ, x_k>, k >= 1), the estimators, and the oracle risk."""
    spec, e, n = _spec(config, run), config.eval, config.task.context
    g = make_generator(_seed(config.seed, "forward", run.key))
    b = sample_ilr(spec, prior, batch=e.n_prompts, n_points=n + 1, generator=g, dtype=torch.float64)
    rows: list[dict[str, Any]] = []
    coords = dict(rank=run.rank, noise=run.noise, cond=run.cond, sweeps="forward")
    preds: dict[str, torch.Tensor] = {}
    if gpt is not None:
        preds[gpt_method(config)] = (
            gpt(b.x.float().to(device), b.y.float().to(device)).double().cpu()
        )
    lt = torch.full((e.n_prompts, n + 1), math.nan, dtype=torch.float64)
    for k in range(1, n + 1):
        wk = model(b.x[:, :k].float().to(device), b.y[:, :k].float().to(device)).double().cpu()
        lt[:, k] = (b.x[:, k] * wk).sum(-1)
    preds[TRANSFORMER] = lt
    tre = tre_tasks(config, run, prior)
    for name, est in ((ORE, create_estimator("ore", w0=prior.w0, basis=prior.basis,
                                             spectrum=prior.spectrum, noise_std=run.noise)),
                      (TRE, create_estimator("tre", tasks_x=tre.x, tasks_y=tre.y)),
                      (RE, create_estimator("ridge_gcv")), (MINNORM, create_estimator("ols"))):  # fmt: skip
        preds[name] = est.predict_prefixes(b.x, b.y)
    x_var = spec.x_variances(torch.float64).numpy()
    for k in range(n + 1):
        for name, p in preds.items():
            if name == TRANSFORMER and k == 0:
                continue
            err = ((p[:, k] - b.y[:, k]) ** 2).numpy()
            rows.append(ci_row(name, "forward_mse", err, seed=config.seed, context=k, **coords))
        th = oracle_forward_risk(n=k, sigma=run.noise, spectrum=prior.spectrum.numpy(),
                                 x_var=x_var, basis=prior.basis.numpy(),
                                 n_mc=config.eval.theory_mc,
                                 seed=_seed(config.seed, "fwd-theory", k))  # fmt: skip
        rows.append(exact_row(TH_ORACLE, "forward_mse", th.value, se=th.stderr or 0.0,
                              seed=config.seed, context=k, **coords))  # fmt: skip
    return rows


def run_table(config: Config, ctx: RunContext) -> pd.DataFrame:
    """Train every pretraining run, evaluate every cell, compare with theory: the result table."""
    t = config.task
    rows: list[dict[str, Any]] = []
    for r in plan(config):
        prior = run_prior(config, r)
        model, steps, losses = train_run(config, r, prior, ctx)
        rows += [exact_row(TRANSFORMER, "train_loss", v, se=math.nan, seed=config.seed, step=s,
                           **_coords(r, math.nan, set()))
                 for s, v in zip(steps, losses, strict=True)]  # fmt: skip
        tre = tre_tasks(config, r, prior)
        for n in sorted(r.cells):
            cell_rows, w_hat, _ = evaluate_cell(config, r, prior, model, tre, n, ctx.device)
            rows += cell_rows
            if "base" in r.cells[n]:
                rows += learned_prior_rows(config, r, prior, n, w_hat)
        if (r.rank, r.noise, r.cond) == (t.rank, t.noise_std, t.x_cond):
            gpt = None
            if config.gpt.enabled:
                gpt, gsteps, glosses = train_gpt(config, r, prior, ctx)
                rows += [exact_row(gpt_method(config), "train_loss", v, se=math.nan,
                                   seed=config.seed, step=s, **_coords(r, math.nan, set()))
                         for s, v in zip(gsteps, glosses, strict=True)]  # fmt: skip
            rows += forward_rows(config, r, prior, model, gpt, ctx.device)
    table = pd.DataFrame(rows)
    for col in ("step", "k"):
        if col not in table:
            table[col] = math.nan
    table.attrs = {}
    return table
