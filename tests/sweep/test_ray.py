"""Sweeps through a real local Ray instance (started once for this module, 2 CPUs, loopback only).

Cells are Ray tasks that compute in a private temporary folder; their results (tables, figure PNGs,
artifacts such as model.safetensors) travel back as bytes and only the driver writes the store.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pandas as pd
import pytest

from fmtheory.runs import RunStore, load_run
from fmtheory.sweep import RayExecutor, start_local_ray
from fmtheory.sweep import run as sweep
from fmtheory.theory import evaluate

ray = pytest.importorskip("ray")
pytestmark = [pytest.mark.xdist_group("ray"), pytest.mark.slow]

HERE = Path(__file__).parent


@pytest.fixture(scope="module")
def local_ray():
    """One local Ray instance for the module; worker processes can import the test experiment."""
    import importlib

    from fmtheory import contract as base

    mp = pytest.MonkeyPatch()
    mp.syspath_prepend(str(HERE))
    mp.setenv("PYTHONPATH", os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]))
    mod = importlib.import_module("sweep_testexp")
    ctx = start_local_ray(num_cpus=2)
    try:
        yield ctx
    finally:
        ray.shutdown()
        base._REGISTRY.pop(mod.NAME, None)
        sys.modules.pop("sweep_testexp", None)
        mp.undo()


def _descendants(pid: int) -> set[int]:
    children: dict[int, list[int]] = {}
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                ppid = int((d / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(d.name))
    out, todo = set(), [pid]
    while todo:
        for c in children.get(todo.pop(), []):
            if c not in out:
                out.add(c)
                todo.append(c)
    return out


def _listening(pids: set[int]) -> list[str]:
    """Local addresses (hex, as in /proc/net/tcp*) of the TCP sockets ``pids`` listen on."""
    inodes = set()
    for pid in pids:
        try:
            for fd in Path(f"/proc/{pid}/fd").iterdir():
                link = os.readlink(fd)
                if link.startswith("socket:["):
                    inodes.add(link[8:-1])
        except OSError:
            continue
    out = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            f = line.split()
            if f[3] == "0A" and f[9] in inodes:  # 0A = LISTEN
                out.append(f[1].split(":")[0])
    return out


LOOPBACK = {"0100007F", "00000000000000000000000001000000", "0000000000000000FFFF00000100007F"}


def test_local_ray_listens_on_localhost_only(local_ray):
    assert ray.util.get_node_ip_address() == "127.0.0.1"
    addrs = _listening(_descendants(os.getpid()) | {os.getpid()})
    assert addrs, "found no listening socket of the Ray processes: the check would be vacuous"
    assert set(addrs) <= LOOPBACK, addrs


def test_theory_sweep_through_ray(local_ray, tmp_path):
    t = sweep(theory="ols-risk", grid=["d=4,8", "k=0:29"], overrides={"sigma": 0.5},
              executor="ray", root=tmp_path)  # fmt: skip
    assert len(t) == 60 and (t["status"] == "complete").all()
    expected = [evaluate("ols-risk", d=d, k=k, sigma=0.5).value for d in (4, 8) for k in range(30)]
    assert list(t["value"]) == expected
    assert ray.is_initialized()  # the executor joined the running instance and left it running


def test_training_sweep_through_ray_equals_inline(local_ray, tmp_path):
    sets = ["train.steps=20", "eval.n_prompts=100", "eval.theory_mc=100"]
    kw = dict(preset="tiny", overrides=sets)
    t = sweep("icl-regression", ["task.dim=2,3"], executor=RayExecutor(threads=1),
              root=tmp_path / "ray", **kw)  # fmt: skip
    ref = sweep("icl-regression", ["task.dim=2,3"], executor="inline", threads=1,
                root=tmp_path / "inline", **kw)  # fmt: skip
    vol = ["cached", "seconds", "run_dir"]
    pd.testing.assert_frame_equal(t.drop(columns=vol), ref.drop(columns=vol), check_exact=True)
    for _, row in t.iterrows():
        run = load_run(Path(row["run_dir"]))  # committed by the driver, checksums verified
        other = load_run(Path(ref.loc[row["cell"], "run_dir"]))
        # artifacts travelled back as bytes: the same weights as the run computed here
        model = (run.run_dir / "model.safetensors").read_bytes()
        assert model == (other.run_dir / "model.safetensors").read_bytes()
        png = (run.run_dir / "figures" / "error_vs_context.png").read_bytes()
        assert png.startswith(b"\x89PNG") and len(png) > 1000  # drawn in the Ray worker
        assert not (run.run_dir / "checkpoints").exists()
    again = sweep("icl-regression", ["task.dim=2,3"], executor=RayExecutor(threads=1),
                  root=tmp_path / "ray", **kw)  # fmt: skip
    assert again["cached"].all()  # read back from the store, nothing sent to Ray


def test_failures_through_ray(local_ray, tmp_path):
    grid = {"mode": ["ok", "raise", "nan", "crash"]}
    t = sweep("sweep-test", grid, executor="ray", root=tmp_path)
    status = dict(zip(t["mode"], t["status"], strict=True))
    assert status == {"ok": "complete", "raise": "failed", "nan": "failed", "crash": "failed"}
    err = dict(zip(t["mode"], t["error"], strict=True))
    assert "ValueError: boom" in err["raise"] and "NonFiniteLossError" in err["nan"]
    assert err["crash"]  # the Ray worker died: recorded by the driver, sweep went on
    entries = RunStore(tmp_path).entries()
    assert sorted(e["state"] for e in entries.values()) == [
        "complete",
        "failed",
        "failed",
        "failed",
    ]
    # the worker processes Ray started on demand listen on the loopback address too
    assert set(_listening(_descendants(os.getpid()))) <= LOOPBACK
