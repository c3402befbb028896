"""ilr's verdicts, from the result table and the config alone.

Kinds: the oracle MMSE, the high-SNR approximation and the floor against the simulated estimators are
``theory``; the ordering of the classical estimators among themselves is ``theory`` too (a statement
about estimators, checked by simulation); the transformer against TRE, the oracle, the fitted
exponents, the learned prior and the forward GPT are ``claim``; the transformer never beating the
Bayes-optimal oracle is a ``sanity`` invariant.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from fmtheory.checks import Z95, Z_CHECK, exponent_check, fit_power_law, not_applicable, z_check
from fmtheory.contract import Check
from fmtheory.experiments.ilr.config import (
    ESTIMATORS,
    MINNORM,
    ORE,
    RE,
    SOURCE,
    TH_FLOOR,
    TH_ORACLE,
    TH_SNR,
    TRANSFORMER,
    TRE,
    Config,
)

__all__ = ["checks", "cell_table", "exponent", "sweep_cells"]

# Tolerances: constants fixed here, before any run.
MUCH_WORSE = 2.0  # "≫": min(min-norm, RE) >= MUCH_WORSE × TRE
ABOUT = 1.25  # "TRE ≳ transformer": transformer <= ABOUT × TRE
R2_MIN = 0.9  # a fitted exponent is judged only when the log-log fit explains this much
HIGH_SNR_TOL = 0.10  # |ORE / (σ²r/(n−r−1)) − 1| <= HIGH_SNR_TOL (+ Z_CHECK s.e.)
PRIOR_MEAN_TOL = 0.10  # ‖mean ŵ − w0‖ / ‖w0‖
PRIOR_COV_TOL = 0.25  # ‖Cov(ŵ) + σ²C − Σw‖_F / ‖Σw‖_F
GPT_RATIO, GPT_SLACK = 1.2, 0.02  # GPT forward error <= GPT_RATIO × oracle risk + GPT_SLACK
#: exponents closer than this to the predicted one are not a rival hypothesis
RIVAL_GAP = 0.1


def cell_table(table: pd.DataFrame, metric: str = "mse_w") -> pd.DataFrame:
    """One row per (cell, method) of ``metric``: rank, context, noise, cond, sweeps, method, value, se."""
    df = table[table["metric"] == metric]
    return df[["rank", "context", "noise", "cond", "sweeps", "method", "value", "se"]].copy()


def _pivot(table: pd.DataFrame, metric: str = "mse_w") -> tuple[pd.DataFrame, pd.DataFrame]:
    df = cell_table(table, metric)
    idx = ["rank", "context", "noise", "cond"]
    val = df.pivot_table(index=idx, columns="method", values="value", aggfunc="mean")
    se = df.pivot_table(index=idx, columns="method", values="se", aggfunc="mean")
    return val, se


def sweep_cells(table: pd.DataFrame, sweep: str) -> pd.DataFrame:
    df = cell_table(table)
    return df[df["sweeps"].str.split(",").apply(lambda s: sweep in s)]


def _cell_name(idx: tuple) -> str:
    r, n, s, k = idx
    return f"(r={int(r)}, n={int(n)}, σ={s:g}, κ={k:g})"


def _sweep_xy(table: pd.DataFrame, sweep: str, method: str) -> tuple[Any, Any, Any]:
    """x = r/n, σ or κ; y = root error sqrt(E‖ŵ − w‖²) and its standard error (delta method)."""
    df = sweep_cells(table, sweep)
    df = df[df["method"] == method]
    x = {"rank": df["rank"] / df["context"], "noise": df["noise"], "cond": df["cond"]}[sweep]
    y = np.sqrt(df["value"].to_numpy())
    y_se = df["se"].to_numpy() / (2 * np.clip(y, 1e-300, None))
    return x.to_numpy(), y, y_se


def exponent(table: pd.DataFrame, sweep: str, method: str) -> Any:
    """Log-log fit (with its 95% interval) of ``method``'s root error over the cells of ``sweep``."""
    x, y, y_se = _sweep_xy(table, sweep, method)
    return fit_power_law(x, y, y_se if np.all(y_se > 0) else None)


