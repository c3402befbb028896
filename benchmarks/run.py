"""Run the benchmarks: ``python benchmarks/run.py [--only NAME] [--json]``.

Convention: every module ``benchmarks/bench_*.py`` exposes
``BENCHMARKS: dict[str, Callable[[], dict]]``; each callable prints nothing and returns
``{"name", "value", "unit", "reference", "ratio", **extra}``.  This script discovers the modules
(imported from their file path, so ``benchmarks/`` need not be a package), runs the benchmarks and
prints a table, or with ``--json`` a JSON list of the result dicts and nothing else on stdout.
Exit code 2 on a bad flag or an unknown ``--only`` name.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

REQUIRED_KEYS = ("name", "value", "unit", "reference", "ratio")
BENCH_DIR = Path(__file__).resolve().parent


def discover(directory: Path = BENCH_DIR) -> dict[str, Callable[[], dict[str, Any]]]:
    """Every ``BENCHMARKS`` entry of every ``bench_*.py`` in ``directory``, by name (sorted files)."""
    found: dict[str, Callable[[], dict[str, Any]]] = {}
    origin: dict[str, str] = {}
    for path in sorted(directory.glob("bench_*.py")):
        spec = importlib.util.spec_from_file_location(f"_fmtheory_bench_{path.stem}", path)
        if spec is None or spec.loader is None:
            raise ImportError(f"cannot import benchmark module {path}")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        table = getattr(module, "BENCHMARKS", None)
        if not isinstance(table, dict):
            raise TypeError(f"{path.name}: expected a module-level BENCHMARKS dict")
        for name, fn in table.items():
            if name in found:
                raise ValueError(
                    f"benchmark '{name}' defined in both {origin[name]} and {path.name}"
                )
            if not callable(fn):
                raise TypeError(f"{path.name}: BENCHMARKS['{name}'] is not callable")
            found[name], origin[name] = fn, path.name
    return found


def check_result(name: str, result: Any) -> dict[str, Any]:
    """The result dict of benchmark ``name``, after checking the convention's keys."""
    if not isinstance(result, dict):
        raise TypeError(f"benchmark '{name}' returned {type(result).__name__}, expected dict")
    missing = [k for k in REQUIRED_KEYS if k not in result]
    if missing:
        raise ValueError(f"benchmark '{name}' result lacks key(s) {', '.join(missing)}")
    return result


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        if math.isfinite(v) and (abs(v) >= 1e4 or (v != 0 and abs(v) < 1e-3)):
            return f"{v:.3e}"
        return f"{v:.4g}"
    return str(v)


def print_table(results: list[dict[str, Any]]) -> None:
    """A rich table when ``rich`` is importable, plain text otherwise."""
    cols = ["name", "value", "unit", "reference", "ratio", "details"]
    rows = []
    for r in results:
        extra = "; ".join(f"{k}={_fmt(v)}" for k, v in r.items() if k not in REQUIRED_KEYS)
        rows.append([_fmt(r[k]) for k in REQUIRED_KEYS] + [extra])
    try:
        from rich.console import Console
        from rich.table import Table
    except ImportError:
        print(" | ".join(cols))
        for row in rows:
            print(" | ".join(row))
        return
    table = Table(title="fmtheory benchmarks")
    for c in cols:
        table.add_column(c, overflow="fold")
    for row in rows:
        table.add_row(*row)
    Console().print(table)


def main(argv: Sequence[str] | None = None, *, directory: Path = BENCH_DIR) -> int:
    """Parse ``argv``, run the benchmarks found in ``directory``, print; return the exit code."""
    parser = argparse.ArgumentParser(description="Run the fmtheory benchmarks.")
    parser.add_argument("--only", metavar="NAME", help="run only the benchmark NAME")
    parser.add_argument("--json", action="store_true", help="print a JSON list, nothing else")
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:  # argparse exits 2 on a bad flag, 0 on --help
        return int(e.code or 0)
    benches = discover(directory)
    if args.only is not None:
        if args.only not in benches:
            print(
                f"--only = {args.only!r}: unknown benchmark; available: "
                f"{', '.join(sorted(benches)) or '(none)'}",
                file=sys.stderr,
            )
            return 2
        benches = {args.only: benches[args.only]}
    results = [check_result(name, fn()) for name, fn in benches.items()]
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        print_table(results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
