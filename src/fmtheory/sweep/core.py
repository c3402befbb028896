"""Plan and run a sweep: validate every cell first, then compute only what the store lacks.

A sweep folder ``ROOT/sweeps/<target>-<hash12>/`` (the hash covers target, preset, overrides, grid,
seeds and device, so the same command finds the same folder again) holds ``sweep.yaml``,
``cells.parquet``, ``figures/`` and ``report.html``.  Experiment cells are ordinary runs in the store
``ROOT``: a complete run folder is read back (its checksums verified), never recomputed; an
incomplete one (interrupted) resumes from its checkpoints; a corrupt one is recomputed.  A cell that
failed before stays failed (with its error) unless ``retry_failed``.  Theory cells are closed forms
(or seeded Monte Carlo) evaluated again each time: they cost microseconds to seconds.
"""

from __future__ import annotations

import hashlib
import json
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import torch
import yaml

from fmtheory import __version__
from fmtheory.atomic import write_text
from fmtheory.contract import ConfigError, Experiment
from fmtheory.runs.store import CorruptRunError, RunStore, load_run
from fmtheory.sweep.cells import (
    RESERVED,
    SweepCells,
    build_table,
    check_summary,
    experiment_metrics,
    write_cells,
)
from fmtheory.sweep.executors import Executor, make_executor
from fmtheory.sweep.grid import HARD_MAX_CELLS, MAX_CELLS, Grid, make_grid, parse_sets
from fmtheory.sweep.jobs import CellOutcome
from fmtheory.sweep.progress import SweepProgress
from fmtheory.sweep.report import write_sweep_report
from fmtheory.sweep.targets import CellJob, ExperimentTarget, Target, make_target
from fmtheory.theory.registry import Formula

__all__ = ["SweepPlan", "plan", "run", "run_plan", "sweep_hash"]

#: seconds between rewrites of the partial cells table while a sweep runs
CHECKPOINT_SECONDS = 10.0


@dataclass
class SweepPlan:
    """A validated sweep: its target, grid, one job per cell, where it writes, and its description."""

    target: Target
    grid: Grid
    jobs: list[CellJob]
    root: Path
    sweep_dir: Path
    device: torch.device
    spec: dict[str, Any]


