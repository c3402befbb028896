"""The verdicts of the ``self-consuming`` experiment, from the stored table and the config alone.

Kinds: ``theory`` — a closed form (or Bertrand et al.'s bound) against the simulated loop;
``claim`` — what the survey says about self-consuming loops (collapse, real data, accumulation,
correction, growing sample sizes, tails first) against the simulated loops; ``sanity`` — an
invariant of the code (the categorical MLE never regains a lost token; a growing schedule stays
below the closed form's limit, which the closed-form match already implies).

Tolerances are fixed here, before any run:

* closed form vs simulation: ``|mean − theory| ≤ z_K·SE`` at each of the ``K`` recorded generations,
  ``z_K`` the Bonferroni quantile for a family-wise false-alarm rate :data:`FAMILY_ALPHA`; mean-type
  Gaussian metrics only where ``Var[ln det] ≤`` :data:`HEAVY_TAIL_LOGVAR` (beyond, the mean is
  dominated by rare paths; the median and the log-variance are checked instead);
* comparisons between regimes: the difference's 95% interval (``difference_check``);
* the plateau with a real-data share: an equivalence test, the 95% interval of the paired change
  between generation G/2 and G must lie within ±:data:`PLATEAU_MARGIN` × the distance at G/2.
"""

from __future__ import annotations

import math

import pandas as pd
from scipy.stats import norm

from fmtheory.checks import (
    Z95,
    bound_check,
    difference_check,
    inconclusive,
    not_applicable,
    z_check,
)
from fmtheory.contract import Check
from fmtheory.experiments.self_consuming.config import Config, build_regimes
from fmtheory.experiments.self_consuming.regimes import Regime
from fmtheory.theory import self_consuming as th

__all__ = ["checks", "FAMILY_ALPHA", "HEAVY_TAIL_LOGVAR", "PLATEAU_MARGIN", "PLATEAU_TRANSIENT"]

#: family-wise false-alarm rate of every "simulation matches the closed form" check
FAMILY_ALPHA = 1e-3
#: mean-type Gaussian metrics are compared only where Var[ln det] ≤ this (heavier tails beyond)
HEAVY_TAIL_LOGVAR = 0.5
#: plateau: |distance(G) − distance(G/2)| must stay within this fraction of distance(G/2)
PLATEAU_MARGIN = 0.1
#: plateau: tested only once the transient κ^(G − G/2) has decayed below this
PLATEAU_TRANSIENT = 0.01

_CLOSED_FORMS = {
    "log_var_ratio": ("E[ln det(Σ_n Σ⁻¹)] = Σ_i [E ln det Wishart − d ln k_i] "
                      "(= n[ψ((M−1)/2) − ln((M−1)/2)] for d = 1)",
                      "stl-gaussian-logvar; survey §5.4"),
    "log_var_ratio_var": ("Var[ln det(Σ_n Σ⁻¹)] = Σ_i Σ_j ψ'((n_i − j)/2)",
                          "stl-gaussian-logvar-variance; survey §5.4"),
    "mean_sq_err": ("E||μ_n − μ||² follows the closed form (nσ²/M for the unbiased refit)",
                    "stl-gaussian-mean-drift / stl-gaussian-mix-mean-mse; survey §5.4"),
    "var_ratio": ("E[σ_n²]/σ² = 1 (unbiased: martingale) or ((M−1)/M)^n (MLE)",
                  "stl-gaussian-mle-variance; survey §5.4"),
    "w2_sq": ("exact E[W2²(fitted Gaussian, real Gaussian)]",
              "stl-gaussian-expected-w2sq; Dowson & Landau 1982"),
    "distance": ("E||ŵ_n − w*||² = σ²d/(T−d−1)·Σ_i 1/c_i (replace) or Σ_i c_i/C_i² "
                 "(accumulate): linear growth vs bounded",
                 "stl-linreg-replace / stl-linreg-accumulate; Gerstgrasser et al. 2024"),
    "model_variance": ("variance of the refitted KDE follows E[v_i] = (n_i−1)/n_i (E[v_{i−1}] + h²)",
                       "stl-kde-variance (derived)"),
    "missing_mass": ("categorical MLE: mass of unseen tokens at generation 1 = "
                     "Σ_i p_i (1 − p_i)^(n0·L)", "stl-zipf-missing-mass; Dohmatob et al. 2024"),
}  # fmt: skip


