"""rlhf-pessimism: the Bradley–Terry reward MLE and the pessimistic policy (Zhu, Jordan & Jiao 2023).

Two parts, each on numpy samples seeded by the config:

- rate: comparisons xᵢ = φ₁ − φ₀ with φ ~ N(0, I_d) and P(first preferred) = σ(θ*ᵀxᵢ), ‖θ*‖ = B.
  For every n of the grid, ``reps`` data sets; the MLE's error ‖θ̂ − θ*‖_{Σ_D} (Zhu et al. Lemma
  3.1: ∝ sqrt(d/n)) and, on the same designs, the asymptotic tr(Σ_D I⁻¹)/n of ``theory/preference``.
- coverage: K actions with one-hot features (the tabular case of Zhu et al. §3), true rewards
  r(a*) = 1, r(1) = 0.8, the rest spread over [0.3, 0.7] (times ``reward_scale``); comparisons drawn
  from a behaviour distribution that rarely shows a* and a set of "poorly covered" actions.  The greedy
  policy argmax θ̂ᵀφ(a) against the pessimistic one argmax θ̂ᵀ(φ(a) − v) − Γ‖φ(a) − v‖_{(Σ_D+λI)⁻¹}
  (v: the behaviour's mean feature), and the pessimistic policy's bound 2Γ‖φ(a*) − v‖_{(Σ_D+λI)⁻¹}.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from pydantic import Field, model_validator

from fmtheory.checks import (
    bound_check,
    ci_row,
    difference_check,
    exponent_check,
    inconclusive,
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
from fmtheory.experiments._preference import bt_mle, sigma_norm
from fmtheory.theory.preference import bt_asymptotic_sq_error, bt_gamma, pessimism_radius

NAME = "rlhf-pessimism"
SOURCE = "Zhu, Jordan & Jiao 2023 (ICML), Lemma 3.1 and Thm 3.2; survey arXiv:2410.11444 §5"

#: the MLE's error exponent in n (Lemma 3.1) and the rivals the fit must exclude: no consistency (0)
#: and the rate of the squared error (−1)
PREDICTED_EXPONENT = -0.5
RIVAL_EXPONENTS = (0.0, -1.0)
#: R² the log-log fit needs before its exponent counts
R2_MIN = 0.9
#: the greedy policy's suboptimality must exceed the pessimistic one's by this much (in reward units)
MIN_GAP = 0.05


class RateSection(Section):
    """The n^{-1/2} rate of the MLE on a well-covered Gaussian design."""

    dim: int = Field(8, ge=1, le=256, description="dimension d of θ and of the features")
    n_grid: list[int] = Field(
        default_factory=lambda: [250, 500, 1000, 2000, 4000],
        min_length=3,
        description="numbers of comparisons (at least 3, each > dim)",
    )
    reps: int = Field(64, ge=2, le=100_000, description="independent data sets per n")
    theta_norm: float = Field(1.0, gt=0.0, le=20.0, description="B = ‖θ*‖")

    @model_validator(mode="after")
    def _n_above_dim(self) -> RateSection:
        for n in self.n_grid:
            if n <= self.dim:
                raise ValueError(f"n_grid value {n} must exceed dim = {self.dim}")
        return self


class CoverageSection(Section):
    """A tabular data set that covers the optimal action poorly."""

    n_actions: int = Field(20, ge=6, le=500, description="K actions, one-hot features")
    n_well: int = Field(4, ge=1, le=100, description="well-covered actions (1..n_well)")
    n: int = Field(500, ge=1, le=1_000_000, description="comparisons per data set")
    optimal_share: float = Field(0.002, gt=0.0, lt=1.0, description="behaviour weight of a*")
    poor_share: float = Field(0.003, gt=0.0, lt=1.0, description="weight of each poor action")
    reward_scale: float = Field(2.0, gt=0.0, le=20.0, description="rewards are scale × [0.3, 1]")
    lam: float = Field(1e-3, gt=0.0, le=10.0, description="ridge λ of the MLE and of Σ_D + λI")
    delta: float = Field(0.1, gt=0.0, lt=1.0, description="failure probability of the radius Γ")
    reps: int = Field(200, ge=2, le=100_000, description="independent data sets")

    @model_validator(mode="after")
    def _shares(self) -> CoverageSection:
        if self.n_well + 2 > self.n_actions:
            raise ValueError(
                f"n_well = {self.n_well} must leave at least one poorly covered action among "
                f"n_actions = {self.n_actions} (n_well ≤ n_actions − 2)"
            )
        rest = 1.0 - self.optimal_share - self.poor_share * (self.n_actions - 1 - self.n_well)
        if rest <= 0:
            raise ValueError(
                f"optimal_share + poor_share × {self.n_actions - 1 - self.n_well} must be < 1 "
                f"(got {1.0 - rest:g})"
            )
        return self


class Config(ExperimentConfig):
    rate: RateSection = RateSection()
    coverage: CoverageSection = CoverageSection()


# ---------------------------------------------------------------------------------------------
def _bt_labels(rng: np.random.Generator, z: np.ndarray) -> np.ndarray:
    """y ~ Bernoulli(σ(z)) as floats."""
    return (rng.random(z.shape) < 1.0 / (1.0 + np.exp(-z))).astype(float)


def rate_rows(cfg: RateSection, seed: int) -> list[dict[str, Any]]:
    """Rows of the rate part: bt-mle sigma_error / sq_sigma_error and asymptotic sq_sigma_error."""
    rng = np.random.default_rng([seed, 1])
    d = cfg.dim
    u = rng.standard_normal(d)
    theta = cfg.theta_norm * u / np.linalg.norm(u)
    rows = []
    for n in cfg.n_grid:
        x = rng.standard_normal((cfg.reps, n, d)) - rng.standard_normal((cfg.reps, n, d))
        y = _bt_labels(rng, x @ theta)
        est = bt_mle(x, y)
        sigma = np.einsum("rnd,rne->rde", x, x) / n
        err = sigma_norm(est - theta, sigma)
        asym = bt_asymptotic_sq_error(x, np.broadcast_to(theta, (cfg.reps, d)))
        rows.append(ci_row("bt-mle", "sigma_error", err, seed=seed, n=n))
        rows.append(ci_row("bt-mle", "sq_sigma_error", err**2, seed=seed, n=n))
        rows.append(ci_row("asymptotic", "sq_sigma_error", asym, seed=seed, n=n))
    return rows


def coverage_rewards(cfg: CoverageSection) -> np.ndarray:
    """r(a*=0) = 1, r(1) = 0.8, r(2..K−1) evenly from 0.7 down to 0.3; times ``reward_scale``."""
    k = cfg.n_actions
    r = np.empty(k)
    r[0], r[1] = 1.0, 0.8
    r[2:] = np.linspace(0.7, 0.3, k - 2)
    return cfg.reward_scale * r


def coverage_weights(cfg: CoverageSection) -> np.ndarray:
    """Behaviour distribution over actions: a* gets ``optimal_share``, each poorly covered action
    ``poor_share``, the well-covered actions 1..n_well share the rest equally."""
    k, m = cfg.n_actions, cfg.n_well
    w = np.full(k, cfg.poor_share)
    w[0] = cfg.optimal_share
    w[1 : m + 1] = (1.0 - cfg.optimal_share - cfg.poor_share * (k - 1 - m)) / m
    return w / w.sum()


def coverage_rows(cfg: CoverageSection, seed: int) -> list[dict[str, Any]]:
    """Rows of the coverage part: suboptimality of greedy and pessimistic; bound; violations."""
    rng = np.random.default_rng([seed, 2])
    k, n, reps = cfg.n_actions, cfg.n, cfg.reps
    r = coverage_rewards(cfg)
    w = coverage_weights(cfg)
    a = rng.choice(k, size=(reps, n), p=w)
    b = rng.choice(k, size=(reps, n), p=w)
    same = a == b
    while same.any():  # redraw the second action from the behaviour until the pair differs
        b[same] = rng.choice(k, size=int(same.sum()), p=w)
        same = a == b
    eye = np.eye(k)
    x = eye[a] - eye[b]
    y = _bt_labels(rng, r[a] - r[b])
    est = bt_mle(x, y, lam=cfg.lam)
    cov = np.einsum("rnd,rne->rde", x, x) / n + cfg.lam * eye
    inv = np.linalg.inv(cov)
    counts = (eye[a] + eye[b]).sum(axis=1)  # (reps, k): how often each action was compared
    v = counts / (2.0 * n)  # (reps, k): the behaviour's mean feature
    diff = eye[None, :, :] - v[:, None, :]  # (reps, k, k): φ(a) − v
    unc = np.sqrt(np.einsum("rkd,rde,rke->rk", diff, inv, diff))
    gamma = bt_gamma(float(r.max() - r.min()))
    radius = pessimism_radius(d=k - 1, n=n, gamma=gamma, delta=cfg.delta, lam=cfg.lam,
                              b=float(np.linalg.norm(r)))  # fmt: skip
    score = np.einsum("rkd,rd->rk", diff, est)
    greedy = score.argmax(axis=1)
    pess = (score - radius * unc).argmax(axis=1)
    sub_g = r.max() - r[greedy]
    sub_p = r.max() - r[pess]
    bound = 2.0 * radius * unc[:, 0]
    return [
        ci_row("greedy", "suboptimality", sub_g, seed=seed, n=n),
        ci_row("pessimistic", "suboptimality", sub_p, seed=seed, n=n),
        ci_row("pessimistic", "bound", bound, seed=seed, n=n),
        ci_row("pessimistic", "bound_violation", (sub_p > bound).astype(float), seed=seed, n=n),
        ci_row("data", "optimal_action_count", counts[:, 0], seed=seed, n=n),
    ]


def run(config: Config, ctx: RunContext | None = None) -> Result:
    """Both parts; the table has columns TABLE_COLUMNS + n."""
    rows = rate_rows(config.rate, config.seed) + coverage_rows(config.coverage, config.seed)
    table = pd.DataFrame(rows)
    return Result(table=table, checks=checks(table, config), figures=figures(table))


# ---------------------------------------------------------------------------------------------
def _sel(table: pd.DataFrame, method: str, metric: str) -> pd.DataFrame:
    return table[(table.method == method) & (table.metric == metric)].sort_values("n")


def checks(table: pd.DataFrame, config: Config) -> list[Check]:
    out: list[Check] = []
    mle = _sel(table, "bt-mle", "sigma_error")
    out.append(
        exponent_check(
            "The Bradley–Terry MLE's error ‖θ̂ − θ*‖_{Σ_D} falls as n^{-1/2}",
            SOURCE, "claim", x=mle.n, y=mle.value, y_se=mle.se, predicted=PREDICTED_EXPONENT,
            alternatives=RIVAL_EXPONENTS, r2_min=R2_MIN, where=f"d = {config.rate.dim}",
        )
    )  # fmt: skip
    sq = _sel(table, "bt-mle", "sq_sigma_error")
    asym = _sel(table, "asymptotic", "sq_sigma_error")
    claim_t = (
        "At the largest n the MLE's mean squared Σ_D-error equals the asymptotic tr(Σ_D I⁻¹)/n"
    )
    if sq.empty or asym.empty:
        out.append(inconclusive(claim_t, SOURCE, "theory", "no rate rows in the table"))
    else:
        m, p = sq.iloc[-1], asym.iloc[-1]
        out.append(z_check(claim_t, SOURCE, "theory", measured=m.value, measured_se=m.se,
                           predicted=p.value, predicted_se=p.se, where=f"n = {int(m.n)}"))  # fmt: skip
    g = _sel(table, "greedy", "suboptimality")
    p = _sel(table, "pessimistic", "suboptimality")
    claim_c = "With poor coverage of the optimal action, the greedy MLE policy is more suboptimal "
    claim_c += "than the pessimistic (LCB) policy"
    if g.empty or p.empty:
        out.append(inconclusive(claim_c, SOURCE, "claim", "no coverage rows in the table"))
    else:
        out.append(difference_check(claim_c, SOURCE, "claim", a=g.value.iloc[0], a_se=g.se.iloc[0],
                                    b=p.value.iloc[0], b_se=p.se.iloc[0], min_effect=MIN_GAP,
                                    where=f"n = {int(g.n.iloc[0])}"))  # fmt: skip
    viol = _sel(table, "pessimistic", "bound_violation")
    claim_b = "The pessimistic policy stays under its bound 2Γ‖φ(a*) − v‖ except with probability δ"
    if viol.empty:
        out.append(inconclusive(claim_b, SOURCE, "claim", "no coverage rows in the table"))
    else:
        out.append(bound_check(claim_b, SOURCE, "claim", value=viol.value.iloc[0],
                               value_se=viol.se.iloc[0], bound=config.coverage.delta,
                               where="value = fraction of data sets over the bound"))  # fmt: skip
    return out


def figures(table: pd.DataFrame) -> dict[str, Any]:
    import matplotlib.pyplot as plt

    figs: dict[str, Any] = {}
    mle = _sel(table, "bt-mle", "sq_sigma_error")
    asym = _sel(table, "asymptotic", "sq_sigma_error")
    if not mle.empty:
        fig, ax = plt.subplots(figsize=(5, 3.6))
        ax.errorbar(mle.n, mle.value, yerr=1.96 * mle.se, fmt="o", label="MLE (measured)")
        ax.plot(asym.n, asym.value, "-", label="tr(Σ_D I⁻¹)/n (asymptotic)")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("comparisons n")
        ax.set_ylabel("E‖θ̂ − θ*‖²_{Σ_D}")
        ax.set_title("Bradley–Terry MLE error")
        ax.legend()
        fig.tight_layout()
        figs["mle_rate"] = fig
    rows = [_sel(table, m, "suboptimality") for m in ("greedy", "pessimistic")]
    if all(not r.empty for r in rows):
        fig, ax = plt.subplots(figsize=(5, 3.6))
        vals = [r.value.iloc[0] for r in rows]
        errs = [1.96 * r.se.iloc[0] for r in rows]
        ax.bar(["greedy MLE", "pessimistic"], vals, yerr=errs, color=["tab:red", "tab:blue"])
        ax.set_ylabel("suboptimality r(a*) − r(â)")
        bound = _sel(table, "pessimistic", "bound")
        ttl = "poor coverage of a*"
        if not bound.empty:
            ttl += f" (pessimistic bound: {bound.value.iloc[0]:.3g})"
        ax.set_title(ttl)
        fig.tight_layout()
        figs["coverage"] = fig
    return figs


def headline(table: pd.DataFrame, config: Config) -> dict[str, float]:
    out = {}
    for method in ("greedy", "pessimistic"):
        s = _sel(table, method, "suboptimality")
        if not s.empty:
            out[f"{method}_suboptimality"] = float(s.value.iloc[0])
    mle = _sel(table, "bt-mle", "sigma_error")
    if not mle.empty:
        out["mle_error_at_largest_n"] = float(mle.value.iloc[-1])
    return out


def label(config: Config) -> str:
    return f"Bradley–Terry MLE, d = {config.rate.dim}; tabular LCB, K = {config.coverage.n_actions}"


EXPERIMENT = register_experiment(
    Experiment(
        name=NAME,
        claim="The Bradley–Terry reward MLE converges at rate sqrt(d/n) in the data-covariance "
        "norm, and under poor coverage a pessimistic (lower-confidence-bound) policy beats the "
        "greedy one and stays under its suboptimality bound.",
        source=SOURCE,
        chapter=Chapter.ALIGNMENT.value,
        config_cls=Config,
        run=run,
        checks=checks,
        figures=figures,
        headline=headline,
        label=label,
        formula="‖θ̂ − θ*‖_{Σ_D} ≲ sqrt(d/(γ²n)); SubOpt(π_LCB) ≤ 2Γ‖φ(a*) − v‖_{(Σ_D+λI)⁻¹}",
        key_figure="coverage",
    )
)
