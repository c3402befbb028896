"""Shared CLI helpers: consoles (stderr for humans, stdout for --json), device parsing, errors."""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING, Any

from rich.console import Console

if TYPE_CHECKING:
    import torch

__all__ = ["UsageError", "err_console", "out_console", "parse_device", "print_json"]


class UsageError(ValueError):
    """Bad command-line input: exit code 2."""


def err_console() -> Console:
    return Console(stderr=True, soft_wrap=True)  # one-line errors stay on one line


def out_console() -> Console:
    return Console()


def print_json(obj: Any) -> None:
    """The one JSON object a --json command prints on stdout."""
    sys.stdout.write(json.dumps(obj, default=_default) + "\n")
    sys.stdout.flush()


def _default(o: Any) -> Any:
    if hasattr(o, "item"):
        return o.item()
    return str(o)


def parse_device(name: str) -> torch.device:
    import torch

    if name == "cpu":
        return torch.device("cpu")
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise UsageError(f"--device = {name!r}: CUDA is not available here; allowed: cpu")
        return torch.device(name)
    raise UsageError(f"--device = {name!r}: allowed: cpu, cuda, cuda:N")