def _sel(table: pd.DataFrame, regime: str | None, metric: str, method: str | None = None):
    if regime is None:
        return table.iloc[0:0]
    df = table[(table["regime"] == regime) & (table["metric"] == metric)]
    df = df[df["method"] == method] if method is not None else df[df["method"] != "theory"]
    return df


def _one(table: pd.DataFrame, regime: str | None, metric: str, method: str | None = None):
    """The generation-free row (or the last generation's row) of (regime, metric, method)."""
    df = _sel(table, regime, metric, method)
    if df.empty:
        return None
    if df["generation"].notna().any():
        df = df[df["generation"].notna()].sort_values("generation")
    return df.iloc[-1]


def _main_method(config: Config) -> str | None:
    return "token-lm" if config.model == "neural" else None


# ---------------------------------------------------------------------------------------------
def _closed_form_check(
    table: pd.DataFrame, config: Config, reg: Regime, metric: str
) -> Check | None:
    claim, source = _CLOSED_FORMS[metric]
    claim = f"[{reg.label}] {claim}"
    theory = _sel(table, reg.label, metric, "theory").dropna(subset=["generation"])
    method = "categorical-mle" if metric == "missing_mass" else None
    sim = _sel(table, reg.label, metric, method).dropna(subset=["generation"])
    if config.model == "neural" and method is None:
        sim = sim[sim["method"] == "token-lm"]
    if theory.empty or sim.empty:
        return None
    note = ""
    keep = None
    if config.model == "gaussian" and config.gaussian.fit_covariance and metric in (
        "mean_sq_err", "var_ratio", "w2_sq"
    ):  # fmt: skip
        s, n0 = config.gaussian, config.sizes().n0

        def keep(g: int) -> bool:
            v = th.gaussian_logvar_variance(M=n0, generation=g, dim=s.dim, power=reg.power)
            return v <= HEAVY_TAIL_LOGVAR

        note = f"; generations with Var[ln det] ≤ {HEAVY_TAIL_LOGVAR:g} only (heavier tails beyond)"
    m = sim.merge(theory[["generation", "value"]], on="generation", suffixes=("", "_theory"))
    if keep is not None:
        m = m[[keep(int(g)) for g in m["generation"]]]
    if m.empty:
        return not_applicable(claim, source, "theory", "no recorded generation qualifies" + note)
    k = len(m)
    zc = float(norm.ppf(1 - FAMILY_ALPHA / (2 * k)))
    diff = (m["value"] - m["value_theory"]).abs()
    z = diff / m["se"].where(m["se"] > 0)
    z = z.where(diff > 1e-9 * (1 + m["value_theory"].abs()), 0.0).fillna(math.inf)
    w = m.loc[z.idxmax()]
    return z_check(claim, source, "theory", measured=float(w["value"]),
                   measured_se=float(w["se"]) if math.isfinite(w["se"]) else math.nan,
                   predicted=float(w["value_theory"]), z=zc,
                   where=f"worst of {k} recorded generations: {int(w['generation'])}; Bonferroni, "
                         f"family-wise {FAMILY_ALPHA:g}{note}")  # fmt: skip


