"""``fmtheory list``: every registered experiment, grouped by survey chapter, one line each."""

from __future__ import annotations

import argparse

from fmtheory.cli.common import out_console, print_json
from fmtheory.contract import Chapter, list_experiments


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("list", help="list the registered experiments (claims) by chapter")
    p.add_argument("--long", action="store_true", help="claim, source and presets of each")
    p.add_argument("--json", action="store_true", help="print JSON on stdout")
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    exps = list_experiments()
    if args.json:
        print_json(
            [
                {
                    "name": e.name,
                    "chapter": e.chapter,
                    "claim": e.claim,
                    "source": e.source,
                    "formula": e.formula,
                    "presets": e.presets(),
                }
                for e in exps
            ]  # fmt: skip
        )
        return 0
    con = out_console()
    width = max((len(e.name) for e in exps), default=0)
    chapter = None
    for e in exps:
        if e.chapter != chapter:
            chapter = e.chapter
            con.print(f"[bold]{Chapter(chapter).title}[/]", highlight=False)
        if args.long:
            con.print(f"  {e.name}", highlight=False)
            con.print(f"      {e.claim}", highlight=False, soft_wrap=False)
            con.print(f"      source: {e.source}; presets: {', '.join(e.presets())}",
                      highlight=False)  # fmt: skip
        else:
            con.print(f"  {e.name:<{width}}  {_short(e.claim, 76 - width)}", highlight=False,
                      soft_wrap=True)  # fmt: skip
    return 0


def _short(text: str, n: int) -> str:
    n = max(n, 20)
    return text if len(text) <= n else text[: n - 1].rstrip() + "…"
