"""The run store: folders + SQLite index, cached by config hash and code version, resumable.

``fmtheory.runs.store`` is torch-free; :mod:`fmtheory.runs.engine` (which runs experiments) is
imported on first use of its names.
"""

from __future__ import annotations

import importlib
from typing import Any

from fmtheory.runs.store import (
    CorruptRunError,
    RunStatus,
    RunStore,
    StoredRun,
    config_hash,
    load_run,
    run_status,
)

_LAZY = ("ComputedRun", "RunRecord", "commit", "compute", "execute", "recheck", "rerender_report")

__all__ = [
    "CorruptRunError",
    "RunStatus",
    "RunStore",
    "StoredRun",
    "config_hash",
    "load_run",
    "run_status",
    *_LAZY,
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module("fmtheory.runs.engine"), name)
    raise AttributeError(f"module 'fmtheory.runs' has no attribute {name!r}")
