"""Claim (survey arXiv:2410.11444, §3; Zhang et al. 2017; Dziugaite & Roy 2017): classical capacity
bounds (VC, norm-based margin bounds, SGD stability) are vacuous for trained networks, while a
PAC-Bayes bound optimised over a Gaussian posterior is not; on random labels the network still fits
the training set and the PAC-Bayes bound notices, the VC bound does not.

Pipeline, per task (digits even/odd, digits 10-class) and label-noise level p (a fraction p of the
training labels replaced by uniformly random classes; test labels clean):
(1) train a small bias-free ReLU MLP with plain SGD through ``train.fit``; (2) measure its training
and test error; (3) evaluate every bound of :mod:`fmtheory.theory.generalization` on it: VC at
h = W, the spectral margin bound, the Frobenius-norm Rademacher margin bound, the SGD stability
estimate, the PAC-Bayes-kl bound with the prior at the initialisation (posterior optimised, MC
correction, union over the prior grid), and with a data-dependent prior trained on a disjoint part of
the training set, next to the test-set bound of that prior network on the same held-out points;
(4) a wide MLP trained on the true and on random labels (p = 1) for the random-label claims.
"""

from __future__ import annotations

import math
import zlib
from typing import Any, Literal

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from pydantic import Field, field_validator, model_validator
from scipy import stats