def checks(table: pd.DataFrame, config: Config) -> list[Check]:
    out: list[Check] = []
    val, se = _pivot(table)
    ident = [i for i in val.index if i[0] < i[1]]  # r < n: the prior can be exploited
    beyond = [i for i in val.index if i[0] > i[1]]  # r > n: the floor region

    # (1) ORE vs the oracle MMSE (theory)
    z = {i: abs(val.loc[i, ORE] - val.loc[i, TH_ORACLE])
         / max(math.hypot(se.loc[i, ORE], se.loc[i, TH_ORACLE]), 1e-12) for i in val.index}  # fmt: skip
    w = max(z, key=z.get)
    out.append(z_check(
        "the oracle posterior mean's measured error equals the oracle MMSE "
        "E tr(Λ⁻¹ + σ⁻²UᵀXᵀXU)⁻¹ (theory) at every cell", f"{SOURCE}; Bishop 2006 §3.3", "theory",
        measured=float(val.loc[w, ORE]), measured_se=float(se.loc[w, ORE]),
        predicted=float(val.loc[w, TH_ORACLE]), predicted_se=float(se.loc[w, TH_ORACLE]),
        z=Z_CHECK, where=f"worst of {len(z)} cells: {_cell_name(w)}"))  # fmt: skip

    # (2)-(4) ordering
    out.append(_ordering(
        f"min-norm LS and RE ≫ TRE: min(min-norm, RE) ≥ {MUCH_WORSE}× TRE at every cell with r < n",
        "theory", ident, val, se,
        lambda i: (min(val.loc[i, MINNORM], val.loc[i, RE]) - MUCH_WORSE * val.loc[i, TRE],
                   math.hypot(max(se.loc[i, MINNORM], se.loc[i, RE]), MUCH_WORSE * se.loc[i, TRE])),
        (MINNORM, RE, TRE)))  # fmt: skip
    out.append(_ordering(
        f"TRE ≳ transformer: the transformer's error ≤ {ABOUT}× TRE's at every cell with r < n",
        "claim", ident, val, se,
        lambda i: (ABOUT * val.loc[i, TRE] - val.loc[i, TRANSFORMER],
                   math.hypot(ABOUT * se.loc[i, TRE], se.loc[i, TRANSFORMER])),
        (TRANSFORMER, TRE)))  # fmt: skip
    bad = [i for i in val.index if val.loc[i, TRANSFORMER] < val.loc[i, ORE]
           - Z_CHECK * math.hypot(se.loc[i, TRANSFORMER], se.loc[i, ORE])]  # fmt: skip
    out.append(Check(
        "the transformer never beats the Bayes-optimal oracle (by more than "
        f"{Z_CHECK:g} s.e.)", f"{SOURCE}; Bayes optimality", "sanity", "no cell",
        f"{len(bad)} of {len(val)} cells" + (f", e.g. {_cell_name(bad[0])}" if bad else ""),
        f"transformer ≥ ORE − {Z_CHECK:g} s.e. at every cell", "fails" if bad else "holds"))  # fmt: skip

    # (5)-(9) exponents
    out += _exponent_checks(table)

    # (10) floor
    claim = "for r > n no estimator beats the floor (r − n)λ (transformer included)"
    src_f = f"{SOURCE} (fundamental limit); Ky Fan's minimum principle"
    if not beyond:
        out.append(not_applicable(claim, src_f, "theory", "no cell with r > n in this run"))
    else:
        methods = [TRANSFORMER, *ESTIMATORS]
        margin = {(i, m): (val.loc[i, m] - val.loc[i, TH_FLOOR]) / max(se.loc[i, m], 1e-12)
                  for i in beyond for m in methods}  # fmt: skip
        wm = min(margin, key=margin.get)
        out.append(Check(claim, src_f, "theory", f"≥ {val.loc[wm[0], TH_FLOOR]:.4g} at {_cell_name(wm[0])}",
                         f"{wm[1]}: {val.loc[wm]:.4g} (lowest margin of {len(beyond)} cells × "
                         f"{len(methods)} methods)",
                         f"error ≥ floor − {Z_CHECK:g} s.e. for every method and cell with r > n",
                         "holds" if margin[wm] >= -Z_CHECK else "fails"))  # fmt: skip

    # (11) high-SNR approximation at the smallest noise of the σ sweep (theory)
    claim = "at high SNR the oracle error ≈ σ² r / (n − r − 1) (isotropic x, r < n − 1)"
    snr = [i for i in val.index if TH_SNR in val.columns and np.isfinite(val.loc[i, TH_SNR])]
    snr = [i for i in snr if i[2] > 0]
    if not snr:
        out.append(
            not_applicable(claim, SOURCE, "theory", "no cell with κ = 1, r < n − 1 and σ > 0")
        )
    else:
        i = min(snr, key=lambda c: (c[2], -c[1]))
        approx, emp = val.loc[i, TH_SNR], val.loc[i, ORE]
        dev = abs(emp / approx - 1.0)
        ok = dev <= HIGH_SNR_TOL + Z_CHECK * se.loc[i, ORE] / approx
        out.append(Check(claim, f"{SOURCE}; Anderson 2003 Thm 7.7.1", "theory", float(approx),
                         float(emp), f"|ORE / approx − 1| ≤ {HIGH_SNR_TOL} + {Z_CHECK:g} s.e./approx "
                         f"at {_cell_name(i)} (lowest σ): {dev:.3f}", "holds" if ok else "fails"))  # fmt: skip

    out += _prior_checks(config, table)
    out.append(_gpt_check(config, table))
    return out


