"""In-context learning under DP-SGD: the privacy experiment's ``icl`` part.

Question (survey arXiv:2410.11444 §6; issue 15): does in-context learning survive private
pretraining?  A GPT-style decoder (the icl-regression transformer, with the batch-position backbone
of :mod:`fmtheory.models.dp_icl` so that Opacus's per-example gradients are right) is pretrained on
a FIXED set of ``icl.prompts`` linear-regression prompts y = <w, x> + noise (Garg et al. 2022, §2),
one prompt = one private record.  For every target ε of ``icl.epsilons`` (``null``: non-private) the
same initial weights are trained for the same steps with AdamW through ``train.fit``; the private
models with Opacus's ``PrivacyEngine`` (DP-SGD of Abadi et al. 2016 with AdamW as the update:
per-prompt clipping at ``icl.max_grad_norm``, Gaussian noise with the multiplier Opacus's
``get_noise_multiplier`` gives for ε at the experiment's δ, Poisson batches at the rate
q = 1/⌈N/B⌉ that Opacus's accountant records).  The achieved ε is read from Opacus's RDP and PRV
accountants.

Every model, and the zero / OLS / ridge / Bayes estimators, is scored on the same held-out prompts
at every context length k: squared error / d with its s.e. over prompts.  The checks read k = 2d.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
import torch
from pydantic import Field, field_validator, model_validator

from fmtheory.checks import Z95, difference_check, exact_row, fit_line, inconclusive, not_applicable
from fmtheory.contract import Check, RunContext, Section
from fmtheory.estimators import create_estimator
from fmtheory.models.dp_icl import build_dp_regression_transformer
from fmtheory.sections import GPTSection, TrainSection
from fmtheory.tasks.regression import RegressionSpec, sample_regression
from fmtheory.train.fit import fit, make_generator, seeded

SRC_ICL = "Garg et al. 2022 §2; Abadi et al. 2016 (DP-SGD); survey arXiv:2410.11444 §6"
#: the sanity check's tolerance: Opacus's RDP ε after training within this relative distance of
#: the target (``get_noise_multiplier`` searches σ to within 0.01 in ε)
EPS_RTOL = 0.02
MODEL = "icl_gpt"
BASELINES = ("zero", "ols", "ridge", "bayes")


class ICLPrivacySection(Section):
    """The icl-regression transformer pretrained under DP-SGD (Opacus)."""

    epsilons: list[float | None] = Field(
        [None, 8.0, 1.0], min_length=1, description="target ε per model (null: non-private)"
    )
    dim: int = Field(5, ge=1, le=64, description="task dimension d")
    n_points: int = Field(11, ge=2, le=256, description="pairs per prompt (context 0..n−1); "
                          "must be ≥ 2d + 1, the checks read k = 2d")  # fmt: skip
    noise_std: float = Field(0.5, ge=0.0, le=10.0, description="label noise σ")
    prompts: int = Field(8192, ge=16, le=10_000_000, description="pretraining prompts N (the "
                         "private data set; one prompt = one record)")  # fmt: skip
    max_grad_norm: float = Field(0.1, gt=0.0, le=100.0, description="per-prompt clipping norm C")
    model: GPTSection = GPTSection(n_layer=2, n_head=2, n_embd=32, attention="linear")
    train: TrainSection = TrainSection(steps=1500, batch_size=128, lr=0.003, warmup_steps=50,
                                       grad_clip=1.0, checkpoint_every=10**6)  # fmt: skip
    eval_prompts: int = Field(2000, ge=10, le=1_000_000, description="held-out prompts")
    ridge_alpha: float = Field(0.1, gt=0.0, le=1e6, description="λ of the ridge baseline")

    @field_validator("epsilons")
    @classmethod
    def _eps(cls, v: list[float | None]) -> list[float | None]:
        for e in v:
            if e is not None and not (0.0 < e <= 100.0):
                raise ValueError(
                    f"icl.epsilons contains {e}: every ε must be in (0, 100] (or null)"
                )
        if len(set(v)) != len(v):
            raise ValueError(f"icl.epsilons = {v}: the values must be distinct")
        return v

    @model_validator(mode="after")
    def _context(self) -> ICLPrivacySection:
        if self.n_points < 2 * self.dim + 1:
            raise ValueError(f"icl.n_points = {self.n_points}: must be ≥ 2·dim + 1 = "
                             f"{2 * self.dim + 1} (the checks read context length k = 2d)")  # fmt: skip
        if self.train.curriculum.dims_start is not None or self.train.curriculum.points_start:
            raise ValueError("icl.train.curriculum: not supported (a fixed private data set)")
        return self

    def spec(self) -> RegressionSpec:
        return RegressionSpec(dim=self.dim, noise_std=self.noise_std)


def _train(sec: ICLPrivacySection, eps: float | None, data: Any, seed: int, delta: float,
           ctx: RunContext) -> tuple[torch.nn.Module, dict[str, float]]:  # fmt: skip
    """One transformer on the fixed prompts ``data`` (non-private when ``eps`` is None)."""
    tr, n = sec.train, sec.prompts
    model = seeded(lambda: build_dp_regression_transformer(sec.model, dim=sec.dim,
                                                           n_points=sec.n_points), seed)  # fmt: skip
    spec = tr.spec()
    opt = torch.optim.AdamW(model.parameters(), lr=spec.lr, betas=spec.betas,
                            weight_decay=spec.weight_decay)  # fmt: skip
    q = 1.0 / math.ceil(n / tr.batch_size)
    info: dict[str, float] = {"sigma": 0.0, "sample_rate": q}
    if eps is None:

        def loss_fn(m: torch.nn.Module, step: int, g: torch.Generator) -> torch.Tensor:
            idx = torch.randint(0, n, (tr.batch_size,), generator=g)
            return (m(data.x[idx], data.y[idx]) - data.y[idx]).pow(2).mean()

        fit(model, loss_fn, tr, seed=seed + 17, ctx=ctx, name="icl_nonprivate", optimizer=opt)
        return model, info
    from opacus import PrivacyEngine
    from opacus.accountants import PRVAccountant
    from opacus.accountants.utils import get_noise_multiplier

    sigma = get_noise_multiplier(target_epsilon=eps, target_delta=delta, sample_rate=q,
                                 steps=tr.steps, accountant="rdp")  # fmt: skip
    engine = PrivacyEngine(accountant="rdp")
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(data.x, data.y),
                                         batch_size=tr.batch_size)  # fmt: skip
    pmodel, popt, _ = engine.make_private(
        module=model, optimizer=opt, data_loader=loader, noise_multiplier=sigma,
        max_grad_norm=sec.max_grad_norm, poisson_sampling=True,
        noise_generator=make_generator(seed + 1),
    )  # fmt: skip

    def dp_loss(m: torch.nn.Module, step: int, g: torch.Generator) -> torch.Tensor:
        idx = (torch.rand(n, generator=g) < q).nonzero().ravel()  # Poisson sampling
        if idx.numel() == 0:
            idx = torch.zeros(1, dtype=torch.long)
        # per-prompt loss = mean over positions; Opacus's "mean" reduction over prompts
        return (m(data.x[idx], data.y[idx]) - data.y[idx]).pow(2).mean(1).mean()

    import warnings

    with warnings.catch_warnings():  # "full backward hook ... no inputs require gradients"
        warnings.simplefilter("ignore", UserWarning)
        fit(pmodel, dp_loss, tr, seed=seed + 17, ctx=ctx, name=f"icl_dp_eps{eps:g}",
            optimizer=popt)  # fmt: skip
    prv = PRVAccountant()
    prv.history = list(engine.accountant.history)
    info.update(sigma=sigma, eps_rdp=engine.accountant.get_epsilon(delta),
                eps_prv=prv.get_epsilon(delta))  # fmt: skip
    module = pmodel._module
    pmodel._close()
    return module, info


def _curve_rows(method: str, err: torch.Tensor, d: int, seed: int, **c: Any) -> list[dict]:
    """err: (prompts, n) squared errors -> one row per context length k (mean / d, s.e.)."""
    e = (err.double() / d).numpy()
    mean, se = e.mean(0), e.std(0, ddof=1) / math.sqrt(e.shape[0])
    return [exact_row(method, "icl_mse", float(mean[k]), se=float(se[k]), seed=seed, n_context=k,
                      **c) for k in range(e.shape[1])]  # fmt: skip


def icl_rows(sec: ICLPrivacySection | None, seed: int, delta: float,
             ctx: RunContext) -> list[dict[str, Any]]:  # fmt: skip
    """The part's table rows (none when ``sec`` is None): per ε, ``icl_gpt``/``icl_mse`` at every
    context length k, ``icl_gpt``/``icl_gain_2d`` (error at k = 0 minus error at k = 2d, paired over
    prompts; its n_context is 2d), ``icl_rdp``/``icl_prv`` ``epsilon`` and ``icl_opacus``/``sigma``; the baselines
    ``icl_zero``/``icl_ols``/``icl_ridge``/``icl_bayes`` ``icl_mse`` (target_eps NaN)."""
    if sec is None:
        return []
    spec, d, n = sec.spec(), sec.dim, sec.n_points
    data = sample_regression(spec, batch=sec.prompts, n_points=n,
                             generator=make_generator(seed + 31))  # fmt: skip
    test = sample_regression(spec, batch=sec.eval_prompts, n_points=n,
                             generator=make_generator(seed + 1_000_003))  # fmt: skip
    rows: list[dict[str, Any]] = []
    for eps in sec.epsilons:
        model, info = _train(sec, eps, data, seed, delta, ctx)
        c: dict[str, Any] = dict(target_eps=math.inf if eps is None else eps)
        model.eval()
        with torch.no_grad():
            err = (model(test.x, test.y) - test.y) ** 2  # (prompts, n)
        rows += _curve_rows(MODEL, err, d, seed, **c)
        gain = ((err[:, 0] - err[:, 2 * d]).double() / d).numpy()
        rows.append(exact_row(MODEL, "icl_gain_2d", float(gain.mean()),
                              se=float(gain.std(ddof=1) / math.sqrt(len(gain))), seed=seed,
                              n_context=2 * d, **c))  # fmt: skip
        if eps is not None:
            rows.append(exact_row("icl_rdp", "epsilon", info["eps_rdp"], seed=seed, **c))
            rows.append(exact_row("icl_prv", "epsilon", info["eps_prv"], seed=seed, **c))
            rows.append(exact_row("icl_opacus", "sigma", info["sigma"], seed=seed, **c))
    mean, cov = spec.w_prior(torch.float64)
    ests = {"zero": create_estimator("zero"), "ols": create_estimator("ols"),
            "ridge": create_estimator("ridge", alpha=sec.ridge_alpha),
            "bayes": create_estimator("bayes", prior_mean=mean, prior_cov=cov,
                                      noise_std=sec.noise_std)}  # fmt: skip
    x64, y64 = test.x.double(), test.y.double()
    for name, est in ests.items():
        err = (est.predict_prefixes(x64, y64) - y64) ** 2
        rows += _curve_rows(f"icl_{name}", err, d, seed, target_eps=math.nan)
    return rows


# ---------------------------------------------------------------------------------------------
def _sel(table: pd.DataFrame, method: str, metric: str) -> pd.DataFrame:
    if "method" not in table:
        return table.iloc[0:0]
    return table[(table["method"] == method) & (table["metric"] == metric)]


def _at_k(table: pd.DataFrame, method: str, k: int) -> pd.DataFrame:
    """Rows of ``method``'s error at context length k, indexed by target ε."""
    r = _sel(table, method, "icl_mse")
    if r.empty or "n_context" not in r:
        return r
    return r[r["n_context"] == k]


