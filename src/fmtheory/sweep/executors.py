"""Executors: where a sweep's cells run.

- ``local`` (default): worker processes on this machine (fresh interpreters running
  ``python -m fmtheory.sweep.worker``: torch and ``fork`` do not mix, and a fresh worker imports
  only what its cells need), each with ``max(1, cores // workers)`` torch / BLAS threads.  Workers write
  experiment cells straight into the run store (the per-run lock and SQLite WAL make concurrent
  writers safe) and so resume a cell from its checkpoints after an interruption.  A worker dies
  with its driver (``PR_SET_PDEATHSIG`` plus a watchdog), so ``kill -9`` of a sweep leaves no orphan.
- ``ray``: the real Ray library.  With no address it starts a local Ray instance that listens on
  127.0.0.1 only (and shuts it down after); with an address it joins that cluster.  Cells are Ray
  tasks that compute in a private temporary folder and send everything back (figure PNGs and
  artifacts such as ``model.safetensors`` as bytes); only the driver writes the store, so the
  cluster needs no shared filesystem.
- ``inline``: in the calling process, one cell after another (debugging, tiny sweeps).

Every executor reports each finished cell through ``on_done`` as soon as it is known, so the driver
can record it and show progress.  On Ctrl-C, running cells are interrupted (they checkpoint), and
``KeyboardInterrupt`` propagates after the workers are gone.
"""

from __future__ import annotations

import contextlib
import math
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from multiprocessing.connection import Connection
from multiprocessing.connection import wait as mp_wait
from pathlib import Path
from typing import Any

from fmtheory.contract import ConfigError
from fmtheory.sweep.jobs import CellJob, CellOutcome
from fmtheory.sweep.worker import describe_error, run_local

__all__ = [
    "EXECUTORS",
    "Executor",
    "InlineExecutor",
    "LocalExecutor",
    "RayExecutor",
    "make_executor",
    "start_local_ray",
    "cpu_count",
]

OnStart = Callable[[list[int]], None]
OnDone = Callable[[CellOutcome], None]


