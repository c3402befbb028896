"""Phase diagrams and line plots of a sweep, drawn from the cells table alone.

- every pair of axes: a heat map of each metric (mean over seeds, and over any other axes), each
  square annotated with the fraction of seeds whose claims hold, plus a heat map of that fraction;
- one axis: each metric against the axis, mean over seeds with a 95% interval
  (mean ± 1.96·sd/√n over seeds), plus the fraction of seeds whose claims hold.

Grey squares are failed cells or non-finite values.
"""

from __future__ import annotations

import itertools
import json
import math
import re
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["sweep_figures", "phase_diagram", "axis_labels", "norm_value", "MAX_METRICS"]

#: at most this many metrics get figures (the cells table holds them all)
MAX_METRICS = 12
_ANNOTATE_MAX = 14  # annotate squares when both sides have at most this many values


def norm_value(v: Any) -> str:
    """A grid value as text, equal for a value and its stored form (5, 5.0 and "5" -> "5")."""
    if v is None or v is pd.NA or (isinstance(v, float) and math.isnan(v)):
        return "null"
    if isinstance(v, (bool, np.bool_)):
        return "true" if v else "false"
    if isinstance(v, (int, float, np.integer, np.floating)):
        f = float(v)
        if f.is_integer() and abs(f) < 1e15:
            return str(int(f))
        return f"{f:.12g}"
    if isinstance(v, str):
        return v
    return json.dumps(v, default=str)


def axis_labels(values: list[Any]) -> list[str]:
    return [norm_value(v) for v in values]


def _numeric(values: list[Any]) -> bool:
    return all(
        isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool)
        for v in values
    )


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("_") or "metric"


def _norm_col(s: pd.Series) -> pd.Series:
    return s.map(norm_value)


def _log_scale(vals: np.ndarray) -> bool:
    v = vals[np.isfinite(vals)]
    return bool(len(v) > 1 and (v > 0).all() and v.max() / v.min() > 30)


def _ticks(axis: Any, labels: list[str], *, rotate: bool) -> None:
    """One tick per grid value, or at most 20 evenly spaced ones (labelled by value) when more."""
    from matplotlib.ticker import FuncFormatter, MaxNLocator

    if len(labels) <= 25:
        axis.set_ticks(range(len(labels)), labels)
    else:
        axis.set_major_locator(MaxNLocator(20, integer=True))
        axis.set_major_formatter(FuncFormatter(
            lambda v, _: labels[int(round(v))] if 0 <= round(v) < len(labels) else ""
        ))  # fmt: skip
    if rotate:
        for t in axis.get_ticklabels():
            t.set_rotation(45)