def _ordering(claim: str, kind: str, cells: list, val: pd.DataFrame, se: pd.DataFrame,
              margin: Any, methods: tuple[str, ...]) -> Check:  # fmt: skip
    """Every cell's margin (> 0 when the ordering holds) judged by its 95% interval: fails when
    one cell's whole interval is below 0, holds when every interval is above, else inconclusive."""
    src = f"{SOURCE} (ordering of errors)"
    if not cells:
        return not_applicable(claim, src, kind, "no cell with r < n")

    def show(i: tuple) -> str:
        return f"{_cell_name(i)}: " + ", ".join(
            f"{m.split(' ')[0]} {val.loc[i, m]:.3g}" for m in methods
        )

    m = {i: margin(i) for i in cells}
    bad = [i for i in cells if m[i][0] + Z95 * m[i][1] < 0]
    unsure = [i for i in cells if i not in bad and m[i][0] - Z95 * m[i][1] <= 0]
    measured = f"holds at {len(cells) - len(bad) - len(unsure)}/{len(cells)} cells"
    if bad:
        measured += "; fails at " + "; ".join(show(i) for i in bad[:4])
    tol = f"each cell's margin ± {Z95:.2f} s.e. above 0"
    if bad:
        return Check(claim, src, kind, "every cell", measured, tol, "fails")
    if unsure:
        return Check(claim, src, kind, "every cell", measured, tol, "inconclusive",
                     f"the interval straddles the bound at {_cell_name(unsure[0])}")  # fmt: skip
    return Check(claim, src, kind, "every cell", measured, tol, "holds")


def _exponent_checks(table: pd.DataFrame) -> list[Check]:
    """Lu & Yu state the transformer's root error grows linearly in r/n, σ and κ; the oracle's
    (theory) exponent is the rival hypothesis where it differs, and vice versa."""
    out = []
    labels = {"rank": "r/n", "noise": "σ", "cond": "κ"}
    for sweep in ("noise", "rank", "cond"):
        x_lab = labels[sweep]
        xt, yt, set_ = _sweep_xy(table, sweep, TRANSFORMER)
        fo = exponent(table, sweep, TH_ORACLE)
        oracle_ok = math.isfinite(fo.slope) and fo.r2 >= R2_MIN
        rivals = (fo.slope,) if oracle_ok and abs(fo.slope - 1.0) > RIVAL_GAP else ()
        kw = dict(x=xt, y=yt, y_se=set_ if np.all(set_ > 0) else None, r2_min=R2_MIN)
        out.append(exponent_check(
            f"the transformer's root error grows linearly in {x_lab}, as Lu & Yu 2025 state "
            "(log-log exponent 1)", SOURCE, "claim", predicted=1.0, alternatives=rivals,
            where=f"rival: the oracle's exponent {fo.slope:.2f}" if rivals else "", **kw))  # fmt: skip
        if sweep == "noise":
            continue
        claim = f"the transformer's root error grows in {x_lab} like the oracle's (the theory's exponent)"
        if not oracle_ok:
            out.append(not_applicable(claim, f"{SOURCE}; theory: oracle MMSE", "claim",
                                      f"the oracle's error is no power law of {x_lab} here "
                                      f"(R² {fo.r2:.2f} < {R2_MIN}): there is no exponent to match"))  # fmt: skip
            continue
        out.append(exponent_check(
            claim, f"{SOURCE}; theory: oracle MMSE", "claim", predicted=float(fo.slope),
            alternatives=(1.0,) if abs(fo.slope - 1.0) > RIVAL_GAP else (), **kw))  # fmt: skip
    return out


