"""Self-contained HTML reports: figures embedded as base64 PNG, the checks, the summary table."""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path
from typing import Any

import pandas as pd

from fmtheory.atomic import write_bytes
from fmtheory.contract import KINDS, Check, counts_text, verdict

__all__ = [
    "checks_table_html",
    "figure_png",
    "ordered_checks",
    "render_report",
    "summary_table",
    "write_figures",
]

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;max-width:1100px;margin:2em auto;
padding:0 1em;color:#222}
h1{font-size:1.5em}h2{font-size:1.2em;margin-top:2em}
table{border-collapse:collapse;font-size:.85em;margin:.5em 0}
td,th{border:1px solid #ccc;padding:.25em .5em;text-align:right}th{background:#f4f4f4}
td.l,th.l{text-align:left}
.holds{background:#e6f4ea}.fails{background:#fce8e6}.inconclusive{background:#fff4d6}
.na{background:#f1f3f4}.stale{background:#fff4d6;border:1px solid #e0b000;padding:.5em}
.verdict{font-size:1.1em;padding:.2em .5em;border:1px solid #999}
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


_STATUS_TEXT = {
    "holds": "✓ holds",
    "fails": "✗ FAILS",
    "inconclusive": "? inconclusive",
    "n/a": "– n/a",
}
_STATUS_CLASS = {"holds": "holds", "fails": "fails", "inconclusive": "inconclusive", "n/a": "na"}


def ordered_checks(checks: list[Check]) -> list[Check]:
    """Claim checks first, then theory, then sanity (stable within a kind)."""
    return sorted(checks, key=lambda c: KINDS.index(c.kind))


def checks_table_html(checks: list[Check]) -> str:
    """The checks as an HTML table, claim checks first; the status is written, not only coloured."""
    rows = []
    for c in ordered_checks(checks):
        note = f"<br><small>{html.escape(c.why)}</small>" if c.why else ""
        rows.append(
            f"<tr class='{_STATUS_CLASS[c.status]}'><td class='l'>{html.escape(c.kind)}</td>"
            f"<td class='l'>{html.escape(c.claim)}</td>"
            f"<td class='l'>{html.escape(c.source)}</td><td>{_fmt(c.predicted)}</td>"
            f"<td>{_fmt(c.measured)}</td><td class='l'>{html.escape(c.tolerance)}</td>"
            f"<td><b>{_STATUS_TEXT[c.status]}</b>{note}</td></tr>"
        )
    head = (
        "<tr><th class='l'>kind</th><th class='l'>claim</th><th class='l'>source</th>"
        "<th>predicted</th><th>measured</th><th class='l'>tolerance (fixed before the run)</th>"
        "<th>status</th></tr>"
    )
    return f"<table>{head}{''.join(rows)}</table>"


def summary_table(table: pd.DataFrame, max_rows: int = 400) -> pd.DataFrame:
    """The result table averaged over seeds, one row per (method, grid point, metric)."""
    vals = [c for c in ("value", "se", "ci_low", "ci_high") if c in table.columns]
    keys = [c for c in table.columns if c not in (*vals, "seed")]
    if not keys:
        return table
    out = table.groupby(keys, sort=False, dropna=False)[vals].mean()
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
    stale: bool = False,
) -> str:
    """One HTML page: claim, headline verdict (claim checks), every check by kind, figures, the
    summary table, config and run metadata (model label, code version)."""
    import yaml

    meta = meta or {}
    v = verdict(checks)
    model = meta.get("model") or ""
    code = meta.get("code") or {}
    parts = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>{html.escape(title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
        f"<p><b>Claim.</b> {html.escape(claim)}<br><b>Source.</b> {html.escape(source)}"
        + (f"<br><b>Model.</b> {html.escape(model)}" if model else "")
        + (f"<br><b>Code.</b> fmtheory {html.escape(str(code.get('fmtheory', '')))}, source "
           f"{html.escape(str(code.get('source_hash', '')))}"
           + (f", commit {html.escape(str(code.get('commit'))[:12])}" if code.get("commit") else "")
           + (" (uncommitted changes)" if code.get("dirty") else "") if code else "")
        + "</p>",
    ]  # fmt: skip
    if stale:
        parts.append("<p class='stale'><b>Stale:</b> this table was made by other code than the "
                     "installed one; rerun with <code>--force</code>.</p>")  # fmt: skip
    parts += [
        f"<h2>Verdict: <span class='verdict {_STATUS_CLASS[v]}'>{_STATUS_TEXT[v]}</span></h2>",
        f"<p>From the claim checks (the trained model against theory or the paper). "
        f"All checks: {html.escape(counts_text(checks))}.</p>",
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
        meta = {k: v for k, v in meta.items() if k != "files"}
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