def phase_diagram(
    cells: pd.DataFrame,
    *,
    x: str,
    y: str,
    x_values: list[Any],
    y_values: list[Any],
    metric: str | None,
    title: str = "",
) -> Any:
    """A heat map of ``metric`` (mean over rows per square) over axes ``x`` (columns) and ``y``.

    ``metric=None`` draws the fraction of seeds whose claims hold.  Each square is annotated with
    its value and, when the cells have checks, ``k/n`` seeds whose claims hold.
    """
    import matplotlib.pyplot as plt
    from matplotlib.colors import LogNorm, Normalize

    xl, yl = axis_labels(x_values), axis_labels(y_values)
    df = cells.assign(_x=_norm_col(cells[x]), _y=_norm_col(cells[y]))
    ok = df["claims_ok"]
    df = df.assign(_hold=ok.fillna(False).astype(float), _verdict=ok.notna().astype(float))
    grid = np.full((len(yl), len(xl)), np.nan)
    hold = np.zeros_like(grid)
    verdicts = np.zeros_like(grid)
    xi = {v: i for i, v in enumerate(xl)}
    yi = {v: i for i, v in enumerate(yl)}
    keys = ["_y", "_x"]
    counts = df.groupby(keys, sort=False)[["_hold", "_verdict"]].sum()
    if metric is not None:  # mean over complete cells; any non-finite value greys the square
        done = df[df["status"] == "complete"]
        vals = pd.to_numeric(done[metric], errors="coerce").astype(float)
        agg = done.assign(_v=vals, _bad=~np.isfinite(vals)).groupby(keys, sort=False)
        means, bad = agg["_v"].mean(), agg["_bad"].sum()
    for (yv, xv), row in counts.iterrows():
        if yv not in yi or xv not in xi:
            continue
        i, j = yi[yv], xi[xv]
        hold[i, j], verdicts[i, j] = row["_hold"], row["_verdict"]
        if metric is None:
            grid[i, j] = hold[i, j] / verdicts[i, j] if verdicts[i, j] > 0 else np.nan
        elif (yv, xv) in means.index and bad[(yv, xv)] == 0:
            grid[i, j] = means[(yv, xv)]
    w, h = min(max(4.8, 2.2 + 0.65 * len(xl)), 13), min(max(3.6, 1.8 + 0.45 * len(yl)), 10)
    fig, ax = plt.subplots(figsize=(w, h))
    cmap = plt.get_cmap("viridis" if metric is not None else "RdYlGn").with_extremes(bad="#bbbbbb")
    finite = grid[np.isfinite(grid)]
    if metric is None:
        norm: Any = Normalize(0.0, 1.0)
    elif _log_scale(grid):
        norm = LogNorm(finite.min(), finite.max())
    elif len(finite):
        lo, hi = float(finite.min()), float(finite.max())
        norm = Normalize(lo, hi if hi > lo else lo + 1e-12)
    else:
        norm = Normalize(0.0, 1.0)
    im = ax.imshow(np.ma.masked_invalid(grid), origin="lower", aspect="auto", cmap=cmap, norm=norm)
    _ticks(ax.xaxis, xl, rotate=max(map(len, xl), default=0) > 4)
    _ticks(ax.yaxis, yl, rotate=False)
    ax.set_xlabel(x)
    ax.set_ylabel(y)
    label = metric if metric is not None else "fraction of seeds whose claims hold"
    fig.colorbar(im, ax=ax, label=label)
    if len(xl) <= _ANNOTATE_MAX and len(yl) <= _ANNOTATE_MAX:
        for i, j in itertools.product(range(len(yl)), range(len(xl))):
            parts = []
            if metric is not None and np.isfinite(grid[i, j]):
                parts.append(f"{grid[i, j]:.3g}")
            if verdicts[i, j] > 0:
                parts.append(f"{int(hold[i, j])}/{int(verdicts[i, j])} ✓")
            if parts:
                shade = norm(grid[i, j]) if np.isfinite(grid[i, j]) else 0.5
                color = "white" if (metric is not None and shade < 0.5) else "black"
                ax.text(j, i, "\n".join(parts), ha="center", va="center", fontsize=7, color=color)
    notes = []
    if (
        metric is not None
        and verdicts.any()
        and len(xl) <= _ANNOTATE_MAX
        and len(yl) <= _ANNOTATE_MAX
    ):
        notes.append("k/n ✓: seeds whose claims hold")
    if not np.isfinite(grid).all():
        notes.append("grey: failed cells or non-finite values")
    if notes:
        title += "\n" + "; ".join(notes)
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    return fig


