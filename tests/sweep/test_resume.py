"""Training sweeps: cells are ordinary runs; kill -9 and restart loses nothing and recomputes
nothing finished; two sweeps share a store safely; a corrupt run is recomputed, never read.

Cells are icl-regression `tiny` with 20 training steps (checkpoints every 5 steps, so a killed cell
resumes from a checkpoint), one torch thread per cell everywhere, so every sweep of a cell gives
the same numbers.  The sweep that gets killed runs 2 local worker processes; the others run inline
(no worker start-up: the caching and resuming they test is the driver's and the store's).
"""

from __future__ import annotations

import json
import random
import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from fmtheory.cli import main
from fmtheory.experiments import get_experiment
from fmtheory.runs import RunStore, execute, load_run, run_status
from fmtheory.sweep import read_cells
from fmtheory.sweep import run as sweep

pytestmark = [pytest.mark.xdist_group("sweep-train"), pytest.mark.slow]

SETS = ["train.steps=20", "train.checkpoint_every=5", "eval.n_prompts=100", "eval.theory_mc=100"]
GRID = ["task.dim=2,3"]
SEEDS = "0..1"
ARGS = ["sweep", "icl-regression", "--preset", "tiny", "--grid", *GRID, "--seeds", SEEDS,
        *[a for s in SETS for a in ("--set", s)], "--threads", "1", "--json"]  # fmt: skip
