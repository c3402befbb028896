"""Sweep throughput: dispatch overhead (theory cells) and scaling with workers (training cells).

- ``sweep-theory-200-local``: a 200-cell phase diagram of a closed form (``ols-risk``, d x k), local
  executor with one worker per core, start-up, figures and report included.  value = cells/s;
  reference = 200 cells / 30 s (the target: under 30 s on 2 cores); ratio = value / reference.
- ``sweep-theory-200-ray``: the same through Ray, the executor starting (and stopping) its own local
  Ray instance; the Ray start-up is reported apart (``ray_start_s``) and included in ``value``.
- ``sweep-train-8-speedup``: the same 8-cell training sweep (icl-regression ``tiny``: 400 steps,
  d in {2, 3, 4, 5} x 2 seeds) with 1 worker (all cores' threads) and with 2 workers (1 thread each);
  value = wall(1 worker) / wall(2 workers); reference = 1.6 (the target on 2 cores).  Extra:
  ``speedup_1_thread_each``, the same with 1 thread for the single worker too (set
  ``FMTHEORY_BENCH_FULL=0`` to skip that third sweep; ``FMTHEORY_BENCH_REPEATS=R`` to repeat).

Each run uses a fresh temporary store (nothing cached).  The 1-minute load average before each
measurement is reported (``load``): on a shared machine, trust figures taken at load < 1.
"""

from __future__ import annotations

import os
import tempfile
import time
from typing import Any

from fmtheory.sweep import RayExecutor, start_local_ray
from fmtheory.sweep import run as sweep
from fmtheory.sweep.executors import cpu_count

THEORY = dict(theory="ols-risk", grid=["d=5,10,20,40", "k=0:49"], overrides={"sigma": 0.5})
TRAIN = dict(grid=["task.dim=2:5"], seeds="0..1", preset="tiny")


def _load() -> float:
    return round(os.getloadavg()[0], 2)


def _theory(executor: Any, **kw: Any) -> tuple[float, int]:
    with tempfile.TemporaryDirectory() as root:
        t0 = time.perf_counter()
        t = sweep(**THEORY, executor=executor, root=root, **kw)
        wall = time.perf_counter() - t0
    assert (t["status"] == "complete").all() and len(t) == 200
    return wall, len(t)


def bench_theory_local() -> dict[str, Any]:
    load = _load()
    wall, n = _theory("local")
    return {"name": "sweep-theory-200-local", "value": n / wall, "unit": "cells/s",
            "reference": 200 / 30, "ratio": (n / wall) / (200 / 30), "wall_s": wall,
            "workers": cpu_count(), "load": load}  # fmt: skip


def bench_theory_ray() -> dict[str, Any]:
    import ray

    load = _load()
    t0 = time.perf_counter()
    start_local_ray()
    started = time.perf_counter() - t0
    try:
        wall, n = _theory(RayExecutor())
    finally:
        ray.shutdown()
    total = started + wall
    return {"name": "sweep-theory-200-ray", "value": n / total, "unit": "cells/s",
            "reference": 200 / 30, "ratio": (n / total) / (200 / 30), "wall_s": total,
            "ray_start_s": started, "cells_per_s_after_start": n / wall, "load": load}  # fmt: skip


def _train(workers: int, threads: int | None = None) -> float:
    with tempfile.TemporaryDirectory() as root:
        t0 = time.perf_counter()
        t = sweep("icl-regression", **TRAIN, executor="local", workers=workers, threads=threads,
                  root=root)  # fmt: skip
        wall = time.perf_counter() - t0
    assert (t["status"] == "complete").all() and len(t) == 8
    return wall


def bench_train_speedup() -> dict[str, Any]:
    """Default threads (1 worker: all cores' threads; 2 workers: half each), and, as an extra,
    1 thread per worker in both (pure process scaling).  ``FMTHEORY_BENCH_REPEATS=R`` alternates
    the configurations R times and keeps each one's fastest wall time (less noise from other jobs)."""
    load = _load()
    repeats = max(1, int(os.environ.get("FMTHEORY_BENCH_REPEATS", "1")))
    full = os.environ.get("FMTHEORY_BENCH_FULL", "1") != "0"
    walls: dict[str, list[float]] = {"one": [], "two": [], "one_single": []}
    for _ in range(repeats):
        walls["one"].append(_train(1))
        walls["two"].append(_train(2))
        if full:
            walls["one_single"].append(_train(1, threads=1))
    one, two = min(walls["one"]), min(walls["two"])
    one_single = min(walls["one_single"]) if full else None
    return {"name": "sweep-train-8-speedup", "value": one / two, "unit": "x", "reference": 1.6,
            "ratio": (one / two) / 1.6, "wall_1_worker_s": one, "wall_2_workers_s": two,
            "wall_1_worker_1_thread_s": one_single,
            "speedup_1_thread_each": None if one_single is None else one_single / two,
            "repeats": repeats, "cores": cpu_count(), "load": load,
            "load_after": _load()}  # fmt: skip


BENCHMARKS = {
    "sweep-theory-200-local": bench_theory_local,
    "sweep-theory-200-ray": bench_theory_ray,
    "sweep-train-8-speedup": bench_train_speedup,
}
