"""Training throughput of the `cot` experiment: tokens/second through ``train.fit`` vs plain eager.

Case: S5 tracking at n = 16, the 2-layer pre-LN GPT of the quick preset (width 64, 4 heads),
batch 128, ``STEPS`` AdamW steps, in the answer-only and the CoT format.  ``value`` is training
tokens per second through ``fmtheory.train.fit`` (warm-up, grad clipping, non-finite guard);
``reference`` is the same model, sampler and loss in a bare PyTorch eager loop
(``AdamW.zero_grad / backward / step``), timed in the same run.  ``ratio = value / reference``
(1 = no overhead from the training entry point).  Both are timed in CPU seconds of this process
(``time.process_time``) at one torch thread, after a few untimed warm-up steps, so that other jobs
on a shared machine and the first call's one-off costs do not enter the ratio.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import torch

from fmtheory.contract import RunContext
from fmtheory.experiments.cot import Config, _model, token_losses
from fmtheory.tasks import cot as tasks
from fmtheory.train.fit import fit, make_generator, seeded

N, DEPTH, BATCH, STEPS, WARMUP = 16, 2, 128, 60, 5


def _config() -> Config:
    return Config(
        tasks=[{"task": "s5", "formats": ["answer", "cot"]}], ns=[N], depths=[DEPTH],
        train={"steps": STEPS, "batch_size": BATCH, "lr": 1e-3, "warmup_steps": 5,
               "schedule": "constant"},
    )  # fmt: skip


def _throughput(cot: bool) -> dict[str, Any]:
    cfg = _config()
    fmt = tasks.task_format("s5", N, cot=cot)
    tokens = STEPS * BATCH * (fmt.length - 1)

    def loss_fn(m: torch.nn.Module, step: int, g: torch.Generator) -> torch.Tensor:
        b = tasks.sample("s5", N, BATCH, cot=cot, generator=g)
        return token_losses(m, b.ids, fmt.n_prompt).mean()

    def eager(steps: int) -> float:
        model = seeded(lambda: _model(fmt, DEPTH, cfg), 0)
        opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.0)
        g = make_generator(0)
        t0 = time.process_time()
        for step in range(steps):
            loss = loss_fn(model, step, g)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        return time.process_time() - t0

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        eager(WARMUP)
        model = seeded(lambda: _model(fmt, DEPTH, cfg), 0)
        t0 = time.process_time()
        fit(model, loss_fn, cfg.train, seed=0, ctx=RunContext(), name="bench")
        t_fit = time.process_time() - t0
        t_eager = eager(STEPS)
    finally:
        torch.set_num_threads(threads)
    name = f"cot-train-{'cot' if cot else 'answer'}"
    return {
        "name": name,
        "value": tokens / t_fit,
        "unit": "tokens/s",
        "reference": tokens / t_eager,
        "ratio": t_eager / t_fit,
        "case": f"s5 n={N}, GPT {DEPTH}L×4H×64, batch {BATCH}, {STEPS} steps, seq {fmt.length}",
        "reference_method": "plain PyTorch eager AdamW loop, same model/sampler/loss",
        "clock": "CPU seconds of the process (time.process_time), one torch thread",
    }


BENCHMARKS: dict[str, Callable[[], dict[str, Any]]] = {
    "cot-train-answer": lambda: _throughput(False),
    "cot-train-cot": lambda: _throughput(True),
}