from fmtheory.checks import (
    Z95,
    bound_check,
    difference_check,
    exact_row,
    inconclusive,
    not_applicable,
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
from fmtheory.experiments._generalization_nets import (
    GaussianPosterior,
    lipschitz_smoothness,
    optimise_posterior,
    pac_bayes_from_posterior,
    train_sgd,
    zero_one,
)
from fmtheory.models.mlp import MLP, mlp_label
from fmtheory.tasks.digits import corrupt_labels, load_digits_split
from fmtheory.theory.generalization import (
    heldout_bound,
    rademacher_margin_bound,
    sgd_stability_gap,
    spectral_margin_bound,
    vc_bound,
)
from fmtheory.train.fit import make_generator, seeded

NAME = "generalization-bounds"
SOURCE = "survey arXiv:2410.11444 §3; Dziugaite & Roy 2017; Zhang et al. 2017"

BoundName = Literal["vc", "spectral", "rademacher", "stability", "pac-bayes", "pac-bayes-data"]
ALL_BOUNDS: tuple[str, ...] = BoundName.__args__  # type: ignore[attr-defined]

#: method names in the table
NET, GIBBS, GIBBS_DATA, PRIOR_NET, CONST = (
    "network", "Gibbs (init prior)", "Gibbs (data prior)", "prior network", "constant classifier",
)  # fmt: skip
VC, SPECTRAL, RADEMACHER, STABILITY = (
    "VC (h = W)", "spectral margin", "Rademacher (Frobenius)", "SGD stability (estimate)",
)  # fmt: skip
PB, PB_DATA, TESTSET = "PAC-Bayes (init prior)", "PAC-Bayes (data prior)", "test-set (Langford)"
#: each bound and the classifier whose risk it bounds
BOUNDED = {VC: NET, SPECTRAL: NET, RADEMACHER: NET, STABILITY: NET, PB: GIBBS,
           PB_DATA: GIBBS_DATA, TESTSET: PRIOR_NET}  # fmt: skip
#: bounds that are guarantees with probability ≥ 1 − δ as computed (VC at h = W lies below the
#: valid VC bound, whose h is larger: if it exceeds the error, so does the valid one)
VALID = (VC, PB, PB_DATA, TESTSET)
BOUND_METHOD = {"vc": VC, "spectral": SPECTRAL, "rademacher": RADEMACHER, "stability": STABILITY,
                "pac-bayes": PB, "pac-bayes-data": PB_DATA}  # fmt: skip

#: tolerances, fixed before any run
VACUOUS_AT = 1.0  # a risk bound ≥ 1 says nothing for any task
ZERO_TRAIN = 0.01  # "zero training error": at most 1% of the training labels missed
RHO_MIN = 0.8  # Spearman correlation that counts as "grows with the noise" (5 levels: p ≈ 0.04)
VC_SAME = 0.02  # the VC bound "stays where it was": moves by at most this much
FIG_CLIP = 1e5  # figure only: larger bounds (the stability bound overflows) are drawn at this value


class NetSection(Section):
    """A bias-free ReLU MLP and its plain-SGD training (constant step, batches with replacement)."""

    hidden: list[int] = Field([20], min_length=1, max_length=4, description="hidden widths")
    steps: int = Field(3000, ge=1, le=1_000_000, description="SGD steps")
    lr: float = Field(0.1, gt=0.0, le=10.0, description="SGD step size α")
    batch: int = Field(64, ge=1, le=1797, description="mini-batch size B")

    @field_validator("hidden")
    @classmethod
    def _widths(cls, v: list[int]) -> list[int]:
        if any(w < 1 or w > 100_000 for w in v):
            raise ValueError(f"hidden = {v}: every width must be in 1..100000")
        return v


class PacBayesSection(Section):
    """Dziugaite & Roy 2017: posterior N(μ, diag σ²), prior N(μ₀, λI), λ on a geometric grid."""

    steps: int = Field(4000, ge=1, le=1_000_000, description="posterior optimisation steps")
    lr: float = Field(0.02, gt=0.0, le=1.0, description="AdamW learning rate")
    init_std: float = Field(0.03, gt=0.0, le=1.0, description="initial posterior std")
    samples: int = Field(1, ge=1, le=64, description="networks per optimisation step")
    batch: int = Field(256, ge=1, le=1797, description="points per optimisation step")
    n_mc: int = Field(1000, ge=10, le=1_000_000, description="networks in the MC risk estimate")
    delta_mc: float = Field(0.01, gt=0.0, lt=1.0, description="confidence δ' of the MC bound")
    prior_std_min: float = Field(3e-3, gt=0.0, le=10.0)
    prior_std_max: float = Field(3.0, gt=0.0, le=10.0)
    n_priors: int = Field(20, ge=1, le=1000, description="prior-std grid size J (union bound)")
    prior_fraction: float = Field(
        0.5, gt=0.0, lt=1.0, description="share of the training set that trains the data prior"
    )

    @model_validator(mode="after")
    def _grid(self) -> PacBayesSection:
        if self.prior_std_min > self.prior_std_max:
            raise ValueError(
                f"prior_std_min = {self.prior_std_min} must be <= prior_std_max = "
                f"{self.prior_std_max}"
            )
        return self

    def grid(self) -> np.ndarray:
        return np.geomspace(self.prior_std_min, self.prior_std_max, self.n_priors)


class Config(ExperimentConfig):
    tasks: list[Literal["binary", "multiclass"]] = Field(
        ["binary", "multiclass"], min_length=1, description="digits even/odd, digits 0-9"
    )
    n_train: int = Field(1500, ge=100, le=1700, description="training images (rest: test)")
    noise_levels: list[float] = Field(
        [0.0, 0.1, 0.2, 0.4, 0.8], min_length=1, description="fractions of corrupted labels"
    )
    delta: float = Field(0.025, gt=0.0, lt=1.0, description="confidence δ of every bound")
    bounds: list[BoundName] = Field(list(ALL_BOUNDS), description="bounds to compute")
    binary_net: NetSection = NetSection(hidden=[20])
    multiclass_net: NetSection = NetSection(hidden=[50])
    wide_net: NetSection = NetSection(hidden=[200], steps=8000, lr=0.5)
    random_labels: bool = Field(
        True, description="train the wide net at every noise level and on random labels (1)"
    )
    pac_bayes: PacBayesSection = PacBayesSection()
    power_iters: int = Field(20, ge=1, le=1000, description="Hessian power iterations (β)")

    @field_validator("noise_levels")
    @classmethod
    def _noise(cls, v: list[float]) -> list[float]:
        bad = [p for p in v if not 0.0 <= p <= 1.0]
        if bad:
            raise ValueError(f"noise_levels = {v}: every fraction must be in [0, 1] (got {bad})")
        if 0.0 not in v:
            raise ValueError(f"noise_levels = {v}: must include 0 (the clean labels)")
        return sorted(set(v))

    def net(self, task: str, wide: bool = False) -> NetSection:
        if wide:
            return self.wide_net
        return self.binary_net if task == "binary" else self.multiclass_net


def _seed(seed: int, *parts: Any) -> int:
    return zlib.crc32(repr((seed, *parts)).encode()) & 0x7FFFFFFF


def label(config: Config) -> str:
    out = [mlp_label(65, config.net(t).hidden, 2 if t == "binary" else 10) for t in config.tasks]
    if config.random_labels:
        out.append("wide " + mlp_label(65, config.wide_net.hidden, 10))
    return "; ".join(out)


# ---------------------------------------------------------------------------------------------
def _err_row(method: str, metric: str, err: float, n: int, **kw: Any) -> dict[str, Any]:
    """A binomial error rate with its standard error √(e(1 − e)/n)."""
    return exact_row(method, metric, err, se=math.sqrt(max(err * (1 - err), 0.0) / n), **kw)


def _margins(logits: torch.Tensor, y: torch.Tensor) -> np.ndarray:
    true = logits.gather(1, y[:, None])[:, 0]
    other = logits.clone()
    other.scatter_(1, y[:, None], -math.inf)
    return (true - other.max(1).values).double().numpy()


def run_cell(
    config: Config, task: str, noise: float, *, wide: bool, ctx: RunContext
) -> list[dict[str, Any]]:
    """Every row of one (task, noise, net) cell."""
    seed, pb, net_cfg = config.seed, config.pac_bayes, config.net(task, wide)
    tag = "wide" if wide else "small"
    data = load_digits_split(task=task, n_train=config.n_train,
                             generator=make_generator(_seed(seed, "split", task)))  # fmt: skip
    k = data.n_classes
    y = corrupt_labels(data.y_train, fraction=noise, n_classes=k,
                       generator=make_generator(_seed(seed, "noise", task, noise)))  # fmt: skip
    # the test labels corrupted like the training labels: the distribution the bounds speak of
    yte_noisy = corrupt_labels(
        data.y_test,
        fraction=noise,
        n_classes=k,
        generator=make_generator(_seed(seed, "noise-test", task, noise)),
    )
    dev = torch.device(ctx.device)
    xtr, xte, yte = data.x_train.to(dev), data.x_test.to(dev), data.y_test.to(dev)
    y, yte_noisy = y.to(dev), yte_noisy.to(dev)
    n, n_test = xtr.shape[0], xte.shape[0]
    coords = dict(seed=seed, task=task, noise=noise, net=tag)
    net = seeded(lambda: MLP(65, net_cfg.hidden, k), _seed(seed, "init", task, tag)).to(dev)
    w0 = [w.detach().clone() for w in net.weights()]
    lrs = train_sgd(net, xtr, y, steps=net_cfg.steps, lr=net_cfg.lr, batch=net_cfg.batch,
                    seed=_seed(seed, "sgd", task, noise, tag), ctx=ctx,
                    name=f"sgd-{task}-{tag}-{noise:g}")  # fmt: skip
    with torch.no_grad():
        lo_tr, lo_te = net(xtr), net(xte)
        train_err, test_err = float(zero_one(lo_tr, y)), float(zero_one(lo_te, yte))
        test_noisy = float(zero_one(lo_te, yte_noisy))
        train_ce = float(F.cross_entropy(lo_tr, y))
    freq = torch.bincount(data.y_train, minlength=k).double() / n
    rows = [
        _err_row(NET, "train_error", train_err, n, **coords),
        _err_row(NET, "test_error", test_err, n_test, **coords),
        _err_row(NET, "test_error_noisy", test_noisy, n_test, **coords),
        exact_row(NET, "train_ce", train_ce, **coords),
        exact_row(CONST, "test_error", 1.0 - float(freq.max()), **coords),
    ]
    weights = [w.detach().double().cpu().numpy() for w in net.weights()]
    x_norm = float(torch.linalg.norm(xtr.double()))
    margins = _margins(lo_tr.cpu(), y.cpu())
    n_params = sum(w.size for w in weights)
    want = set(config.bounds)
    if wide:  # the wide net: PAC-Bayes only with true and random labels, no data-dependent prior
        want.discard("pac-bayes-data")
        if noise not in (0.0, 1.0):
            want.discard("pac-bayes")
    if "vc" in want:
        v = vc_bound(train_error=train_err, vc_dim=n_params, n=n, delta=config.delta)
        rows.append(exact_row(VC, "bound", v, n_params=n_params, **coords))
    if "spectral" in want:
        v = spectral_margin_bound(margins=margins, weights=weights, x_norm=x_norm,
                                  width=max(net_cfg.hidden + [65, k]), delta=config.delta)  # fmt: skip
        rows.append(exact_row(SPECTRAL, "bound", v, **coords))
    if "rademacher" in want:
        v = rademacher_margin_bound(margins=margins, weights=weights, x_norm=x_norm,
                                    n_classes=k, delta=config.delta)  # fmt: skip
        rows.append(exact_row(RADEMACHER, "bound", v, **coords))
    if "stability" in want:
        lip, beta = lipschitz_smoothness([w0, net.weights()], xtr, y,
                                         power_iters=config.power_iters,
                                         seed=_seed(seed, "hvp", task, noise, tag))  # fmt: skip
        eps = sgd_stability_gap(lrs, lipschitz=lip, smoothness=beta, n=n, batch=net_cfg.batch)
        # E[test CE] ≤ E[train CE] + ε and 1{error} ≤ CE / ln 2
        v = (train_ce + eps) / math.log(2.0) if math.isfinite(eps) else math.inf
        rows += [exact_row(STABILITY, "bound", v, **coords),
                 exact_row(STABILITY, "lipschitz", lip, **coords),
                 exact_row(STABILITY, "smoothness", beta, **coords)]  # fmt: skip
    if "pac-bayes" in want:
        post = GaussianPosterior(
            net.weights(),
            w0,
            init_std=pb.init_std,
            prior_std=math.sqrt(pb.prior_std_min * pb.prior_std_max),
        )
        post.to(dev)  # fmt: skip
        optimise_posterior(post, xtr, y, steps=pb.steps, lr=pb.lr, delta=config.delta,
                           n_priors=pb.n_priors, samples=pb.samples, batch=pb.batch,
                           seed=_seed(seed, "pb", task, noise, tag), ctx=ctx,
                           name=f"pb-{task}-{tag}-{noise:g}")  # fmt: skip
        r = pac_bayes_from_posterior(post, xtr, y, xte, yte, yte_noisy, prior_grid=pb.grid(),
                                     delta=config.delta, delta_mc=pb.delta_mc, n_mc=pb.n_mc,
                                     seed=_seed(seed, "mc", task, noise, tag))  # fmt: skip
        rows += _pb_rows(PB, GIBBS, r, n_test, coords)
    if "pac-bayes-data" in want:
        rows += _data_prior_rows(config, task, noise, tag, net_cfg, xtr, y, xte, yte, yte_noisy,
                                 k, ctx, coords)  # fmt: skip
    return rows


def _pb_rows(
    method: str, gibbs: str, r: Any, n_test: int, coords: dict[str, Any]
) -> list[dict[str, Any]]:
    # MC error of the Gibbs test risk: test-point sampling (binomial) dominates over n_mc networks
    return [
        exact_row(method, "bound", r.bound, **coords),
        exact_row(method, "kl", r.kl, **coords),
        exact_row(method, "prior_std", r.prior_std, **coords),
        exact_row(gibbs, "train_error", r.emp_mc, **coords),
        _err_row(gibbs, "test_error", r.test_gibbs, n_test, **coords),
        _err_row(gibbs, "test_error_noisy", r.test_gibbs_noisy, n_test, **coords),
    ]


def _data_prior_rows(
    config: Config, task: str, noise: float, tag: str, net_cfg: NetSection,
    xtr: torch.Tensor, y: torch.Tensor, xte: torch.Tensor, yte: torch.Tensor,
    yte_noisy: torch.Tensor, k: int,
    ctx: RunContext, coords: dict[str, Any],
) -> list[dict[str, Any]]:  # fmt: skip
    """Dziugaite et al. 2021 / Pérez-Ortiz et al. 2021: the prior mean is a network trained on a
    disjoint part of the training set; the bound uses the other part.  Next to it, Langford's
    test-set bound of that prior network on the same held-out points."""
    seed, pb = config.seed, config.pac_bayes
    n = xtr.shape[0]
    perm = torch.randperm(n, generator=make_generator(_seed(seed, "prior-split", task, noise)))
    m = int(round(pb.prior_fraction * n))
    pi, bi = perm[:m].to(xtr.device), perm[m:].to(xtr.device)
    prior_net = seeded(lambda: MLP(65, net_cfg.hidden, k), _seed(seed, "init", task, tag))
    prior_net.to(xtr.device)
    train_sgd(prior_net, xtr[pi], y[pi], steps=net_cfg.steps, lr=net_cfg.lr,
              batch=min(net_cfg.batch, m), seed=_seed(seed, "sgd-prior", task, noise, tag),
              ctx=ctx, name=f"sgd-prior-{task}-{tag}-{noise:g}")  # fmt: skip
    with torch.no_grad():
        errs = int((prior_net(xtr[bi]).argmax(-1) != y[bi]).sum())
        prior_test = float(zero_one(prior_net(xte), yte))
        prior_noisy = float(zero_one(prior_net(xte), yte_noisy))
    nb = n - m
    rows = [
        exact_row(TESTSET, "bound", heldout_bound(errors=errs, n=nb, delta=config.delta),
                  held_out=nb, **coords),
        _err_row(PRIOR_NET, "test_error", prior_test, xte.shape[0], **coords),
        _err_row(PRIOR_NET, "test_error_noisy", prior_noisy, xte.shape[0], **coords),
        exact_row(PRIOR_NET, "heldout_error", errs / nb, held_out=nb, **coords),
    ]  # fmt: skip
    post = GaussianPosterior(
        prior_net.weights(),
        prior_net.weights(),
        init_std=pb.init_std,
        prior_std=math.sqrt(pb.prior_std_min * pb.prior_std_max),
    )
    post.to(xtr.device)  # fmt: skip
    optimise_posterior(post, xtr[bi], y[bi], steps=pb.steps, lr=pb.lr, delta=config.delta,
                       n_priors=pb.n_priors, samples=pb.samples, batch=pb.batch,
                       seed=_seed(seed, "pb-data", task, noise, tag), ctx=ctx,
                       name=f"pb-data-{task}-{tag}-{noise:g}")  # fmt: skip
    r = pac_bayes_from_posterior(post, xtr[bi], y[bi], xte, yte, yte_noisy, prior_grid=pb.grid(),
                                 delta=config.delta, delta_mc=pb.delta_mc, n_mc=pb.n_mc,
                                 seed=_seed(seed, "mc-data", task, noise, tag))  # fmt: skip
    return rows + _pb_rows(PB_DATA, GIBBS_DATA, r, xte.shape[0], coords)


def wide_levels(config: Config) -> list[float]:
    """Noise levels of the wide net: the sweep's and 1 (random labels)."""
    return sorted({*config.noise_levels, 1.0})


def run(config: Config, ctx: RunContext | None = None) -> Result:
    ctx = ctx or RunContext()
    rows: list[dict[str, Any]] = []
    for task in config.tasks:
        for p in config.noise_levels:
            rows += run_cell(config, task, p, wide=False, ctx=ctx)
        if config.random_labels:
            for p in wide_levels(config):
                rows += run_cell(config, task, p, wide=True, ctx=ctx)
    table = pd.DataFrame(rows)
    return Result(table=table, checks=checks(table, config), figures=figures(table))


# ---------------------------------------------------------------------------------------------
def _get(table: pd.DataFrame, method: str, metric: str, **where: Any) -> pd.DataFrame:
    sel = (table["method"] == method) & (table["metric"] == metric)
    for key, v in where.items():
        sel &= table[key] == v
    return table[sel]


def _one(table: pd.DataFrame, method: str, metric: str, **where: Any) -> tuple[float, float]:
    r = _get(table, method, metric, **where)
    if r.empty:
        return math.nan, math.nan
    return float(r["value"].iloc[0]), float(r["se"].iloc[0])


def _combine(claim: str, source: str, kind: str, parts: list[Check], tolerance: str) -> Check:
    """One verdict from per-cell checks: fails if any fails, holds if all hold, else inconclusive."""
    statuses = [c.status for c in parts]
    gaps = [float(c.predicted) - float(c.measured) for c in parts]
    i = int(np.argmin(gaps))
    measured = (
        f"smallest bound − error over {len(parts)} cells: {gaps[i]:.4g} "
        f"(bound {float(parts[i].predicted):.4g}, error {float(parts[i].measured):.4g})"
    )
    if "fails" in statuses:
        bad = [c for c in parts if c.status == "fails"]
        return Check(claim, source, kind, parts[0].predicted, measured,
                     tolerance + f" ({len(bad)} of {len(parts)} cells fail)", "fails")  # fmt: skip
    if all(s == "holds" for s in statuses):
        return Check(claim, source, kind, parts[0].predicted, measured, tolerance, "holds")
    why = next(c.why for c in parts if c.status in ("inconclusive", "n/a"))
    return inconclusive(claim, source, kind, why, predicted=parts[0].predicted,
                        measured=measured, tolerance=tolerance)  # fmt: skip


def checks(table: pd.DataFrame, config: Config) -> list[Check]:
    out: list[Check] = []
    bounds_present = set(table.loc[table["metric"] == "bound", "method"])
    # sanity: every valid bound ≥ the test error of the classifier it bounds
    for b in VALID:
        claim = (
            f"the {b} bound is at least the test error of the classifier it bounds (test "
            "labels corrupted like the training labels)"
        )
        if b not in bounds_present:
            out.append(not_applicable(claim, SOURCE, "sanity", f"{b} was not computed"))
            continue
        parts = []
        for _, r in _get(table, b, "bound").iterrows():
            err, se = _one(table, BOUNDED[b], "test_error_noisy", task=r["task"],
                           noise=r["noise"], net=r["net"])  # fmt: skip
            parts.append(bound_check(claim, SOURCE, "sanity", value=err, value_se=se,
                                     bound=float(r["value"]), below=True, z=Z95))  # fmt: skip
        out.append(
            _combine(
                claim,
                SOURCE,
                "sanity",
                parts,
                "test error ≤ bound in every cell, judged by error ± 1.96 s.e.",
            )
        )
    for task in config.tasks:
        out += _task_checks(table, config, task)
    return out


def _task_checks(table: pd.DataFrame, config: Config, task: str) -> list[Check]:
    out: list[Check] = []
    src_vc = "survey arXiv:2410.11444 §3; Zhang et al. 2017"
    clean = dict(task=task, noise=0.0, net="small")
    trivial, _ = _one(table, CONST, "test_error", **clean)
    # (claim) VC is vacuous
    claim = f"{task}: the VC bound of the trained network is vacuous (> 1)"
    vc, _ = _one(table, VC, "bound", **clean)
    if math.isnan(vc):
        out.append(not_applicable(claim, src_vc, "claim", "the VC bound was not computed"))
    else:
        out.append(bound_check(claim, src_vc, "claim", value=vc, value_se=0.0, bound=VACUOUS_AT,
                               below=False))  # fmt: skip
    # (claim) PAC-Bayes at the initialisation is non-vacuous
    claim = (f"{task}: the optimised PAC-Bayes bound (prior at the initialisation) is below the "
             "error of the best constant classifier")  # fmt: skip
    src = "Dziugaite & Roy 2017, Table 1"
    pbv, _ = _one(table, PB, "bound", **clean)
    if math.isnan(pbv):
        out.append(not_applicable(claim, src, "claim", "the PAC-Bayes bound was not computed"))
    else:
        out.append(bound_check(claim, src, "claim", value=pbv, value_se=0.0, bound=trivial,
                               where="bound = 1 − largest class frequency"))  # fmt: skip
    # (claim) data-dependent PAC-Bayes vs the test-set bound on the same held-out points
    claim = (
        f"{task}: on the same held-out points the test-set bound of the prior network is at "
        "least as tight as the data-dependent PAC-Bayes bound (PAC-Bayes adds nothing)"
    )
    src = "Dziugaite et al. 2021; Pérez-Ortiz et al. 2021; Langford 2005"
    pbd, _ = _one(table, PB_DATA, "bound", **clean)
    ts, _ = _one(table, TESTSET, "bound", **clean)
    if math.isnan(pbd) or math.isnan(ts):
        out.append(not_applicable(claim, src, "claim", "pac-bayes-data was not computed"))
    else:
        out.append(difference_check(claim, src, "claim", a=pbd, a_se=0.0, b=ts, b_se=0.0,
                                    greater=True, where="a = PAC-Bayes (data prior), "
                                    "b = test-set bound"))  # fmt: skip
    out += _random_label_checks(table, config, task)
    out.append(_noise_check(table, config, task))
    return out


def _random_label_checks(table: pd.DataFrame, config: Config, task: str) -> list[Check]:
    src = "Zhang et al. 2017, §2; Dziugaite & Roy 2017, §6"
    true, rand = dict(task=task, noise=0.0, net="wide"), dict(task=task, noise=1.0, net="wide")
    claims = [
        f"{task}: the wide network reaches zero training error on random labels",
        f"{task}: on random labels the PAC-Bayes bound becomes vacuous (≥ the constant "
        "classifier's error)",
        f"{task}: the VC bound does not notice random labels (moves by at most {VC_SAME:g})",
    ]
    kinds = ("claim", "claim", "sanity")
    if not config.random_labels or _get(table, NET, "train_error", **rand).empty:
        return [
            not_applicable(c, src, k, "random_labels is off")
            for c, k in zip(claims, kinds, strict=True)
        ]
    out = []
    tr, _ = _one(table, NET, "train_error", **rand)
    out.append(bound_check(claims[0], src, "claim", value=tr, value_se=0.0, bound=ZERO_TRAIN,
                           where=f"zero = at most {ZERO_TRAIN:g}"))  # fmt: skip
    trivial, _ = _one(table, CONST, "test_error", **rand)
    pbr, _ = _one(table, PB, "bound", **rand)
    if math.isnan(pbr):
        out.append(not_applicable(claims[1], src, "claim", "the PAC-Bayes bound was not computed"))
    else:
        out.append(
            bound_check(
                claims[1],
                src,
                "claim",
                value=pbr,
                value_se=0.0,
                bound=trivial,
                below=False,
                where="bound ≥ 1 − largest class frequency",
            )
        )
    vt, _ = _one(table, VC, "bound", **true)
    vr, _ = _one(table, VC, "bound", **rand)
    if math.isnan(vt) or math.isnan(vr):
        out.append(not_applicable(claims[2], src, "sanity", "the VC bound was not computed"))
    else:
        ok = abs(vr - vt) <= VC_SAME
        out.append(Check(claims[2], src, "sanity", f"|Δ| ≤ {VC_SAME:g}",
                         f"true {vt:.4g}, random {vr:.4g}", f"|VC(random) − VC(true)| ≤ {VC_SAME:g}",
                         "holds" if ok else "fails"))  # fmt: skip
    return out


def _noise_check(table: pd.DataFrame, config: Config, task: str) -> Check:
    """(claim) the spectral margin bound of the wide net (which fits the corrupted labels) rises
    with the label noise, as its test error does; the small net's correlation is reported too."""
    claim = (f"{task}: the spectrally-normalised margin bound of a network that fits the "
             "corrupted labels grows with their fraction, as the test error does")  # fmt: skip
    src = "Bartlett, Foster & Telgarsky 2017, Fig. 1"
    tol = (f"wide net: Spearman ρ(bound, noise) ≥ {RHO_MIN:g}, given ρ(test error, noise) ≥ "
           f"{RHO_MIN:g}")  # fmt: skip

    def rho(method: str, metric: str, net: str) -> tuple[float, int]:
        r = _get(table, method, metric, task=task, net=net).sort_values("noise")
        if len(r) < 2 or r["value"].nunique() < 2:
            return math.nan, len(r)
        return float(stats.spearmanr(r["noise"], r["value"]).statistic), len(r)

    rho_b, n_levels = rho(SPECTRAL, "bound", "wide")
    if n_levels == 0:
        return not_applicable(claim, src, "claim", "the wide net or the spectral bound is off", tol)
    if n_levels < 4:
        return inconclusive(claim, src, "claim", f"{n_levels} noise levels: need at least 4",
                            tolerance=tol)  # fmt: skip
    rho_e, _ = rho(NET, "test_error", "wide")
    rho_r, _ = rho(RADEMACHER, "bound", "wide")
    rho_small, _ = rho(SPECTRAL, "bound", "small")
    measured = (f"wide net: ρ(spectral) {rho_b:.2f}, ρ(test error) {rho_e:.2f}, ρ(Rademacher) "
                f"{rho_r:.2f}; small net: ρ(spectral) {rho_small:.2f}")  # fmt: skip
    if not rho_e >= RHO_MIN:
        return inconclusive(
            claim,
            src,
            "claim",
            "the test error itself does not grow with noise",
            predicted=f"ρ ≥ {RHO_MIN:g}",
            measured=measured,
            tolerance=tol,
        )
    return Check(claim, src, "claim", f"ρ ≥ {RHO_MIN:g}", measured, tol,
                 "holds" if rho_b >= RHO_MIN else "fails")  # fmt: skip


# ---------------------------------------------------------------------------------------------
def figures(table: pd.DataFrame) -> dict[str, Any]:
    import matplotlib.pyplot as plt

    out = {}
    tasks = list(dict.fromkeys(table["task"]))
    nets = [n for n in ("small", "wide") if (table["net"] == n).any()]
    if not tasks:
        return out
    fig, axes = plt.subplots(len(nets), len(tasks), figsize=(6 * len(tasks), 4.5 * len(nets)),
                             squeeze=False)  # fmt: skip
    for row, net in zip(axes, nets, strict=True):
        for ax, task in zip(row, tasks, strict=True):
            t = table[(table["task"] == task) & (table["net"] == net)]
            for method in [*BOUNDED, NET, GIBBS]:
                metric = "bound" if method in BOUNDED else "test_error"
                r = _get(t, method, metric).sort_values("noise")
                if r.empty:
                    continue
                style = "-o" if method in BOUNDED else "--k" if method == NET else ":s"
                name = method if method in BOUNDED else f"{method} test error"
                ax.plot(r["noise"], r["value"].clip(upper=FIG_CLIP), style, label=name)
            ax.axhline(1.0, color="grey", lw=0.8)
            ax.set_yscale("log")
            ax.set_xlabel("fraction of corrupted training labels")
            ax.set_ylabel("risk bound / test error (clean labels)")
            ax.set_title(f"digits, {task}, {net} net (values clipped at {FIG_CLIP:.0e})")
            ax.legend(fontsize=7)
    fig.tight_layout()
    out["bounds_vs_noise"] = fig
    return out


def headline(table: pd.DataFrame, config: Config) -> dict[str, float]:
    out = {}
    for task in config.tasks:
        clean = dict(task=task, noise=0.0, net="small")
        out[f"{task}_test_error"] = _one(table, NET, "test_error", **clean)[0]
        out[f"{task}_pac_bayes"] = _one(table, PB, "bound", **clean)[0]
        out[f"{task}_vc"] = _one(table, VC, "bound", **clean)[0]
    return out


EXPERIMENT = register_experiment(
    Experiment(
        name=NAME,
        claim="Capacity bounds (VC, norm-based, stability) are vacuous for trained MLPs on digits, "
        "an optimised PAC-Bayes bound is not, and only the latter notices random labels.",
        source=SOURCE,
        chapter=Chapter.GENERALIZATION.value,
        config_cls=Config,
        run=run,
        checks=checks,
        figures=figures,
        headline=headline,
        label=label,
        formula="PAC-Bayes-kl: kl(ê_Q‖e_Q) ≤ (KL(Q‖P) + ln(2√n J/δ))/n; VC: R̂ + 2√(2(h ln(2en/h) "
        "+ ln(2/δ))/n); margin: R̂_γ + C·‖X‖ R_A ln W ln n/(γn)",
        key_figure="bounds_vs_noise",
    )
)
