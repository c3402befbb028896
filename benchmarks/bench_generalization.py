"""Speed of the empirical NTK probe (``fmtheory.probes.ntk``).

- ``ntk_256x_mlp1024``: the empirical NTK (256 × 256) of a width-1024, one-hidden-layer ReLU MLP
  on 256 inputs of dimension 32 (33k parameters), with ``torch.func`` (``vmap`` of ``jacrev``);
  reference = the same kernel from a per-example ``torch.autograd.grad`` loop (256 backward passes,
  then the Gram matrix).  ratio = reference time / probe time (> 1: the probe is faster).  Best of
  3, one torch thread; measured under load on a shared machine.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import torch

from fmtheory.models.wide_mlp import WideMLP
from fmtheory.probes.ntk import empirical_ntk


def _best(fn: Callable[[], torch.Tensor], reps: int = 3) -> tuple[float, torch.Tensor]:
    best, out = float("inf"), None
    for _ in range(reps):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    assert out is not None
    return best, out


def bench_ntk() -> dict[str, Any]:
    torch.set_num_threads(1)
    torch.manual_seed(0)
    model = WideMLP(32, 1024)
    x = torch.randn(256, 32)

    def loop() -> torch.Tensor:
        params = list(model.parameters())
        rows = []
        for i in range(x.shape[0]):
            g = torch.autograd.grad(model(x[i : i + 1])[0], params)
            rows.append(torch.cat([t.reshape(-1) for t in g]))
        j = torch.stack(rows)
        return j @ j.T

    t_probe, k_probe = _best(lambda: empirical_ntk(model, x))
    t_loop, k_loop = _best(loop)
    err = float((k_probe - k_loop).norm() / k_loop.norm())
    return {
        "name": "ntk_256x_mlp1024",
        "value": t_probe,
        "unit": "s",
        "reference": t_loop,
        "ratio": t_loop / t_probe,
        "relative_difference": err,
    }


BENCHMARKS: dict[str, Callable[[], dict[str, Any]]] = {"ntk_256x_mlp1024": bench_ntk}