def cpu_count() -> int:
    """Cores this process may use (the affinity mask, not the machine's total)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def _chunks(jobs: list[CellJob], slots: int) -> list[list[CellJob]]:
    """Experiment cells one by one; theory cells (microseconds each) in chunks that keep every
    slot busy while amortising the round trip."""
    exp = [[j] for j in jobs if j.kind != "theory"]
    th = [j for j in jobs if j.kind == "theory"]
    size = max(1, min(256, math.ceil(len(th) / (4 * max(1, slots))))) if th else 1
    return exp + [th[i : i + size] for i in range(0, len(th), size)]


class Executor:
    """Runs cell jobs; subclasses implement :meth:`run`."""

    name = ""
    #: cells that run at once
    slots = 1

    def open(self) -> None:
        """Acquire what the executor needs (Ray: join or start a cluster) before anything is
        written; a bad address fails here.  Local and inline executors need nothing."""

    def close(self) -> None:
        """Give back what :meth:`open` acquired."""

    def run(self, jobs: list[CellJob], *, root: Path, on_start: OnStart, on_done: OnDone) -> None:
        raise NotImplementedError

    def describe(self) -> dict[str, Any]:
        return {"executor": self.name, "slots": self.slots}


class InlineExecutor(Executor):
    """In this process, in order: no start-up cost, no parallelism."""

    name = "inline"

    def __init__(
        self, *, workers: int | None = None, address: str | None = None, threads: int | None = None
    ):
        if workers not in (None, 1):
            raise ConfigError("--workers", workers, "the inline executor runs one cell at a time")
        if address is not None:
            raise ConfigError("--address", address, "only with --executor ray")
        self.threads = _check_threads(threads)
        self.slots = 1

    def run(self, jobs: list[CellJob], *, root: Path, on_start: OnStart, on_done: OnDone) -> None:
        import torch

        before = torch.get_num_threads()
        if self.threads is not None:  # for the sweep only: the caller's setting comes back
            torch.set_num_threads(self.threads)
        try:
            for chunk in _chunks(jobs, 1):
                on_start([j.index for j in chunk])
                for outcome in run_local(chunk, str(root)):
                    on_done(outcome)
        finally:
            torch.set_num_threads(before)


def _check_threads(threads: int | None) -> int | None:
    if threads is not None and (
        isinstance(threads, bool) or not isinstance(threads, int) or threads < 1
    ):
        raise ConfigError("--threads", threads, "at least 1 torch thread per cell")
    return threads


# --------------------------------------------------------------------------------------------
# local: worker processes of our own (known pids, one chunk per worker, crash detection)


class _Proc:
    """``python -m fmtheory.sweep.worker`` on one end of a socket pair, in its own process group
    (Ctrl-C reaches the driver only, which forwards one SIGINT to each busy worker)."""

    def __init__(self, threads: int, root: Path):
        parent, child = socket.socketpair()
        env = dict(os.environ)
        for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
            env[var] = str(threads)
        src = str(Path(__file__).resolve().parents[2])  # the folder holding the fmtheory package
        env["PYTHONPATH"] = os.pathsep.join(p for p in (src, env.get("PYTHONPATH")) if p)
        cmd = [sys.executable, "-m", "fmtheory.sweep.worker", "--fd", str(child.fileno()),
               "--threads", str(threads), "--ppid", str(os.getpid()), "--root", str(root)]  # fmt: skip
        try:
            self.popen = subprocess.Popen(
                cmd, pass_fds=(child.fileno(),), env=env, stdin=subprocess.DEVNULL,
                process_group=0,
            )  # fmt: skip
        finally:
            child.close()
        self.conn = Connection(parent.detach())
        self.chunk: list[CellJob] | None = None

    def alive(self) -> bool:
        return self.popen.poll() is None


class LocalExecutor(Executor):
    """``workers`` processes (default: cores), each with ``threads`` torch / BLAS threads
    (default ``max(1, cores // workers)``, so that workers do not oversubscribe the cores)."""

    name = "local"

    def __init__(
        self, *, workers: int | None = None, address: str | None = None, threads: int | None = None
    ):
        if address is not None:
            raise ConfigError("--address", address, "only with --executor ray")
        if workers is not None and (isinstance(workers, bool) or workers < 1):
            raise ConfigError("--workers", workers, "at least 1")
        self.cores = cpu_count()
        self.slots = workers or self.cores
        self.threads = _check_threads(threads) or max(1, self.cores // self.slots)

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "threads_per_worker": self.threads}

    def run(self, jobs: list[CellJob], *, root: Path, on_start: OnStart, on_done: OnDone) -> None:
        if not jobs:
            return
        queue = _chunks(jobs, self.slots)
        queue.reverse()  # pop() from the end keeps grid order
        procs = [_Proc(self.threads, root) for _ in range(min(self.slots, len(queue)))]
        try:
            while queue or any(p.chunk is not None for p in procs):
                for i, p in enumerate(procs):
                    if p.chunk is None and queue:
                        if not p.alive():  # died while idle: replace it
                            _close(p)
                            procs[i] = p = _Proc(self.threads, root)
                        chunk = queue.pop()
                        try:
                            p.conn.send(chunk)
                        except OSError:  # died just now: give the chunk back, replace it
                            queue.append(chunk)
                            _close(p)
                            procs[i] = _Proc(self.threads, root)
                            continue
                        p.chunk = chunk
                        on_start([j.index for j in chunk])
                ready = mp_wait([p.conn for p in procs if p.chunk is not None])
                for p in procs:
                    if p.chunk is None or p.conn not in ready:
                        continue
                    try:
                        outcomes = p.conn.recv()
                    except (EOFError, OSError):  # the worker died with this chunk
                        code = p.popen.wait()
                        error = f"worker process died (exit code {code}) while computing this cell"
                        outcomes = [CellOutcome(j.index, "failed", j.hash, error=error)
                                    for j in p.chunk]  # fmt: skip
                        _record_crash(root, p.chunk, error)
                        _close(p)  # replaced when there is more work for it
                    p.chunk = None
                    for o in outcomes:
                        on_done(o)
        except BaseException:
            _stop(procs, interrupt=True)
            raise
        _stop(procs, interrupt=False)


def _close(p: _Proc) -> None:
    with contextlib.suppress(OSError):
        p.conn.close()
    if p.alive():
        p.popen.kill()
    with contextlib.suppress(subprocess.TimeoutExpired):
        p.popen.wait(timeout=5)


def _record_crash(root: Path, chunk: list[CellJob], error: str) -> None:
    """A worker that died (segfault, OOM kill) could not record its failure: the driver does."""
    from fmtheory.runs.store import RunStore

    store = RunStore(root)
    for job in chunk:
        if job.kind == "experiment":
            store.record(
                job.hash,
                job.target,
                store.run_dir(job.target, job.hash),
                "failed",
                error=error,
            )


def _stop(procs: list[_Proc], *, interrupt: bool, grace: float = 15.0) -> None:
    """Stop the workers: busy ones get one SIGINT (they checkpoint) when interrupting."""
    for p in procs:
        if p.chunk is not None and interrupt and p.alive():
            with contextlib.suppress(OSError):
                os.kill(p.popen.pid, signal.SIGINT)
        else:
            with contextlib.suppress(OSError, ValueError):
                p.conn.send(None)
    deadline = time.monotonic() + grace
    for p in procs:
        with contextlib.suppress(subprocess.TimeoutExpired):
            p.popen.wait(timeout=max(0.1, deadline - time.monotonic()))
        _close(p)


# --------------------------------------------------------------------------------------------
# ray


def start_local_ray(*, num_cpus: int | None = None) -> Any:
    """Start a private local Ray instance that listens on 127.0.0.1 only (no dashboard).

    Ray binds its servers to the node's address; a local node takes the loopback address only when
    ``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0`` (read when Ray starts its processes, and by the driver).
    """
    var = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"
    old_env = os.environ.get(var)
    os.environ[var] = "0"
    import ray
    from ray._private import ray_constants

    old_flag = ray_constants.ENABLE_RAY_CLUSTER
    ray_constants.ENABLE_RAY_CLUSTER = False  # in case Ray was imported before the variable was set
    try:
        return ray.init(
            address="local",
            num_cpus=num_cpus or cpu_count(),
            include_dashboard=False,
            _node_ip_address="127.0.0.1",
            log_to_driver=False,
            configure_logging=False,
        )
    finally:  # the local node has its address now; a later cluster driver must not inherit it
        ray_constants.ENABLE_RAY_CLUSTER = old_flag
        if old_env is None:
            os.environ.pop(var, None)
        else:
            os.environ[var] = old_env


def _import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise ConfigError(
            "--executor", "ray", "Ray is not installed here: pip install 'fmtheory[ray]'"
        ) from None
    return ray


class RayExecutor(Executor):
    """Cells as Ray tasks; the driver alone commits results to the store.

    ``address=None``: use the Ray instance this process already joined, or start a local one (and
    shut it down at the end).  Otherwise ``ray.init(address=...)`` joins a cluster: ``auto``,
    ``HOST:PORT`` or ``ray://HOST:PORT`` (Ray Client).  ``workers`` caps the cells in flight
    (default: the cluster's CPUs / threads); each cell is a task with ``threads`` CPUs (default 1).
    """

    name = "ray"

    def __init__(
        self, *, workers: int | None = None, address: str | None = None, threads: int | None = None
    ):
        _import_ray()
        if workers is not None and (isinstance(workers, bool) or workers < 1):
            raise ConfigError("--workers", workers, "at least 1")
        self.workers, self.address = workers, address
        self.threads = _check_threads(threads) or 1
        self.slots = workers or cpu_count()

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "address": self.address, "threads_per_cell": self.threads}

    _started = False

    def open(self) -> None:
        ray = _import_ray()
        if ray.is_initialized():  # joined already (e.g. by the caller): use it, leave it running
            return
        try:
            if self.address is None:
                start_local_ray(num_cpus=self.workers)
            else:
                ray.init(address=self.address, log_to_driver=False)
        except (ConnectionError, ValueError, RuntimeError, TimeoutError) as e:
            raise ConfigError(
                "--address", self.address, f"cannot join a Ray cluster there: {e}"
            ) from None
        self._started = True

    def close(self) -> None:
        if self._started:
            _import_ray().shutdown()
            self._started = False

    def run(self, jobs: list[CellJob], *, root: Path, on_start: OnStart, on_done: OnDone) -> None:
        ray = _import_ray()
        opened_here = not ray.is_initialized()
        if opened_here:
            self.open()
        try:
            self._run(ray, jobs, root=root, on_start=on_start, on_done=on_done)
        finally:
            if opened_here:
                self.close()

    def _run(self, ray: Any, jobs: list[CellJob], *, root: Path, on_start: OnStart,
             on_done: OnDone) -> None:  # fmt: skip
        from fmtheory.sweep.worker import compute_remote

        cpus = int(ray.cluster_resources().get("CPU", 1))
        self.slots = max(1, self.workers or cpus // self.threads)
        gpus = 1 if any(j.device.startswith("cuda") for j in jobs) else 0
        task = ray.remote(num_cpus=self.threads, num_gpus=gpus, max_retries=0)(compute_remote)
        queue = _chunks(jobs, self.slots)
        queue.reverse()
        in_flight: dict[Any, list[CellJob]] = {}
        cap = self.slots if all(j.kind != "theory" for j in jobs) else 2 * self.slots
        try:
            while queue or in_flight:
                while queue and len(in_flight) < cap:
                    chunk = queue.pop()
                    in_flight[task.remote(chunk, self.threads)] = chunk
                    on_start([j.index for j in chunk])
                done, _ = ray.wait(list(in_flight), num_returns=1)
                for ref in done:
                    chunk = in_flight.pop(ref)
                    try:
                        results = ray.get(ref)
                    except Exception as e:  # the task itself died (node lost, worker crash)
                        results = [
                            CellOutcome(j.index, "failed", j.hash, error=describe_error(e))
                            for j in chunk
                        ]
                    for job, res in zip(chunk, results, strict=True):
                        on_done(_commit(job, res, root))
        except BaseException:
            for ref in in_flight:
                with contextlib.suppress(Exception):
                    ray.cancel(ref)
            raise


def _commit(job: CellJob, res: Any, root: Path) -> CellOutcome:
    """Driver side of a Ray cell: write a computed run into the store, or record its failure."""
    if isinstance(res, CellOutcome):
        res.index = job.index
        if res.status == "failed" and job.kind == "experiment":
            from fmtheory.runs.store import RunStore

            store = RunStore(root)
            store.record(
                job.hash, job.target, store.run_dir(job.target, job.hash), "failed", error=res.error
            )
        return res
    from fmtheory.contract import get_experiment
    from fmtheory.runs import commit

    try:
        rec = commit(get_experiment(job.target), res, root=root)
    except Exception as e:
        return CellOutcome(job.index, "failed", job.hash, error=f"commit: {describe_error(e)}")
    return CellOutcome(
        job.index,
        "complete",
        rec.hash,
        cached=False,
        seconds=res.seconds,
        run_dir=str(rec.run_dir),
    )


#: The executors by name (the CLI's choices come from here).
EXECUTORS: dict[str, type[Executor]] = {
    "local": LocalExecutor,
    "ray": RayExecutor,
    "inline": InlineExecutor,
}


def make_executor(
    name: str,
    *,
    workers: int | None = None,
    address: str | None = None,
    threads: int | None = None,
) -> Executor:
    """The executor called ``name``; ConfigError listing the valid names otherwise.

    ``threads``: torch / BLAS threads per cell (default: local ``cores // workers``, ray 1,
    inline the caller's setting).
    """
    if name not in EXECUTORS:
        raise ConfigError("--executor", name, f"allowed: {', '.join(EXECUTORS)}")
    return EXECUTORS[name](workers=workers, address=address, threads=threads)