def icl_checks(table: pd.DataFrame, sec: ICLPrivacySection | None) -> list[Check]:
    """(1) claim: the non-private model learns in context (error at k = 2d below the zero
    predictor's, the prior's error); (2) claim: at the largest private ε the error at k = 2d is
    below the same model's zero-context error (paired over prompts); (3) claim: the error at k = 2d
    rises as ε falls; (4) sanity: Opacus's RDP ε equals the target within EPS_RTOL."""
    if sec is None:
        return []
    d = sec.dim
    k = 2 * d
    out: list[Check] = []
    eps_all = sorted((math.inf if e is None else e for e in sec.epsilons), reverse=True)
    private = [e for e in eps_all if math.isfinite(e)]
    model_k = _at_k(table, MODEL, k).set_index("target_eps")
    # 1
    c1 = (f"the non-private transformer learns in context: its error at k = 2d = {k} is below the "
          "prior's (the zero predictor's) error there")  # fmt: skip
    zero = _at_k(table, "icl_zero", k)
    if math.inf not in eps_all:
        out.append(not_applicable(c1, SRC_ICL, "claim", "no non-private model in icl.epsilons"))
    elif math.inf not in model_k.index or zero.empty:
        out.append(inconclusive(c1, SRC_ICL, "claim", f"no rows of the non-private model or of "
                                f"the zero predictor at k = {k}"))  # fmt: skip
    else:
        m, z = model_k.loc[math.inf], zero.iloc[0]
        out.append(difference_check(c1, SRC_ICL, "claim", a=z["value"], a_se=z["se"],
                                    b=m["value"], b_se=m["se"], greater=True,
                                    where="a = zero predictor, b = transformer, at k = 2d"))  # fmt: skip
    # 2
    c2 = (f"in-context learning survives DP-SGD at the largest private ε: error at k = 0 minus "
          f"error at k = {k} is above 0")  # fmt: skip
    gain = _sel(table, MODEL, "icl_gain_2d").set_index("target_eps")
    if not private:
        out.append(not_applicable(c2, SRC_ICL, "claim", "no private ε in icl.epsilons"))
    elif private[0] not in gain.index:
        out.append(inconclusive(c2, SRC_ICL, "claim", f"no gain row at ε = {private[0]:g}"))
    else:
        r = gain.loc[private[0]]
        out.append(difference_check(c2.replace("the largest private ε", f"ε = {private[0]:g}"),
                                    SRC_ICL, "claim", a=r["value"], a_se=r["se"], b=0.0, b_se=0.0,
                                    greater=True, where="paired over held-out prompts"))  # fmt: skip
    # 3
    out.append(_trend_check(model_k, eps_all, k))
    # 4
    rdp = _sel(table, "icl_rdp", "epsilon").set_index("target_eps")["value"]
    if private:
        c4 = "the ICL models' ε from Opacus's RDP accountant equals the target"
        miss = [e for e in private if e not in rdp.index]
        if miss:
            out.append(inconclusive(c4, SRC_ICL, "sanity", f"no accountant row at ε = {miss}"))
        else:
            rel = max(abs(rdp[e] - e) / e for e in private)
            meas = "; ".join(f"{e:g} → {rdp[e]:.4g}" for e in private)
            out.append(Check(c4, SRC_ICL, "sanity", "ε_RDP = target", meas,
                             f"max relative difference ≤ {EPS_RTOL:g}",
                             "holds" if rel <= EPS_RTOL else "fails"))  # fmt: skip
    return out


