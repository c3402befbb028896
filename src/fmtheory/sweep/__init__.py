"""Sweeps: any experiment (or any registered formula) over a grid of config values and seeds.

``fmtheory.sweep.run(experiment, grid, seeds, executor=...)`` returns the cells table (one row per
cell) and writes a sweep folder with ``sweep.yaml``, ``cells.parquet``, ``figures/`` (phase diagrams,
line plots) and ``report.html``.  Each experiment cell is an ordinary run of the run store, cached by
config hash: re-running a sweep computes only what is missing.  See docs/sweeps.md.

The names below are imported on first use, so that a worker process importing
``fmtheory.sweep.worker`` does not pay for torch when its cells are formulas.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_EXPORTS = {
    "SweepCells": "cells",
    "read_cells": "cells",
    "write_cells": "cells",
    "SweepPlan": "core",
    "plan": "core",
    "run": "core",
    "run_plan": "core",
    "sweep_hash": "core",
    "EXECUTORS": "executors",
    "Executor": "executors",
    "InlineExecutor": "executors",
    "LocalExecutor": "executors",
    "RayExecutor": "executors",
    "make_executor": "executors",
    "start_local_ray": "executors",
    "phase_diagram": "figures",
    "sweep_figures": "figures",
    "MAX_CELLS": "grid",
    "Axis": "grid",
    "Cell": "grid",
    "Grid": "grid",
    "make_grid": "grid",
    "parse_axis": "grid",
    "parse_seeds": "grid",
    "parse_sets": "grid",
    "parse_values": "grid",
    "CellJob": "jobs",
    "CellOutcome": "jobs",
    "write_sweep_report": "report",
}

__all__ = [
    "Axis",
    "Cell",
    "CellJob",
    "CellOutcome",
    "EXECUTORS",
    "Executor",
    "Grid",
    "InlineExecutor",
    "LocalExecutor",
    "MAX_CELLS",
    "RayExecutor",
    "SweepCells",
    "SweepPlan",
    "make_executor",
    "make_grid",
    "parse_axis",
    "parse_seeds",
    "parse_sets",
    "parse_values",
    "phase_diagram",
    "plan",
    "read_cells",
    "run",
    "run_plan",
    "start_local_ray",
    "sweep_figures",
    "sweep_hash",
    "write_cells",
    "write_sweep_report",
]

if TYPE_CHECKING:  # pragma: no cover
    from fmtheory.sweep.cells import SweepCells, read_cells, write_cells
    from fmtheory.sweep.core import SweepPlan, plan, run, run_plan, sweep_hash
    from fmtheory.sweep.executors import (
        EXECUTORS,
        Executor,
        InlineExecutor,
        LocalExecutor,
        RayExecutor,
        make_executor,
        start_local_ray,
    )
    from fmtheory.sweep.figures import phase_diagram, sweep_figures
    from fmtheory.sweep.grid import (
        MAX_CELLS,
        Axis,
        Cell,
        Grid,
        make_grid,
        parse_axis,
        parse_seeds,
        parse_sets,
        parse_values,
    )
    from fmtheory.sweep.jobs import CellJob, CellOutcome
    from fmtheory.sweep.report import write_sweep_report


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        value = getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])
