"""``fmtheory survey``: every registered claim's verdict, chapter by chapter, in one report."""

from __future__ import annotations

import argparse
from pathlib import Path

from fmtheory.cli.common import UsageError, err_console, print_json


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "survey",
        help="run every claim (or --only some) and write survey.html / survey.json",
        description="Runs each registered claim's preset through the sweep executors (current "
        "runs are read back from the store), then writes survey.html and survey.json.",
    )
    p.add_argument("--preset", default="quick", help="the preset of every claim (default: quick)")
    p.add_argument("--only", nargs="+", metavar="CHAPTER|CLAIM", help="chapters or claims")
    p.add_argument("--executor", choices=["local", "ray", "inline"], default="local")
    p.add_argument("--workers", type=int, default=None, help="parallel runs (default: cores)")
    p.add_argument("--threads", type=int, default=None, help="torch threads per run")
    p.add_argument("--address", default=None, help="Ray cluster address (with --executor ray)")
    p.add_argument("--store", default="runs", help="run store (default: runs/)")
    p.add_argument("--out", default=None, help="folder of survey.html (default: STORE/survey)")
    p.add_argument("--markdown", action="store_true", help="print the summary table as Markdown")
    p.add_argument(
        "--from-store",
        action="store_true",
        help="compute nothing: cards from the current runs in the store (others say 'not run yet')",
    )
    p.add_argument("--json", action="store_true", help="print survey.json on stdout")
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from fmtheory.survey import (
        Survey,
        cards_from_store,
        markdown_summary,
        run_survey,
        select,
        write_survey,
    )

    if args.workers is not None and args.workers < 1:
        raise UsageError(f"--workers = {args.workers}: must be >= 1")
    exps = select(args.only)  # an unknown chapter or claim: exit 2 before anything runs
    out = Path(args.out) if args.out else Path(args.store) / "survey"
    if args.from_store:
        if not Path(args.store).is_dir():
            raise UsageError(f"--store = {args.store!r}: no such run store")
        survey = Survey(args.preset, cards_from_store(exps, args.preset, args.store), 0.0,
                        {"executor": "none (from the store)"})  # fmt: skip
    else:
        survey = run_survey(
            preset=args.preset, only=args.only, executor=args.executor, workers=args.workers,
            address=args.address, threads=args.threads, root=args.store, progress=True,
        )  # fmt: skip
    page, data = write_survey(survey, out)
    if args.json:
        print_json(survey.to_dict())
    elif args.markdown:
        print(markdown_summary(survey), end="")
    con = err_console()
    s = survey.summary()
    tot = {
        k: sum(v[k] for v in s.values()) for k in ("holds", "fails", "inconclusive", "n/a", "error")
    }
    con.print(
        f"survey: {tot['holds']} hold, {tot['fails']} fail, {tot['inconclusive']} inconclusive, "
        f"{tot['n/a']} n/a, {tot['error']} error in {survey.seconds:.0f} s → {page}",
        highlight=False,
    )
    return 0
