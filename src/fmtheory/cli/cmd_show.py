"""``fmtheory show RUN_DIR`` and ``fmtheory report RUN_DIR``."""

from __future__ import annotations

import argparse

from fmtheory.cli.common import UsageError, err_console, out_console, print_json
from fmtheory.cli.render import print_checks, print_table
from fmtheory.experiments import get_experiment
from fmtheory.runs import CorruptRunError, load_run, rerender_report, run_status


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("show", help="print a run's checks and summary table")
    p.add_argument("run_dir")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_show)
    r = sub.add_parser("report", help="re-render a run's figures and report.html from its table")
    r.add_argument("run_dir")
    r.set_defaults(func=_report)


def _load(run_dir: str):
    st = run_status(run_dir)
    if st.state == "missing":
        raise UsageError(f"RUN_DIR = {run_dir!r}: no such folder")
    try:
        return load_run(run_dir)
    except CorruptRunError as e:
        err_console().print(f"[bold red]{st.state} run:[/] {e}")
        return None


def _show(args: argparse.Namespace) -> int:
    run = _load(args.run_dir)
    if run is None:
        return 1
    if args.json:
        print_json(
            {
                "run_dir": str(run.run_dir),
                "experiment": run.experiment,
                "checks": [c.to_dict() for c in run.checks],
            }
        )
        return 0
    con = out_console()
    con.print(f"[bold]{run.experiment}[/]  {run.run_dir}")
    print_checks(run.checks, con)
    print_table(run.table, con)
    return 0


def _report(args: argparse.Namespace) -> int:
    run = _load(args.run_dir)
    if run is None:
        return 1
    path = rerender_report(run.run_dir, get_experiment(run.experiment))
    out_console().print(f"wrote {path}")
    return 0
