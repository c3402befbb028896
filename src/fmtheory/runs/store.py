"""The run store: a folder per run plus an SQLite index (WAL mode), cached by config hash.

Torch-free.  A run records the code that made it (``manifest.json`` → ``code``); a run made by other
code is *stale*: it is recomputed rather than returned as identical, or shown marked as stale.

Folder ``ROOT/<experiment>-<hash12>/`` holds ``config.yaml``, ``results.parquet``, ``checks.json``,
``figures/*.png``, ``report.html``, artifacts such as ``model.safetensors``, a ``checkpoints/`` folder
while the run is in progress, and — written last — ``manifest.json`` with the SHA-256 of every file.
A run is complete exactly when its manifest exists and every checksum matches; anything else is
reported as incomplete or corrupt, never read as a result.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from fmtheory.atomic import sha256, write_json
from fmtheory.contract import Check
from fmtheory.version import is_current

__all__ = [
    "config_hash",
    "RunStore",
    "StoredRun",
    "RunStatus",
    "CorruptRunError",
    "run_status",
    "load_run",
    "write_manifest",
]

MANIFEST = "manifest.json"


class CorruptRunError(RuntimeError):
    """A run folder that is incomplete or whose files do not match its manifest."""


def config_hash(experiment: str, config: dict[str, Any], device: str = "cpu") -> str:
    """SHA-256 of the canonical JSON of (experiment, config, device type): the cache key of a run."""
    payload = json.dumps(
        {"experiment": experiment, "config": config, "device": device},
        sort_keys=True,
        separators=(",", ":"),
        default=str,
    )
    return hashlib.sha256(payload.encode()).hexdigest()


@dataclass(frozen=True)
class RunStatus:
    """``state`` is "complete", "incomplete" (no manifest: interrupted or running) or "corrupt"."""

    state: str
    reason: str = ""


def run_status(run_dir: Path) -> RunStatus:
    """Check a run folder against its manifest."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        return RunStatus("missing", f"{run_dir} does not exist")
    mpath = run_dir / MANIFEST
    if not mpath.exists():
        return RunStatus("incomplete", "no manifest.json: the run was interrupted or is running")
    try:
        manifest = json.loads(mpath.read_text())
        files = manifest["files"]
    except (OSError, ValueError, KeyError) as e:
        return RunStatus("corrupt", f"manifest.json unreadable: {e}")
    for name, digest in files.items():
        p = run_dir / name
        if not p.exists():
            return RunStatus("corrupt", f"{name} is missing")
        if sha256(p) != digest:
            return RunStatus("corrupt", f"{name} does not match its checksum (truncated or edited)")
    return RunStatus("complete")


def write_manifest(run_dir: Path, meta: dict[str, Any]) -> None:
    """Checksum every file of the run (checkpoints excluded) and write manifest.json last."""
    run_dir = Path(run_dir)
    files = {}
    for p in sorted(run_dir.rglob("*")):
        rel = p.relative_to(run_dir).as_posix()
        if p.is_file() and rel != MANIFEST and not rel.startswith(("checkpoints/", ".")):
            if "/." in rel:
                continue
            files[rel] = sha256(p)
    write_json(run_dir / MANIFEST, {**meta, "files": files})


@dataclass
class StoredRun:
    """A complete run read back from disk.

    ``code``: the code version that made it (manifest ``code``: fmtheory version, source hash,
    commit, dirty flag); ``stale``: it was made by other code than the installed one.
    """

    run_dir: Path
    experiment: str
    config: dict[str, Any]
    table: pd.DataFrame
    checks: list[Check]
    manifest: dict[str, Any]

    @property
    def code(self) -> dict[str, Any]:
        return dict(self.manifest.get("code") or {})

    @property
    def stale(self) -> bool:
        return not is_current(self.manifest.get("code"))


def load_run(run_dir: Path) -> StoredRun:
    """Read a complete run; :class:`CorruptRunError` if it is incomplete or corrupt."""
    run_dir = Path(run_dir)
    st = run_status(run_dir)
    if st.state != "complete":
        raise CorruptRunError(f"{run_dir}: {st.state}: {st.reason}")
    manifest = json.loads((run_dir / MANIFEST).read_text())
    with open(run_dir / "config.yaml") as fh:
        config = yaml.safe_load(fh)
    table = pd.read_parquet(run_dir / "results.parquet")
    checks = [Check.from_dict(d) for d in json.loads((run_dir / "checks.json").read_text())]
    return StoredRun(run_dir, manifest["experiment"], config, table, checks, manifest)


class RunStore:
    """Run folders under ``root`` and their SQLite index ``root/index.sqlite`` (WAL, busy timeout).

    The folders are the truth; the index makes listing fast and is rebuilt from them if lost.
    """

    def __init__(self, root: Path | str):
        self.root = Path(root)

    def run_dir(self, experiment: str, hash_: str) -> Path:
        return self.root / f"{experiment}-{hash_[:12]}"

    def _connect(self) -> sqlite3.Connection:
        self.root.mkdir(parents=True, exist_ok=True)
        con = sqlite3.connect(self.root / "index.sqlite", timeout=30.0)
        con.execute("PRAGMA journal_mode=WAL")
        con.execute("PRAGMA busy_timeout=30000")
        con.execute(
            "CREATE TABLE IF NOT EXISTS runs (hash TEXT PRIMARY KEY, experiment TEXT NOT NULL,"
            " run_dir TEXT NOT NULL, state TEXT NOT NULL, updated REAL NOT NULL,"
            " seconds REAL, error TEXT)"
        )
        return con

    def record(
        self,
        hash_: str,
        experiment: str,
        run_dir: Path,
        state: str,
        seconds: float | None = None,
        error: str | None = None,
    ) -> None:
        con = self._connect()
        try:
            with con:
                con.execute(
                    "INSERT INTO runs VALUES (?,?,?,?,?,?,?) ON CONFLICT(hash) DO UPDATE SET"
                    " state=excluded.state, updated=excluded.updated, seconds=excluded.seconds,"
                    " error=excluded.error, run_dir=excluded.run_dir",
                    (hash_, experiment, str(run_dir), state, time.time(), seconds, error),
                )
        finally:
            con.close()

    def entries(self, hashes: list[str] | None = None) -> dict[str, dict[str, Any]]:
        """Index rows by hash (all, or those of ``hashes``), in one query: state, error, seconds.

        The index is a cache of the folders: callers check :func:`run_status` before trusting a
        "complete" here.  A missing index file means an empty store.
        """
        if not (self.root / "index.sqlite").exists():
            return {}
        con = self._connect()
        try:
            if hashes is None:
                cur = con.execute("SELECT hash, state, error, seconds, run_dir FROM runs")
                rows = cur.fetchall()
            else:
                rows = []
                hs = list(hashes)
                for i in range(0, len(hs), 500):  # SQLite caps the number of parameters
                    chunk = hs[i : i + 500]
                    q = ",".join("?" * len(chunk))
                    rows += con.execute(
                        f"SELECT hash, state, error, seconds, run_dir FROM runs WHERE hash IN ({q})",
                        chunk,
                    ).fetchall()
        finally:
            con.close()
        return {
            h: {"state": st, "error": err, "seconds": sec, "run_dir": rd}
            for h, st, err, sec, rd in rows
        }

    def rows(self) -> pd.DataFrame:
        con = self._connect()
        try:
            return pd.read_sql_query("SELECT * FROM runs ORDER BY updated", con)
        finally:
            con.close()
