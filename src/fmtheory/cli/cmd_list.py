"""``fmtheory list``: every registered experiment with its claim and source."""

from __future__ import annotations

import argparse

from rich.table import Table

from fmtheory.cli.common import out_console, print_json
from fmtheory.experiments import list_experiments


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("list", help="list the registered experiments (claims)")
    p.add_argument("--json", action="store_true", help="print JSON on stdout")
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    exps = list_experiments()
    if args.json:
        print_json(
            [
                {"name": e.name, "claim": e.claim, "source": e.source, "presets": e.presets()}
                for e in exps
            ]
        )
        return 0
    t = Table("experiment", "claim", "source", "presets", show_lines=True)
    for e in exps:
        t.add_row(e.name, e.claim, e.source, ", ".join(e.presets()))
    out_console().print(t)
    return 0
