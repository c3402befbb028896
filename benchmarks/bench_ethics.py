"""Ethics speed: one DP-SGD step (Opacus per-example gradients, clipping, noise) of the ``privacy``
quick-preset MLP (64 → 128 → 10, expected batch 64) against the same non-private SGD step.

``value`` is the best of 5 timings (seconds per step, averaged over 50 steps) of the Opacus step;
``reference`` the same for plain SGD on the same model and batch; ``ratio = value / reference`` (how
many times slower DP-SGD is).  Measured with ``torch.set_num_threads(1)``, under load.
"""

from __future__ import annotations

import time
from typing import Any

import torch
from torch import nn

STEPS, REPEATS, BATCH = 50, 5, 64


def _time(model: nn.Module, opt: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor) -> float:
    best = float("inf")
    for _ in range(REPEATS):
        t0 = time.perf_counter()
        for _ in range(STEPS):
            opt.zero_grad(set_to_none=True)
            nn.functional.cross_entropy(model(x), y).backward()
            opt.step()
        best = min(best, (time.perf_counter() - t0) / STEPS)
    return best


def bench_dp_sgd_step() -> dict[str, Any]:
    from opacus import PrivacyEngine

    torch.set_num_threads(1)
    g = torch.Generator().manual_seed(0)
    x, y = torch.rand(BATCH, 64, generator=g), torch.randint(0, 10, (BATCH,), generator=g)
    make = lambda: nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 10))  # noqa: E731
    plain = make()
    reference = _time(plain, torch.optim.SGD(plain.parameters(), lr=0.05), x, y)
    m = make()
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=BATCH)
    pm, opt, _ = PrivacyEngine().make_private(
        module=m, optimizer=torch.optim.SGD(m.parameters(), lr=0.05), data_loader=loader,
        noise_multiplier=1.0, max_grad_norm=1.0,
    )  # fmt: skip
    value = _time(pm, opt, x, y)
    return {"name": "dp_sgd_step", "value": value, "unit": "s/step", "reference": reference,
            "ratio": value / reference}  # fmt: skip


BENCHMARKS = {"dp_sgd_step": bench_dp_sgd_step}
