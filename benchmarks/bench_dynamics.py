"""Training speed of the dynamics experiments' quick models (steps per second, one torch thread).

Each entry times ``STEPS`` optimizer steps (forward + backward + AdamW) of one quick-preset model on
its own task, best of ``REPEATS``; ``reference`` is the 1-layer attention-only model of
``induction-heads`` timed in the same run, and ``ratio = value / reference`` (its speed relative to
that model).  Measured on a shared machine: read ratios, not absolute values.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F

from fmtheory.contract import get_experiment
from fmtheory.models.attn_only import TokenTransformer, TokenTransformerConfig
from fmtheory.tasks.chains import random_permutation, sample_chains
from fmtheory.tasks.modular import modular_addition_split
from fmtheory.tasks.repeats import sample_repeats

STEPS, REPEATS = 20, 3


def _steps_per_second(model: torch.nn.Module, loss: Callable[[], torch.Tensor]) -> float:
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    best = float("inf")
    for _ in range(REPEATS):
        t0 = time.perf_counter()
        for _ in range(STEPS):
            value = loss()
            opt.zero_grad(set_to_none=True)
            value.backward()
            opt.step()
        best = min(best, time.perf_counter() - t0)
    return STEPS / best


def _induction(n_layer: int) -> float:
    cfg = get_experiment("induction-heads").make_config("quick")
    t = cfg.task
    model = TokenTransformer(TokenTransformerConfig(vocab=t.vocab, n_ctx=t.seq_len, n_layer=n_layer,
                                                    n_head=cfg.model.n_head, n_embd=cfg.model.n_embd,
                                                    layernorm=cfg.model.layernorm))  # fmt: skip
    b = sample_repeats(batch=cfg.train.batch_size, seq_len=t.seq_len, vocab=t.vocab,
                       period_min=t.period_min, period_max=t.period_max,
                       generator=torch.Generator().manual_seed(0))  # fmt: skip

    def loss() -> torch.Tensor:
        logits = model(b.tokens)
        return F.cross_entropy(logits[:, :-1].reshape(-1, t.vocab), b.tokens[:, 1:].reshape(-1))

    return _steps_per_second(model, loss)


def _grokking() -> float:
    cfg = get_experiment("grokking").make_config("quick")
    p, m = cfg.task.p, cfg.model
    split = modular_addition_split(p=p, fraction=cfg.task.train_fraction,
                                   generator=torch.Generator().manual_seed(0))  # fmt: skip
    model = TokenTransformer(TokenTransformerConfig(vocab=p + 1, n_ctx=3, n_layer=1, n_head=m.n_head,
                                                    n_embd=m.n_embd, layernorm=False, mlp=True,
                                                    mlp_ratio=m.mlp_ratio))  # fmt: skip
    x, y = split.x_train[: cfg.train.batch_size], split.y_train[: cfg.train.batch_size]
    return _steps_per_second(model, lambda: F.cross_entropy(model(x)[:, -1, :p], y))


def _mirage() -> float:
    cfg = get_experiment("emergence-mirage").make_config("quick")
    t = cfg.task
    g = torch.Generator().manual_seed(0)
    perm = random_permutation(t.vocab, generator=g)
    model = TokenTransformer(TokenTransformerConfig(vocab=t.vocab, n_ctx=t.answer_len + 1, n_layer=1,
                                                    n_head=cfg.model.n_head,
                                                    n_embd=cfg.model.n_embd))  # fmt: skip
    x = sample_chains(perm=perm, batch=cfg.train.batch_size, length=t.answer_len + 1,
                      zipf_alpha=t.zipf_alpha, generator=g)  # fmt: skip

    def loss() -> torch.Tensor:
        return F.cross_entropy(model(x[:, :-1]).reshape(-1, t.vocab), x[:, 1:].reshape(-1))

    return _steps_per_second(model, loss)


def _scan_snap() -> float:
    """The scan-snap quick model (Y/Z 1-layer transformer) on its task, plain SGD as in the run."""
    from fmtheory.experiments.scan_snap import YZTransformer, make_data, sample

    cfg = get_experiment("scan-snap").make_config("quick")
    dm = make_data(cfg)
    k, m = dm.probs.shape
    model = YZTransformer(n_classes=k, n_queries=dm.n_queries, vocab=m, eta_y=cfg.optim.eta_y,
                          eta_z=cfg.optim.eta_z)  # fmt: skip
    g = torch.Generator().manual_seed(0)
    probs = torch.as_tensor(dm.probs)
    opt = torch.optim.SGD(model.parameters(), lr=1.0)
    best = float("inf")
    for _ in range(REPEATS):
        t0 = time.perf_counter()
        for _ in range(STEPS):
            cls = torch.randint(0, k, (cfg.train.batch_size,), generator=g)
            x, q = sample(dm, probs, cls, cfg.task.context_len, g)
            value = F.cross_entropy(model(x, q)[0], cls)
            opt.zero_grad(set_to_none=True)
            value.backward()
            opt.step()
        best = min(best, time.perf_counter() - t0)
    return STEPS / best


def _entry(name: str, fn: Callable[[], float]) -> dict[str, Any]:
    torch.set_num_threads(1)
    reference = _induction(1)
    value = fn()
    return {"name": name, "value": value, "unit": "steps/s", "reference": reference,
            "ratio": value / reference, "note": "measured under load"}  # fmt: skip


BENCHMARKS = {
    "dynamics-induction-1L": lambda: _entry("dynamics-induction-1L", lambda: _induction(1)),
    "dynamics-induction-2L": lambda: _entry("dynamics-induction-2L", lambda: _induction(2)),
    "dynamics-grokking": lambda: _entry("dynamics-grokking", _grokking),
    "dynamics-mirage": lambda: _entry("dynamics-mirage", _mirage),
    "dynamics-scan-snap": lambda: _entry("dynamics-scan-snap", _scan_snap),
}
