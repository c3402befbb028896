"""``fmtheory run EXPERIMENT``: train, evaluate, check; write a run folder; cached by config hash
and code version."""

from __future__ import annotations

import argparse

from fmtheory.cli.common import UsageError, err_console, parse_device, print_json
from fmtheory.cli.render import print_checks
from fmtheory.contract import get_experiment, list_experiments, verdict

EXIT_CODES = """exit codes: 0 the run finished (any verdict; with --strict: no claim check fails);
1 a claim check fails (--strict only), training diverged, or a stored run is corrupt;
2 bad input (a config field, a flag, an unknown preset), nothing written; 130 interrupted (Ctrl-C),
finished work kept: the same command resumes."""


def register(sub: argparse._SubParsersAction) -> None:
    names = [e.name for e in list_experiments()]
    p = sub.add_parser(
        "run",
        help="run one experiment (a claim) and write its run folder",
        epilog=EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
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
    p.add_argument(
        "--reuse-stale",
        action="store_true",
        help="return a stored run of the same config made by other code (marked stale)",
    )
    p.add_argument("--strict", action="store_true", help="exit 1 when a claim check fails")
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    import torch

    from fmtheory.runs import execute
    from fmtheory.train import NonFiniteLossError

    exp = get_experiment(args.experiment)
    config = exp.make_config(args.preset, args.overrides, seed=args.seed)  # validates: exit 2
    device = parse_device(args.device)
    if args.threads is not None:
        if args.threads < 1:
            raise UsageError(f"--threads = {args.threads}: must be >= 1")
        torch.set_num_threads(args.threads)
    console = err_console()
    try:
        rec = execute(
            exp, config, root=args.out, device=device, force=args.force, progress=True,
            reuse_stale=args.reuse_stale, preset=args.preset or exp.default_preset,
        )  # fmt: skip
    except NonFiniteLossError as e:
        console.print(f"[bold red]training diverged:[/] {e}")
        return 1
    checks = rec.run.checks
    v = verdict(checks)
    if args.json:
        print_json(
            {
                "run_dir": str(rec.run_dir),
                "cached": rec.cached,
                "stale": rec.stale,
                "model": exp.model_label(config),
                "verdict": v,
                "code": rec.run.code,
                "checks": [c.to_dict() for c in checks],
            }
        )
    else:
        if rec.cached:
            what = "stale run reused (--reuse-stale)" if rec.stale else "identical run found"
            console.print(f"[dim]{what} (use --force to recompute):[/] {rec.run_dir}")
        label = exp.model_label(config)
        if label:
            console.print(f"model: {label}")
        print_checks(checks, console)
        console.print(f"run folder: [bold]{rec.run_dir}[/]  report: {rec.run_dir / 'report.html'}")
    return 1 if (args.strict and v == "fails") else 0
