"""The command line: ``fmtheory list | run | show | report | theory | sweep | advise``.

Each subcommand lives in ``cli/cmd_<name>.py`` with ``register(subparsers)``; they are discovered, so a
new command is a new file.  Bad input (ConfigError, UsageError) exits with code 2 and writes nothing;
Ctrl-C exits with 130 after the run saved its checkpoint.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
from collections.abc import Sequence

from fmtheory import __version__
from fmtheory.cli.common import UsageError, err_console
from fmtheory.errors import ConfigError

__all__ = ["main", "build_parser"]


def _command_modules(command: str | None) -> list[str]:
    """The cmd_* modules to import: only the chosen command's when its module is named after it
    (``theory`` -> cmd_theory, ``sweep-report`` -> cmd_sweep), so that light commands (theory,
    advise) do not pay for importing torch and every experiment; all of them otherwise (--help)."""
    names = sorted(i.name for i in pkgutil.iter_modules(__path__) if i.name.startswith("cmd_"))
    if command:
        guess = f"cmd_{command.split('-')[0]}"
        if guess in names:
            return [guess]
    return names


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fmtheory",
        description="An executable laboratory for the mathematics of foundation models.",
    )
    parser.add_argument("--version", action="version", version=f"fmtheory {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in _command_modules(command):
        importlib.import_module(f"{__name__}.{name}").register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    command = next((a for a in argv if not a.startswith("-")), None)
    parser = build_parser(command)
    args, extra = parser.parse_known_args(argv)
    if extra and not getattr(args, "accepts_extra", False):
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    args.extra = extra
    try:
        return int(args.func(args) or 0)
    except (ConfigError, UsageError) as e:
        err_console().print(f"[bold red]error:[/] {e}", highlight=False)
        return 2
    except KeyboardInterrupt:
        err_console().print(
            "[yellow]interrupted[/]: finished work is saved; run the same command again to resume."
        )
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
