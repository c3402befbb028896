"""Claim (survey arXiv:2410.11444 §6, fairness): group-fairness metrics of a trained classifier,
their mitigation, how far a demographic-parity gap can move under covariate shift, and the
impossibility of calibration together with error-rate balance.

Population (every parameter in :class:`PopulationSection`): a sensitive attribute A ~ Bernoulli(π);
features x | A=a ~ N(a·sep·e₁, I_d); label Y | x, a ~ Bernoulli(σ(β·x + b_a)) with
β = β_scale·(e₁ + e₂)/√2.  The base rates differ through the group means and the intercepts b_a.

Pipeline:
1. A logistic regression on x (scikit-learn) is trained on n_train draws; fairlearn's
   ``MetricFrame``, ``demographic_parity_difference`` and ``equalized_odds_difference`` measure it
   on n_test fresh draws; fairlearn's ``ExponentiatedGradient`` with ``DemographicParity`` and
   ``EqualizedOdds`` at several constraint bounds gives the accuracy–gap frontier.
2. Transfer bound: the score s(x) = σ(w·x + c) is L-Lipschitz with L = ‖w‖/4.  For every shift
   (size × direction) the groups' feature laws move (group 0 by +δ, group 1 by −δ, or both scaled
   about their means); the change of the score's DP gap E_{P₀}s − E_{P₁}s is measured on fresh
   draws, and W₁(P_a, Q_a) is computed by POT (``ot.emd2``) between a sample and its shifted copy.
3. Impossibility: the true posterior σ(β·x + b_a) is calibrated within each group; its generalized
   FPR x_a = E[s | Y=0, A=a] and FNR y_a = E[1 − s | Y=1, A=a] must satisfy y_a = x_a(1 − p_a)/p_a
   (Kleinberg et al. 2016), so with p₀ ≠ p₁ the two groups cannot share both.  Thresholding it at
   1/2 gives a classifier whose confusion matrix satisfies Chouldechova's identity.
"""

from __future__ import annotations

import math
from typing import Any, Literal

import numpy as np
import pandas as pd
from pydantic import Field, field_validator

