"""``fmtheory sweep EXPERIMENT|--theory NAME --grid KEY=VALUES ...`` and ``fmtheory sweep-report DIR``.

Every cell is validated before any starts (bad input: exit 2, nothing written).  Exit 0 when every
cell is complete, 1 when some failed (they are in the cells table with their error; rerun with
``--retry-failed``), 130 on Ctrl-C (finished cells are kept: rerun the same command to resume).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from fmtheory.cli.common import UsageError, err_console, print_json
from fmtheory.contract import list_experiments


def register(sub: argparse._SubParsersAction) -> None:
    from fmtheory.sweep.executors import EXECUTORS
    from fmtheory.sweep.grid import MAX_CELLS

    names = [e.name for e in list_experiments()]
    p = sub.add_parser(
        "sweep",
        help="run an experiment (or a formula) over a grid of values and seeds",
        description="Sweep an experiment over a grid: every cell is an ordinary run of the store "
        "(cached by config hash, so rerunning computes only what is missing). "
        "VALUES: 5,10,20 | START:STOP[:STEP] (inclusive) | START:STOP:*FACTOR (geometric).",
    )
    p.add_argument(
        "experiment", nargs="?", default=None, choices=names, metavar="EXPERIMENT",
        help=", ".join(names),
    )  # fmt: skip
    p.add_argument(
        "--theory", default=None, metavar="NAME",
        help="sweep a registered formula instead (see `fmtheory theory list`)",
    )  # fmt: skip
    p.add_argument(
        "--grid", action="append", default=[], metavar="KEY=VALUES",
        help="an axis, e.g. task.dim=5,10,20 or task.n_points=10:40:10 (repeatable)",
    )  # fmt: skip
    p.add_argument(
        "--seeds", default=None, metavar="SEEDS",
        help="0..4 (inclusive), 0,3,7 or one seed (default: the config's seed)",
    )  # fmt: skip
    p.add_argument("--preset", default=None, help="preset of the experiment (default: quick)")
    p.add_argument(
        "--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
        help="a fixed override for every cell, e.g. --set train.steps=500 (repeatable)",
    )  # fmt: skip
    p.add_argument("--executor", default="local", choices=list(EXECUTORS),
                   help="local: processes here (default); ray: a Ray cluster; inline: this process")  # fmt: skip
    p.add_argument("--workers", type=int, default=None,
                   help="cells at once (default: cores for local, the cluster's CPUs for ray)")  # fmt: skip
    p.add_argument("--threads", type=int, default=None,
                   help="torch threads per cell (default: cores // workers; ray: 1)")  # fmt: skip
    p.add_argument("--address", default=None, metavar="ADDRESS",
                   help="Ray cluster to join: ray://HOST:PORT, HOST:PORT or auto "
                   "(default: start a local Ray)")  # fmt: skip
    p.add_argument("--out", default="runs",
                   help="run store (default: runs/); the sweep folder is OUT/sweeps/<name>-<hash>")  # fmt: skip
    p.add_argument("--sweep-dir", default=None, help="put the sweep folder here instead")
    p.add_argument("--device", default="cpu", help="cpu (default) or cuda")
    p.add_argument("--retry-failed", action="store_true", help="compute failed cells again")
    p.add_argument("--yes", action="store_true",
                   help=f"allow a grid of more than {MAX_CELLS:,} cells")  # fmt: skip
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    p.add_argument("--no-progress", action="store_true", help="no progress display")
    p.set_defaults(func=_sweep)

    r = sub.add_parser(
        "sweep-report", help="redraw a sweep's figures and report from cells.parquet"
    )
    r.add_argument("sweep_dir", metavar="SWEEP_DIR")
    r.add_argument("--json", action="store_true")
    r.set_defaults(func=_report)


def _sweep(args: argparse.Namespace) -> int:
    from fmtheory.sweep import make_executor, plan, run_plan

    if not args.grid and args.seeds is None:
        raise UsageError("nothing to sweep: give at least one --grid KEY=VALUES or --seeds")
    p = plan(
        args.experiment, args.grid, args.seeds, theory=args.theory, preset=args.preset,
        overrides=args.overrides, root=args.out, sweep_dir=args.sweep_dir, device=args.device,
        yes=args.yes,
    )  # fmt: skip
    executor = make_executor(
        args.executor, workers=args.workers, address=args.address, threads=args.threads
    )
    console = err_console()
    if not args.json:
        console.print(
            f"sweep [bold]{p.target.label}[/]: {len(p.jobs)} cells "
            f"({' × '.join(f'{len(a.values)} {a.key}' for a in p.grid.axes) or 'no axis'}"
            f"{f' × {len(p.grid.seeds)} seeds' if p.grid.seeds else ''}) "
            f"on {executor.name} ({executor.slots} at once) → {p.sweep_dir}"
        )
    result = run_plan(
        p, executor=executor, retry_failed=args.retry_failed,
        progress=not (args.json or args.no_progress),
    )  # fmt: skip
    t = result.table
    complete = t["status"] == "complete"
    failed = t["status"] == "failed"
    cached = complete & t["cached"].fillna(False).astype(bool)
    summary = {
        "sweep_dir": str(p.sweep_dir),
        "cells": len(t),
        "complete": int(complete.sum()),
        "computed": int((complete & ~cached).sum()),
        "cached": int(cached.sum()),
        "failed": int(failed.sum()),
        "cells_table": str(p.sweep_dir / "cells.parquet"),
        "report": str(p.sweep_dir / "report.html"),
        "wall_seconds": result.spec.get("wall_seconds"),
    }
    if args.json:
        print_json(summary)
    else:
        console.print(
            f"{summary['complete']} complete ({summary['cached']} from the store), "
            f"[{'bold red' if summary['failed'] else 'green'}]{summary['failed']} failed[/]"
            f" in {summary['wall_seconds']:.1f} s\nreport: [bold]{summary['report']}[/]"
        )
        for _, row in t[failed].head(5).iterrows():
            console.print(f"[red]cell {row['cell']}[/]: {row['error']}", highlight=False)
        if summary["failed"]:
            console.print("rerun with [bold]--retry-failed[/] to compute failed cells again")
    return 1 if summary["failed"] else 0


def _report(args: argparse.Namespace) -> int:
    from fmtheory.sweep import read_cells, write_sweep_report

    sweep_dir = Path(args.sweep_dir)
    path = sweep_dir / "cells.parquet"
    if not path.is_file():
        raise UsageError(f"SWEEP_DIR = {args.sweep_dir!r}: no cells.parquet in it")
    try:
        cells = read_cells(path)
    except ValueError as e:
        raise UsageError(f"SWEEP_DIR = {args.sweep_dir!r}: {e}") from None
    report = write_sweep_report(sweep_dir, cells)
    if args.json:
        figs = sorted(p.name for p in (sweep_dir / "figures").glob("*.png"))
        print_json({"report": str(report), "figures": figs})
    else:
        err_console().print(f"wrote {report}")
    return 0
