"""Ethics speed: one DP-SGD step (Opacus per-example gradients, clipping, noise) of the ``privacy``
quick-preset MLP (64 → 128 → 10, expected batch 64) against the same non-private SGD step.

``value`` is the best of 5 timings (seconds per step, averaged over 50 steps) of the Opacus step;
``reference`` the same for plain SGD on the same model and batch; ``ratio = value / reference`` (how
many times slower DP-SGD is).  ``lira_8_shadows``: the LiRA attack (8 shadow trainings + scoring)
against one training run of the target.  ``memorization_per_model``: one subsampled model of the
memorization estimate (training + scoring all digits) against one training run.  Measured with ``torch.set_num_threads(1)``, under load.
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


def bench_lira_cost() -> dict[str, Any]:
    """LiRA with 8 non-private shadow models (``privacy`` quick settings) against one training run
    of the target model: ``ratio = value / reference`` (the attack's cost in training runs)."""
    import numpy as np

    from fmtheory.contract import RunContext
    from fmtheory.experiments import privacy as px

    torch.set_num_threads(1)
    cfg = px.Config.model_validate({"attack": {"shadows": 8}})
    x_in, y_in, x_out, y_out = px.load_digits_split(0)
    ctx = RunContext()
    px.train_model(cfg, None, x_in, y_in, 0, ctx)  # warm-up (first-call costs)
    t0 = time.perf_counter()
    target, _ = px.train_model(cfg, None, x_in, y_in, 0, ctx)
    reference = time.perf_counter() - t0
    rng = np.random.default_rng(0)
    x_all, y_all = torch.cat([x_in, x_out]), torch.cat([y_in, y_out])
    t0 = time.perf_counter()
    masks, phis = [], []
    for k in range(cfg.attack.shadows):
        m = rng.random(len(y_all)) < 0.5
        sm, _ = px.train_model(cfg, None, x_all[m], y_all[m], 1000 + k, ctx)
        masks.append(m)
        phis.append(px._logit_conf(sm, x_all, y_all))
    px.lira_scores(px._logit_conf(target, x_all, y_all), np.array(phis), np.array(masks))
    value = time.perf_counter() - t0
    return {"name": "lira_8_shadows", "value": value, "unit": "s", "reference": reference,
            "ratio": value / reference}  # fmt: skip


def bench_memorization_per_model() -> dict[str, Any]:
    """Memorization by subsampling (``privacy`` quick settings, non-private): the cost per model of
    4 models on random halves of all digits, each scored on every example, against one training
    run of the target on the members half: ``ratio = value / reference``."""
    import numpy as np

    from fmtheory.contract import RunContext
    from fmtheory.experiments import privacy as px

    torch.set_num_threads(1)
    cfg = px.Config.model_validate({"memorization": {"models": 4}})
    x_in, y_in, x_out, y_out = px.load_digits_split(0)
    ctx = RunContext()
    px.train_model(cfg, None, x_in, y_in, 0, ctx)  # warm-up (first-call costs)
    t0 = time.perf_counter()
    px.train_model(cfg, None, x_in, y_in, 0, ctx)
    reference = time.perf_counter() - t0
    x_all, y_all = torch.cat([x_in, x_out]), torch.cat([y_in, y_out])
    g, n = torch.Generator().manual_seed(7), len(y_all)
    t0 = time.perf_counter()
    correct, masks = [], []
    for k in range(cfg.memorization.models):
        m = np.zeros(n, bool)
        m[torch.randperm(n, generator=g)[: n // 2].numpy()] = True
        sm, _ = px.train_model(cfg, None, x_all[m], y_all[m], 5000 + k, ctx, name=f"mem{k}")
        correct.append(px._accuracy(sm, x_all, y_all))
        masks.append(m)
    px.memorization_scores(np.array(correct, float), np.array(masks))
    value = (time.perf_counter() - t0) / cfg.memorization.models
    return {"name": "memorization_per_model", "value": value, "unit": "s/model",
            "reference": reference, "ratio": value / reference}  # fmt: skip


BENCHMARKS = {
    "dp_sgd_step": bench_dp_sgd_step,
    "lira_8_shadows": bench_lira_cost,
    "memorization_per_model": bench_memorization_per_model,
}
