"""Figures (matplotlib, Agg) and self-contained HTML reports, built from stored tables alone."""

import matplotlib

matplotlib.use("Agg")  # headless: never open a window

from fmtheory.report.html import (  # noqa: E402
    checks_table_html,
    figure_png,
    ordered_checks,
    render_report,
    summary_table,
    write_figures,
)

__all__ = [
    "checks_table_html",
    "figure_png",
    "ordered_checks",
    "render_report",
    "summary_table",
    "write_figures",
]
