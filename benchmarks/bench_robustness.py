"""Speed of adversarial training: PGD-7 training steps per second against plain training steps of the
same MLP and batch (adversarial-robustness quick preset), both timed in this run at one thread.

ratio = PGD steps/s ÷ plain steps/s (about 1/(steps + 1) is the cost PGD must pay: each PGD step is
one forward and backward pass through the model).
"""

from __future__ import annotations

import time
from typing import Any

import torch
import torch.nn.functional as F

from fmtheory.contract import get_experiment
from fmtheory.models.mlp_classifier import MLPClassifier
from fmtheory.probes.adversarial import pgd_attack
from fmtheory.tasks.digit_images import load_digit_images


def _rate(adversarial: bool, steps: int) -> float:
    cfg = get_experiment("adversarial-robustness").make_config("quick")
    data = load_digit_images(seed=0)
    torch.manual_seed(0)
    model = MLPClassifier(64, cfg.model.hidden, 10)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    g = torch.Generator().manual_seed(0)
    bs = cfg.train.batch_size

    def step() -> None:
        idx = torch.randint(0, data.x_train.shape[0], (bs,), generator=g)
        x, y = data.x_train[idx], data.y_train[idx]
        if adversarial:
            x = pgd_attack(model, x, y, eps=cfg.attack.eps, norm=cfg.attack.norm,
                           steps=cfg.attack.steps, generator=g)  # fmt: skip
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    for _ in range(5):
        step()
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    return steps / (time.perf_counter() - t0)


def pgd_vs_plain() -> dict[str, Any]:
    torch.set_num_threads(1)
    best_adv = max(_rate(True, 100) for _ in range(3))
    best_plain = max(_rate(False, 400) for _ in range(3))
    return {
        "name": "pgd-training-step",
        "value": best_adv,
        "unit": "steps/s",
        "reference": best_plain,
        "ratio": best_adv / best_plain,
        "pgd_steps": get_experiment("adversarial-robustness").make_config("quick").attack.steps,
    }


BENCHMARKS = {"pgd-training-step": pgd_vs_plain}