def _bertrand_check(table: pd.DataFrame, config: Config, reg: Regime) -> Check:
    """Bertrand et al.'s sufficient condition κ_B = λ_eff(1 + Lε/α) < 1 for the refitted mean.

    With the covariance fixed, ``∇²_μ log p = −Σ⁻¹`` does not depend on x (L = 0) and the model is
    well specified (ε = 0), so κ_B = λ_eff, and the theorem bounds the contraction factor by κ_B
    when κ_B < 1.  When κ_B ≥ 1 the condition fails and the theorem says nothing: n/a.
    """
    lam = (1.0 - reg.real_fraction) / reg.real_fraction
    claim = (f"[{reg.label}] Bertrand et al.'s bound: with κ_B = λ_eff(1 + Lε/α) < 1 (λ = {lam:.3g}; "
             "Σ fixed: L = 0, ε = 0) the refitted mean contracts by at most κ_B per generation")  # fmt: skip
    source = "Bertrand et al. 2024 Thm 1 (survey Thm 5.4); λ_eff with Gillman et al. 2024's π_γ"
    if config.gaussian.fit_covariance:
        return not_applicable(claim, source, "theory",
                              "with a refitted covariance ∇²_θ log p_θ(x) is quadratic in x (no "
                              "finite L): set gaussian.fit_covariance=false")  # fmt: skip
    cond = th.bertrand_stability(lam=lam, lipschitz=0.0, eps=0.0,
                                 strong_concavity=1.0 / config.gaussian.std**2, gamma=reg.gamma)  # fmt: skip
    if not cond.stable:
        return not_applicable(claim, source, "theory",
                              f"κ_B = {cond.kappa:.4g} ≥ 1: the sufficient condition is not met, "
                              "so the theorem makes no statement about this regime")  # fmt: skip
    row = _one(table, reg.label, "contraction")
    if row is None:
        return inconclusive(claim, source, "theory", "no contraction estimate in the table")
    return bound_check(claim, source, "theory", value=float(row["value"]), value_se=float(row["se"]),
                       bound=cond.kappa, where="κ̂: pooled regression of e_(t+1) on e_t")  # fmt: skip


def _compare(table: pd.DataFrame, claim: str, source: str, lower: str, higher: str,
             method: str | None, g_last: int) -> Check | None:  # fmt: skip
    """Claim: the final distance of regime ``lower`` is below that of ``higher``."""
    lo, hi = _one(table, lower, "distance", method), _one(table, higher, "distance", method)
    if lo is None or hi is None:
        return None
    return difference_check(f"{claim} ({lower} vs {higher}, generation {g_last})", source, "claim",
                            a=float(hi["value"]), a_se=float(hi["se"]), b=float(lo["value"]),
                            b_se=float(lo["se"]), z=Z95,
                            where=f"a = distance({higher}), b = distance({lower}), independent "
                                  "regimes")  # fmt: skip


def _plateau_check(table: pd.DataFrame, config: Config, label: str) -> Check:
    """Equivalence test: with a real share the distance is stationary once the transient is over."""
    sizes = config.sizes()
    row = _one(table, label, "distance_plateau_change")
    half = int(row["from_generation"]) if row is not None else sizes.generations // 2
    claim = (f"[{label}] with a real-data share the loop is stable: the distance to the real "
             f"distribution at generation {sizes.generations} is within ±{PLATEAU_MARGIN:g}× that "
             f"at generation {half}")  # fmt: skip
    source = "Bertrand et al. 2024 (survey Thm 5.4)"
    tol = (f"equivalence: the paired change's 95% interval inside ±{PLATEAU_MARGIN:g} × distance "
           f"at G/2 (holds), entirely outside (fails), else inconclusive")  # fmt: skip
    kappa = th.mix_contraction(real_fraction=config.compare.real_fraction, gamma=0.0, n=sizes.n0)
    transient = kappa ** (sizes.generations - half)
    base = _sel(table, label, "distance")
    base = base[base["generation"] == half]
    if row is None or base.empty:
        return inconclusive(claim, source, "claim", "no paired change in the table", tolerance=tol)
    if transient > PLATEAU_TRANSIENT:
        return inconclusive(claim, source, "claim",
                            f"κ^(G−G/2) = {transient:.3g} > {PLATEAU_TRANSIENT:g}: the transient "
                            "is not over, run more generations", tolerance=tol)  # fmt: skip
    margin = PLATEAU_MARGIN * abs(float(base["value"].iloc[0]))
    d, se = float(row["value"]), float(row["se"])
    lo, hi = d - Z95 * se, d + Z95 * se
    measured = f"change {d:.4g} ± {se:.2g} (SE), margin ±{margin:.4g}"
    if -margin < lo and hi < margin:
        return Check(claim, source, "claim", 0.0, measured, tol, "holds")
    if lo > margin or hi < -margin:
        return Check(claim, source, "claim", 0.0, measured, tol, "fails")
    return inconclusive(claim, source, "claim",
                        f"the interval [{lo:.4g}, {hi:.4g}] straddles the margin ±{margin:.4g}",
                        predicted=0.0, measured=measured, tolerance=tol)  # fmt: skip