def sweep_hash(description: dict[str, Any]) -> str:
    """SHA-256 of what defines a sweep's cells (not how or where they run)."""
    payload = json.dumps(description, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(payload.encode()).hexdigest()


def _device(device: torch.device | str) -> torch.device:
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        raise ConfigError("--device", device, "allowed: cpu, cuda, cuda:N") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError("--device", device, "CUDA is not available here; allowed: cpu")
    if dev.type not in ("cpu", "cuda"):
        raise ConfigError("--device", device, "allowed: cpu, cuda, cuda:N")
    return dev


def plan(
    experiment: str | Experiment | None = None,
    grid: Grid | dict[str, Any] | list[str] | None = None,
    seeds: str | int | list[int] | None = None,
    *,
    theory: str | Formula | None = None,
    preset: str | None = None,
    overrides: dict[str, Any] | list[str] | None = None,
    root: Path | str = "runs",
    sweep_dir: Path | str | None = None,
    device: torch.device | str = "cpu",
    yes: bool = False,
) -> SweepPlan:
    """Validate a sweep completely (target, grid, every cell's config) without writing anything.

    Raises :class:`~fmtheory.contract.ConfigError` naming the field on any bad input,
    including a grid of more than ``MAX_CELLS`` (10,000) cells without ``yes=True``.
    """
    dev = _device(device)
    target = make_target(experiment, theory=theory, preset=preset, overrides=parse_sets(overrides))
    g = make_grid(grid, seeds)
    n = g.n_cells
    if n > HARD_MAX_CELLS:
        raise ConfigError("--grid", f"{n:,} cells", f"at most {HARD_MAX_CELLS:,} cells per sweep")
    if n > MAX_CELLS and not yes:
        raise ConfigError(
            "--grid", f"{n:,} cells", f"over {MAX_CELLS:,} cells: pass --yes to run it anyway"
        )
    jobs = target.jobs(g, device=dev)
    seen: dict[str, int] = {}
    cells = None
    for job in jobs:
        if job.hash in seen:
            cells = cells or g.cells()
            a, b = cells[seen[job.hash]], cells[job.index]
            raise ConfigError(
                "--grid",
                f"{a.point} and {b.point}",
                "two cells give the same config (e.g. 5 and 5.0 of an integer field); "
                "list each value once",
            )
        seen[job.hash] = job.index
    desc = {**target.describe(), "grid": g.to_dict(), "device": str(dev)}
    # the cells define the sweep, not how they were written: 10:30:10 and 10,20,30 are one sweep
    cells_only = {**desc, "grid": {"axes": [[a.key, list(a.values)] for a in g.axes],
                                   "seeds": g.to_dict()["seeds"]}}  # fmt: skip
    h = sweep_hash({k: v for k, v in cells_only.items() if k not in ("claim", "source")})
    root = Path(root)
    sdir = (
        Path(sweep_dir) if sweep_dir is not None else root / "sweeps" / f"{target.label}-{h[:12]}"
    )
    spec = {
        "fmtheory_sweep": 1,
        **desc,
        "n_cells": n,
        "sweep_hash": h,
        "store": str(root),
        "fmtheory": __version__,
    }
    return SweepPlan(target, g, jobs, root, sdir, dev, spec)


def run(
    experiment: str | Experiment | None = None,
    grid: Grid | dict[str, Any] | list[str] | None = None,
    seeds: str | int | list[int] | None = None,
    *,
    theory: str | Formula | None = None,
    preset: str | None = None,
    overrides: dict[str, Any] | list[str] | None = None,
    executor: str | Executor = "local",
    workers: int | None = None,
    address: str | None = None,
    threads: int | None = None,
    root: Path | str = "runs",
    sweep_dir: Path | str | None = None,
    device: torch.device | str = "cpu",
    retry_failed: bool = False,
    yes: bool = False,
    progress: bool = False,
) -> pd.DataFrame:
    """Sweep ``experiment`` (or the formula ``theory``) over ``grid`` x ``seeds``; return the cells table.

    ``grid``: ``{"task.dim": [5, 10], "task.n_points": "10:40:10"}`` or ``["task.dim=5,10", ...]``;
    ``seeds``: ``"0..4"``, ``[0, 1, 2]`` or None (the config's own seed).  ``executor``: "local"
    (processes here, ``workers`` of them), "ray" (``address`` = a cluster, or None for a local Ray),
    "inline" (this process); ``threads``: torch threads per cell (default: cores // workers).  The table's ``attrs["sweep_dir"]`` is the sweep folder.
    See :mod:`fmtheory.sweep.cells` for the columns.
    """
    p = plan(
        experiment, grid, seeds, theory=theory, preset=preset, overrides=overrides, root=root,
        sweep_dir=sweep_dir, device=device, yes=yes,
    )  # fmt: skip
    ex = (
        executor
        if isinstance(executor, Executor)
        else make_executor(executor, workers=workers, address=address, threads=threads)
    )
    return run_plan(p, executor=ex, retry_failed=retry_failed, progress=progress).table


@dataclass
class _Row:
    job: CellJob
    data: dict[str, Any]


def run_plan(
    plan: SweepPlan, *, executor: Executor, retry_failed: bool = False, progress: bool = False
) -> SweepCells:
    """Run a validated plan with ``executor``; write the sweep folder; return the cells table.

    Interrupted (Ctrl-C): the finished cells are kept (in the store and in a partial cells table
    whose other rows are "pending") and ``KeyboardInterrupt`` propagates; run again to resume.
    """
    t0 = time.perf_counter()
    sdir = plan.sweep_dir
    cells = {c.index: c for c in plan.grid.cells()}
    rows: dict[int, dict[str, Any]] = {}
    by_index = {j.index: j for j in plan.jobs}
    pending = _resolve_stored(plan, rows, cells, retry_failed)  # reads only
    if pending:
        executor.open()  # e.g. join the Ray cluster: a bad address fails before anything is written
    try:
        sdir.mkdir(parents=True, exist_ok=True)
        text = yaml.safe_dump(_plain(plan.spec), sort_keys=False, allow_unicode=True)
        write_text(sdir / "sweep.yaml", text)
        bar = SweepProgress(
            total=len(plan.jobs), label=f"sweep {plan.target.label}", enabled=progress,
            slots=executor.slots,
        )  # fmt: skip
        for row in rows.values():
            bar.finished(failed=row["status"] == "failed", cached=True, seconds=None, ran=False)
        last_write = time.monotonic()
        extra = {"executor": executor.describe()}

        def on_start(indices: list[int]) -> None:
            bar.started(len(indices))

        def on_done(o: CellOutcome) -> None:
            nonlocal last_write
            job = by_index[o.index]
            rows[o.index] = _row(plan, job, cells[o.index].point, o)
            bar.finished(failed=rows[o.index]["status"] == "failed", cached=o.cached,
                         seconds=o.seconds, ran=True)  # fmt: skip
            if time.monotonic() - last_write > CHECKPOINT_SECONDS:
                _write(plan, rows, cells, t0, extra)
                last_write = time.monotonic()

        finished = False
        try:
            executor.run(pending, root=plan.root, on_start=on_start, on_done=on_done)
            finished = True
        finally:
            bar.close()
            result = _write(plan, rows, cells, t0, extra)
            if finished:
                write_sweep_report(sdir, result)
    finally:
        if pending:
            executor.close()
    result.table.attrs["sweep_dir"] = str(sdir)
    return result


def _resolve_stored(
    plan: SweepPlan, rows: dict[int, dict[str, Any]], cells: dict[int, Any], retry_failed: bool
) -> list[CellJob]:
    """Cells the store already answers (complete runs; failed ones unless retrying) -> ``rows``;
    returns the jobs still to compute."""
    if not isinstance(plan.target, ExperimentTarget):
        return list(plan.jobs)
    store = RunStore(plan.root)
    index = store.entries([j.hash for j in plan.jobs])

    def stored(job: CellJob) -> dict[str, Any] | None:
        """The row of a complete stored run (every checksum verified), else None."""
        run_dir = store.run_dir(job.target, job.hash)
        if not (run_dir / "manifest.json").exists():
            return None
        try:
            run = load_run(run_dir)
        except CorruptRunError:
            return None  # corrupt: recompute (execute clears the folder first)
        if run.stale:
            return None  # made by other code: recompute
        o = CellOutcome(job.index, "complete", job.hash, cached=True,
                        seconds=run.manifest.get("seconds"), run_dir=str(run_dir))  # fmt: skip
        return _row(plan, job, cells[job.index].point, o, run=run)

    # checksums and parquet reads release the GIL: verify many stored runs at once
    with ThreadPoolExecutor(max_workers=8) as pool:
        found = list(pool.map(stored, plan.jobs))
    pending = []
    for job, row in zip(plan.jobs, found, strict=True):
        if row is not None:
            rows[job.index] = row
            continue
        run_dir = store.run_dir(job.target, job.hash)
        entry = index.get(job.hash)
        if entry and entry["state"] == "failed" and not retry_failed:
            o = CellOutcome(job.index, "failed", job.hash, cached=True,
                            error=entry["error"] or "failed", run_dir=str(run_dir))  # fmt: skip
            rows[job.index] = _row(plan, job, cells[job.index].point, o)
            continue
        pending.append(job)
    return pending


def _metric_name(name: str, axes: list[str]) -> str:
    return f"metric:{name}" if name in RESERVED or name in axes else name


def _row(
    plan: SweepPlan,
    job: CellJob,
    point: dict[str, Any],
    o: CellOutcome,
    run: Any = None,
) -> dict[str, Any]:
    axes = plan.grid.keys
    row: dict[str, Any] = {
        "cell": job.index,
        **point,
        "seed": job.config.get("seed"),
        "status": o.status,
        "cached": o.cached,
        "seconds": o.seconds,
        "hash": job.hash,
        "run_dir": o.run_dir,
        "error": o.error,
        "_metrics": [],
        "_claims": [],
    }
    if o.status != "complete":
        return row
    if job.kind == "theory":
        vals = {k: v for k, v in (o.values or {}).items() if v is not None}
        for k, v in vals.items():
            row[_metric_name(k, axes)] = v
        row["_metrics"] = [_metric_name(k, axes) for k in vals]
        return row
    try:
        run = run if run is not None else load_run(Path(o.run_dir or ""))
    except (CorruptRunError, OSError, ValueError) as e:
        row.update(status="failed", error=f"could not read the finished run back: {e}")
        return row
    metrics, err = experiment_metrics(plan.target.experiment, run)  # type: ignore[attr-defined]
    for k, v in metrics.items():
        row[_metric_name(k, axes)] = v
    row["_metrics"] = [_metric_name(k, axes) for k in metrics]
    row.update(check_summary(run.checks))
    row["_claims"] = [c.claim for c in run.checks]
    if err:
        row["error"] = err
    return row


def _write(
    plan: SweepPlan,
    rows: dict[int, dict[str, Any]],
    cells: dict[int, Any],
    t0: float,
    extra: dict[str, Any],
) -> SweepCells:
    """Write ``cells.parquet`` (rows not finished yet are "pending"); metric and check columns are
    ordered by the first cell that has them, so the table does not depend on finishing order."""
    out, metrics, claims, n_checks = [], [], None, 0
    for job in plan.jobs:
        r = rows.get(job.index)
        if r is None:
            r = {"cell": job.index, **cells[job.index].point, "seed": job.config.get("seed"),
                 "status": "pending", "hash": job.hash, "_metrics": [], "_claims": []}  # fmt: skip
        for m in r["_metrics"]:
            if m not in metrics:
                metrics.append(m)
        if r["_claims"]:
            n_checks = max(n_checks, len(r["_claims"]))
            if claims is None:
                claims = r["_claims"]
        out.append(r)
    spec = {
        **plan.spec,
        "metrics": metrics,
        "n_checks": n_checks,
        "checks": claims or [],
        "wall_seconds": round(time.perf_counter() - t0, 3),
        **extra,
    }
    table = build_table(out, spec)
    write_cells(plan.sweep_dir / "cells.parquet", table, spec)
    return SweepCells(table, spec)


def _plain(obj: Any) -> Any:
    """JSON-like copy (tuples -> lists) for yaml.safe_dump."""
    return json.loads(json.dumps(obj, default=str))
