"""Terminal rendering of checks and summary tables (rich)."""

from __future__ import annotations

import pandas as pd
from rich.console import Console
from rich.table import Table

from fmtheory.contract import Check, counts_text, verdict
from fmtheory.report import ordered_checks, summary_table

_STATUS = {
    "holds": "[green]✓ holds[/]",
    "fails": "[bold red]✗ FAILS[/]",
    "inconclusive": "[yellow]? inconclusive[/]",
    "n/a": "[dim]– n/a[/]",
}


def _fmt(v: object) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)


def verdict_line(checks: list[Check]) -> str:
    """ "verdict: ✓ holds (claim checks) · all checks: claim: 1 hold · theory: 2 hold"."""
    return f"verdict: {_STATUS[verdict(checks)]} (claim checks) · all checks: {counts_text(checks)}"


def print_checks(checks: list[Check], console: Console) -> None:
    """The checks, claim checks first, with their kind and status, then the headline verdict."""
    t = Table(
        "kind", "claim", "predicted", "measured", "tolerance", "status", title="checks",
        show_lines=True,
    )  # fmt: skip
    for c in ordered_checks(checks):
        status = _STATUS[c.status] + (f"\n[dim]{c.why}[/]" if c.why else "")
        t.add_row(c.kind, c.claim, _fmt(c.predicted), _fmt(c.measured), c.tolerance, status)
    console.print(t)
    console.print(verdict_line(checks))


def print_table(table: pd.DataFrame, console: Console, max_rows: int = 60) -> None:
    summ = summary_table(table)
    t = Table(*[str(c) for c in summ.columns], title="summary (mean over seeds)")
    for _, row in summ.head(max_rows).iterrows():
        t.add_row(*[_fmt(v) for v in row.tolist()])
    console.print(t)
    if len(summ) > max_rows:
        console.print(f"[dim]... {len(summ) - max_rows} more rows in results.parquet[/]")
