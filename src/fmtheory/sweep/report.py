"""A sweep's self-contained ``report.html`` and its ``figures/``, from ``cells.parquet`` alone."""

from __future__ import annotations

import base64
import html
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from fmtheory.atomic import write_text
from fmtheory.report import write_figures
from fmtheory.sweep.cells import SweepCells, read_cells
from fmtheory.sweep.figures import sweep_figures

__all__ = ["render_sweep_report", "write_sweep_report", "summary_by_point"]

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;max-width:1150px;margin:2em auto;
padding:0 1em;color:#222}
h1{font-size:1.5em}h2{font-size:1.2em;margin-top:2em}
table{border-collapse:collapse;font-size:.8em;margin:.5em 0}
td,th{border:1px solid #ccc;padding:.2em .45em;text-align:right}th{background:#f4f4f4}
td.l,th.l{text-align:left}.fails{background:#fce8e6}
img{max-width:100%;border:1px solid #eee}
pre{background:#f7f7f7;padding:.6em;overflow:auto;font-size:.8em}
"""

_MAX_TABLE_ROWS = 500


def summary_by_point(cells: pd.DataFrame, spec: dict[str, Any]) -> pd.DataFrame:
    """One row per grid point: metrics averaged over complete seeds, seeds done / failed, and
    the fraction of seeds whose claims hold."""
    axes = [a["key"] for a in spec["grid"]["axes"]]
    metrics = [m for m in spec.get("metrics", []) if m in cells.columns]
    df = cells.copy()
    df["_complete"] = df["status"] == "complete"
    df["_failed"] = df["status"] == "failed"
    df["_hold"] = df["claims_ok"].fillna(False).astype(float)
    df["_verdict"] = df["claims_ok"].notna().astype(float)
    for m in metrics:
        df[m] = df[m].where(df["_complete"])
    keys = axes or None
    if keys is None:
        df["_all"] = "all"
        keys = ["_all"]
    g = df.groupby(keys, sort=False, dropna=False)
    out = g[metrics].mean() if metrics else pd.DataFrame(index=g.size().index)
    out["seeds_complete"] = g["_complete"].sum().astype(int)
    out["seeds_failed"] = g["_failed"].sum().astype(int)
    verdicts = g["_verdict"].sum()
    out["claims_hold_fraction"] = (g["_hold"].sum() / verdicts).where(verdicts > 0)
    out = out.reset_index()
    return out.drop(columns=["_all"], errors="ignore")


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def render_sweep_report(cells: pd.DataFrame, spec: dict[str, Any], pngs: dict[str, bytes]) -> str:
    """One HTML page: what was swept, counts, figures, failures, the per-point summary, the spec."""
    target = spec.get("target", "?")
    kind = spec.get("kind", "experiment")
    n = len(cells)
    status = cells["status"].value_counts()
    n_done, n_failed = int(status.get("complete", 0)), int(status.get("failed", 0))
    n_pending = n - n_done - n_failed
    cached = int(cells.loc[cells["status"] == "complete", "cached"].fillna(False).sum())
    secs = float(pd.to_numeric(cells["seconds"], errors="coerce").sum())
    title = f"fmtheory sweep · {'theory · ' if kind == 'theory' else ''}{target}"
    p = [
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>",
        f"<style>{_CSS}</style></head><body><h1>{html.escape(title)}</h1>",
        f"<p><b>{'Formula' if kind == 'theory' else 'Claim'}.</b> "
        f"{html.escape(str(spec.get('claim', '')))}<br><b>Source.</b> "
        f"{html.escape(str(spec.get('source', '')))}</p>",
        f"<p><b>{n}</b> cells: <b>{n_done}</b> complete ({cached} read back from the store, "
        f"{n_done - cached} computed), <b>{n_failed}</b> failed"
        + (f", <b>{n_pending}</b> not run yet (interrupted)" if n_pending else "")
        + f". Compute time of the runs: {secs:.1f} s"
        + (
            f"; wall time of the last sweep call: {spec['wall_seconds']:.1f} s"
            if spec.get("wall_seconds") is not None
            else ""
        )
        + ".</p>",
    ]
    claims = spec.get("checks", [])
    if claims:
        p.append("<h2>Checks</h2><p>“checks hold” = no check fails and at least one holds. "
                 "The checks (as worded for the first complete cell):</p><ol>")  # fmt: skip
        p += [f"<li>{html.escape(c)}</li>" for c in claims]
        p.append("</ol>")
    for name, png in pngs.items():
        b64 = base64.b64encode(png).decode()
        p.append(f"<h2>{html.escape(name)}</h2><img alt='{html.escape(name)}' "
                 f"src='data:image/png;base64,{b64}'>")  # fmt: skip
    failed = cells[cells["status"] == "failed"]
    if len(failed):
        axes = [a["key"] for a in spec["grid"]["axes"]]
        cols = ["cell", *axes, "seed", "error"]
        p.append(f"<h2>Failed cells ({len(failed)})</h2><p>Run the sweep again with "
                 "<code>--retry-failed</code> to compute them again.</p>")  # fmt: skip
        p.append(_table(failed[cols].head(_MAX_TABLE_ROWS), cls="fails"))
    summ = summary_by_point(cells, spec)
    p.append("<h2>Per grid point (mean over complete seeds)</h2>")
    p.append(_table(summ.head(_MAX_TABLE_ROWS)))
    if len(summ) > _MAX_TABLE_ROWS:
        p.append(f"<p>… {len(summ) - _MAX_TABLE_ROWS} more rows in cells.parquet</p>")
    shown = {k: v for k, v in spec.items() if k not in ("metrics", "checks")}
    p.append(
        "<h2>Sweep</h2><pre>"
        + html.escape(yaml.safe_dump(shown, sort_keys=False, allow_unicode=True))
        + "</pre>"
    )
    p.append("</body></html>")
    return "\n".join(p)


def _table(df: pd.DataFrame, cls: str = "") -> str:
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in df.columns)
    rows = []
    for _, r in df.iterrows():
        cells = "".join(
            f"<td class='l'>{html.escape(_fmt(v))}</td>"
            if isinstance(v, str)
            else f"<td>{html.escape(_fmt(v))}</td>"
            for v in r.tolist()
        )
        rows.append(f"<tr class='{cls}'>{cells}</tr>" if cls else f"<tr>{cells}</tr>")
    return f"<table><tr>{head}</tr>{''.join(rows)}</table>"


def write_sweep_report(sweep_dir: Path | str, cells: SweepCells | None = None) -> Path:
    """(Re)draw ``figures/*.png`` and ``report.html`` in ``sweep_dir`` from its cells table.

    With ``cells=None`` the table is read from ``sweep_dir/cells.parquet`` alone.
    """
    sweep_dir = Path(sweep_dir)
    if cells is None:
        cells = read_cells(sweep_dir / "cells.parquet")
    figs = sweep_figures(cells.table, cells.spec)
    fig_dir = sweep_dir / "figures"
    if fig_dir.is_dir():
        for old in fig_dir.glob("*.png"):
            if old.stem not in figs:
                old.unlink()
    pngs = write_figures(figs, fig_dir)
    page = render_sweep_report(cells.table, cells.spec, pngs)
    write_text(sweep_dir / "report.html", page)
    return sweep_dir / "report.html"
