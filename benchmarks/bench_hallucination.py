"""Hallucination-detection speed: sampling K = 10 answers (and their embeddings) for 500 queries in
one batched call of ``sample_answers`` against one call per query, on the ``hallucination`` quick
model size (K = 1000 facts, A = 16 attributes, width 32, MLP 64; untrained weights, same cost).

``value``: best of 3 timings of the batched call (s); ``reference``: the per-query loop (s);
``ratio = reference / value`` (how many times faster batching is).  One thread, under load.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import torch

QUERIES, SAMPLES, REPEATS = 500, 10, 3


def bench_batched_sampling() -> dict[str, Any]:
    from fmtheory.experiments.hallucination import sample_answers
    from fmtheory.models.token_lm import TokenLM, TokenLMConfig
    from fmtheory.tasks.facts import make_world

    torch.set_num_threads(1)
    world = make_world(n_facts=1000, n_attributes=16, exponent=1.2, seed=0)
    model = TokenLM(TokenLMConfig(vocab=world.vocab, embed_dim=32, hidden=64),
                    generator=torch.Generator().manual_seed(0)).eval()  # fmt: skip
    q = np.random.default_rng(0).choice(world.n_facts, QUERIES, p=world.probs)

    def batched() -> None:
        sample_answers(model, world, q, SAMPLES, torch.Generator().manual_seed(0))

    def looped() -> None:
        g = torch.Generator().manual_seed(0)
        for e in q:
            sample_answers(model, world, q[e == q][:1], SAMPLES, g)

    def best(fn: Any) -> float:
        out = float("inf")
        for _ in range(REPEATS):
            t0 = time.perf_counter()
            fn()
            out = min(out, time.perf_counter() - t0)
        return out

    value, reference = best(batched), best(looped)
    return {"name": "batched_sampling", "value": value, "unit": "s", "reference": reference,
            "ratio": reference / value}  # fmt: skip


BENCHMARKS = {"batched_sampling": bench_batched_sampling}