def _trend_check(model_k: pd.DataFrame, eps_all: list[float], k: int) -> Check:
    """The error at k = 2d rises as ε falls: holds when the error at the smallest ε exceeds the
    error at the largest by more than 1.96 s.e. and no step down the ladder lowers it by more than
    1.96 s.e.; fails when such a step exists or the endpoint difference is below 0 beyond its
    interval; inconclusive otherwise.  The measurement lists each ε's error and the slope of the
    error in log ε over the private ε (with its 95% interval, ≥ 3 private ε)."""
    claim = f"the ICL error at k = 2d = {k} rises as ε falls (ε ladder {', '.join(f'{e:g}' for e in eps_all)})"
    tol = f"endpoint difference > 0 and no step down the ladder lower by > {Z95:.2f} s.e."
    if len(eps_all) < 2:
        return not_applicable(claim, SRC_ICL, "claim", "a single ε: no trend", tol)
    miss = [e for e in eps_all if e not in model_k.index]
    if miss:
        return inconclusive(claim, SRC_ICL, "claim", f"no rows at ε = {miss}", tolerance=tol)
    v = [float(model_k.loc[e, "value"]) for e in eps_all]
    s = [float(model_k.loc[e, "se"]) for e in eps_all]
    meas = ", ".join(f"ε={e:g}: {a:.4f}±{b:.4f}" for e, a, b in zip(eps_all, v, s, strict=True))
    fin = [i for i, e in enumerate(eps_all) if math.isfinite(e)]
    if len(fin) >= 3:
        f = fit_line(np.log([eps_all[i] for i in fin]), [v[i] for i in fin])
        meas += f"; slope in ln ε {f.slope:.4f} [{f.slope_low:.4f}, {f.slope_high:.4f}]"
    reversed_steps = [(eps_all[i], eps_all[i + 1]) for i in range(len(v) - 1)
                      if v[i + 1] - v[i] + Z95 * math.hypot(s[i], s[i + 1]) < 0]  # fmt: skip
    end = v[-1] - v[0]
    end_se = math.hypot(s[0], s[-1])
    if reversed_steps:
        return Check(claim, SRC_ICL, "claim", "rising", meas + f"; falls from ε={reversed_steps[0][0]:g} "
                     f"to {reversed_steps[0][1]:g}", tol, "fails")  # fmt: skip
    if end - Z95 * end_se > 0:
        return Check(claim, SRC_ICL, "claim", "rising", meas, tol, "holds")
    if end + Z95 * end_se < 0:
        return Check(claim, SRC_ICL, "claim", "rising", meas, tol, "fails")
    return inconclusive(claim, SRC_ICL, "claim", "the endpoint difference's interval contains 0",
                        predicted="rising", measured=meas, tolerance=tol)  # fmt: skip