def _bounded_check(table: pd.DataFrame, config: Config, label: str) -> Check:
    """Fu et al.: with n_i ∝ i^k, k > 1, the fully synthetic error has a finite limit.  The measured
    mean at generation G is compared with the closed form's value at generation 10⁶: the closed
    form increases in G, so this is implied by the closed-form match (sanity)."""
    sizes, k = config.sizes(), config.compare.power
    far = 10**6
    if config.model == "linreg":
        s = config.linreg
        metric, sign, what = "distance", 1.0, "E||ŵ_n − w*||²"
        limit = th.linreg_replace_error(d=s.dim, T=sizes.n0, sigma=s.noise_std, generation=far,
                                        power=k)  # fmt: skip
    else:
        s = config.gaussian
        metric, sign, what = "log_var_ratio", -1.0, "−E[ln det(Σ_n Σ⁻¹)]"
        if not s.fit_covariance:
            metric, sign, what = "mean_sq_err", 1.0, "E||μ_n − μ||²"
            limit = th.gaussian_mean_drift(sigma=s.std, M=sizes.n0, generation=far, dim=s.dim,
                                           power=k)  # fmt: skip
        else:
            limit = -th.gaussian_logvar_mean(M=sizes.n0, generation=far, dim=s.dim, power=k,
                                             mle=s.estimator == "mle")  # fmt: skip
    claim = (f"[{label}] with n_i ∝ i^{k:g} a fully synthetic loop stays below the closed form's "
             f"limit: {what} at generation {sizes.generations} ≤ its value at generation 10⁶")  # fmt: skip
    source = "Fu et al. 2024 (survey Cor 5.8)"
    if k <= 1:
        return not_applicable(claim, source, "sanity", "Σ 1/n_i = ∞ for k ≤ 1: no finite limit")
    row = _one(table, label, metric)
    if row is None:
        return inconclusive(claim, source, "sanity", f"no {metric} rows for {label}")
    zc = float(norm.ppf(1 - FAMILY_ALPHA))
    return bound_check(claim, source, "sanity", value=sign * float(row["value"]),
                       value_se=float(row["se"]), bound=limit, z=zc)  # fmt: skip


