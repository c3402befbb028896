"""The run store: folders + SQLite index, cached by config hash, resumable."""

from fmtheory.runs.execute import ComputedRun, RunRecord, commit, compute, execute, rerender_report
from fmtheory.runs.store import (
    CorruptRunError,
    RunStatus,
    RunStore,
    StoredRun,
    config_hash,
    load_run,
    run_status,
)

__all__ = [
    "ComputedRun",
    "CorruptRunError",
    "RunRecord",
    "RunStatus",
    "RunStore",
    "StoredRun",
    "commit",
    "compute",
    "config_hash",
    "execute",
    "load_run",
    "rerender_report",
    "run_status",
]
