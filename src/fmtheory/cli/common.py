"""Shared CLI helpers: consoles (stderr for humans, stdout for --json), device parsing, errors."""

from __future__ import annotations

import json
import math
import sys
from typing import TYPE_CHECKING, Any

from rich.console import Console

if TYPE_CHECKING:
    import torch

__all__ = [
    "UsageError",
    "err_console",
    "json_safe",
    "out_console",
    "parse_device",
    "print_json",
]


class UsageError(ValueError):
    """Bad command-line input: exit code 2."""


def err_console() -> Console:
    return Console(stderr=True, soft_wrap=True)  # one-line errors stay on one line


def out_console() -> Console:
    return Console(soft_wrap=True)  # paths and one-line messages are never broken


def json_safe(obj: Any) -> Any:
    """A copy of ``obj`` that strict JSON can hold: NaN and ±inf become ``null`` (with the text
    "nan" / "inf" / "-inf" beside them under ``<key>_text`` in a mapping), numpy scalars become
    Python numbers, anything else unknown becomes its ``str``."""
    if isinstance(obj, dict):
        out: dict[str, Any] = {}
        for k, v in obj.items():
            v = _scalar(v)
            if isinstance(v, float) and not math.isfinite(v):
                out[str(k)] = None
                out.setdefault(f"{k}_text", str(v))
            else:
                out[str(k)] = json_safe(v)
        return out
    if isinstance(obj, list | tuple):
        return [json_safe(v) for v in obj]
    obj = _scalar(obj)
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if obj is None or isinstance(obj, bool | int | float | str):
        return obj
    return str(obj)


def _scalar(v: Any) -> Any:
    if hasattr(v, "item") and not isinstance(v, str) and getattr(v, "ndim", 0) == 0:
        return v.item()
    return v


def print_json(obj: Any) -> None:
    """The one JSON object a --json command prints on stdout (strict JSON: no NaN or Infinity)."""
    sys.stdout.write(json.dumps(json_safe(obj), allow_nan=False) + "\n")
    sys.stdout.flush()


def parse_device(name: str) -> torch.device:
    import torch

    if name == "cpu":
        return torch.device("cpu")
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise UsageError(f"--device = {name!r}: CUDA is not available here; allowed: cpu")
        return torch.device(name)
    raise UsageError(f"--device = {name!r}: allowed: cpu, cuda, cuda:N")