def _metric(table: pd.DataFrame, method: str, metric: str) -> float | None:
    df = table[(table["method"] == method) & (table["metric"] == metric)]
    return float(df["value"].iloc[0]) if len(df) else None


def _prior_checks(config: Config, table: pd.DataFrame) -> list[Check]:
    t = config.task
    where = f"base cell (r={t.rank}, n={t.context}, σ={t.noise_std:g}, κ={t.x_cond:g})"
    m = _metric(table, TRANSFORMER, "prior_mean_rel_err")
    mo = _metric(table, ORE, "prior_mean_rel_err")
    c = _metric(table, TRANSFORMER, "prior_cov_rel_err")
    co = _metric(table, ORE, "prior_cov_rel_err")
    rk = _metric(table, TRANSFORMER, "prior_rank")
    src = f"{SOURCE} (the learned prior); law of total covariance"
    if m is None:
        return [not_applicable("the transformer learned the prior", src, "claim", "no base cell")]
    norm = "‖w0‖" if t.w0_norm > 0 else "sqrt(tr Σw)"

    def st(ok: bool) -> str:
        return "holds" if ok else "fails"

    return [
        Check("the mean of the transformer's ŵ over tasks ≈ w0", src, "claim", 0.0,
              f"‖mean ŵ − w0‖ / {norm} = {m:.4f} (ORE: {mo:.4f}) at the {where}",
              f"≤ {PRIOR_MEAN_TOL}", st(m <= PRIOR_MEAN_TOL)),
        Check("Cov(ŵ) + σ²C ≈ Σw = UΛUᵀ, C = U E_X[(σ²Λ⁻¹ + UᵀXᵀXU)⁻¹] Uᵀ", src, "claim", 0.0,
              f"relative Frobenius error {c:.4f} (ORE: {co:.4f}) at the {where}",
              f"≤ {PRIOR_COV_TOL}", st(c <= PRIOR_COV_TOL)),
        Check("the top-r spectrum of that estimate recovers the rank r (largest spectral gap)",
              src, "claim", t.rank, int(rk), "exact", st(int(rk) == t.rank)),
    ]  # fmt: skip


def _gpt_check(config: Config, table: pd.DataFrame) -> Check:
    n = config.task.context
    name = config.gpt.model.label()
    claim = (f"the GPT forward predictor ({name}) predicts y from n = {n} pairs within "
             f"{GPT_RATIO}× the oracle's forward risk + {GPT_SLACK}")  # fmt: skip
    src = f"{SOURCE}; Garg et al. 2022"
    df = table[(table["metric"] == "forward_mse") & (table["context"] == n)]
    g, o = df[df["method"] == name], df[df["method"] == TH_ORACLE]
    if not len(g):
        return not_applicable(claim, src, "claim", "gpt.enabled = false")
    gv, gse = float(g["value"].iloc[0]), float(g["se"].iloc[0])
    ov, ose = float(o["value"].iloc[0]), float(o["se"].iloc[0])
    from fmtheory.checks import bound_check

    return bound_check(claim, src, "claim", value=gv, value_se=math.hypot(gse, GPT_RATIO * ose),
                       bound=GPT_RATIO * ov + GPT_SLACK, below=True, where="at k = n")  # fmt: skip