def _line(cells: pd.DataFrame, axis: str, values: list[Any], metric: str, title: str) -> Any:
    """``metric`` against ``axis``: mean over seeds with a 95% interval."""
    from fmtheory.report.plots import line_plot

    labels = axis_labels(values)
    numeric = _numeric(values)
    pos = {
        lab: (float(v) if numeric else i)
        for i, (lab, v) in enumerate(zip(labels, values, strict=True))
    }
    df = cells[cells["status"] == "complete"].assign(_x=_norm_col(cells[axis]))
    rows = []
    for lab, g in df.groupby("_x", sort=False):
        v = pd.to_numeric(g[metric], errors="coerce").to_numpy(float)
        v = v[np.isfinite(v)]
        if lab not in pos or not len(v):
            continue
        m = float(v.mean())
        half = 1.96 * float(v.std(ddof=1)) / math.sqrt(len(v)) if len(v) > 1 else 0.0
        rows.append({"method": "mean over seeds (95% CI)", axis: pos[lab], "metric": metric,
                     "value": m, "ci_low": m - half, "ci_high": m + half})  # fmt: skip
    table = pd.DataFrame(rows, columns=["method", axis, "metric", "value", "ci_low", "ci_high"])
    logy = _log_scale(table["value"].to_numpy(float)) and bool((table["ci_low"] > 0).all())
    fig = line_plot(table, x=axis, metric=metric, title=title, logy=logy,
                    styles={"mean over seeds (95% CI)": {"marker": "o", "color": "black"}})  # fmt: skip
    ax = fig.axes[0]
    if not numeric:
        ax.set_xticks(range(len(labels)), labels)
    return fig


def _hold_line(cells: pd.DataFrame, axis: str, values: list[Any], title: str) -> Any:
    import matplotlib.pyplot as plt

    labels = axis_labels(values)
    numeric = _numeric(values)
    df = cells.assign(_x=_norm_col(cells[axis]))
    xs, fr = [], []
    for i, (lab, v) in enumerate(zip(labels, values, strict=True)):
        g = df[df["_x"] == lab]["claims_ok"].dropna()
        if len(g):
            xs.append(float(v) if numeric else i)
            fr.append(float(g.astype(bool).mean()))
    fig, ax = plt.subplots(figsize=(7, 3.2))
    ax.plot(xs, fr, marker="o", color="tab:green")
    ax.set_ylim(-0.05, 1.05)
    ax.set_xlabel(axis)
    ax.set_ylabel("fraction of seeds\nwhose claims hold")
    if not numeric:
        ax.set_xticks(range(len(labels)), labels)
    ax.grid(alpha=0.3)
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    return fig


def sweep_figures(cells: pd.DataFrame, spec: dict[str, Any]) -> dict[str, Any]:
    """Every figure of a sweep, by file name (without .png), from the cells table and its spec."""
    axes = [(a["key"], list(a["values"])) for a in spec["grid"]["axes"]]
    metrics = [m for m in spec.get("metrics", []) if m in cells.columns][:MAX_METRICS]
    has_checks = bool(cells["claims_ok"].notna().any()) if len(cells) else False
    target = spec.get("target", "")
    # cells of an experiment always have a seed; a formula only when it is Monte Carlo
    seeded = spec["grid"].get("seeds") is not None or spec.get("kind") != "theory"
    out: dict[str, Any] = {}
    if len(axes) == 1:
        ((key, values),) = axes
        for m in metrics:
            out[f"line_{_safe(m)}"] = _line(cells, key, values, m, f"{target}: {m} vs {key}")
        if has_checks:
            out["line_claims_hold"] = _hold_line(cells, key, values, f"{target}: checks vs {key}")
    for (i, (kx, vx)), (j, (ky, vy)) in itertools.combinations(enumerate(axes), 2):
        others = [k for n, (k, _) in enumerate(axes) if n not in (i, j)]
        over = ", ".join((["seeds"] if seeded else []) + others)
        suffix = "" if len(axes) == 2 else f"__{_safe(ky)}_vs_{_safe(kx)}"
        for m in metrics:
            out[f"heatmap_{_safe(m)}{suffix}"] = phase_diagram(
                cells, x=kx, y=ky, x_values=vx, y_values=vy, metric=m,
                title=f"{target}: {m}" + (f" (mean over {over})" if over else ""),
            )  # fmt: skip
        if has_checks:
            out[f"heatmap_claims_hold{suffix}"] = phase_diagram(
                cells, x=kx, y=ky, x_values=vx, y_values=vy, metric=None,
                title=f"{target}: fraction of seeds whose claims hold"
                + (f" (over {over})" if over else ""),
            )  # fmt: skip
    return out