CLI = [sys.executable, "-m", "fmtheory.cli", *ARGS]
#: columns that legitimately differ between two sweeps of the same cells
VOLATILE = ["cached", "seconds", "run_dir"]


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The uninterrupted sweep."""
    root = tmp_path_factory.mktemp("reference")
    table = sweep("icl-regression", GRID, SEEDS, preset="tiny", overrides=SETS, executor="inline",
                  threads=1, root=root)  # fmt: skip
    return root, table


def _complete_runs(root: Path) -> dict[Path, tuple[bytes, int]]:
    out = {}
    for d in root.glob("icl-regression-*"):
        m = d / "manifest.json"
        if m.exists():
            out[d] = (m.read_bytes(), m.stat().st_mtime_ns)
    return out


def _sweep_workers(root: Path) -> list[int]:
    pids = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                cmd = (d / "cmdline").read_bytes()
            except OSError:
                continue
            if b"fmtheory.sweep.worker" in cmd and str(root).encode() in cmd:
                pids.append(int(d.name))
    return pids


def test_cells_are_ordinary_runs(reference):
    root, t = reference
    assert len(t) == 4 and (t["status"] == "complete").all() and not t["cached"].any()
    assert list(t["task.dim"]) == [2, 2, 3, 3] and list(t["seed"]) == [0, 1, 0, 1]
    exp = get_experiment("icl-regression")
    for _, row in t.iterrows():
        overrides = {**dict(s.split("=") for s in SETS), "task.dim": int(row["task.dim"])}
        config = exp.make_config("tiny", {k: int(v) for k, v in overrides.items()},
                                 seed=int(row["seed"]))  # fmt: skip
        rec = execute(exp, config, root=root)  # `fmtheory run` with the same config: cached
        assert rec.cached and str(rec.run_dir) == row["run_dir"] and rec.hash == row["hash"]
        assert (
            exp.headline(rec.run.table, exp.validate(rec.run.config))["transformer_err"]
            == row["transformer_err"]
        )
        claims = [c for c in rec.run.checks if c.kind == "claim"]
        assert row["claims_hold"] + row["claims_fail"] + row["claims_undecided"] == len(claims)
        assert (rec.run_dir / "model.safetensors").is_file()
    figs = sorted(p.name for p in (Path(t.attrs["sweep_dir"]) / "figures").iterdir())
    assert figs == ["line_bayes_err.png", "line_claims_hold.png", "line_transformer_err.png",
                    "line_transformer_over_bayes.png"]  # fmt: skip


def test_kill_9_then_restart_loses_and_recomputes_nothing(reference, tmp_path, capsys):
    _, ref = reference
    root = tmp_path / "store"
    rng = random.Random(20261123)
    after, delay = rng.randint(1, 2), rng.uniform(0.0, 0.5)  # 2+ of the 4 cells still to do
    log = open(tmp_path / "killed.log", "w")  # noqa: SIM115
    proc = subprocess.Popen([*CLI, "--workers", "2", "--out", str(root)], stdout=log, stderr=log)
    t0 = time.monotonic()
    while len(_complete_runs(root)) < after:
        assert proc.poll() is None, (tmp_path / "killed.log").read_text()[-2000:]
        assert time.monotonic() - t0 < 240, "no cell finished in 240 s"
        time.sleep(0.05)
    time.sleep(delay)
    assert proc.poll() is None, "the sweep ended before the kill"
    finished = _complete_runs(root)
    proc.kill()  # SIGKILL: no cleanup of any kind
    proc.wait()
    log.close()
    assert len(finished) < 4
    deadline = time.monotonic() + 10
    while _sweep_workers(root):  # the workers die with their driver
        assert time.monotonic() < deadline, "orphan worker processes"
        time.sleep(0.1)

    # restart (in this process, inline: the resuming is the store's and the driver's)
    capsys.readouterr()
    assert main([*ARGS, "--executor", "inline", "--out", str(root)]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["complete"] == 4 and out["cached"] >= len(finished)
    table = read_cells(out["cells_table"]).table
    # the same numbers as the uninterrupted sweep
    pd.testing.assert_frame_equal(table.drop(columns=VOLATILE), ref.drop(columns=VOLATILE))
    # every cell that had finished is still there and was not recomputed
    for run_dir, (manifest, mtime) in finished.items():
        assert (run_dir / "manifest.json").read_bytes() == manifest
        assert (run_dir / "manifest.json").stat().st_mtime_ns == mtime
        assert table.loc[table["run_dir"] == str(run_dir), "cached"].all()
    # no cell half-written or duplicated
    dirs = sorted(root.glob("icl-regression-*"))
    assert len(dirs) == 4 and all(run_status(d).state == "complete" for d in dirs)
    assert not list(root.rglob("*.tmp")) and not list(root.rglob("checkpoints"))
    entries = RunStore(root).entries()
    assert sorted(entries) == sorted(table["hash"]) and {e["state"] for e in entries.values()} == {
        "complete"
    }


def test_two_sweeps_share_a_store(tmp_path, capsys):
    """Two processes sweep the same cells into one store at once, in opposite orders."""
    root = tmp_path / "shared"
    other = [("task.dim=3,2" if a == GRID[0] else a) for a in ARGS]
    log = open(tmp_path / "other.log", "w")  # noqa: SIM115
    proc = subprocess.Popen([sys.executable, "-m", "fmtheory.cli", *other, "--executor", "inline",
                             "--out", str(root)], stdout=subprocess.PIPE, stderr=log, text=True)  # fmt: skip
    t0 = time.monotonic()
    while not list(root.glob("sweeps/*/sweep.yaml")):  # the other sweep is about to compute
        assert proc.poll() is None and time.monotonic() - t0 < 240, (
            tmp_path / "other.log"
        ).read_text()
        time.sleep(0.05)
    capsys.readouterr()
    assert main([*ARGS, "--executor", "inline", "--out", str(root)]) == 0
    mine = json.loads(capsys.readouterr().out)
    so, _ = proc.communicate(timeout=300)
    log.close()
    assert proc.returncode == 0, (tmp_path / "other.log").read_text()[-3000:]
    tables = [read_cells(o["cells_table"]).table for o in (mine, json.loads(so))]
    key = ["task.dim", "seed"]
    a, b = (t.set_index(key).sort_index() for t in tables)
    cols = [c for c in a.columns if c not in [*VOLATILE, "cell"]]
    pd.testing.assert_frame_equal(a[cols], b[cols], check_exact=True)
    computed = (~a["cached"]).astype(int) + (~b["cached"]).astype(int)
    assert (computed == 1).all(), "each run is computed exactly once across the two sweeps"
    con = sqlite3.connect(root / "index.sqlite")
    try:
        assert con.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        rows = con.execute("SELECT hash, state FROM runs").fetchall()
    finally:
        con.close()
    assert len(rows) == 4 and {s for _, s in rows} == {"complete"}
    assert all(run_status(d).state == "complete" for d in root.glob("icl-regression-*"))


def test_corrupt_run_is_reported_and_recomputed(reference, tmp_path, capsys):
    src, ref = reference
    root = tmp_path / "copy"
    shutil.copytree(src, root)
    victim = RunStore(root).run_dir("icl-regression", ref.loc[1, "hash"])
    data = (victim / "results.parquet").read_bytes()
    (victim / "results.parquet").write_bytes(data[: len(data) // 2])  # truncated
    assert main(["show", str(victim)]) == 1
    assert "corrupt" in capsys.readouterr().err
    with pytest.raises(Exception, match="corrupt"):
        load_run(victim)
    again = sweep("icl-regression", GRID, SEEDS, preset="tiny", overrides=SETS, executor="inline",
                  threads=1, root=root)  # fmt: skip
    assert list(again["cached"]) == [True, False, True, True]
    assert run_status(victim).state == "complete"
    pd.testing.assert_frame_equal(again.drop(columns=VOLATILE), ref.drop(columns=VOLATILE))
