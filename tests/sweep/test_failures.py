"""Failed cells (an exception, a NaN loss, a worker that dies) are recorded and do not stop the
sweep; the store stays readable; --retry-failed computes them again.  Local worker processes."""

from __future__ import annotations

import os
import sqlite3
import sys
from pathlib import Path

import pytest

from fmtheory.cli import main
from fmtheory.runs import RunStore, load_run, run_status
from fmtheory.sweep import run as sweep

pytestmark = pytest.mark.xdist_group("sweep-failures")

HERE = Path(__file__).parent
GRID = {"mode": ["ok", "raise", "nan", "crash"], "x": [1, 4]}


@pytest.fixture(scope="module")
def failing_exp():
    """Register the test experiment here and (through PYTHONPATH) in the worker processes."""
    import importlib

    from fmtheory import contract as base

    mp = pytest.MonkeyPatch()
    mp.syspath_prepend(str(HERE))
    mp.setenv("PYTHONPATH", os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]))
    mod = importlib.import_module("sweep_testexp")
    yield mod
    base._REGISTRY.pop(mod.NAME, None)  # leave the registry as other tests expect it
    sys.modules.pop("sweep_testexp", None)
    mp.undo()


def _workers_of_this_process() -> list[int]:
    """Live `fmtheory.sweep.worker` processes whose parent is this process."""
    out = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            cmd = (d / "cmdline").read_bytes()
            ppid = int((d / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        if b"fmtheory.sweep.worker" in cmd and ppid == os.getpid():
            out.append(int(d.name))
    return out


@pytest.fixture(scope="module")
def failed_sweep(failing_exp, tmp_path_factory):
    root = tmp_path_factory.mktemp("store")
    table = sweep(failing_exp.NAME, GRID, executor="local", workers=2, root=root)
    return root, table


def _row(t, mode, x):
    r = t[(t["mode"] == mode) & (t["x"] == x)]
    assert len(r) == 1
    return r.iloc[0]


def test_each_failure_is_recorded_with_its_error(failed_sweep):
    _, t = failed_sweep
    assert len(t) == 8
    ok1, ok4 = _row(t, "ok", 1), _row(t, "ok", 4)
    assert ok1["status"] == ok4["status"] == "complete"
    assert ok1["err"] == 0.5 and ok4["err"] == 2.0  # headline: scale * x + 0.01 * seed
    assert ok1["claims_ok"] and not ok4["claims_ok"]  # "x is small" holds at 1, fails at 4
    assert (ok1["claims_hold"], ok1["claims_fail"], ok1["claims_undecided"]) == (1, 0, 0)
    assert ok1["verdict"] == "holds" and ok4["verdict"] == "fails"
    assert ok1["other_checks"] == "sanity: 1 n/a"
    assert ok1["check_1"] == "holds" and ok4["check_1"] == "fails" and ok1["check_2"] == "n/a"
    assert "ValueError: boom at x=1" in _row(t, "raise", 1)["error"]
    assert "NonFiniteLossError" in _row(t, "nan", 4)["error"]
    crash = _row(t, "crash", 1)
    assert crash["status"] == "failed" and "worker process died (exit code 7)" in crash["error"]
    assert _row(t, "crash", 4)["status"] == "complete"  # the sweep went on after the crash
    assert set(t.loc[t["status"] == "failed", "mode"]) == {"raise", "nan", "crash"}
    assert (t["status"] == "failed").sum() == 5
    assert not _workers_of_this_process()  # no worker left behind


def test_store_stays_readable(failed_sweep, capsys):
    root, t = failed_sweep
    con = sqlite3.connect(root / "index.sqlite")
    try:
        assert con.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    finally:
        con.close()
    entries = RunStore(root).entries()
    assert len(entries) == 8  # one row per cell, crashed one included (recorded by the driver)
    for _, row in t.iterrows():
        state = entries[row["hash"]]["state"]
        assert state == ("complete" if row["status"] == "complete" else "failed"), row["mode"]
        if row["status"] == "complete":
            run = load_run(Path(row["run_dir"]))
            assert (run.run_dir / "artifact.bin").read_bytes() == bytes([row["x"]]) * 16
    crashed = RunStore(root).run_dir("sweep-test", _row(t, "crash", 1)["hash"])
    assert run_status(crashed).state == "incomplete"  # no manifest: never read as a result
    assert main(["show", str(crashed)]) == 1
    assert "incomplete" in capsys.readouterr().err


def test_failed_cells_stay_failed_until_retried(failing_exp, failed_sweep):
    root, before = failed_sweep
    # the retry logic is the driver's: the inline executor (no worker start-up) is enough here
    again = sweep(failing_exp.NAME, GRID, executor="inline", root=root)
    assert again["cached"].all()  # nothing computed: complete ones read back, failed ones kept
    assert list(again["status"]) == list(before["status"])
    assert list(again["error"].fillna("")) == list(before["error"].fillna(""))
    mp = pytest.MonkeyPatch()
    mp.setenv("SWEEP_TEST_HEAL", "1")
    try:
        healed = sweep(failing_exp.NAME, GRID, executor="inline", root=root, retry_failed=True)
    finally:
        mp.undo()
    assert (healed["status"] == "complete").all()
    was_failed = before["status"] == "failed"
    assert not healed.loc[was_failed, "cached"].any() and healed.loc[~was_failed, "cached"].all()
    assert list(healed["err"]) == [0.5 * x for x in healed["x"]]
    assert all(s["state"] == "complete" for s in RunStore(root).entries().values())
