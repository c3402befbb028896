"""``fmtheory show RUN_DIR``, ``fmtheory report RUN_DIR`` and ``fmtheory recheck RUN_DIR|--all``.

All three recompute the checks from the stored table with the installed code: ``show`` prints them
and says when they differ from the stored ones or the table is stale; ``report`` and ``recheck``
store them (``report`` also redraws the figures and report.html).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from fmtheory.cli.common import UsageError, err_console, out_console, print_json
from fmtheory.cli.render import print_checks, print_table
from fmtheory.runs.store import CorruptRunError, load_run, run_status


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("show", help="print a run's checks (recomputed) and summary table")
    p.add_argument("run_dir")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_show)
    r = sub.add_parser(
        "report", help="recompute a run's checks and redraw its figures and report.html"
    )
    r.add_argument("run_dir")
    r.set_defaults(func=_report)
    c = sub.add_parser("recheck", help="recompute and store the checks of one run or a store")
    c.add_argument("run_dir", nargs="?", help="a run folder (or --all)")
    c.add_argument("--all", action="store_true", help="every complete run of the store --out")
    c.add_argument("--out", default="runs", help="run store folder for --all (default: runs/)")
    c.add_argument("--json", action="store_true")
    c.set_defaults(func=_recheck)


def _load(run_dir: str):
    st = run_status(Path(run_dir))
    if st.state == "missing":
        raise UsageError(f"RUN_DIR = {run_dir!r}: no such folder")
    try:
        return load_run(Path(run_dir))
    except CorruptRunError as e:
        err_console().print(f"[bold red]{st.state} run:[/] {e}")
        return None


def _say_changes(res, console) -> None:
    if res.stale:
        console.print(
            "[bold yellow]stale:[/] this run's table was made by other code than the installed "
            "one (fmtheory run --force recomputes it)"
        )
    if res.changed:
        verb = "stored now" if res.written else "not stored; `fmtheory recheck` stores them"
        console.print(f"[yellow]checks recomputed by the installed code differ ({verb}):[/]")
        for claim, old, new in res.changed:
            console.print(f"  {claim}: {old} → {new}")


def _show(args: argparse.Namespace) -> int:
    from fmtheory.runs.engine import recheck

    run = _load(args.run_dir)
    if run is None:
        return 1
    res = recheck(run.run_dir)
    if args.json:
        print_json(
            {
                "run_dir": str(run.run_dir),
                "experiment": run.experiment,
                "stale": res.stale,
                "code": run.code,
                "model": run.manifest.get("model", ""),
                "checks": [c.to_dict() for c in res.current],
                "stored_checks_differ": bool(res.changed),
                "changed": [{"claim": a, "stored": b, "current": c} for a, b, c in res.changed],
            }
        )
        return 0
    con = out_console()
    con.print(f"[bold]{run.experiment}[/]  {run.run_dir}")
    if run.manifest.get("model"):
        con.print(f"model: {run.manifest['model']}")
    _say_changes(res, con)
    print_checks(res.current, con)
    print_table(run.table, con)
    return 0


def _report(args: argparse.Namespace) -> int:
    from fmtheory.runs.engine import recheck

    run = _load(args.run_dir)
    if run is None:
        return 1
    res = recheck(run.run_dir, write=True)
    con = out_console()
    _say_changes(res, con)
    con.print(f"wrote {run.run_dir / 'report.html'}")
    return 0


def _recheck(args: argparse.Namespace) -> int:
    from fmtheory.runs.engine import recheck

    if args.all == bool(args.run_dir):
        raise UsageError("recheck: give one RUN_DIR or --all")
    if args.all:
        root = Path(args.out)
        if not root.is_dir():
            raise UsageError(f"--out = {args.out!r}: no such run store")
        dirs = sorted(p.parent for p in root.glob("*/manifest.json"))
    else:
        dirs = [Path(args.run_dir)]
    con = err_console()
    out, bad = [], 0
    for d in dirs:
        run = _load(str(d))
        if run is None:
            bad += 1
            continue
        res = recheck(d, write=True)
        out.append(
            {"run_dir": str(d), "stale": res.stale, "changed": [list(x) for x in res.changed]}
        )
        if not args.json:
            con.print(f"[bold]{d}[/]: {len(res.changed)} check(s) changed")
            _say_changes(res, con)
    if args.json:
        print_json({"runs": out, "corrupt": bad})
    elif args.all and not dirs:
        con.print(f"no complete runs under {args.out}")
    return 1 if bad else 0