def _collapse_check(table: pd.DataFrame, config: Config, label: str, reg: Regime) -> Check | None:
    s, sizes = config.gaussian, config.sizes()
    if not s.fit_covariance or not reg.fully_synthetic:
        return None
    g = sizes.generations
    e_log = th.gaussian_logvar_mean(M=sizes.n0, generation=g, dim=s.dim, power=reg.power,
                                    mle=s.estimator == "mle")  # fmt: skip
    approx = math.exp(e_log / s.dim)
    claim = (f"[{label}] collapse: the median of det(Σ_n Σ⁻¹)^(1/d) (σ_n²/σ² in 1-D) falls below "
             f"1 by generation {g}"
             + (" although E[σ_n²] = σ² (martingale)" if s.estimator == "unbiased" else ""))  # fmt: skip
    source = "survey §5.4; Shumailov et al. 2024"
    tol = "95% order-statistic interval of the median entirely below 1 (fails: entirely above)"
    row = _one(table, label, "var_ratio_median")
    if row is None:
        return inconclusive(claim, source, "claim", "no median rows", tolerance=tol)
    measured = f"median {row['value']:.4g}, 95% CI [{row['ci_low']:.4g}, {row['ci_high']:.4g}]"
    pred = f"≈ {approx:.3g} (exp E[ln det]/d)"
    if approx > 0.9:
        return inconclusive(claim, source, "claim", "too few generations for a visible collapse "
                            f"(predicted median ≈ {approx:.3g})", predicted=pred,
                            measured=measured, tolerance=tol)  # fmt: skip
    if row["ci_high"] < 1.0:
        return Check(claim, source, "claim", pred, measured, tol, "holds")
    if row["ci_low"] > 1.0:
        return Check(claim, source, "claim", pred, measured, tol, "fails")
    return inconclusive(claim, source, "claim", "the median's interval contains 1", predicted=pred,
                        measured=measured, tolerance=tol)  # fmt: skip


def _neural_checks(table: pd.DataFrame, config: Config, label: str, reg: Regime) -> list[Check]:
    out: list[Check] = []
    g = config.sizes().generations
    row = _one(table, label, "missing_mass_min_step", "categorical-mle")
    if row is not None and reg.fully_synthetic and reg.mode == "replace":
        out.append(bound_check(
            f"[{label}] categorical MLE: a token once unseen never returns (the missing mass never "
            "decreases along a fully synthetic chain; an invariant of the MLE)",
            "Dohmatob et al. 2024; Shumailov et al. 2024", "sanity", value=float(row["value"]),
            value_se=0.0, bound=-1e-12, below=False,
            where="value = smallest change between recorded generations, every replicate"))  # fmt: skip
    for method, name in (("token-lm", "token model"), ("categorical-mle", "categorical MLE")):
        r = _one(table, label, "tail_minus_head", method)
        if r is None or g < 2:
            continue
        out.append(difference_check(
            f"[{label}] {name}: tails disappear first — at generation {g} the typical tail token "
            f"(rank > {config.neural.head}) has lost more of its probability than the typical head "
            "token (mean ln(q_i/p_i), tail < head)",
            "Dohmatob et al. 2024 ('A tale of tails'); Shumailov et al. 2024", "claim",
            a=float(r["value"]), a_se=float(r["se"]), b=0.0, b_se=0.0,
            where="a = paired mean over replicates of ln(q/p) over the head − over the tail"))  # fmt: skip
    return out