# ---------------------------------------------------------------------------------------------
def icl_figures(table: pd.DataFrame) -> dict[str, Any]:
    """``icl_under_dp``: error / d vs context length per ε with the baselines; error at k = 2d vs ε.
    Empty when the table has no ICL rows."""
    rows = _sel(table, MODEL, "icl_mse")
    if rows.empty:
        return {}
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4))
    eps_all = sorted(rows["target_eps"].unique(), reverse=True)
    cmap = plt.get_cmap("viridis")
    for i, e in enumerate(eps_all):
        r = rows[rows["target_eps"] == e].sort_values("n_context")
        lab = "non-private" if math.isinf(e) else f"ε = {e:g}"
        ax1.errorbar(r["n_context"], r["value"], yerr=Z95 * r["se"], fmt="o-", ms=3, lw=2,
                     color=cmap(i / max(len(eps_all) - 1, 1)), label=f"GPT, {lab}")  # fmt: skip
    styles = {"zero": "k:", "ols": "b--", "ridge": "g--", "bayes": "r--"}
    for b in BASELINES:
        r = _sel(table, f"icl_{b}", "icl_mse").sort_values("n_context")
        if not r.empty:
            ax1.plot(r["n_context"], r["value"], styles[b], lw=1, label=b)
    top = float(_sel(table, "icl_zero", "icl_mse")["value"].max()) if not _sel(
        table, "icl_zero", "icl_mse").empty else float(rows["value"].max())  # fmt: skip
    ax1.set_ylim(0, 1.6 * top)
    ax1.set_xlabel("context length k")
    ax1.set_ylabel("squared error / d (95% CI)")
    ax1.set_title("in-context regression after DP-SGD pretraining")
    ax1.legend(fontsize=7)
    gain = _sel(table, MODEL, "icl_gain_2d")  # its n_context is 2d
    d2 = int(gain["n_context"].iloc[0]) if not gain.empty else int(rows["n_context"].max())
    at = rows[rows["n_context"] == d2].sort_values("target_eps", ascending=False)
    xs = ["∞" if math.isinf(e) else f"{e:g}" for e in at["target_eps"]]
    ax2.errorbar(xs, at["value"], yerr=Z95 * at["se"], fmt="o-", color="black", label="GPT")
    for b in ("zero", "ridge", "bayes"):
        r = _at_k(table, f"icl_{b}", d2)
        if not r.empty:
            ax2.axhline(float(r["value"].iloc[0]), ls=styles[b][1:], color=styles[b][0], lw=1,
                        label=b)  # fmt: skip
    ax2.set_xlabel("target ε (∞: non-private)")
    ax2.set_ylabel(f"squared error / d at k = {d2}")
    ax2.set_title(f"error at k = 2d = {d2} vs ε")
    ax2.set_ylim(0, 1.2 * top)
    ax2.legend(fontsize=7)
    fig.tight_layout()
    return {"icl_under_dp": fig}
