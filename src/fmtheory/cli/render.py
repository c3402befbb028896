"""Terminal rendering of checks and summary tables (rich)."""

from __future__ import annotations

import pandas as pd
from rich.console import Console
from rich.table import Table

from fmtheory.experiments.base import Check
from fmtheory.report import summary_table


def _fmt(v: object) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)


def print_checks(checks: list[Check], console: Console) -> None:
    t = Table(
        "claim", "predicted", "measured", "tolerance", "verdict", title="checks", show_lines=True
    )
    for c in checks:
        verdict = {True: "[green]holds[/]", False: "[bold red]FAILS[/]"}.get(c.holds, "[dim]n/a[/]")
        t.add_row(c.claim, _fmt(c.predicted), _fmt(c.measured), c.tolerance, verdict)
    console.print(t)


def print_table(table: pd.DataFrame, console: Console, max_rows: int = 60) -> None:
    summ = summary_table(table)
    t = Table(*[str(c) for c in summ.columns], title="summary (mean over seeds)")
    for _, row in summ.head(max_rows).iterrows():
        t.add_row(*[_fmt(v) for v in row.tolist()])
    console.print(t)
    if len(summ) > max_rows:
        console.print(f"[dim]... {len(summ) - max_rows} more rows in results.parquet[/]")
