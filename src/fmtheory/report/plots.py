"""Reusable plots drawn from a tidy result table (method, <x column>, metric, value, ci_low, ci_high)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import pandas as pd

__all__ = ["line_plot", "training_loss_plot"]


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


def training_loss_plot(
    table: pd.DataFrame,
    *,
    by: Sequence[str] = ("method",),
    label: Callable[..., str] | None = None,
    ylabel: str = "training loss",
) -> Any | None:
    """The logged training loss against ``step`` (log scale), one line per group of ``by``.

    ``label(*key)`` names a group's line (default: the key's values joined by spaces); the legend
    is drawn only for more than one line.  None when the table has no ``train_loss`` rows.
    """
    import matplotlib.pyplot as plt

    loss = table[table["metric"] == "train_loss"]
    if not len(loss):
        return None
    fig, ax = plt.subplots(figsize=(6.5, 3.8))
    groups = loss.groupby(list(by), sort=False)
    for key, g in groups:
        key = key if isinstance(key, tuple) else (key,)
        name = label(*key) if label else " ".join(str(k) for k in key)
        ax.plot(g["step"], g["value"], lw=1, label=name)
    ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    if groups.ngroups > 1:
        ax.legend(fontsize=7, ncol=2 if groups.ngroups > 6 else 1)
    fig.tight_layout()
    return fig
