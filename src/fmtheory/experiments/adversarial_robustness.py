"""Claim: models fail under adversarial inputs; adversarial training helps but over-fits in its own way;
robust generalization needs more data than standard generalization; randomized smoothing certifies
a radius no attack can beat.

Sources: Madry et al. 2018 (PGD, adversarial training); Rice, Wong & Kolter 2020 (robust
overfitting, early stopping); Schmidt et al. 2018 (robust sample complexity in a Gaussian model);
Cohen, Rosenfeld & Kolter 2019 (randomized smoothing).  Data: scikit-learn's bundled digits.

Parts, each a block of rows of one table (``part`` column):

- ``attack``: a linear classifier, whose minimal ℓ2 perturbation is margin/‖w‖ exactly, against PGD.
- ``eps``: standard and PGD-trained MLPs, robust accuracy against ε.
- ``overfit``: long PGD training on a small training set; robust train / validation / test accuracy
  and loss every ``eval_every`` steps; the validation-selected (early-stopped) step.
- ``gmm``: the Gaussian model; standard and robust error of ŵ = mean(y x) against n at several d,
  measured on fresh test points under the optimal ℓ∞ attack, next to the exact formula.
- ``smoothing``: a noise-trained MLP, certified accuracy (CERTIFY) and accuracy under ℓ2 PGD on the
  smoothed classifier at each radius.
"""

from __future__ import annotations

import json
import math
from typing import Any, Literal

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from pydantic import Field, field_validator

from fmtheory.checks import (
    bound_check,
    ci_row,
    difference_check,
    exact_row,
    inconclusive,
    not_applicable,
    trend_check,
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
from fmtheory.models.mlp_classifier import MLPClassifier, classifier_label
from fmtheory.probes.adversarial import certify, pgd_attack, smooth_pgd, smoothed_predict
from fmtheory.sections import TrainSection
from fmtheory.tasks.digit_images import load_digit_images
from fmtheory.theory.robustness import gmm_robust_error_limit, linear_robust_error
from fmtheory.train import fit, make_generator, seeded

NAME = "adversarial-robustness"
SOURCE = "Madry et al. 2018; Rice, Wong & Kolter 2020; Schmidt et al. 2018; Cohen et al. 2019"


def _nonneg_list(v: list[float], name: str) -> list[float]:
    if not v or any((not math.isfinite(x)) or x < 0 for x in v):
        raise ValueError(f"{name} = {v}: a non-empty list of numbers >= 0")
    return sorted(set(v))


class AttackSection(Section):
    """PGD: the norm, the training ε, the ε grid of the evaluation."""

    norm: Literal["inf", "2"] = Field("inf", description="ℓ∞ ('inf') or ℓ2 ('2') threat model")
    eps: float = Field(0.1, ge=0.0, le=10.0, description="ε of adversarial training")
    steps: int = Field(7, ge=1, le=200, description="PGD steps during training")
    eval_eps: list[float] = Field([0.0, 0.05, 0.1, 0.15, 0.2], description="ε grid (each >= 0)")
    eval_steps: int = Field(20, ge=1, le=500, description="PGD steps at evaluation")

    @field_validator("eval_eps")
    @classmethod
    def _eps(cls, v: list[float]) -> list[float]:
        return _nonneg_list(v, "eval_eps")


class ModelSection(Section):
    hidden: list[int] = Field([100], min_length=1, max_length=8, description="hidden widths")

    @field_validator("hidden")
    @classmethod
    def _hidden(cls, v: list[int]) -> list[int]:
        if any(h < 1 or h > 8192 for h in v):
            raise ValueError(f"hidden = {v}: widths in [1, 8192]")
        return v


class OverfitSection(Section):
    """Long adversarial training on a small training set (Rice et al. 2020, Fig. 1)."""

    n_train: int = Field(200, ge=10, le=500, description="training images")
    steps: int = Field(3000, ge=10, le=1_000_000)
    eval_every: int = Field(100, ge=1, le=100_000)
    lr: float = Field(3e-3, gt=0.0, le=1.0)
    schedule: Literal["constant", "cosine"] = Field(
        "constant",
        description="constant, or cosine decay (Rice et al. see overfitting after decay)",
    )


class GMMSection(Section):
    """The Gaussian model of Schmidt et al. 2018: σ = scale·d^{1/4}, ℓ∞ attack of size ε."""

    dims: list[int] = Field(
        [1024, 4096, 16384, 65536, 262144], min_length=3, description="dimensions d"
    )
    n_values: list[int] = Field([1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512],
                                min_length=3, description="training-set sizes n")  # fmt: skip
    sigma_scale: float = Field(1.0, gt=0.0, le=100.0, description="σ = sigma_scale · d^{1/4}")
    eps: float = Field(0.5, gt=0.0, lt=1.0, description="ℓ∞ ε (< 1 = the mean's coordinates)")
    target: float = Field(0.05, gt=0.0, lt=0.5, description="error defining the sample size n*")
    trials: int = Field(32, ge=2, le=10_000, description="training sets per (d, n)")
    mc_max_dim: int = Field(1024, ge=1, description="dims up to which test points are simulated")
    test_points: int = Field(256, ge=10, le=100_000, description="test points per training set")

    @field_validator("dims", "n_values")
    @classmethod
    def _pos(cls, v: list[int]) -> list[int]:
        if any(x < 1 for x in v) or len(set(v)) != len(v):
            raise ValueError(f"{v}: distinct integers >= 1")
        return sorted(v)


class SmoothingSection(Section):
    """Randomized smoothing (Cohen et al. 2019): noise-trained base model, CERTIFY, smoothed PGD."""

    sigma: float = Field(0.25, gt=0.0, le=10.0, description="smoothing noise σ (> 0)")
    radii: list[float] = Field([0.0, 0.25, 0.5, 0.75, 1.0], description="ℓ2 radii (each >= 0)")
    n_points: int = Field(100, ge=5, le=500, description="test images certified")
    n0: int = Field(64, ge=1, le=100_000, description="draws to pick the class")
    n: int = Field(1000, ge=10, le=1_000_000, description="draws to bound p_A")
    alpha: float = Field(0.001, gt=0.0, lt=0.5, description="failure probability of CERTIFY")
    attack_draws: int = Field(16, ge=1, le=1024, description="noise draws per PGD step")
    predict_draws: int = Field(200, ge=10, le=100_000, description="draws to predict at x_adv")

    @field_validator("radii")
    @classmethod
    def _radii(cls, v: list[float]) -> list[float]:
        return _nonneg_list(v, "radii")


class LinearSection(Section):
    """The linear sanity check of PGD: exact minimal ℓ2 perturbations."""

    dim: int = Field(20, ge=1, le=10_000)
    points: int = Field(50, ge=1, le=10_000)
    steps: int = Field(200, ge=10, le=10_000, description="PGD steps per ε tried")


class Config(ExperimentConfig):
    model: ModelSection = ModelSection()
    attack: AttackSection = AttackSection()
    train: TrainSection = TrainSection(steps=600, batch_size=128, lr=3e-3, warmup_steps=20,
                                       curriculum={})  # fmt: skip
    overfit: OverfitSection = OverfitSection()
    gmm: GMMSection = GMMSection()
    smoothing: SmoothingSection = SmoothingSection()
    linear: LinearSection = LinearSection()


# ---------------------------------------------------------------------------------------------
def label(config: Config) -> str:
    return (
        classifier_label(64, config.model.hidden, 10)
        + " on digits; linear ŵ = mean(y·x) in the Gaussian model"
    )


def _mlp(config: Config, seed: int) -> MLPClassifier:
    return seeded(lambda: MLPClassifier(64, config.model.hidden, 10), seed)


def _train_classifier(
    config: Config,
    ctx: RunContext,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    name: str,
    seed: int,
    eps: float = 0.0,
    noise: float = 0.0,
) -> MLPClassifier:
    """Standard (eps = 0), PGD-adversarial (eps > 0) or Gaussian-noise (noise > 0) training."""
    a = config.attack
    model = _mlp(config, seed)
    x, y = x.to(ctx.device), y.to(ctx.device)

    def loss_fn(m: torch.nn.Module, step: int, g: torch.Generator) -> torch.Tensor:
        idx = torch.randint(0, x.shape[0], (config.train.batch_size,), generator=g, device=x.device)
        xb, yb = x[idx], y[idx]
        if eps > 0:
            xb = pgd_attack(m, xb, yb, eps=eps, norm=a.norm, steps=a.steps, generator=g)
        if noise > 0:
            xb = xb + noise * torch.randn(xb.shape, generator=g, device=x.device)
        return F.cross_entropy(m(xb), yb)

    fit(model, loss_fn, config.train, seed=seed, ctx=ctx, name=name)
    return model


def _correct(
    model: MLPClassifier,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    eps: float,
    norm: str,
    steps: int,
    g: torch.Generator,
) -> tuple[np.ndarray, np.ndarray]:
    """Per-example correctness and cross-entropy under PGD at ε, each (n,)."""
    adv = pgd_attack(model, x, y, eps=eps, norm=norm, steps=steps, generator=g)
    with torch.no_grad():
        logits = model(adv)
    loss = F.cross_entropy(logits, y, reduction="none")
    return (logits.argmax(-1) == y).cpu().numpy().astype(float), loss.cpu().numpy().astype(float)


def _attack_rows(config: Config, seed: int) -> list[dict[str, Any]]:
    """PGD against the exact minimal ℓ2 perturbation of a linear classifier, |w·x + b| / ‖w‖."""
    c = config.linear
    g = make_generator(seed + 11)
    w = torch.randn(c.dim, generator=g, dtype=torch.float64)
    b = torch.randn((), generator=g, dtype=torch.float64)
    x = torch.randn(c.points, c.dim, generator=g, dtype=torch.float64)
    score = x @ w + b
    y = (score > 0).long()
    exact = (score.abs() / w.norm()).numpy()

    def model(z: torch.Tensor) -> torch.Tensor:
        s = z @ w + b
        return torch.stack([-s / 2, s / 2], -1)

    lo, hi = np.zeros(c.points), 2 * exact + 1e-9
    for _ in range(12):  # bisection on ε: the smallest ε at which PGD flips the label
        mid = (lo + hi) / 2
        flipped = np.zeros(c.points, dtype=bool)
        for i in range(c.points):
            adv = pgd_attack(model, x[i : i + 1], y[i : i + 1], eps=float(mid[i]), norm="2",
                             steps=c.steps // 10, box=None, random_start=False,
                             step_size=float(mid[i]) / 2)  # fmt: skip
            flipped[i] = bool((model(adv).argmax(-1) != y[i : i + 1]).item())
        hi = np.where(flipped, mid, hi)
        lo = np.where(flipped, lo, mid)
    found = hi
    rows = [exact_row("pgd (linear model)", "min_l2", float(found[i]), seed=seed, part="attack",
                      point=i, exact=float(exact[i])) for i in range(c.points)]  # fmt: skip
    return rows


def _eps_rows(config: Config, ctx: RunContext, data: Any, seed: int) -> list[dict[str, Any]]:
    a = config.attack
    rows = []
    models = {
        "standard training": _train_classifier(config, ctx, data.x_train, data.y_train,
                                               name="standard", seed=seed),
        f"adversarial training (PGD ε={a.eps:g})": _train_classifier(
            config, ctx, data.x_train, data.y_train, name="adversarial", seed=seed, eps=a.eps),
    }  # fmt: skip
    g = make_generator(seed + 101)
    for method, m in models.items():
        m.eval()
        for eps in a.eval_eps:
            ok, _ = _correct(m, data.x_test, data.y_test, eps=eps, norm=a.norm, steps=a.eval_steps,
                             g=g)  # fmt: skip
            rows.append(ci_row(method, "robust_acc", ok, seed=seed, part="eps", eps=eps))
    return rows


def _overfit_rows(config: Config, ctx: RunContext, seed: int) -> list[dict[str, Any]]:
    """Robust accuracies every ``eval_every`` steps of long PGD training (resumable: the curve is
    saved next to the checkpoint)."""
    o, a = config.overfit, config.attack
    data = load_digit_images(seed=seed, n_train=o.n_train, val_fraction=0.2, test_fraction=0.5)
    model = _mlp(config, seed + 1)
    curve_path = ctx.path("checkpoints/overfit_curve.json")
    curve: dict[str, dict[str, float]] = {}
    if curve_path is not None and curve_path.exists():
        curve = json.loads(curve_path.read_text())
    sets = {"train": (data.x_train, data.y_train), "val": (data.x_val, data.y_val),
            "test": (data.x_test, data.y_test)}  # fmt: skip

    def evaluate(m: torch.nn.Module, step: int) -> None:
        g = make_generator(seed + 7 + step)
        m.eval()
        out = {}
        for k, (xs, ys) in sets.items():
            ok, loss = _correct(m, xs, ys, eps=a.eps, norm=a.norm, steps=a.eval_steps, g=g)
            for name, v in (("acc", ok), ("loss", loss)):
                out[f"robust_{k}_{name}"] = float(v.mean())
                out[f"robust_{k}_{name}_se"] = float(v.std(ddof=1) / math.sqrt(v.size))
        m.train()
        curve[str(step)] = out
        if curve_path is not None:
            from fmtheory.atomic import write_json

            write_json(curve_path, curve)

    def loss_fn(m: torch.nn.Module, step: int, g: torch.Generator) -> torch.Tensor:
        if step % o.eval_every == 0 and str(step) not in curve:
            evaluate(m, step)
        idx = torch.randint(0, data.x_train.shape[0], (config.train.batch_size,), generator=g)
        xb = pgd_attack(m, data.x_train[idx], data.y_train[idx], eps=a.eps, norm=a.norm,
                        steps=a.steps, generator=g)  # fmt: skip
        return F.cross_entropy(m(xb), data.y_train[idx])

    spec = config.train.model_copy(update={"steps": o.steps, "lr": o.lr, "schedule": o.schedule})
    fit(model, loss_fn, spec, seed=seed + 2, ctx=ctx, name="overfit")
    if str(o.steps) not in curve:
        evaluate(model, o.steps)
    rows = []
    for step, vals in sorted(curve.items(), key=lambda kv: int(kv[0])):
        for k in ("train", "val", "test"):
            for name in ("acc", "loss"):
                m = f"robust_{k}_{name}"
                rows.append(exact_row("adversarial training (long)", m, vals[m], se=vals[m + "_se"],
                                      seed=seed, part="overfit", step=int(step)))  # fmt: skip
    return rows


def _gmm_rows(config: Config, seed: int) -> list[dict[str, Any]]:
    """Standard and ℓ∞-robust error of ŵ = mean(y_i x_i) against n at each d.

    ŵ ~ N(θ*, σ²/n·I) is drawn exactly (the mean of n samples).  Its errors are computed exactly by
    formula (1) ("mean estimator") and, for d ≤ ``mc_max_dim``, measured on fresh test points under
    the optimal attack δ = −ε·y·sign(ŵ) ("mean estimator (test points)"); the large-d limit (2) is
    the theory's prediction.
    """
    c = config.gmm
    g = make_generator(seed + 31)
    rows = []
    for d in c.dims:
        sigma = c.sigma_scale * d**0.25
        for n in c.n_values:
            exact: dict[float, list[float]] = {0.0: [], c.eps: []}
            meas: dict[float, list[float]] = {0.0: [], c.eps: []}
            for _ in range(c.trials):
                w = 1.0 + sigma / math.sqrt(n) * torch.randn(d, generator=g, dtype=torch.float64)
                for eps in (0.0, c.eps):
                    exact[eps].append(float(linear_robust_error(w.numpy(), sigma=sigma, eps=eps)))
                if d <= c.mc_max_dim:
                    yt = torch.randint(0, 2, (c.test_points,), generator=g).double() * 2 - 1
                    xt = yt[:, None] + sigma * torch.randn(c.test_points, d, generator=g,
                                                             dtype=torch.float64)  # fmt: skip
                    for eps in (0.0, c.eps):
                        adv = xt - eps * yt[:, None] * torch.sign(w)[None, :]
                        meas[eps].append(float(((adv @ w) * yt <= 0).double().mean()))
            for eps, metric in ((0.0, "standard_error"), (c.eps, "robust_error")):
                kw = dict(seed=seed, part="gmm", d=d, n=n)
                rows.append(ci_row("mean estimator", metric, exact[eps], **kw))
                if meas[eps]:
                    rows.append(ci_row("mean estimator (test points)", metric, meas[eps], **kw))
                rows.append(
                    exact_row(
                        "theory: large-d limit",
                        metric,
                        gmm_robust_error_limit(d=d, n=n, sigma=sigma, eps=eps),
                        **kw,
                    )
                )
    return rows


def _smoothing_rows(config: Config, ctx: RunContext, data: Any, seed: int) -> list[dict[str, Any]]:
    s = config.smoothing
    base = _train_classifier(config, ctx, data.x_train, data.y_train, name="noise", seed=seed + 3,
                             noise=s.sigma)  # fmt: skip
    base.eval()
    x, y = data.x_test[: s.n_points], data.y_test[: s.n_points]
    g = make_generator(seed + 41)
    pred, radius = certify(base, x, sigma=s.sigma, n0=s.n0, n=s.n, alpha=s.alpha, n_classes=10,
                           generator=g)  # fmt: skip
    rows = []
    method = f"smoothed MLP (σ={s.sigma:g})"
    for r in s.radii:
        cert = ((pred == y) & (radius >= r)).numpy().astype(float)
        adv = smooth_pgd(base, x, y, sigma=s.sigma, eps=r, m=s.attack_draws, steps=10, generator=g)
        with torch.no_grad():
            p = smoothed_predict(base, adv, sigma=s.sigma, n=s.predict_draws, n_classes=10,
                                 generator=g).argmax(-1)  # fmt: skip
        emp = (p == y).numpy().astype(float)
        kw = dict(seed=seed, part="smoothing", radius=r)
        rows.append(ci_row(method, "certified_acc", cert, **kw))
        rows.append(ci_row(method, "pgd_acc", emp, **kw))
        rows.append(ci_row(method, "certified_but_broken", cert * (1 - emp), **kw))  # per image
    return rows


def run(config: Config, ctx: RunContext | None = None) -> Result:
    """All five parts; ``ctx=None`` runs on CPU and keeps nothing on disk."""
    ctx = ctx or RunContext()
    seed = config.seed
    data = load_digit_images(seed=seed)
    rows = _attack_rows(config, seed)
    rows += _eps_rows(config, ctx, data, seed)
    rows += _overfit_rows(config, ctx, seed)
    rows += _gmm_rows(config, seed)
    rows += _smoothing_rows(config, ctx, data, seed)
    table = pd.DataFrame(rows)
    return Result(table=table, checks=checks(table, config), figures=figures(table))


# ---------------------------------------------------------------------------------------------
#: PGD must find the exact minimal ℓ2 perturbation of a linear model within this relative error
PGD_REL_TOL = 0.02
#: a robust-accuracy effect smaller than this is no effect
MIN_EFFECT = 0.02
#: the drop from clean to robust accuracy that "fails under adversarial inputs" means
FAIL_DROP = 0.3
#: certified-yet-broken images allowed: CERTIFY fails with probability α, and the prediction at
#: the attacked point is itself a Monte Carlo estimate
BROKEN_TOL = 0.02
#: measured and predicted sample sizes n* agree within this factor at every d
NSTAR_FACTOR = 1.5


def _part(table: pd.DataFrame, part: str) -> pd.DataFrame:
    return table[table["part"] == part] if "part" in table.columns else table.iloc[0:0]


def _n_star(errors: pd.Series, target: float) -> float:
    """Smallest n at which the error curve (index n) falls to ``target``, by log-linear
    interpolation; NaN when it never does within the grid."""
    e = errors.sort_index()
    ns, vs = e.index.to_numpy(float), e.to_numpy(float)
    below = np.nonzero(vs <= target)[0]
    if below.size == 0:
        return math.nan
    i = int(below[0])
    if i == 0:
        return float(ns[0])
    x0, x1, y0, y1 = math.log(ns[i - 1]), math.log(ns[i]), vs[i - 1], vs[i]
    t = (y0 - target) / (y0 - y1) if y0 != y1 else 1.0
    return float(math.exp(x0 + t * (x1 - x0)))


def checks(table: pd.DataFrame, config: Config) -> list[Check]:
    out: list[Check] = []
    a = config.attack
    # attack strength (sanity)
    att = _part(table, "attack")
    claim = "PGD finds the exact minimal ℓ2 perturbation margin/‖w‖ of a linear classifier"
    if len(att):
        rel = (att["value"] - att["exact"]).abs() / att["exact"].clip(lower=1e-12)
        worst = float(rel.max())
        out.append(Check(claim, "Madry et al. 2018 §2 (PGD); exact for a linear model", "sanity",
                         f"relative error ≤ {PGD_REL_TOL}", f"max relative error {worst:.4f}",
                         f"max over {len(att)} points ≤ {PGD_REL_TOL}",
                         "holds" if worst <= PGD_REL_TOL else "fails"))  # fmt: skip
    # eps: failure and adversarial training
    ep = _part(table, "eps")
    if len(ep):
        st = ep[ep["method"] == "standard training"].set_index("eps")
        adv = ep[ep["method"].str.startswith("adversarial training")].set_index("eps")
        e_max = float(st.index.max())
        out.append(difference_check(
            f"a standard model fails under attack: clean accuracy exceeds robust accuracy at ε={e_max:g} "
            f"by more than {FAIL_DROP}", "Szegedy et al. 2014; Madry et al. 2018", "claim",
            a=float(st.loc[0.0, "value"]) if 0.0 in st.index else math.nan,
            a_se=float(st.loc[0.0, "se"]) if 0.0 in st.index else math.nan,
            b=float(st.loc[e_max, "value"]), b_se=float(st.loc[e_max, "se"]), min_effect=FAIL_DROP))  # fmt: skip
        e_tr = min(st.index, key=lambda e: abs(e - a.eps))
        out.append(difference_check(
            f"adversarial training raises robust accuracy at ε={e_tr:g} over standard training",
            "Madry et al. 2018, Table 1", "claim",
            a=float(adv.loc[e_tr, "value"]), a_se=float(adv.loc[e_tr, "se"]),
            b=float(st.loc[e_tr, "value"]), b_se=float(st.loc[e_tr, "se"]), min_effect=MIN_EFFECT))  # fmt: skip
    # robust overfitting
    ov = _part(table, "overfit")
    if len(ov):

        def series(metric: str) -> pd.DataFrame:
            return ov[ov["metric"] == metric].set_index("step").sort_index()

        test, val = series("robust_test_acc"), series("robust_val_acc")
        peak = int(test["value"].idxmax())
        last = int(test.index.max())
        src = "Rice, Wong & Kolter 2020, Fig. 1"
        claim = "robust test accuracy peaks, then falls (robust overfitting)"
        if peak == last:
            out.append(Check(claim, src, "claim", "a peak before the last step",
                             f"highest at the last step ({last})", "peak before the last step",
                             "fails"))  # fmt: skip
        else:
            out.append(difference_check(
                claim, src, "claim", a=float(test.loc[peak, "value"]),
                a_se=float(test.loc[peak, "se"]), b=float(test.loc[last, "value"]),
                b_se=float(test.loc[last, "se"]), min_effect=MIN_EFFECT,
                where=f"peak at step {peak}, last step {last}"))  # fmt: skip
        tl, trl = series("robust_test_loss"), series("robust_train_loss")
        out.append(difference_check(
            "robust training loss keeps falling after the robust test accuracy peaks", src, "claim",
            a=float(trl.loc[peak, "value"]), a_se=float(trl.loc[peak, "se"]),
            b=float(trl.loc[last, "value"]), b_se=float(trl.loc[last, "se"]), min_effect=0.0,
            where=f"steps {peak} → {last}"))  # fmt: skip
        low = int(tl["value"].idxmin())
        claim = "robust test loss reaches a minimum, then rises while robust training loss keeps falling"
        if low == last:
            out.append(Check(claim, src, "claim", "a minimum before the last step",
                             f"lowest at the last step ({last})", "minimum before the last step",
                             "fails"))  # fmt: skip
        else:
            out.append(difference_check(
                claim, src, "claim", a=float(tl.loc[last, "value"]), a_se=float(tl.loc[last, "se"]),
                b=float(tl.loc[low, "value"]), b_se=float(tl.loc[low, "se"]), min_effect=0.0,
                where=f"test-loss minimum at step {low}; training loss "
                      f"{trl.loc[low, 'value']:.3g} → {trl.loc[last, 'value']:.3g}"))  # fmt: skip
        stop = int(val["value"].idxmax())
        out.append(difference_check(
            "early stopping on a validation set recovers robust test accuracy lost by training on",
            src + ", §4", "claim",
            a=float(test.loc[stop, "value"]), a_se=float(test.loc[stop, "se"]),
            b=float(test.loc[last, "value"]), b_se=float(test.loc[last, "se"]), min_effect=0.0,
            where=f"validation-selected step {stop}"))  # fmt: skip
    # Gaussian model
    gm = _part(table, "gmm")
    if len(gm):
        out += _gmm_checks(gm, config)
    # smoothing
    sm = _part(table, "smoothing")
    if len(sm):
        broken = sm[sm["metric"] == "certified_but_broken"].set_index("radius").sort_index()
        r = float(broken["value"].idxmax())
        out.append(bound_check(
            "no image certified at radius r is misclassified by the smoothed classifier after an "
            "ℓ2 attack of size r (certified accuracy ≤ accuracy under attack)",
            "Cohen, Rosenfeld & Kolter 2019, Thm 1", "claim",
            value=float(broken.loc[r, "value"]), value_se=float(broken.loc[r, "se"]),
            bound=BROKEN_TOL, below=True,
            where=f"fraction of images certified yet broken, worst radius {r:g}"))  # fmt: skip
    return out


def _gmm_checks(gm: pd.DataFrame, config: Config) -> list[Check]:
    c = config.gmm
    out = []
    src = "Schmidt et al. 2018, §2 (Gaussian model), Thms 4-6"
    ex = gm[gm["method"] == "mean estimator"].set_index(["metric", "d", "n"]).sort_index()
    mc = (
        gm[gm["method"] == "mean estimator (test points)"]
        .set_index(["metric", "d", "n"])
        .sort_index()
    )
    claim = ("the exact robust error formula (1) matches the error measured on fresh test points "
             "under the optimal ℓ∞ attack")  # fmt: skip
    if len(mc):
        e = ex.loc[mc.index]
        # the test-point estimate has at least the binomial variance of its c.test_points × trials draws
        binom = np.sqrt(e["value"] * (1 - e["value"]) / (c.test_points * c.trials))
        se = np.sqrt(mc["se"] ** 2 + e["se"] ** 2 + binom**2).clip(lower=1e-12)
        z = (mc["value"] - e["value"]).abs() / se
        k = z.idxmax()
        out.append(z_check(claim, src, "theory", measured=float(mc.loc[k, "value"]),
                           measured_se=float(math.sqrt(mc.loc[k, "se"] ** 2 + binom.loc[k] ** 2)),
                           predicted=float(e.loc[k, "value"]), predicted_se=float(e.loc[k, "se"]),
                           where=f"worst of {len(z)} cells: {k[0]} at d={k[1]:g}, n={k[2]:g}"))  # fmt: skip
    else:
        out.append(not_applicable(claim, src, "theory", "no dimension ≤ mc_max_dim"))
    lim = gm[gm["method"] == "theory: large-d limit"]
    nstar: dict[str, dict[float, dict[str, float]]] = {}
    for metric in ("standard_error", "robust_error"):
        nstar[metric] = {}
        for d in sorted(ex.loc[metric].index.get_level_values("d").unique()):
            meas_n = _n_star(ex.loc[(metric, d)]["value"], c.target)
            th = lim[(lim["metric"] == metric) & (lim["d"] == d)].set_index("n")["value"]
            nstar[metric][d] = {"measured": meas_n, "theory": _n_star(th, c.target)}
    rob = nstar["robust_error"]
    dev = {d: abs(math.log(v["measured"] / v["theory"])) for d, v in rob.items()
           if math.isfinite(v["measured"]) and math.isfinite(v["theory"])}  # fmt: skip
    claim = (f"the samples needed for robust error ≤ {c.target:g} follow the theory's prediction "
             f"(2) at every d, within a factor {NSTAR_FACTOR:g}")  # fmt: skip
    if len(dev) < len(rob):
        out.append(inconclusive(claim, src, "claim", "the robust error does not reach the target "
                                "within the n grid at some d", tolerance=f"factor {NSTAR_FACTOR:g}"))  # fmt: skip
    else:
        worst = max(dev, key=dev.get)
        out.append(Check(claim, src, "claim", f"n* = {rob[worst]['theory']:.3g} at d={worst:g}",
                         f"n* = {rob[worst]['measured']:.3g} (worst d)",
                         f"|log(measured / predicted)| ≤ log {NSTAR_FACTOR:g} at every d",
                         "holds" if dev[worst] <= math.log(NSTAR_FACTOR) else "fails"))  # fmt: skip
    std = nstar["standard_error"]
    ds = [d for d in rob if math.isfinite(rob[d]["measured"]) and math.isfinite(std[d]["measured"])]
    ratio = [rob[d]["measured"] / std[d]["measured"] for d in ds]
    out.append(trend_check(
        "robust learning needs more samples than standard learning, by a factor that grows with d",
        src, "claim", x=np.log(ds), y=np.log(ratio) if ds else [], increasing=True,
        where="log(n*_robust / n*_standard) against log d"))  # fmt: skip
    return out


# ---------------------------------------------------------------------------------------------
def figures(table: pd.DataFrame) -> dict[str, Any]:
    import matplotlib.pyplot as plt

    out = {}
    ep = _part(table, "eps")
    if len(ep):
        fig, ax = plt.subplots(figsize=(6, 3.6))
        for method, g in ep.groupby("method", sort=False):
            g = g.sort_values("eps")
            ax.errorbar(
                g["eps"], g["value"], yerr=1.96 * g["se"], marker="o", label=method, capsize=2
            )
        ax.set(xlabel="ε", ylabel="robust test accuracy", title="Robust accuracy under PGD")
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
        out["robust_acc_vs_eps"] = fig
    ov = _part(table, "overfit")
    if len(ov):
        fig, ax = plt.subplots(figsize=(6, 3.6))
        for k, col in (("train", "tab:blue"), ("val", "tab:green"), ("test", "tab:red")):
            g = ov[ov["metric"] == f"robust_{k}_acc"].sort_values("step")
            ax.plot(g["step"], g["value"], color=col, label=f"robust {k} accuracy")
        test = ov[ov["metric"] == "robust_test_acc"]
        if len(test):
            peak = test.loc[test["value"].idxmax(), "step"]
            ax.axvline(peak, color="gray", ls="--", lw=1, label="robust test peak")
        ax.set(xlabel="training step", ylabel="accuracy", title="Robust overfitting")
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
        out["robust_overfitting"] = fig
    gm = _part(table, "gmm")
    if len(gm):
        fig, axes = plt.subplots(1, 2, figsize=(10, 3.6), sharey=True)
        for ax, metric in zip(axes, ("standard_error", "robust_error"), strict=True):
            for d, g in gm[(gm["metric"] == metric)].groupby("d"):
                mg = g[g["method"] == "mean estimator"].sort_values("n")
                tg = g[g["method"] == "theory: large-d limit"].sort_values("n")
                (line,) = ax.plot(mg["n"], mg["value"], marker="o", ms=3, label=f"d={d:g}")
                ax.plot(tg["n"], tg["value"], ls="--", color=line.get_color())
            ax.set(xscale="log", xlabel="training samples n", title=metric.replace("_", " "))
            ax.grid(alpha=0.3)
        axes[0].set_ylabel("error (dashed: large-d theory (2))")
        axes[1].legend(fontsize=8)
        out["gmm_sample_complexity"] = fig
    sm = _part(table, "smoothing")
    if len(sm):
        fig, ax = plt.subplots(figsize=(6, 3.6))
        for metric, lab in (("certified_acc", "certified (CERTIFY)"), ("pgd_acc", "under ℓ2 PGD")):
            g = sm[sm["metric"] == metric].sort_values("radius")
            ax.errorbar(
                g["radius"], g["value"], yerr=1.96 * g["se"], marker="o", label=lab, capsize=2
            )
        ax.set(
            xlabel="ℓ2 radius",
            ylabel="accuracy",
            title="Randomized smoothing: certificate ≤ attack",
        )
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
        out["smoothing_certified_vs_attack"] = fig
    return out


def headline(table: pd.DataFrame, config: Config) -> dict[str, float]:
    out = {}
    ep = _part(table, "eps")
    for method, g in ep.groupby("method"):
        key = "adv" if method.startswith("adversarial") else "std"
        out[f"{key}_robust_acc_max_eps"] = float(g.sort_values("eps")["value"].iloc[-1])
    return out


EXPERIMENT = register_experiment(
    Experiment(
        name=NAME,
        claim="Models fail under adversarial inputs; adversarial training helps but over-fits; "
        "robust generalization needs more data; smoothing certifies radii no attack beats.",
        source=SOURCE,
        chapter="robustness-and-scale",
        config_cls=Config,
        run=run,
        checks=checks,
        figures=figures,
        headline=headline,
        label=label,
        formula="err_ε(w) = Φ((ε‖w‖₁ − ⟨w,θ*⟩)/(σ‖w‖₂)); R = σ Φ⁻¹(p̲_A)",
        key_figure="robust_overfitting",
    )
)