from fmtheory.checks import (
    Z95,
    bound_check,
    difference_check,
    exact_row,
    inconclusive,
    mean_ci,
    z_check,
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
from fmtheory.theory.fairness import chouldechova_fpr, kmr_generalized_fnr, transfer_bound

NAME = "fairness"
SOURCE = "survey arXiv:2410.11444 §6"
SRC_TRANSFER = (
    "survey arXiv:2410.11444 §6 (Lipschitz transfer of the DP gap; Kantorovich–Rubinstein)"
)
SRC_KMR = "Kleinberg, Mullainathan & Raghavan 2016, Thm 1.1; Chouldechova 2017, eq. (2.6)"
SRC_FAIRLEARN = "Agarwal et al. 2018 (exponentiated-gradient reductions), via fairlearn"

#: POT's W1 between a sample and its translated / scaled copy must equal the closed form to this
#: relative precision (a linear program solved exactly up to float round-off).
W1_RTOL = 1e-6
#: the calibrated score's two balance gaps count as "equal" when both intervals lie in ±EQUIV.
EQUIV = 0.01
#: a shift whose bound is below this is too small to test (the measured change is pure noise).
MIN_BOUND = 1e-3

Direction = Literal["aligned", "orthogonal", "random", "scale"]


class PopulationSection(Section):
    """The synthetic population (nothing is downloaded)."""

    dim: int = Field(5, ge=2, le=64, description="feature dimension d (≥ 2)")
    p_group1: float = Field(0.4, gt=0.0, lt=1.0, description="π = P(A = 1)")
    separation: float = Field(1.0, ge=0.0, le=10.0, description="group-1 mean along e₁")
    beta_scale: float = Field(1.5, gt=0.0, le=20.0, description="‖β‖ of the label model")
    intercepts: tuple[float, float] = Field(
        (0.5, -1.0), description="b₀, b₁: label-model intercepts (unequal base rates)"
    )


class MitigationSection(Section):
    """fairlearn reductions (ExponentiatedGradient) and their constraint bounds."""

    constraints: list[Literal["demographic_parity", "equalized_odds"]] = Field(
        ["demographic_parity", "equalized_odds"], min_length=1, description="fairlearn moments"
    )
    bounds: list[float] = Field([0.01, 0.05, 0.1], min_length=1, description="difference_bound ε")
    max_iter: int = Field(50, ge=5, le=1000, description="ExponentiatedGradient max_iter")

    @field_validator("bounds")
    @classmethod
    def _bounds(cls, v: list[float]) -> list[float]:
        if any(not 0.0 < b < 1.0 for b in v):
            raise ValueError(f"bounds = {v}: every constraint bound must be in (0, 1)")
        return sorted(v)


class ShiftSection(Section):
    """Covariate shifts of the transfer-bound sweep."""

    sizes: list[float] = Field(
        [0.25, 0.5, 1.0], min_length=1, description="‖δ‖ (or c − 1 for scale)"
    )
    directions: list[Direction] = Field(
        ["aligned", "orthogonal", "random", "scale"], min_length=1,
        description="aligned: δ ∥ w; orthogonal: δ ⊥ w; random: a random unit δ; "
        "scale: x → μ_a + (1 + size)(x − μ_a)",
    )  # fmt: skip
    n_w1: int = Field(300, ge=20, le=3000, description="points per group for POT's W1")

    @field_validator("sizes")
    @classmethod
    def _sizes(cls, v: list[float]) -> list[float]:
        if any(not 0.0 < s <= 10.0 for s in v):
            raise ValueError(f"sizes = {v}: every shift size must be in (0, 10]")
        return sorted(v)


class Config(ExperimentConfig):
    population: PopulationSection = PopulationSection()
    n_train: int = Field(4000, ge=100, le=1_000_000, description="training draws")
    n_test: int = Field(20000, ge=100, le=10_000_000, description="test draws per evaluation")
    mitigation: MitigationSection = MitigationSection()
    shift: ShiftSection = ShiftSection()


# ------------------------------------------------------------------------------ population
def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


def _beta(pop: PopulationSection) -> np.ndarray:
    b = np.zeros(pop.dim)
    b[0] = b[1] = pop.beta_scale / math.sqrt(2.0)
    return b


def _means(pop: PopulationSection) -> np.ndarray:
    """(2, d): the group means μ₀ = 0, μ₁ = sep·e₁."""
    mu = np.zeros((2, pop.dim))
    mu[1, 0] = pop.separation
    return mu


def sample_population(pop: PopulationSection, n: int, rng: np.random.Generator,
                      shift: np.ndarray | None = None, scale: float = 1.0
                      ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:  # fmt: skip
    """(x: (n, d), a: (n,), y: (n,), posterior: (n,)); group a's features are
    μ_a + shift[a] + scale·z with z ~ N(0, I) (``shift``: (2, d), default 0)."""
    a = (rng.random(n) < pop.p_group1).astype(int)
    mu = _means(pop) + (0.0 if shift is None else shift)
    x = mu[a] + scale * rng.standard_normal((n, pop.dim))
    post = _sigmoid(x @ _beta(pop) + np.asarray(pop.intercepts)[a])
    y = (rng.random(n) < post).astype(int)
    return x, a, y, post


# ------------------------------------------------------------------------------ the run
def _rate_rows(rows: list[dict], method: str, y_pred: np.ndarray, y: np.ndarray, a: np.ndarray,
               seed: int, **coords: Any) -> None:  # fmt: skip
    """fairlearn MetricFrame by group + the two gap metrics, each with a binomial s.e."""
    from fairlearn.metrics import (
        MetricFrame,
        demographic_parity_difference,
        equalized_odds_difference,
        selection_rate,
    )
    from sklearn.metrics import accuracy_score

    mf = MetricFrame(metrics={"accuracy": accuracy_score, "selection_rate": selection_rate},
                     y_true=y, y_pred=y_pred, sensitive_features=a)  # fmt: skip
    n_g = np.array([(a == g).sum() for g in (0, 1)])
    for g in (0, 1):
        for m in ("accuracy", "selection_rate"):
            v = float(mf.by_group.loc[g, m])
            rows.append(exact_row(method, f"{m}_group{g}", v, seed=seed,
                                  se=math.sqrt(v * (1 - v) / n_g[g]), **coords))  # fmt: skip
    acc = float(mf.overall["accuracy"])
    rows.append(exact_row(method, "accuracy", acc, seed=seed,
                          se=math.sqrt(acc * (1 - acc) / len(y)), **coords))  # fmt: skip
    sr = mf.by_group["selection_rate"].to_numpy(float)
    dp = float(demographic_parity_difference(y, y_pred, sensitive_features=a))
    rows.append(exact_row(method, "dp_difference", dp, seed=seed,
                          se=math.sqrt(sum(sr * (1 - sr) / n_g)), **coords))  # fmt: skip
    eo = float(equalized_odds_difference(y, y_pred, sensitive_features=a))
    eo_se = 0.0
    for lab in (0, 1):
        r = [y_pred[(a == g) & (y == lab)].mean() for g in (0, 1)]
        m = [((a == g) & (y == lab)).sum() for g in (0, 1)]
        eo_se = max(
            eo_se, math.sqrt(sum(ri * (1 - ri) / max(mi, 1) for ri, mi in zip(r, m, strict=True)))
        )
    rows.append(exact_row(method, "eo_difference", eo, seed=seed, se=eo_se, **coords))


def _score_gap(s: np.ndarray, a: np.ndarray) -> tuple[float, float]:
    """E[s | A=0] − E[s | A=1] with its standard error."""
    c0, c1 = mean_ci(s[a == 0]), mean_ci(s[a == 1])
    return c0.mean - c1.mean, math.hypot(c0.se, c1.se)


def _direction(kind: str, w: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    d = w.size
    u = w / np.linalg.norm(w)
    if kind == "aligned":
        return u
    v = rng.standard_normal(d)
    if kind == "orthogonal":
        v = v - (v @ u) * u
    return v / np.linalg.norm(v)


def _w1(x: np.ndarray, y: np.ndarray) -> float:
    import ot

    n, m = len(x), len(y)
    return float(ot.emd2(np.full(n, 1 / n), np.full(m, 1 / m), ot.dist(x, y, metric="euclidean")))


def run(config: Config, ctx: RunContext | None = None) -> Result:
    from fairlearn.reductions import DemographicParity, EqualizedOdds, ExponentiatedGradient
    from sklearn.linear_model import LogisticRegression

    pop, seed = config.population, config.seed
    rng = np.random.default_rng(seed)
    rows: list[dict] = []
    x, a, y, _ = sample_population(pop, config.n_train, rng)
    xt, at, yt, post_t = sample_population(pop, config.n_test, rng)

    clf = LogisticRegression(C=1.0).fit(x, y)
    _rate_rows(rows, "logistic", clf.predict(xt), yt, at, seed)
    rows.append(exact_row("population", "base_rate_group0", yt[at == 0].mean(), seed=seed,
                          se=yt[at == 0].std() / math.sqrt((at == 0).sum())))  # fmt: skip
    rows.append(exact_row("population", "base_rate_group1", yt[at == 1].mean(), seed=seed,
                          se=yt[at == 1].std() / math.sqrt((at == 1).sum())))  # fmt: skip

    moments = {"demographic_parity": DemographicParity, "equalized_odds": EqualizedOdds}
    for name in config.mitigation.constraints:
        for eps in config.mitigation.bounds:
            eg = ExponentiatedGradient(LogisticRegression(C=1.0),
                                       constraints=moments[name](difference_bound=eps),
                                       max_iter=config.mitigation.max_iter)  # fmt: skip
            eg.fit(x, y, sensitive_features=a)
            pred = np.asarray(eg.predict(xt, random_state=seed))
            _rate_rows(rows, f"eg_{name}", pred, yt, at, seed, bound=eps)

    # ---- transfer bound
    w = clf.coef_.ravel()
    lip = float(np.linalg.norm(w)) / 4.0
    score = lambda z: _sigmoid(z @ w + clf.intercept_[0])  # noqa: E731
    gap_p, gap_p_se = _score_gap(score(xt), at)
    rows.append(exact_row("logistic", "score_dp_gap", gap_p, seed=seed, se=gap_p_se))
    rows.append(exact_row("logistic", "lipschitz", lip, seed=seed))
    mu = _means(pop)
    n_w = config.shift.n_w1
    for kind in config.shift.directions:
        u = _direction(kind, w, rng)
        for size in config.shift.sizes:
            if kind == "scale":
                delta, scale = np.zeros((2, pop.dim)), 1.0 + size
            else:
                delta, scale = np.stack([size * u, -size * u]), 1.0
            xq, aq, _, _ = sample_population(pop, config.n_test, rng, delta, scale)
            gap_q, gap_q_se = _score_gap(score(xq), aq)
            change, change_se = abs(gap_q - gap_p), math.hypot(gap_q_se, gap_p_se)
            w1 = []
            for g in (0, 1):
                z = rng.standard_normal((n_w, pop.dim))
                xp = mu[g] + z
                w1.append(_w1(xp, mu[g] + delta[g] + scale * z))
                exact = (np.linalg.norm(delta[g]) if kind != "scale"
                         else size * float(np.linalg.norm(z, axis=1).mean()))  # fmt: skip
                rows.append(exact_row("closed_form", f"w1_group{g}", exact, seed=seed,
                                      direction=kind, size=size))  # fmt: skip
                rows.append(exact_row("pot", f"w1_group{g}", w1[-1], seed=seed,
                                      direction=kind, size=size))  # fmt: skip
            bound = transfer_bound(lipschitz=lip, w1_group0=w1[0], w1_group1=w1[1])
            c = dict(seed=seed, direction=kind, size=size)
            rows.append(exact_row("logistic", "dp_gap_change", change, se=change_se, **c))
            rows.append(exact_row("theory", "transfer_bound", bound, **c))
            rows.append(exact_row("logistic", "tightness", change / bound if bound > 0 else
                                  math.nan, se=change_se / bound if bound > 0 else math.nan, **c))  # fmt: skip

    # ---- impossibility (calibrated score = the true posterior)
    for g in (0, 1):
        s, yy = post_t[at == g], yt[at == g]
        p = mean_ci(yy)
        gfpr, gfnr = mean_ci(s[yy == 0]), mean_ci(1 - s[yy == 1])
        rows.append(exact_row("posterior", f"gfpr_group{g}", gfpr.mean, se=gfpr.se, seed=seed))
        rows.append(exact_row("posterior", f"gfnr_group{g}", gfnr.mean, se=gfnr.se, seed=seed))
        pred_y = kmr_generalized_fnr(base_rate=p.mean, gfpr=gfpr.mean)
        # delta method: dy = (1−p)/p dx − x/p² dp
        se_pred = math.hypot((1 - p.mean) / p.mean * gfpr.se, gfpr.mean / p.mean**2 * p.se)
        rows.append(exact_row("kmr_identity", f"gfnr_group{g}", pred_y, se=se_pred, seed=seed))
        bins = np.clip((s * 10).astype(int), 0, 9)
        ece = sum(abs(yy[bins == b].mean() - s[bins == b].mean()) * (bins == b).mean()
                  for b in range(10) if (bins == b).any())  # fmt: skip
        rows.append(exact_row("posterior", f"ece_group{g}", ece, seed=seed))
        hard = (s >= 0.5).astype(int)
        tp, fp = int((hard & yy).sum()), int((hard & (1 - yy)).sum())
        pos, neg = int(yy.sum()), int((1 - yy).sum())
        if tp > 0 and 0 < pos < len(yy):
            fpr = fp / neg
            rows.append(exact_row("posterior@0.5", f"fpr_group{g}", fpr, seed=seed))
            rows.append(exact_row("chouldechova_identity", f"fpr_group{g}",
                                  chouldechova_fpr(prevalence=pos / len(yy), ppv=tp / (tp + fp),
                                                   fnr=1 - tp / pos), seed=seed))  # fmt: skip
            rows.append(exact_row("posterior@0.5", f"fnr_group{g}", 1 - tp / pos, seed=seed))
            rows.append(exact_row("posterior@0.5", f"ppv_group{g}", tp / (tp + fp), seed=seed))

    table = pd.DataFrame(rows)
    for col in ("bound", "direction", "size"):
        if col not in table:
            table[col] = np.nan
    return Result(table=table, checks=checks(table, config), figures=figures(table))


# ------------------------------------------------------------------------------ checks
def _get(table: pd.DataFrame, method: str, metric: str, **coords: Any) -> pd.Series | None:
    m = (table["method"] == method) & (table["metric"] == metric)
    for k, v in coords.items():
        m &= table[k] == v
    sub = table[m]
    return None if sub.empty else sub.iloc[0]


def checks(table: pd.DataFrame, config: Config) -> list[Check]:
    out: list[Check] = []
    # 1. mitigation lowers the DP gap
    base = _get(table, "logistic", "dp_difference")
    eg = table[(table["method"] == "eg_demographic_parity") & (table["metric"] == "dp_difference")]
    claim = "fairlearn's ExponentiatedGradient with DemographicParity lowers the DP difference"
    if base is None or eg.empty:
        out.append(inconclusive(claim, SRC_FAIRLEARN, "claim",
                                "no demographic_parity mitigation in the config"))  # fmt: skip
    else:
        tight = eg.sort_values("bound").iloc[0]
        out.append(difference_check(claim, SRC_FAIRLEARN, "claim", a=base["value"],
                                    a_se=base["se"], b=tight["value"], b_se=tight["se"],
                                    where=f"unmitigated vs ε = {tight['bound']:g}"))  # fmt: skip

    # 2. transfer bound on every shift
    ch = table[(table["method"] == "logistic") & (table["metric"] == "dp_gap_change")]
    claim = "the score's DP gap moves by at most L·(W1(P0,Q0) + W1(P1,Q1)) on every shift"
    verdicts, worst, n_tested = [], -math.inf, 0
    for _, r in ch.iterrows():
        b = _get(table, "theory", "transfer_bound", direction=r["direction"], size=r["size"])
        if b is None or b["value"] < MIN_BOUND:
            continue
        n_tested += 1
        c = bound_check(claim, SRC_TRANSFER, "claim", value=r["value"], value_se=r["se"],
                        bound=b["value"])  # fmt: skip
        verdicts.append(c.status)
        worst = max(worst, (r["value"] + Z95 * r["se"]) / b["value"])
    tol = f"change + 1.96 s.e. ≤ bound on each of the shifts with bound ≥ {MIN_BOUND:g}"
    if not verdicts:
        out.append(inconclusive(claim, SRC_TRANSFER, "claim", "no shift with a testable bound"))
    else:
        status = ("fails" if "fails" in verdicts else "inconclusive" if "inconclusive" in verdicts
                  else "holds")  # fmt: skip
        out.append(Check(claim, SRC_TRANSFER, "claim", "ratio ≤ 1",
                         f"max (change + 1.96 s.e.)/bound = {worst:.3f} over {n_tested} shifts",
                         tol, status,
                         "" if status != "inconclusive" else "an interval straddles the bound"))  # fmt: skip

    # 3. POT's W1 equals the closed form for a translation / scaling
    pot = table[table["method"] == "pot"]
    if not pot.empty:
        cf = table[table["method"] == "closed_form"]
        merged = pot.merge(cf, on=["metric", "direction", "size"], suffixes=("_pot", "_cf"))
        err = float((abs(merged["value_pot"] - merged["value_cf"])
                     / merged["value_cf"].clip(lower=1e-12)).max())  # fmt: skip
        out.append(Check("POT's W1 between a sample and its shifted copy equals ‖δ‖ (or (c−1)·E‖z‖)",
                         "Villani 2009, Thm 5.10 (Kantorovich–Rubinstein)", "sanity",
                         0.0, err, f"max relative error ≤ {W1_RTOL:g}",
                         "holds" if err <= W1_RTOL else "fails"))  # fmt: skip

    # 4. KMR identity on the calibrated score, per group
    for g in (0, 1):
        m, p = (
            _get(table, "posterior", f"gfnr_group{g}"),
            _get(table, "kmr_identity", f"gfnr_group{g}"),
        )
        if m is None or p is None:
            continue
        out.append(z_check(f"a calibrated score's generalized FNR equals x(1−p)/p in group {g}",
                           SRC_KMR, "theory", measured=m["value"], measured_se=m["se"],
                           predicted=p["value"], predicted_se=p["se"]))  # fmt: skip

    # 5. impossibility: balance for both classes fails when base rates differ
    claim = ("with unequal base rates the calibrated score cannot balance both the generalized "
             "FPR and FNR across groups")  # fmt: skip
    rows = {(k, g): _get(table, "posterior", f"{k}_group{g}") for k in ("gfpr", "gfnr")
            for g in (0, 1)}  # fmt: skip
    br = [_get(table, "population", f"base_rate_group{g}") for g in (0, 1)]
    if any(v is None for v in rows.values()) or any(v is None for v in br):
        out.append(inconclusive(claim, SRC_KMR, "claim", "calibrated-score rows are missing"))
    else:
        diffs = []
        for k in ("gfpr", "gfnr"):
            d = rows[(k, 0)]["value"] - rows[(k, 1)]["value"]
            se = math.hypot(rows[(k, 0)]["se"], rows[(k, 1)]["se"])
            diffs.append((k, d, se))
        apart = [k for k, d, se in diffs if abs(d) - Z95 * se > 0]
        equal = all(abs(d) + Z95 * se < EQUIV for _, d, se in diffs)
        meas = "; ".join(f"Δ{k} = {d:.4f} ± {Z95 * se:.4f}" for k, d, se in diffs)
        tol = (f"holds when ΔFPR or ΔFNR has its 95% interval away from 0; fails when both lie "
               f"inside ±{EQUIV:g}")  # fmt: skip
        dp = abs(br[0]["value"] - br[1]["value"]) - Z95 * math.hypot(br[0]["se"], br[1]["se"])
        if dp <= 0:
            out.append(inconclusive(claim, SRC_KMR, "claim", "the base rates are not "
                                    "distinguishable: the theorem makes no prediction",
                                    measured=meas, tolerance=tol))  # fmt: skip
        elif apart:
            out.append(Check(claim, SRC_KMR, "claim", "not both balanced", meas, tol, "holds"))
        elif equal:
            out.append(Check(claim, SRC_KMR, "claim", "not both balanced", meas, tol, "fails"))
        else:
            out.append(inconclusive(claim, SRC_KMR, "claim", "both gaps are compatible with 0 "
                                    f"but not inside ±{EQUIV:g}", measured=meas, tolerance=tol))  # fmt: skip

    # 6. Chouldechova identity on the thresholded posterior's confusion matrix (algebraic)
    for g in (0, 1):
        m, p = (
            _get(table, "posterior@0.5", f"fpr_group{g}"),
            _get(table, "chouldechova_identity", f"fpr_group{g}"),
        )
        if m is not None and p is not None:
            out.append(z_check(f"Chouldechova's identity holds on group {g}'s confusion matrix",
                               SRC_KMR, "sanity", measured=m["value"], measured_se=0.0,
                               predicted=p["value"]))  # fmt: skip
    return out


# ------------------------------------------------------------------------------ figures
def figures(table: pd.DataFrame) -> dict[str, Any]:
    import matplotlib.pyplot as plt

    figs: dict[str, Any] = {}
    fig, ax = plt.subplots(figsize=(5, 4))
    for method, marker in (("eg_demographic_parity", "o"), ("eg_equalized_odds", "s")):
        sub = table[table["method"] == method]
        if sub.empty:
            continue
        acc = sub[sub["metric"] == "accuracy"].sort_values("bound")
        gap = sub[sub["metric"] == "dp_difference"].sort_values("bound")
        ax.errorbar(gap["value"], acc["value"], xerr=Z95 * gap["se"], yerr=Z95 * acc["se"],
                    marker=marker, label=method.removeprefix("eg_"))  # fmt: skip
    base = table[table["method"] == "logistic"]
    a0 = base[base["metric"] == "accuracy"]["value"]
    g0 = base[base["metric"] == "dp_difference"]["value"]
    if len(a0) and len(g0):
        ax.plot(g0.iloc[0], a0.iloc[0], "k*", ms=12, label="unmitigated")
    ax.set_xlabel("demographic-parity difference (test)")
    ax.set_ylabel("accuracy (test)")
    ax.set_title("accuracy–gap frontier (fairlearn)")
    ax.legend()
    figs["frontier"] = fig

    fig, ax = plt.subplots(figsize=(5, 4))
    ch = table[(table["method"] == "logistic") & (table["metric"] == "dp_gap_change")]
    bd = table[(table["method"] == "theory") & (table["metric"] == "transfer_bound")]
    merged = ch.merge(bd, on=["direction", "size"], suffixes=("", "_b"))
    for kind, sub in merged.groupby("direction"):
        ax.errorbar(sub["value_b"], sub["value"], yerr=Z95 * sub["se"], fmt="o", label=kind)
    if not merged.empty:
        hi = float(merged["value_b"].max())
        ax.plot([0, hi], [0, hi], "k--", lw=1, label="bound")
    ax.set_xlabel("L·(W1(P0,Q0) + W1(P1,Q1))")
    ax.set_ylabel("|change of the score's DP gap|")
    ax.set_title("transfer bound")
    ax.legend()
    figs["transfer"] = fig

    fig, ax = plt.subplots(figsize=(5, 4))
    for g in (0, 1):
        x = _get(table, "posterior", f"gfpr_group{g}")
        y = _get(table, "posterior", f"gfnr_group{g}")
        p = _get(table, "population", f"base_rate_group{g}")
        if x is None or y is None or p is None:
            continue
        xs = np.linspace(0, 1, 50)
        ax.plot(xs, xs * (1 - p["value"]) / p["value"], f"C{g}-", lw=1,
                label=f"group {g}: y = x(1−p)/p, p = {p['value']:.2f}")  # fmt: skip
        ax.errorbar(x["value"], y["value"], xerr=Z95 * x["se"], yerr=Z95 * y["se"], fmt=f"C{g}o")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_xlabel("generalized FPR E[s | Y=0]")
    ax.set_ylabel("generalized FNR E[1−s | Y=1]")
    ax.set_title("calibration vs balance (Kleinberg et al.)")
    ax.legend(fontsize=7)
    figs["impossibility"] = fig
    return figs


def headline(table: pd.DataFrame, config: Config) -> dict[str, float]:
    out: dict[str, float] = {}
    for key, (method, metric) in {"dp_difference": ("logistic", "dp_difference"),
                                  "accuracy": ("logistic", "accuracy")}.items():  # fmt: skip
        r = _get(table, method, metric)
        if r is not None:
            out[key] = float(r["value"])
    t = table[(table["method"] == "logistic") & (table["metric"] == "tightness")]
    if not t.empty:
        out["max_tightness"] = float(t["value"].max())
    return out


def label(config: Config) -> str:
    return f"logistic regression on d = {config.population.dim} synthetic features"


EXPERIMENT = register_experiment(
    Experiment(
        name=NAME,
        claim="fairlearn mitigation lowers the DP gap; a Lipschitz score's DP gap moves under "
        "shift by at most L·ΣW1; a calibrated score cannot balance error rates across groups "
        "with unequal base rates",
        source=SOURCE,
        chapter=Chapter.ETHICS.value,
        config_cls=Config,
        run=run,
        checks=checks,
        figures=figures,
        headline=headline,
        label=label,
        formula="|ΔDP(Q) − ΔDP(P)| ≤ L·(W1(P0,Q0) + W1(P1,Q1)); y = x(1−p)/p; "
        "FPR = p/(1−p)·(1−PPV)/PPV·(1−FNR)",
        key_figure="transfer",
    )
)
