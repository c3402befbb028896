"""The cells table: one row per cell, and its file ``cells.parquet``.

Columns, in order::

    cell                      position in the grid (seeds vary fastest)
    <axis key> ...            the cell's value on each axis (e.g. task.dim)
    seed                      the cell's seed (null for an exact formula)
    status                    complete | failed | pending (pending: only in a partial table)
    cached                    read back from the store (True) or computed by this sweep (False)
    seconds                   compute time of the run
    <metric> ...              headline metrics (Experiment.headline; theory cells: value, stderr)
    verdict                   the run's headline verdict from its claim checks (contract.verdict)
    claims_hold/fail/undecided  how many claim checks hold / fail / are inconclusive or n/a
    other_checks              the theory and sanity checks, counted (e.g. "theory: 2 hold")
    claims_ok                 True: the verdict is holds; False: fails; null: inconclusive or n/a
    check_1 ... check_K       each check's status (holds / fails / inconclusive / n/a)
    hash, run_dir, error      the run store's key and folder; the error of a failed cell

The sweep's description (target, axes and their values, seeds, metric names, check claims) is stored
in the parquet file's key-value metadata, so ``fmtheory sweep-report`` needs this file alone.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from fmtheory.atomic import atomic_write
from fmtheory.contract import counts_text, verdict
from fmtheory.runs.store import StoredRun

__all__ = [
    "META_KEY",
    "RESERVED",
    "SweepCells",
    "experiment_metrics",
    "check_summary",
    "build_table",
    "write_cells",
    "read_cells",
]

META_KEY = b"fmtheory.sweep"
RESERVED = (
    "cell", "seed", "status", "cached", "seconds", "verdict", "claims_hold", "claims_fail",
    "claims_undecided", "other_checks", "claims_ok", "hash", "run_dir", "error",
)  # fmt: skip
#: at most this many fallback metrics (one per method x metric) when an experiment has no headline
MAX_FALLBACK_METRICS = 24


@dataclass
class SweepCells:
    """A cells table and the sweep description stored with it."""

    table: pd.DataFrame
    spec: dict[str, Any]


def experiment_metrics(experiment: Any, run: StoredRun) -> tuple[dict[str, float], str | None]:
    """Headline metrics of a stored run, and an error note if the headline could not be computed.

    Uses ``experiment.headline(table, config)`` (the stored config, validated); an experiment without one gets the mean ``value`` of every
    (method, metric) pair, named ``method/metric`` (at most 24), so any experiment can be swept.
    """
    table = run.table
    try:
        if getattr(experiment, "headline", None) is not None:
            out = experiment.headline(table, experiment.validate(run.config))
        else:
            g = table.groupby(["method", "metric"], sort=False)["value"].mean()
            out = {f"{m}/{k}": v for (m, k), v in list(g.items())[:MAX_FALLBACK_METRICS]}
        return {str(k): _float(v) for k, v in out.items()}, None
    except Exception as e:  # a headline that fails is a finding, not a crash of the sweep
        return {}, f"headline failed: {type(e).__name__}: {e}"


def _float(v: Any) -> float:
    try:
        return float(v)
    except (TypeError, ValueError):
        return math.nan


def check_summary(checks: list[Any]) -> dict[str, Any]:
    """The headline verdict (claim checks), counts by kind, and each check's status (``check_1`` ...)."""
    claims = [c for c in checks if c.kind == "claim"]
    hold = sum(c.status == "holds" for c in claims)
    fail = sum(c.status == "fails" for c in claims)
    v = verdict(checks)
    out: dict[str, Any] = {
        "verdict": v,
        "claims_hold": hold,
        "claims_fail": fail,
        "claims_undecided": len(claims) - hold - fail,
        "other_checks": counts_text([c for c in checks if c.kind != "claim"]),
        "claims_ok": {"holds": True, "fails": False}.get(v),
    }
    for i, c in enumerate(checks, 1):
        out[f"check_{i}"] = c.status
    return out


def build_table(rows: list[dict[str, Any]], spec: dict[str, Any]) -> pd.DataFrame:
    """Rows (dicts) -> the cells table with the fixed column order and dtypes described above."""
    axes = [a["key"] for a in spec["grid"]["axes"]]
    metrics = list(spec.get("metrics", []))
    n_checks = int(spec.get("n_checks", 0))
    checks = [f"check_{i}" for i in range(1, n_checks + 1)]
    cols = (
        ["cell", *axes, "seed", "status", "cached", "seconds", *metrics]
        + ["verdict", "claims_hold", "claims_fail", "claims_undecided", "other_checks", "claims_ok"]
        + checks
        + ["hash", "run_dir", "error"]
    )
    df = pd.DataFrame([{c: r.get(c) for c in cols} for r in rows], columns=cols)
    df["cell"] = df["cell"].astype("int64")
    df["seed"] = df["seed"].astype("Int64")
    for c in ("status", "hash", "run_dir", "error", "verdict", "other_checks", *checks):
        df[c] = df[c].astype("string")
    for c in ["seconds", *metrics]:
        df[c] = pd.to_numeric(df[c], errors="coerce").astype("float64")
    for c in ("claims_hold", "claims_fail", "claims_undecided"):
        df[c] = df[c].astype("Int64")
    for c in ["cached", "claims_ok"]:
        df[c] = df[c].astype("boolean")
    for a in axes:
        df[a] = _axis_column(df[a])
    return df


def _axis_column(s: pd.Series) -> pd.Series:
    """Keep an axis column typed when its values share a type; otherwise store their text."""
    kinds = {type(v) for v in s if v is not None and not (isinstance(v, float) and math.isnan(v))}
    if kinds <= {int} and s.notna().all():
        return s.astype("int64")
    if kinds <= {int, float}:
        return s.astype("float64")
    if kinds <= {bool}:
        return s.astype("boolean")
    if kinds <= {str}:
        return s.astype("string")
    return s.map(lambda v: None if v is None else json.dumps(v, default=str)).astype("string")


def write_cells(path: Path | str, table: pd.DataFrame, spec: dict[str, Any]) -> None:
    """Write ``cells.parquet`` atomically, with ``spec`` in the file's metadata."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    t = pa.Table.from_pandas(table, preserve_index=False)
    meta = dict(t.schema.metadata or {})
    meta[META_KEY] = json.dumps(spec, default=_json_default).encode()
    t = t.replace_schema_metadata(meta)
    atomic_write(Path(path), lambda tmp: pq.write_table(t, tmp))


def read_cells(path: Path | str) -> SweepCells:
    """Read a ``cells.parquet`` and its sweep description; ValueError if it is not one."""
    import pyarrow.parquet as pq

    try:
        t = pq.read_table(path)
    except (OSError, ValueError) as e:  # pyarrow raises ArrowInvalid (a ValueError) on garbage
        raise ValueError(f"{path}: not a readable parquet file ({e})") from None
    raw = (t.schema.metadata or {}).get(META_KEY)
    if raw is None:
        raise ValueError(f"{path}: no fmtheory sweep description in its metadata")
    return SweepCells(t.to_pandas(), json.loads(raw))


def _json_default(o: Any) -> Any:
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")
