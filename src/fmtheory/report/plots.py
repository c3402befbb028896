"""Reusable plots drawn from a tidy result table (method, <x column>, metric, value, ci_low, ci_high)."""

from __future__ import annotations

from typing import Any

import pandas as pd

__all__ = ["line_plot"]


def line_plot(
    table: pd.DataFrame,
    *,
    x: str,
    metric: str,
    title: str = "",
    ylabel: str | None = None,
    logy: bool = False,
    styles: dict[str, dict[str, Any]] | None = None,
    vline: float | None = None,
    vline_label: str = "",
) -> Any:
    """One line per method of ``metric`` against ``x`` (mean over seeds) with its 95% band."""
    import matplotlib.pyplot as plt

    df = table[table["metric"] == metric]
    fig, ax = plt.subplots(figsize=(7, 4.2))
    for method, g in df.groupby("method", sort=False):
        g = g.groupby(x)[["value", "ci_low", "ci_high"]].mean().reset_index().sort_values(x)
        st = dict((styles or {}).get(str(method), {}))
        (line,) = ax.plot(g[x], g["value"], label=str(method), **st)
        ax.fill_between(g[x], g["ci_low"], g["ci_high"], alpha=0.15, color=line.get_color())
    if vline is not None:
        ax.axvline(vline, color="grey", ls=":", lw=1, label=vline_label or None)
    ax.set_xlabel(x)
    ax.set_ylabel(ylabel or metric)
    if logy:
        ax.set_yscale("log")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig
