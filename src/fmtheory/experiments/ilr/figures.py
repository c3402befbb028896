"""ilr's figures and headline numbers, drawn from the result table alone."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from fmtheory.experiments.ilr.checks import exponent, sweep_cells
from fmtheory.experiments.ilr.config import (
    MINNORM,
    ORE,
    RE,
    TH_FLOOR,
    TH_ORACLE,
    TH_SNR,
    TRANSFORMER,
    TRE,
)

__all__ = ["figures", "headline"]

_STYLES = {
    TRANSFORMER: dict(color="black", lw=2.5, marker="o", ms=4),
    ORE: dict(color="tab:red", marker="^", ms=4),
    TRE: dict(color="tab:orange", marker="v", ms=4),
    RE: dict(color="tab:blue", marker="x", ms=4),
    MINNORM: dict(color="tab:purple", marker="+", ms=5),
    TH_ORACLE: dict(color="tab:red", ls="--", lw=1.5),
    TH_SNR: dict(color="tab:green", ls=":", lw=1.5),
    TH_FLOOR: dict(color="tab:brown", ls="-.", lw=1.5),
}


def _sweep_figure(table: pd.DataFrame, sweep: str, xlabel: str, title: str) -> Any:
    import matplotlib.pyplot as plt

    df = sweep_cells(table, sweep)
    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    for method, g in df.groupby("method", sort=False):
        x = {"rank": g["rank"] / g["context"], "noise": g["noise"], "cond": g["cond"]}[sweep]
        g = g.assign(x=x.to_numpy()).sort_values("x")
        g = g[(g["value"] > 0) & (g["x"] > 0)]
        if not len(g):
            continue
        label = str(method)
        fit = exponent(table, sweep, str(method)) if method in (TRANSFORMER, TH_ORACLE) else None
        if fit is not None and math.isfinite(fit.slope):
            label += f" (exponent {fit.slope:.2f})"
        st = _STYLES.get(str(method), {"color": "tab:gray", "lw": 2, "marker": "s", "ms": 4})
        ax.plot(g["x"], np.sqrt(g["value"]), label=label, **st)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("root error sqrt(E‖ŵ − w‖²)")
    ax.set_title(title)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def _phase_figure(table: pd.DataFrame) -> Any:
    import matplotlib.pyplot as plt

    df = sweep_cells(table, "phase")
    if not len(df):
        return None
    ore = df[df["method"] == TH_ORACLE].pivot_table(index="rank", columns="context", values="value")
    tr = df[df["method"] == TRANSFORMER].pivot_table(
        index="rank", columns="context", values="value"
    )
    emp = df[df["method"] == ORE].pivot_table(index="rank", columns="context", values="value")
    ranks, ctxs = list(ore.index), list(ore.columns)
    lam = _metric_prior_scale(table)
    rel = ore.to_numpy() / (np.array(ranks, dtype=float)[:, None] * lam)  # / tr Λ = r λ
    ratio = tr.to_numpy() / emp.to_numpy()
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.4))
    for ax, data, title, cmap in ((axes[0], rel, "oracle error / prior variance (theory)", "viridis"),
                                  (axes[1], ratio, "transformer error / ORE error", "magma")):  # fmt: skip
        im = ax.imshow(data, origin="lower", aspect="auto", cmap=cmap)
        fig.colorbar(im, ax=ax)
        ax.set_xticks(range(len(ctxs)), [str(int(c)) for c in ctxs])
        ax.set_yticks(range(len(ranks)), [str(int(r)) for r in ranks])
        ax.set_xlabel("context length n")
        ax.set_ylabel("rank r")
        ax.set_title(title, fontsize=10)
        for i, r in enumerate(ranks):
            for j, n in enumerate(ctxs):
                ax.text(j, i, f"{data[i, j]:.2g}", ha="center", va="center", fontsize=7,
                        color="white" if cmap == "magma" else "black")  # fmt: skip
                if r > n:  # even the oracle cannot predict: relative error >= 1 − n/r
                    ax.add_patch(plt.Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, hatch="//",
                                               edgecolor="red", lw=0))  # fmt: skip
        # the line r = n: in column n it separates the ranks r <= n (below) from r > n (above)
        ys = [sum(r <= n for r in ranks) - 0.5 for n in ctxs]
        ax.step(np.arange(len(ctxs) + 1) - 0.5, [*ys, ys[-1]], where="post", color="red", lw=1.5,
                label="r = n")  # fmt: skip
        ax.legend(fontsize=7, loc="upper left")
    fig.suptitle("phase diagram (hatched: r > n, out of reach for any model: relative error >= 1 − n/r)",
                 fontsize=10)  # fmt: skip
    fig.tight_layout()
    return fig


def _metric_prior_scale(table: pd.DataFrame) -> float:
    """λ (= prior_scale²), recovered from the floor rows: floor = (r − n)λ where r > n."""
    f = table[(table["method"] == TH_FLOOR) & (table["rank"] > table["context"])]
    if len(f):
        row = f.iloc[0]
        return float(row["value"]) / float(row["rank"] - row["context"])
    return 1.0


def figures(table: pd.DataFrame) -> dict[str, Any]:
    """Drawn from the table alone: the three sweeps, the phase diagram, the learned prior's
    spectrum, the forward target, the training losses."""
    import matplotlib.pyplot as plt

    from fmtheory.report.plots import line_plot, training_loss_plot

    out: dict[str, Any] = {}
    for sweep, xl, title in (("rank", "r / n", "root error vs r/n"), ("noise", "σ", "root error vs σ"),
                             ("cond", "κ", "root error vs condition number κ")):  # fmt: skip
        if len(sweep_cells(table, sweep)):
            out[f"error_vs_{sweep}"] = _sweep_figure(table, sweep, xl, title)
    ph = _phase_figure(table)
    if ph is not None:
        out["phase_diagram"] = ph
    ev = table[table["metric"] == "prior_eigenvalue"]
    if len(ev):
        fig, ax = plt.subplots(figsize=(6, 3.8))
        for method, g in ev.groupby("method", sort=False):
            st = _STYLES.get(str(method), {"color": "tab:green", "ls": "--"})
            ax.plot(g["k"], g["value"], label=str(method), **st)
        ax.set_xlabel("k")
        ax.set_ylabel("k-th eigenvalue of Cov(ŵ) + σ²C")
        ax.set_title("learned prior: spectrum (the gap marks the rank)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        fig.tight_layout()
        out["learned_prior_spectrum"] = fig
    fw = table[table["metric"] == "forward_mse"]
    if len(fw):
        styles = {
            **_STYLES,
            **{
                m: {"color": "tab:gray", "lw": 2, "marker": "s", "ms": 4}
                for m in fw["method"].unique()
                if str(m).startswith("GPT ")
            },
        }
        out["forward_vs_context"] = line_plot(
            fw, x="context", metric="forward_mse", logy=True, styles=styles,
            title="forward target: (ŷ − y)² from k pairs (base task)", ylabel="squared error")  # fmt: skip
    loss_fig = training_loss_plot(
        table,
        by=["method", "rank", "noise", "cond"],
        label=lambda method, r, s, k: f"{method.split(' ')[0]} r={r:g} σ={s:g} κ={k:g}",
    )
    if loss_fig is not None:
        out["training_loss"] = loss_fig
    return out


def headline(table: pd.DataFrame, config: Any = None) -> dict[str, float]:
    """For sweeps: errors at the base cell and the fitted root-error exponents."""
    df = table[(table["metric"] == "mse_w") & table["sweeps"].str.contains("base", na=False)]

    def get(m: str) -> float:
        v = df[df["method"] == m]["value"]
        return float(v.iloc[0]) if len(v) else math.nan

    out = {"transformer_mse": get(TRANSFORMER), "ore_mse": get(ORE), "tre_mse": get(TRE),
           "theory_mse": get(TH_ORACLE)}  # fmt: skip
    out["transformer_over_ore"] = out["transformer_mse"] / out["ore_mse"]
    for sweep in ("rank", "noise", "cond"):
        out[f"exponent_{sweep}_transformer"] = exponent(table, sweep, TRANSFORMER).slope
        out[f"exponent_{sweep}_oracle"] = exponent(table, sweep, TH_ORACLE).slope
    return out
