"""``fmtheory advise``: should I trust an in-context estimate of w, gather more examples, use ridge,
or give up?  Every number comes from :mod:`fmtheory.theory.ilr` (see :mod:`fmtheory.theory.ilr_advice`).

    fmtheory advise --dim 20 --rank 3 --context 10 --noise 0.1 [--cond 4] [--target-error 0.05] [--json]
    fmtheory advise --prior-from tasks.csv --context 10 --noise 0.1 [--json]

``tasks.csv``: one past task's weight vector per row, d numbers each (an optional header row of
names is skipped); the prior's mean, rank (spectral gap) and spectrum are estimated from it.
"""

from __future__ import annotations

import argparse
import csv
import math
from pathlib import Path
from typing import Any

from fmtheory.cli.common import UsageError, out_console, print_json


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "advise",
        help="advice on in-context estimation of a task vector (inverse linear regression)",
        description="Bayes-optimal and ridge errors at this context length, how many more examples "
        "reach a target error, and a verdict (Lu & Yu 2025 theory; see docs/ilr.md).",
    )
    p.add_argument("--dim", type=int, default=None, help="dimension d of x and w")
    p.add_argument("--rank", type=int, default=None, help="rank r of the task prior (<= d)")
    p.add_argument("--context", type=int, required=True, help="context length n (pairs)")
    p.add_argument("--noise", type=float, required=True, help="noise standard deviation σ")
    p.add_argument("--cond", type=float, default=1.0, help="condition number κ of Σx (>= 1)")
    p.add_argument(
        "--prior-scale", type=float, default=1.0, help="std of v (Λ = scale² I); without a CSV"
    )
    p.add_argument(
        "--target-error",
        type=float,
        default=None,
        help="target E‖ŵ - w‖² (default: 10%% of the prior variance tr Λ)",
    )
    p.add_argument("--prior-from", type=Path, default=None, metavar="CSV",
                   help="past task vectors, one per row: estimate the prior from them")  # fmt: skip
    p.add_argument("--max-context", type=int, default=1_000_000,
                   help="largest context length considered reachable")  # fmt: skip
    p.add_argument("--seed", type=int, default=0, help="seed of the Monte Carlo designs")
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    p.set_defaults(func=_run)


def read_tasks_csv(path: Path) -> list[list[float]]:
    """Rows of numbers from ``path``; a first row with no number at all is a header (skipped).

    Raises UsageError (one line) for a missing/unreadable file, an empty table, ragged rows, or a
    cell that is not a finite number (naming row and column, 1-based as in a spreadsheet).
    """
    try:
        with open(path, newline="") as fh:
            rows = [row for row in csv.reader(fh) if any(c.strip() for c in row)]
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise UsageError(f"--prior-from {path}: cannot read it ({e})") from None
    if not rows:
        raise UsageError(f"--prior-from {path}: empty file, expected one task per row")
    start = 0
    if all(not _is_number(c) for c in rows[0]):
        start = 1  # header
    data = rows[start:]
    if not data:
        raise UsageError(f"--prior-from {path}: only a header, no task rows")
    width = len(data[0])
    out = []
    for i, row in enumerate(data, start=start + 1):
        if len(row) != width:
            raise UsageError(
                f"--prior-from {path}: ragged rows, row {i} has {len(row)} values, "
                f"row {start + 1} has {width}"
            )
        vals = []
        for j, cell in enumerate(row, start=1):
            if not _is_number(cell):
                raise UsageError(
                    f"--prior-from {path}: row {i}, column {j} = {cell.strip()!r} is not a number"
                )
            vals.append(float(cell))
        out.append(vals)
    if len(out) < 2:
        raise UsageError(f"--prior-from {path}: {len(out)} task row(s); need at least 2")
    return out


def _is_number(cell: str) -> bool:
    try:
        return math.isfinite(float(cell))
    except ValueError:
        return False


def _run(args: argparse.Namespace) -> int:
    from fmtheory.theory.ilr_advice import advise, estimate_prior_from_tasks

    prior = None
    if args.prior_from is not None:
        import numpy as np

        tasks = np.asarray(read_tasks_csv(args.prior_from))
        try:
            prior = estimate_prior_from_tasks(tasks, rank=args.rank)
        except ValueError as e:
            raise UsageError(f"--prior-from {args.prior_from}: {e}") from None
    else:
        missing = [f for f, v in (("--dim", args.dim), ("--rank", args.rank)) if v is None]
        if missing:
            raise UsageError(f"{' and '.join(missing)} required (or give --prior-from CSV)")
    try:
        a = advise(dim=args.dim, rank=args.rank if prior is None else None, context=args.context,
                   noise=args.noise, cond=args.cond, prior_scale=args.prior_scale,
                   target_error=args.target_error, prior=prior, max_context=args.max_context,
                   seed=args.seed)  # fmt: skip
    except ValueError as e:
        raise UsageError(_flag_message(str(e))) from None
    if args.json:
        print_json(a.to_dict())
        return 0
    _print(a)
    return 0


_FLAGS = {
    "dim": "--dim",
    "rank": "--rank",
    "context": "--context",
    "noise": "--noise",
    "cond": "--cond",
    "prior_scale": "--prior-scale",
    "target_error": "--target-error",
    "max_context": "--max-context",
}


def _flag_message(msg: str) -> str:
    """'rank = 12: must be <= dim' -> '--rank = 12: must be <= dim' (the user typed flags)."""
    name = msg.split(" ", 1)[0]
    return _FLAGS[name] + msg[len(name) :] if name in _FLAGS else msg


def _fmt(v: Any) -> str:
    return "n/a" if v is None else f"{v:.4g}"


def _print(a: Any) -> None:
    c = out_console()
    src = (
        f"prior estimated from {a.n_tasks} task vectors (rank {a.rank} by spectral gap)"
        if a.prior_source == "tasks"
        else f"prior: rank {a.rank}, Λ = {a.prior_variance / a.rank:.4g}·I, w0 unknown (0)"
    )
    c.print(f"[bold]d = {a.dim}, r = {a.rank}, n = {a.context}, σ = {a.noise:g}, κ = {a.cond:g}[/]"
            f"  ({src})")  # fmt: skip
    c.print(f"Bayes-optimal error E‖ŵ−w‖²   {a.bayes_error:.4g} ± {a.bayes_error_stderr:.2g}"
            f"   ({a.bayes_relative_error:.3g} × prior variance {a.prior_variance:.4g})")  # fmt: skip
    c.print(f"ridge error (best penalty)     {a.ridge_error:.4g} ± {a.ridge_error_stderr:.2g}"
            f"   ({a.ridge_over_bayes:.3g}× Bayes, α = {a.ridge_alpha:.3g})")  # fmt: skip
    if a.floor > 0:
        c.print(
            f"floor (r > n): no estimator below {a.floor:.4g} (relative {a.relative_floor:.3g})"
        )
    if a.high_snr_error is not None:
        c.print(f"high-SNR approximation σ²r/(n−r−1)  {a.high_snr_error:.4g}")
    tgt = "10% of the prior variance (default)" if a.target_is_default else "given"
    c.print(f"target error {a.target_error:.4g} ({tgt})")
    if a.more_examples_needed is None:
        c.print(f"more examples needed: none suffice within {a.max_context} pairs")
    else:
        c.print(f"more examples needed: {a.more_examples_needed} (context {a.context_needed})")
    c.print(f"[bold]verdict: {a.verdict}[/]")
