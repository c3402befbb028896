"""LSA speed: one training step of the linear self-attention stacks of ``lsa-gd`` vs the softmax GPT.

Case (the ``lsa-gd`` quick preset): d = 5, n = 20 context pairs + 1 query, batch 256 prompts, float32,
``torch.set_num_threads(1)``.  ``value`` is the best of 5 timings (seconds, averaged over 20 steps) of
one forward + backward + AdamW step of ``LSAStack(5, L)``; ``reference`` is the same for the softmax
GPT of ``icl-regression``'s quick preset (4 layers, 2 heads, width 64, "carry" layout) on the same
prompts; ``ratio = reference / value`` (how many LSA steps fit in one GPT step).  A second entry times
the numpy reference of the ZFB formula (one prompt at a time, as in the tests) against the batched
``LSAStack`` forward on 2,000 prompts.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from fmtheory.experiments.icl_regression import Config as ICLConfig
from fmtheory.experiments.icl_regression import build_model
from fmtheory.models.lsa import LSAStack
from fmtheory.tasks import RegressionSpec, make_generator, sample_regression

DIM, N_CONTEXT, BATCH = 5, 20, 256
STEPS, REPEATS = 20, 5


def _step_time(model: torch.nn.Module, fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
               x: torch.Tensor, y: torch.Tensor) -> float:  # fmt: skip
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    best = float("inf")
    for _ in range(REPEATS):
        t0 = time.perf_counter()
        for _ in range(STEPS):
            loss = (fn(x, y) - y[:, -1]).pow(2).mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        best = min(best, (time.perf_counter() - t0) / STEPS)
    return best


def _prompts(batch: int) -> tuple[torch.Tensor, torch.Tensor]:
    b = sample_regression(RegressionSpec(dim=DIM), batch=batch, n_points=N_CONTEXT + 1,
                          generator=make_generator(0))  # fmt: skip
    return b.x, b.y


def bench_lsa_train_step(n_layer: int) -> dict[str, Any]:
    torch.set_num_threads(1)
    x, y = _prompts(BATCH)
    lsa = LSAStack(DIM, n_layer, init_std=0.1, generator=torch.Generator().manual_seed(0))
    value = _step_time(lsa, lsa, x, y)
    cfg = ICLConfig.model_validate({"task": {"dim": DIM, "n_points": N_CONTEXT + 1},
                                    "model": {"n_layer": 4, "n_head": 2, "n_embd": 64,
                                              "layout": "carry"}})  # fmt: skip
    gpt = build_model(cfg)
    reference = _step_time(gpt, lambda a, b: gpt(a, b)[:, -1], x, y)
    return {"name": f"lsa_L{n_layer}_train_step", "value": value, "unit": "s/step",
            "reference": reference, "ratio": reference / value,
            "case": f"d={DIM}, n={N_CONTEXT}, batch={BATCH}; reference: softmax GPT 4x64"}  # fmt: skip


def bench_lsa_forward_vs_numpy() -> dict[str, Any]:
    torch.set_num_threads(1)
    x, y = _prompts(2000)
    m = LSAStack(DIM, 1, init_std=0.3, generator=torch.Generator().manual_seed(0)).double()
    xd, yd = x.double(), y.double()
    best = float("inf")
    with torch.no_grad():
        for _ in range(REPEATS):
            t0 = time.perf_counter()
            m(xd, yd)
            best = min(best, time.perf_counter() - t0)
    pv, kq = m.layers[0].w_pv.detach().numpy(), m.layers[0].w_kq.detach().numpy()
    xs, ys = xd.numpy(), yd.numpy()
    t0 = time.perf_counter()
    for xb, yb in zip(xs, ys, strict=True):
        Z = np.concatenate([xb.T, yb[None, :]], axis=0)
        Z[-1, -1] = 0.0
        M = np.eye(N_CONTEXT + 1)
        M[-1, -1] = 0.0
        _ = Z + pv @ Z @ M @ Z.T @ kq @ Z / N_CONTEXT
    reference = time.perf_counter() - t0
    return {"name": "lsa_forward_2000_prompts", "value": best, "unit": "s",
            "reference": reference, "ratio": reference / best,
            "case": "batched LSAStack forward vs per-prompt numpy ZFB formula, float64"}  # fmt: skip


BENCHMARKS: dict[str, Callable[[], dict[str, Any]]] = {
    "lsa_L1_train_step": lambda: bench_lsa_train_step(1),
    "lsa_L3_train_step": lambda: bench_lsa_train_step(3),
    "lsa_forward_2000_prompts": bench_lsa_forward_vs_numpy,
}
