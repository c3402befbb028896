"""Training speed of the icl-regression presets, and the time for the quick preset to pass check (a).

- ``train-quick``: steps/s of the quick preset's model and batch (1 torch thread per process, the
  fastest setting on 2 cores for a model this small); reference = the same model fed Garg et al.'s
  interleaved layout (2n tokens); ratio = ours / reference.
- ``train-paper``: steps/s of the paper preset (d = 20, 41 points, 12 layers, width 256), reference =
  the same with the carry layout; timing only, a few steps.
- ``quick-to-pass``: runs the whole quick preset (train + evaluate + theory) and reports its wall time
  and whether check (a) holds; reference = the 5-minute target, ratio = target / measured (> 1: faster
  than the target).  Set ``FMTHEORY_BENCH_FULL=0`` to skip it (it trains for minutes).
"""

from __future__ import annotations

import os
import time
from typing import Any

import torch

from fmtheory.experiments import get_experiment
from fmtheory.experiments.icl_regression import build_model
from fmtheory.tasks.regression import make_generator, sample_regression


def _steps_per_second(config: Any, steps: int) -> float:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = build_model(config)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    g = make_generator(0)
    spec, bs, n = config.task.spec(), config.train.batch_size, config.task.n_points

    def step() -> None:
        b = sample_regression(spec, batch=bs, n_points=n, generator=g)
        loss = (model(b.x, b.y) - b.y).pow(2).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    for _ in range(3):
        step()
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    return steps / (time.perf_counter() - t0)


def _compare(preset: str, steps: int, ref_layout: str) -> dict[str, Any]:
    torch.set_num_threads(1)
    exp = get_experiment("icl-regression")
    cfg = exp.make_config(preset)
    ref_cfg = exp.make_config(preset, {"model.layout": ref_layout})
    ours = _steps_per_second(cfg, steps)
    ref = _steps_per_second(ref_cfg, steps)
    return {
        "name": f"train-{preset}",
        "value": ours,
        "unit": "steps/s",
        "reference": ref,
        "ratio": ours / ref,
        "layout": cfg.model.layout,
        "reference_layout": ref_layout,
        "threads": 1,
    }


def bench_train_quick() -> dict[str, Any]:
    return _compare("quick", 200, "interleaved")


def bench_train_paper() -> dict[str, Any]:
    return _compare("paper", 5, "carry")


def bench_quick_to_pass() -> dict[str, Any]:
    if os.environ.get("FMTHEORY_BENCH_FULL", "1") == "0":
        return {"name": "quick-to-pass", "value": float("nan"), "unit": "s", "reference": 300.0,
                "ratio": float("nan"), "skipped": "FMTHEORY_BENCH_FULL=0"}  # fmt: skip
    torch.set_num_threads(1)
    exp = get_experiment("icl-regression")
    cfg = exp.make_config("quick")
    t0 = time.perf_counter()
    result = exp.run(cfg, None)
    seconds = time.perf_counter() - t0
    check_a = result.checks[0]
    return {
        "name": "quick-to-pass",
        "value": seconds,
        "unit": "s",
        "reference": 300.0,
        "ratio": 300.0 / seconds,
        "check_a_holds": check_a.holds,
        "check_a_measured": check_a.measured,
        "train_steps": cfg.train.steps,
    }


BENCHMARKS = {
    "train-quick": bench_train_quick,
    "train-paper": bench_train_paper,
    "quick-to-pass": bench_quick_to_pass,
}