# ---------------------------------------------------------------------------------------------
def checks(table: pd.DataFrame, config: Config) -> list[Check]:
    """Every verdict of a self-consuming run, from ``table`` and ``config`` (see the module)."""
    out: list[Check] = []
    if table.empty:
        return out
    sizes = config.sizes()
    g_last = sizes.generations
    rset = build_regimes(config)
    main = _main_method(config)

    # 1. closed forms, every regime that has one
    for reg in rset.regimes:
        th_metrics = table[(table["regime"] == reg.label) & (table["method"] == "theory")
                           & table["generation"].notna()]["metric"]  # fmt: skip
        for metric in dict.fromkeys(th_metrics):
            if (
                metric == "w2_sq"
                and config.model == "gaussian"
                and not config.gaussian.fit_covariance
            ):
                continue  # Σ fixed: W2² = ||μ − μ*||², already checked as mean_sq_err
            if metric not in _CLOSED_FORMS:
                continue
            c = _closed_form_check(table, config, reg, metric)
            if c is not None:
                out.append(c)

    # 2. contraction factor of the refitted mean / OLS weights
    zc = float(norm.ppf(1 - FAMILY_ALPHA / 2))
    for reg in rset.regimes:
        kappa = _one(table, reg.label, "contraction", "theory")
        k_hat = _one(table, reg.label, "contraction")
        if kappa is None or k_hat is None:
            continue
        out.append(z_check(
            f"[{reg.label}] E[e_(t+1) | e_t] = κ e_t with κ = (1−α)/(1+γ) = λ/(1+λ)/(1+γ) (exact "
            "contraction of the refitted mean)",
            "Bertrand et al. 2024 Gaussian example (survey §5.4, Thm 5.4); Gillman et al. 2024 "
            "correction (Thm 5.6)", "theory", measured=float(k_hat["value"]),
            measured_se=float(k_hat["se"]), predicted=float(kappa["value"]), z=zc,
            where="regression through the origin, pooled, robust SE"))  # fmt: skip

    # 2b. Bertrand et al.'s sufficient condition (Gaussian refit with a real share)
    if config.model == "gaussian":
        for reg in rset.regimes:
            if reg.mode == "replace" and reg.real_fraction > 0 and reg.power == 0:
                out.append(_bertrand_check(table, config, reg))

    # 3. comparisons between regimes (final generation, distance to real)
    syn = rset.synthetic
    drift = _one(table, syn, "distance_change", main)
    if drift is not None and g_last > 1:
        out.append(difference_check(
            "without real data the model drifts away from the real distribution (distance at "
            f"generation {g_last} > at generation 1, {syn})", "survey §5.4; Shumailov et al. 2024",
            "claim", a=float(drift["value"]), a_se=float(drift["se"]), b=0.0, b_se=0.0,
            where="a = paired mean over replicates of distance(G) − distance(1)"))  # fmt: skip
    if syn is not None:
        pairs = [
            (rset.real, "a real-data share keeps the loop closer to the real distribution than "
             "pure self-consumption", "Bertrand et al. 2024 (survey Thm 5.4)"),
            (rset.accumulate, "accumulating data keeps the error below that of replacing it",
             "Gerstgrasser et al. 2024 (survey §5.4)"),
            (rset.growing, f"a sample size growing like i^{config.compare.power:g} keeps a fully "
             "synthetic loop closer than a constant one", "Fu et al. 2024 (survey Cor 5.8)"),
        ]  # fmt: skip
        for label, claim, source in pairs:
            if label is None or label == syn:
                continue
            c = _compare(table, claim, source, label, syn, main, g_last)
            if c is not None:
                out.append(c)
    chain = [rset.real, *rset.corrected] if rset.real else []
    for a, b in zip(chain[:-1], chain[1:], strict=True):
        c = _compare(table, "a stronger correction brings the loop closer to the real distribution",
                     "Gillman et al. 2024 (survey Thm 5.6)", b, a, main, g_last)  # fmt: skip
        if c is not None:
            out.append(c)

    # 4. stability with a real share (exact families); growing sample size stays bounded
    if config.model in ("gaussian", "linreg") and rset.real is not None and g_last >= 4:
        out.append(_plateau_check(table, config, rset.real))
    if config.model in ("gaussian", "linreg") and rset.growing is not None:
        out.append(_bounded_check(table, config, rset.growing))

    # 5. family-specific
    label = rset.synthetic or rset.configured
    reg = next(r for r in rset.regimes if r.label == label)
    if config.model == "gaussian":
        c = _collapse_check(table, config, label, reg)
        if c is not None:
            out.append(c)
    if config.model == "linreg" and rset.accumulate is not None:
        s = config.linreg
        first = th.linreg_replace_error(d=s.dim, T=sizes.n0, sigma=s.noise_std, generation=1)
        row = _one(table, rset.accumulate, "distance")
        if row is not None:
            out.append(bound_check(
                f"[{rset.accumulate}] the error stays bounded by π²/6 times the first generation's "
                f"σ²d/(T−d−1) (generation {g_last})", "Gerstgrasser et al. 2024 (survey §5.4)",
                "claim", value=float(row["value"]), value_se=float(row["se"]),
                bound=(math.pi**2 / 6) * first))  # fmt: skip
    if config.model == "neural":
        out.extend(_neural_checks(table, config, label, reg))
    return out
