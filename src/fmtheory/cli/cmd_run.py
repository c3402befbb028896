"""``fmtheory run EXPERIMENT``: train, evaluate, check; write a run folder; cached by config hash."""

from __future__ import annotations

import argparse

import torch

from fmtheory.cli.common import err_console, parse_device, print_json
from fmtheory.cli.render import print_checks
from fmtheory.experiments import get_experiment, list_experiments
from fmtheory.runs import execute
from fmtheory.train import NonFiniteLossError


def register(sub: argparse._SubParsersAction) -> None:
    names = [e.name for e in list_experiments()]
    p = sub.add_parser("run", help="run one experiment (a claim) and write its run folder")
    p.add_argument("experiment", choices=names, metavar="EXPERIMENT", help=", ".join(names))
    p.add_argument("--preset", default=None, help="preset name (default: quick)")
    p.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config field, e.g. --set task.dim=10 (repeatable)",
    )
    p.add_argument("--seed", type=int, default=None, help="seed (overrides the preset)")
    p.add_argument("--out", default="runs", help="run store folder (default: runs/)")
    p.add_argument("--device", default="cpu", help="cpu (default) or cuda")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: all cores)")
    p.add_argument(
        "--force", action="store_true", help="recompute even if an identical run is stored"
    )
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    exp = get_experiment(args.experiment)
    config = exp.make_config(args.preset, args.overrides, seed=args.seed)  # validates: exit 2
    device = parse_device(args.device)
    if args.threads is not None:
        if args.threads < 1:
            from fmtheory.cli.common import UsageError

            raise UsageError(f"--threads = {args.threads}: must be >= 1")
        torch.set_num_threads(args.threads)
    console = err_console()
    try:
        rec = execute(exp, config, root=args.out, device=device, force=args.force, progress=True)
    except NonFiniteLossError as e:
        console.print(f"[bold red]training diverged:[/] {e}")
        return 1
    checks = rec.run.checks
    if args.json:
        print_json(
            {
                "run_dir": str(rec.run_dir),
                "cached": rec.cached,
                "checks": [
                    {
                        k: c.to_dict()[k]
                        for k in ("claim", "predicted", "measured", "tolerance", "holds")
                    }
                    for c in checks
                ],
            }
        )
    else:
        if rec.cached:
            console.print(f"[dim]identical run found (use --force to recompute):[/] {rec.run_dir}")
        print_checks(checks, console)
        console.print(f"run folder: [bold]{rec.run_dir}[/]  report: {rec.run_dir / 'report.html'}")
    return 0
