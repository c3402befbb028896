"""Self-contained HTML reports: figures embedded as base64 PNG, the checks, the summary table."""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path
from typing import Any

import pandas as pd

from fmtheory.atomic import write_bytes
from fmtheory.experiments.base import Check

__all__ = ["figure_png", "render_report", "checks_table_html", "summary_table", "write_figures"]

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;max-width:1100px;margin:2em auto;
padding:0 1em;color:#222}
h1{font-size:1.5em}h2{font-size:1.2em;margin-top:2em}
table{border-collapse:collapse;font-size:.85em;margin:.5em 0}
td,th{border:1px solid #ccc;padding:.25em .5em;text-align:right}th{background:#f4f4f4}
td.l,th.l{text-align:left}
.holds{background:#e6f4ea}.fails{background:#fce8e6}.na{background:#f1f3f4}
img{max-width:100%;border:1px solid #eee}
pre{background:#f7f7f7;padding:.6em;overflow:auto;font-size:.8em}
"""


def figure_png(fig: Any, dpi: int = 110) -> bytes:
    """A matplotlib figure as PNG bytes."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    return buf.getvalue()


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return html.escape(str(v))


def checks_table_html(checks: list[Check]) -> str:
    rows = []
    for c in checks:
        verdict, cls = {True: ("holds", "holds"), False: ("FAILS", "fails")}.get(
            c.holds, ("n/a", "na")
        )
        rows.append(
            f"<tr class='{cls}'><td class='l'>{html.escape(c.claim)}</td>"
            f"<td class='l'>{html.escape(c.source)}</td><td>{_fmt(c.predicted)}</td>"
            f"<td>{_fmt(c.measured)}</td><td class='l'>{html.escape(c.tolerance)}</td>"
            f"<td><b>{verdict}</b></td></tr>"
        )
    head = (
        "<tr><th class='l'>claim</th><th class='l'>source</th><th>predicted</th>"
        "<th>measured</th><th class='l'>tolerance (fixed before the run)</th><th>verdict</th></tr>"
    )
    return f"<table>{head}{''.join(rows)}</table>"


def summary_table(table: pd.DataFrame, max_rows: int = 400) -> pd.DataFrame:
    """The result table averaged over seeds, one row per (method, grid point, metric)."""
    keys = [c for c in table.columns if c not in ("value", "ci_low", "ci_high", "seed")]
    if not keys:
        return table
    out = table.groupby(keys, sort=False, dropna=False)[["value", "ci_low", "ci_high"]].mean()
    return out.reset_index().head(max_rows)


def render_report(
    *,
    title: str,
    claim: str,
    source: str,
    checks: list[Check],
    table: pd.DataFrame,
    figures: dict[str, bytes],
    config: dict[str, Any] | None = None,
    meta: dict[str, Any] | None = None,
) -> str:
    """One HTML page: claim, verdicts, figures, summary table, config."""
    import yaml

    n_hold = sum(c.holds is True for c in checks)
    n_fail = sum(c.holds is False for c in checks)
    parts = [
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>",
        f"<style>{_CSS}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
        f"<p><b>Claim.</b> {html.escape(claim)}<br><b>Source.</b> {html.escape(source)}</p>",
        f"<h2>Checks: {n_hold} hold, {n_fail} fail, {len(checks) - n_hold - n_fail} n/a</h2>",
        checks_table_html(checks),
    ]
    for name, png in figures.items():
        b64 = base64.b64encode(png).decode()
        parts.append(
            f"<h2>{html.escape(name)}</h2><img alt='{html.escape(name)}' "
            f"src='data:image/png;base64,{b64}'>"
        )
    summ = summary_table(table)
    parts.append("<h2>Summary table (mean over seeds)</h2>")
    parts.append(summ.to_html(index=False, float_format=lambda v: f"{v:.4g}", border=0))
    if config is not None:
        parts.append(
            "<h2>Config</h2><pre>" + html.escape(yaml.safe_dump(config, sort_keys=False)) + "</pre>"
        )
    if meta:
        parts.append(
            "<h2>Run</h2><pre>" + html.escape(yaml.safe_dump(meta, sort_keys=False)) + "</pre>"
        )
    parts.append("</body></html>")
    return "\n".join(parts)


def write_figures(figures: dict[str, Any], folder: Path) -> dict[str, bytes]:
    """Write each matplotlib figure as ``folder/NAME.png`` (atomically), close it, return the PNGs."""
    import matplotlib.pyplot as plt

    out = {}
    for name, fig in figures.items():
        png = figure_png(fig)
        write_bytes(Path(folder) / f"{name}.png", png)
        plt.close(fig)
        out[name] = png
    return out
