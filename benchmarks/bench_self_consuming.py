"""Self-consuming loops: speed of the vectorised exact families and of the quick / paper presets.

* ``stl-gaussian-loop-1000x1000`` — one regime (fully synthetic, replace) of the Gaussian loop,
  ``M = 100`` samples per generation, 1,000 generations x 1,000 replicates, table rows every 5
  generations.  ``reference``: the plain per-replicate loop (draw ``M`` points with numpy, refit
  mean and unbiased variance), timed on ``NAIVE_REPLICATES`` replicates and scaled linearly to
  1,000.  ``ratio = reference / value``.
* ``stl-linreg-loop-1000x1000`` — the same for OLS on a fixed design (d = 10, T = 100); the
  reference loop relabels and calls ``numpy.linalg.lstsq`` per replicate and generation.
* ``stl-paper-{gaussian,linreg}`` — the whole ``paper`` preset (1,000 x 1,000, every reference
  regime), and ``stl-quick-{family}`` — the ``quick`` preset of each family.  For these
  ``reference`` is the issue's budget (60 s; 300 s for neural) and ``ratio = budget / value``
  (≥ 1: within budget).  ``cpu_s`` reports the process CPU time beside the wall clock, since the
  machine may be shared.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from fmtheory.contract import RunContext, get_experiment
from fmtheory.experiments.self_consuming.loops_exact import (
    GaussianLoopSpec,
    LinregLoopSpec,
    run_gaussian_loop,
    run_linreg_loop,
)
from fmtheory.experiments.self_consuming.regimes import make_regime
from fmtheory.tasks.generative import GaussianSpec

GENERATIONS, REPLICATES = 1000, 1000
NAIVE_REPLICATES = 20
M = 100
D, T = 10, 100
SYNTHETIC = make_regime(mode="replace", real_fraction=0.0, gamma=0.0, schedule="constant", power=0)


def _timed(fn: Callable[[], Any]) -> tuple[float, float]:
    t0, c0 = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - t0, time.process_time() - c0


def _naive_gaussian(reps: int) -> None:
    rng = np.random.default_rng(0)
    for _ in range(reps):
        mu, sd = 0.0, 1.0
        for _ in range(GENERATIONS):
            x = rng.normal(mu, sd, M)
            mu, sd = x.mean(), x.std(ddof=1)


def _naive_linreg(reps: int) -> None:
    rng = np.random.default_rng(0)
    for _ in range(reps):
        x = rng.standard_normal((T, D))
        w = rng.standard_normal(D)
        for _ in range(GENERATIONS):
            y = x @ w + rng.standard_normal(T)
            w = np.linalg.lstsq(x, y, rcond=None)[0]


def bench_gaussian_loop() -> dict[str, Any]:
    spec = GaussianLoopSpec(
        real=GaussianSpec(), n0=M, generations=GENERATIONS, replicates=REPLICATES, record_every=5
    )
    wall, cpu = _timed(lambda: run_gaussian_loop(spec, SYNTHETIC, np.random.default_rng(0)))
    naive, _ = _timed(lambda: _naive_gaussian(NAIVE_REPLICATES))
    ref = naive * REPLICATES / NAIVE_REPLICATES
    return {
        "name": "stl-gaussian-loop-1000x1000",
        "value": wall,
        "unit": "s",
        "reference": ref,
        "ratio": ref / wall,
        "cpu_s": cpu,
    }


def bench_linreg_loop() -> dict[str, Any]:
    spec = LinregLoopSpec(
        dim=D, rows=T, noise_std=1.0, generations=GENERATIONS, replicates=REPLICATES, record_every=5
    )
    wall, cpu = _timed(lambda: run_linreg_loop(spec, SYNTHETIC, np.random.default_rng(0)))
    naive, _ = _timed(lambda: _naive_linreg(NAIVE_REPLICATES // 2))
    ref = naive * REPLICATES / (NAIVE_REPLICATES // 2)
    return {
        "name": "stl-linreg-loop-1000x1000",
        "value": wall,
        "unit": "s",
        "reference": ref,
        "ratio": ref / wall,
        "cpu_s": cpu,
    }


def _preset(preset: str, model: str, budget: float) -> Callable[[], dict[str, Any]]:
    def run() -> dict[str, Any]:
        exp = get_experiment("self-consuming")
        cfg = exp.make_config(preset, {"model": model})
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            wall, cpu = _timed(lambda: exp.run(cfg, RunContext()))
        finally:
            torch.set_num_threads(threads)
        return {
            "name": f"stl-{preset}-{model}",
            "value": wall,
            "unit": "s",
            "reference": budget,
            "ratio": budget / wall,
            "cpu_s": cpu,
        }

    return run


BENCHMARKS: dict[str, Callable[[], dict[str, Any]]] = {
    "stl-gaussian-loop-1000x1000": bench_gaussian_loop,
    "stl-linreg-loop-1000x1000": bench_linreg_loop,
    "stl-paper-gaussian": _preset("paper", "gaussian", 60.0),
    "stl-paper-linreg": _preset("paper", "linreg", 60.0),
    **{
        f"stl-quick-{m}": _preset("quick", m, 300.0 if m == "neural" else 60.0)
        for m in ("gaussian", "linreg", "gmm", "kde", "neural")
    },
}
