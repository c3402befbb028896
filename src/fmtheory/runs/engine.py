"""Run one experiment into the store: cache by config hash, resume, write atomically, manifest last.

Two ways in:

- :func:`execute` computes *inside* the run folder (checkpoints live there, so an interrupted run
  resumes) and writes it: what ``fmtheory run`` and the local sweep workers call.
- :func:`compute` + :func:`commit` split the same work in two for a cluster: a worker computes in a
  private temporary folder and hands back a :class:`ComputedRun` (table, checks, figure PNGs and
  artifact bytes such as ``model.safetensors``); the driver commits it into the store.  Only the
  driver writes the store, so the cluster needs no shared filesystem.

Both end in the same writer (:func:`_write_outputs`), so a committed run and an executed run of the
same config hold the same files and the same numbers.

The verdicts are always ``experiment.checks(table, config)`` on the table as stored, so
:func:`recheck` recomputes them with the installed code from disk alone.  A stored run made by other
code (another source hash) is stale: :func:`execute` recomputes it unless ``reuse_stale``.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import torch

from fmtheory import __version__
from fmtheory.atomic import write_bytes, write_json, write_parquet, write_text, write_yaml
from fmtheory.contract import (
    TABLE_COLUMNS,
    Check,
    Experiment,
    ExperimentConfig,
    Result,
    RunContext,
    get_experiment,
    verdict,
)
from fmtheory.report import figure_png, render_report, write_figures
from fmtheory.runs.store import (
    RunStore,
    StoredRun,
    config_hash,
    load_run,
    run_status,
    write_manifest,
)
from fmtheory.version import code_version

__all__ = [
    "ComputedRun",
    "RecheckResult",
    "RunRecord",
    "commit",
    "compute",
    "execute",
    "recheck",
    "rerender_report",
]


@dataclass
class RunRecord:
    """Where a run lives and whether it was computed now (``cached=False``) or read back.

    ``stale``: read back although other code made it (only with ``reuse_stale=True``)."""

    run_dir: Path
    hash: str
    cached: bool
    run: StoredRun
    stale: bool = False


@dataclass
class ComputedRun:
    """Everything one run produced, in memory (picklable): what a cluster worker sends back.

    ``figures``: name -> PNG bytes.  ``artifacts``: path relative to the run folder -> file bytes
    (e.g. ``model.safetensors``; checkpoints are not included).  ``meta``: what the manifest records.
    """

    experiment: str
    hash: str
    config: dict[str, Any]
    device: str
    table: pd.DataFrame
    checks: list[Check]
    seconds: float
    figures: dict[str, bytes] = field(default_factory=dict)
    artifacts: dict[str, bytes] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)


@contextmanager
def _locked(run_dir: Path) -> Iterator[None]:
    """An exclusive lock on the run folder: one process computes a given config at a time."""
    run_dir.mkdir(parents=True, exist_ok=True)
    with open(run_dir / ".lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def execute(
    experiment: Experiment,
    config: ExperimentConfig,
    *,
    root: Path | str = "runs",
    device: torch.device | str = "cpu",
    force: bool = False,
    progress: bool = False,
    reuse_stale: bool = False,
    preset: str | None = None,
) -> RunRecord:
    """Run ``experiment`` on ``config`` into ``root`` unless an identical run is stored.

    Identical means the same config, device type and code (source hash); a stored run made by
    other code is recomputed, or returned marked ``stale`` when ``reuse_stale``.  An interrupted
    run leaves ``checkpoints/`` in its folder; calling again resumes from them (checkpoints of
    other code are discarded).
    """
    device = torch.device(device)
    cfg = config.model_dump(mode="json")
    h = config_hash(experiment.name, cfg, device.type)
    store = RunStore(root)
    run_dir = store.run_dir(experiment.name, h)
    found = None if force else _reusable(run_dir, reuse_stale)
    if found is not None:
        return RunRecord(run_dir, h, True, found, stale=found.stale)
    with _locked(run_dir):
        # Another process may have finished it while we waited for the lock.
        found = None if force else _reusable(run_dir, reuse_stale)
        if found is not None:
            return RunRecord(run_dir, h, True, found, stale=found.stale)
        if not _checkpoints_current(run_dir):
            force = True
        _clear_outputs(run_dir, keep_checkpoints=not force)
        write_yaml(run_dir / "config.yaml", cfg)
        write_json(run_dir / "checkpoints" / "code.json", code_version())
        store.record(h, experiment.name, run_dir, "running")
        t0 = time.time()
        ctx = RunContext(device=device, workdir=run_dir, progress=progress)
        try:
            result = experiment.run(config, ctx)
            _check_table(experiment.name, result)
        except BaseException as e:
            store.record(h, experiment.name, run_dir, "failed" if isinstance(e, Exception) else "interrupted",
                         error=f"{type(e).__name__}: {e}")  # fmt: skip
            raise
        seconds = time.time() - t0
        checks = experiment.checks(result.table, config)
        pngs = write_figures(result.figures, run_dir / "figures")
        meta = _meta(experiment.name, h, cfg, device.type, seconds)
        meta["model"] = experiment.model_label(config)
        meta["preset"] = preset
        _write_outputs(experiment, run_dir, cfg, result.table, checks, pngs, meta)
        store.record(h, experiment.name, run_dir, "complete", seconds=seconds)
    _update_index(store.root)
    return RunRecord(run_dir, h, False, load_run(run_dir))


def compute(
    experiment: Experiment,
    config: ExperimentConfig,
    *,
    device: torch.device | str = "cpu",
    progress: bool = False,
) -> ComputedRun:
    """Run ``experiment`` in a private temporary folder and return everything it produced.

    Touches no store: the caller (a sweep driver) hands the result to :func:`commit`.  The
    temporary folder, checkpoints included, is removed whatever happens.
    """
    device = torch.device(device)
    cfg = config.model_dump(mode="json")
    h = config_hash(experiment.name, cfg, device.type)
    tmp = Path(tempfile.mkdtemp(prefix=f"fmtheory-{experiment.name}-"))
    try:
        t0 = time.time()
        result = experiment.run(config, RunContext(device=device, workdir=tmp, progress=progress))
        _check_table(experiment.name, result)
        seconds = time.time() - t0
        figures = {}
        if result.figures:
            import matplotlib.pyplot as plt

            for name, fig in result.figures.items():
                figures[name] = figure_png(fig)
                plt.close(fig)
        artifacts = {
            p.relative_to(tmp).as_posix(): p.read_bytes()
            for p in sorted(tmp.rglob("*"))
            if p.is_file() and _is_artifact(p.relative_to(tmp).as_posix())
        }
        return ComputedRun(
            experiment=experiment.name,
            hash=h,
            config=cfg,
            device=device.type,
            table=result.table,
            checks=experiment.checks(result.table, config),
            seconds=seconds,
            figures=figures,
            artifacts=artifacts,
            meta={
                **_meta(experiment.name, h, cfg, device.type, seconds),
                "model": experiment.model_label(config),
            },
        )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def commit(
    experiment: Experiment, computed: ComputedRun, *, root: Path | str = "runs", force: bool = False
) -> RunRecord:
    """Write a :class:`ComputedRun` into the store under ``root`` (the driver's side of a cluster run).

    If an identical run is already complete there (and not ``force``), it is kept and returned with
    ``cached=True``: the same config hash always means the same numbers.
    """
    if computed.experiment != experiment.name:
        raise ValueError(
            f"computed.experiment = {computed.experiment!r}: expected {experiment.name!r}"
        )
    store = RunStore(root)
    run_dir = store.run_dir(experiment.name, computed.hash)
    found = None if force else _reusable(run_dir, False)
    if found is not None:
        return RunRecord(run_dir, computed.hash, True, found)
    with _locked(run_dir):
        found = None if force else _reusable(run_dir, False)
        if found is not None:
            return RunRecord(run_dir, computed.hash, True, found)
        _clear_outputs(run_dir, keep_checkpoints=False)
        write_yaml(run_dir / "config.yaml", computed.config)
        for rel, data in computed.artifacts.items():
            if not _is_artifact(rel) or Path(rel).is_absolute() or ".." in Path(rel).parts:
                raise ValueError(f"artifact path {rel!r}: must be a plain relative path")
            write_bytes(run_dir / rel, data)
        for name, png in computed.figures.items():
            write_bytes(run_dir / "figures" / f"{name}.png", png)
        meta = dict(computed.meta) or _meta(
            experiment.name, computed.hash, computed.config, computed.device, computed.seconds
        )
        _write_outputs(
            experiment, run_dir, computed.config, computed.table, computed.checks,
            computed.figures, meta,
        )  # fmt: skip
        store.record(computed.hash, experiment.name, run_dir, "complete", seconds=computed.seconds)
    _update_index(store.root)
    return RunRecord(run_dir, computed.hash, False, load_run(run_dir))


def _update_index(root: Path) -> None:
    """Rewrite the store's results browser (index.html); a failure there never fails the run."""
    from fmtheory.runs.browser import write_index

    try:
        write_index(root)
    except Exception as e:  # the run is stored; the page is rebuilt by the next run or `browse`
        import warnings

        warnings.warn(f"could not rewrite {root}/index.html: {e}", stacklevel=2)


def _reusable(run_dir: Path, reuse_stale: bool) -> StoredRun | None:
    """The complete run in ``run_dir`` if it may be returned as the result (current code, or
    any code with ``reuse_stale``); None when it must be computed."""
    if run_status(run_dir).state != "complete":
        return None
    run = load_run(run_dir)
    return run if (reuse_stale or not run.stale) else None


def _checkpoints_current(run_dir: Path) -> bool:
    """Whether the checkpoints in ``run_dir`` (if any) were written by the installed code."""
    ck = run_dir / "checkpoints"
    if not ck.is_dir() or not any(ck.iterdir()):
        return True
    try:
        recorded = json.loads((ck / "code.json").read_text())
    except (OSError, ValueError):
        return False
    return recorded.get("source_hash") == code_version()["source_hash"]


def _is_artifact(rel: str) -> bool:
    """Files of a run's workdir that travel with it: not checkpoints, not hidden temp files."""
    return not rel.startswith(("checkpoints/", ".")) and "/." not in rel


def _check_table(name: str, result: Result) -> None:
    missing = [c for c in TABLE_COLUMNS if c not in result.table.columns]
    if missing:
        raise RuntimeError(f"{name}: result table lacks columns {missing}")


def _meta(name: str, h: str, cfg: dict[str, Any], device: str, seconds: float) -> dict[str, Any]:
    return {
        "experiment": name,
        "hash": h,
        "seed": cfg.get("seed"),
        "device": device,
        "seconds": round(seconds, 3),
        "fmtheory": __version__,
        "code": code_version(),
        "torch": str(torch.__version__),
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def _write_outputs(
    experiment: Experiment,
    run_dir: Path,
    cfg: dict[str, Any],
    table: pd.DataFrame,
    checks: list[Check],
    pngs: dict[str, bytes],
    meta: dict[str, Any],
) -> None:
    """Table, checks, report; drop checkpoints; manifest last (the run is complete from then on)."""
    write_parquet(run_dir / "results.parquet", table)
    write_json(run_dir / "checks.json", [c.to_dict() for c in checks])
    meta = {**meta, "verdict": verdict(checks)}
    _write_report(experiment, run_dir, cfg, table, checks, pngs, meta)
    shutil.rmtree(run_dir / "checkpoints", ignore_errors=True)
    write_manifest(run_dir, meta)


def _write_report(
    experiment: Experiment,
    run_dir: Path,
    cfg: dict[str, Any],
    table: Any,
    checks: list,
    pngs: dict[str, bytes],
    meta: dict[str, Any],
    stale: bool = False,
) -> None:
    page = render_report(
        title=f"fmtheory · {experiment.name}",
        claim=experiment.claim,
        source=experiment.source,
        checks=checks,
        table=table,
        figures=pngs,
        config=cfg,
        meta=meta,
        stale=stale,
    )
    write_text(run_dir / "report.html", page)


@dataclass
class RecheckResult:
    """Checks of a stored run recomputed with the installed code.

    ``changed``: (claim, stored status, new status) for every check whose status differs, and for
    checks present on one side only (status "absent" on the other).  ``stale``: other code made
    the run's table.  ``written``: the new checks were stored (``fmtheory recheck``).
    """

    run_dir: Path
    stored: list[Check]
    current: list[Check]
    changed: list[tuple[str, str, str]]
    stale: bool
    written: bool = False


def _diff(stored: list[Check], current: list[Check]) -> list[tuple[str, str, str]]:
    a = {c.claim: c.status for c in stored}
    b = {c.claim: c.status for c in current}
    out = []
    for claim in list(a) + [k for k in b if k not in a]:
        sa, sb = a.get(claim, "absent"), b.get(claim, "absent")
        if sa != sb:
            out.append((claim, sa, sb))
    return out


def recheck(run_dir: Path | str, *, write: bool = False) -> RecheckResult:
    """Recompute a complete run's checks from its stored table and config with the installed code.

    With ``write``, store them (checks.json, report.html, figures, manifest with ``rechecked_by``,
    the installed code version).  The table itself is never recomputed: a run whose table other code
    made stays stale until ``fmtheory run --force``.
    """
    run = load_run(Path(run_dir))
    experiment = get_experiment(run.experiment)
    config = experiment.validate(run.config)
    current = experiment.checks(run.table, config)
    res = RecheckResult(run.run_dir, run.checks, current, _diff(run.checks, current), run.stale)
    if write:
        pngs = write_figures(experiment.figures(run.table), run.run_dir / "figures")
        meta = {k: v for k, v in run.manifest.items() if k != "files"}
        meta["rechecked_by"] = code_version()
        meta["model"] = experiment.model_label(config)
        write_json(run.run_dir / "checks.json", [c.to_dict() for c in current])
        meta["verdict"] = verdict(current)
        _write_report(
            experiment, run.run_dir, run.config, run.table, current, pngs, meta, stale=run.stale
        )
        write_manifest(run.run_dir, meta)
        res.written = True
    return res


def rerender_report(run_dir: Path | str, experiment: Experiment | None = None) -> RecheckResult:
    """Redraw figures and report.html of a complete run from its stored table alone, with the
    checks recomputed by the installed code (``fmtheory report``); see :func:`recheck`."""
    return recheck(run_dir, write=True)


def _clear_outputs(run_dir: Path, *, keep_checkpoints: bool) -> None:
    """Remove a previous attempt's outputs (manifest first, so it can never look complete).

    Also removes temp files a killed writer left behind (``.NAME.XXXX.tmp``), so a folder never
    holds a half-written file under any name once it is complete.
    """
    for name in ("manifest.json", "results.parquet", "checks.json", "report.html", "config.yaml"):
        p = run_dir / name
        if p.exists():
            os.unlink(p)
    shutil.rmtree(run_dir / "figures", ignore_errors=True)
    for p in run_dir.rglob(".*.tmp"):
        if p.is_file():
            p.unlink()
    if not keep_checkpoints:
        shutil.rmtree(run_dir / "checkpoints", ignore_errors=True)
        for p in run_dir.glob("*.safetensors"):
            p.unlink()
