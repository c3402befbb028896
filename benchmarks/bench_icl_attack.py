"""icl-attack-defense speed: batched scoring of the whole attack grid against one prompt at a time.

Case (the quick preset's model, untrained: the cost does not depend on the weights): a 2L×2H×64
token transformer with MLPs, prompts of 12 demonstrations (T = 26), the attack grid k = 0 … 8 with
and without 3 refusal demonstrations, 64 prompts per point (1152 prompts).  ``value`` is the best of
3 timings (seconds) of one batched forward over all prompts, reading 1 − P(REFUSE) at the final
query (``comply_prob``); ``reference`` scores the same prompts one forward per prompt;
``ratio = reference / value``.
"""

from __future__ import annotations

import time
from typing import Any

import torch

from fmtheory.contract import get_experiment
from fmtheory.experiments.icl_attack_defense import comply_prob, model_config, vocab
from fmtheory.models.attn_only import TokenTransformer
from fmtheory.tasks.safety import attack_prompts
from fmtheory.train.fit import seeded

PROMPTS, REPEATS = 64, 3


def _best(fn) -> float:
    best = float("inf")
    for _ in range(REPEATS):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def bench_attack_scoring() -> dict[str, Any]:
    cfg = get_experiment("icl-attack-defense").make_config("quick")
    v, mcfg = vocab(cfg), model_config(cfg)
    model = seeded(lambda: TokenTransformer(mcfg), 0).eval()
    g = torch.Generator().manual_seed(0)
    tok = torch.cat([attack_prompts(v, batch=PROMPTS, max_demos=cfg.task.max_demos, k=k,
                                    k_defense=kd, final=True, generator=g)
                     for k in cfg.eval.k_grid for kd in (0, cfg.eval.k_defense)])  # fmt: skip
    pos = tok.shape[1] - 1
    value = _best(lambda: comply_prob(model, tok, pos, v.refuse))

    def one_at_a_time() -> None:
        for i in range(tok.shape[0]):
            comply_prob(model, tok[i : i + 1], pos, v.refuse)

    reference = _best(one_at_a_time)
    return {"name": "attack_grid_scoring", "value": value, "unit": "s", "reference": reference,
            "ratio": reference / value,
            "case": f"{tok.shape[0]} prompts of length {tok.shape[1]}; reference: one forward "
                    "per prompt"}  # fmt: skip


BENCHMARKS = {"attack_grid_scoring": bench_attack_scoring}
