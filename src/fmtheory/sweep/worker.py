"""What runs inside a sweep worker: cells in, :class:`CellOutcome` s (or ComputedRuns) out.

A cell that raises is reported as failed with its error; it never stops the worker or the sweep.
Only ``KeyboardInterrupt`` (Ctrl-C) goes through, after the training loop saved its checkpoint.

The local executor starts this module as a process of its own
(``python -m fmtheory.sweep.worker --fd N ...``): it imports only what its cells need (no torch for
formula cells), talks to the driver over an inherited socket, and dies with the driver.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import signal
import threading
import time
from typing import Any

from fmtheory.sweep.jobs import CellJob, CellOutcome

__all__ = [
    "CellOutcome",
    "compute_remote",
    "describe_error",
    "evaluate_theory",
    "limit_threads",
    "run_local",
    "serve",
]

_THREADS: int | None = None


def limit_threads(threads: int) -> None:
    """Give this process ``threads`` torch / BLAS threads, so workers do not oversubscribe cores.

    Applies to torch now if it is imported, else when the first experiment cell imports it.
    """
    global _THREADS
    _THREADS = threads
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[var] = str(threads)
    with contextlib.suppress(ImportError):
        from threadpoolctl import threadpool_limits

        threadpool_limits(threads)
    _torch_threads()


def _torch_threads() -> None:
    import sys

    if _THREADS is not None and "torch" in sys.modules:
        import torch

        if torch.get_num_threads() != _THREADS:
            torch.set_num_threads(_THREADS)


def describe_error(e: BaseException) -> str:
    """``Type: message``, as the run store's index records it (so a failed cell reads the same
    whether it was just computed or read back from the index)."""
    return f"{type(e).__name__}: {e}"


def evaluate_theory(job: CellJob) -> CellOutcome:
    """Evaluate a formula cell (its parameters were resolved by the driver)."""
    from fmtheory.theory.registry import get_formula

    t0 = time.perf_counter()
    try:
        v = get_formula(job.target).fn(**job.config)
        value = float(v.value)
        stderr = None if v.stderr is None else float(v.stderr)
    except Exception as e:
        return CellOutcome(job.index, "failed", job.hash, error=describe_error(e))
    return CellOutcome(
        job.index,
        "complete",
        job.hash,
        seconds=time.perf_counter() - t0,
        values={"value": value, "stderr": stderr},
    )


def _experiment(job: CellJob) -> Any:
    """The registered experiment of ``job`` (importing ``job.module`` first when it has one)."""
    from fmtheory.contract import get_experiment

    if job.module:
        importlib.import_module(job.module)
    return get_experiment(job.target)


def run_local(jobs: list[CellJob], root: str) -> list[CellOutcome]:
    """Compute cells on this machine, experiment cells straight into the run store at ``root``.

    ``execute`` locks the run folder, so two sweeps sharing a store never compute a config twice.
    """
    out = []
    for job in jobs:
        if job.kind == "theory":
            out.append(evaluate_theory(job))
            continue
        try:
            from fmtheory.runs import execute

            _torch_threads()
            exp = _experiment(job)
            config = exp.config_cls.model_validate(job.config)
            rec = execute(exp, config, root=root, device=job.device, preset=job.preset)
        except Exception as e:
            out.append(CellOutcome(job.index, "failed", job.hash, error=describe_error(e)))
            continue
        out.append(
            CellOutcome(
                job.index,
                "complete",
                rec.hash,
                cached=rec.cached,
                seconds=rec.run.manifest.get("seconds"),
                run_dir=str(rec.run_dir),
            )
        )
    return out


def compute_remote(jobs: list[CellJob], threads: int) -> list[Any]:
    """A cluster task: compute cells without touching any store.

    Experiment cells come back as :class:`~fmtheory.runs.ComputedRun` (table, checks, figure PNGs and
    artifact bytes) or a failed :class:`CellOutcome`; the driver commits them.
    """
    limit_threads(threads)
    out: list[Any] = []
    for job in jobs:
        if job.kind == "theory":
            out.append(evaluate_theory(job))
            continue
        try:
            from fmtheory.runs import compute

            _torch_threads()
            exp = _experiment(job)
            config = exp.config_cls.model_validate(job.config)
            out.append(compute(exp, config, device=job.device))
        except Exception as e:
            out.append(CellOutcome(job.index, "failed", job.hash, error=describe_error(e)))
    return out


def _die_with_parent(ppid: int) -> None:
    """Exit when the driver dies, however it dies (``kill -9`` included)."""
    with contextlib.suppress(OSError, AttributeError):  # Linux: SIGKILL when the parent exits
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    if os.getppid() != ppid:  # the parent died before prctl took effect
        os._exit(1)

    def watch() -> None:  # portable fallback
        while True:
            time.sleep(0.5)
            if os.getppid() != ppid:
                os._exit(1)

    threading.Thread(target=watch, daemon=True, name="fmtheory-parent-watch").start()


def serve(fd: int, *, threads: int, ppid: int, root: str) -> None:
    """The worker loop: receive a list of jobs on socket ``fd``, send back their outcomes; stop on
    None or when the driver goes away."""
    from multiprocessing.connection import Connection

    _die_with_parent(ppid)
    limit_threads(threads)
    conn = Connection(fd)
    try:
        while True:
            try:
                jobs = conn.recv()
            except (EOFError, OSError):
                return
            if jobs is None:
                return
            conn.send(run_local(jobs, root))
    except KeyboardInterrupt:  # the driver forwarded Ctrl-C: the running cell checkpointed
        return
    finally:
        with contextlib.suppress(OSError):
            conn.close()


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m fmtheory.sweep.worker")
    p.add_argument("--fd", type=int, required=True)
    p.add_argument("--threads", type=int, required=True)
    p.add_argument("--ppid", type=int, required=True)
    p.add_argument("--root", required=True)
    a = p.parse_args(argv)
    serve(a.fd, threads=a.threads, ppid=a.ppid, root=a.root)


if __name__ == "__main__":
    main()
