"""Representations speed: the batched μ probe over a 6-layer model's hidden states vs a numpy loop.

Case: the hidden states of all-MiniLM-L6-v2 (7 tensors: embeddings + 6 layers) on the first 256
sentences of ``fmtheory/data/sentences.txt``, padded, float32, when the ``pretrained`` extra is
installed; otherwise random hidden states of the same shape (256 sequences of 6-40 real tokens,
width 384).  ``value``: best of 5 timings of :func:`masked_rank_collapse_residual` over the 7 layers
(one batched call per layer, ``torch.set_num_threads(1)``); ``reference``: the same μ computed with a
plain numpy loop over layers and sentences (slice the real tokens, subtract the mean, two norms);
``ratio = reference / value``.  Measured under load on a shared machine.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from fmtheory.probes.rank import masked_rank_collapse_residual

N_SENTENCES, REPEATS = 256, 5


def _hidden_states() -> tuple[list[torch.Tensor], torch.Tensor, str]:
    from fmtheory.models.pretrained import pretrained_available

    if pretrained_available():
        from fmtheory.experiments.rank_collapse import sentences
        from fmtheory.models.pretrained import hidden_states, load_minilm

        model, tok = load_minilm()
        hs = hidden_states(model, tok, sentences()[:N_SENTENCES])
        return hs.layers, hs.mask, "all-MiniLM-L6-v2 hidden states"
    g = torch.Generator().manual_seed(0)
    lengths = torch.randint(6, 41, (N_SENTENCES,), generator=g)
    mask = torch.arange(40)[None, :] < lengths[:, None]
    layers = [torch.randn(N_SENTENCES, 40, 384, generator=g) for _ in range(7)]
    return layers, mask, "random hidden states (extra 'pretrained' missing)"


def bench_mu_probe() -> dict[str, Any]:
    torch.set_num_threads(1)
    layers, mask, what = _hidden_states()
    best = float("inf")
    for _ in range(REPEATS):
        t0 = time.perf_counter()
        got = [masked_rank_collapse_residual(h, mask) for h in layers]
        best = min(best, time.perf_counter() - t0)
    np_layers, lengths = [h.numpy() for h in layers], mask.sum(dim=1).tolist()
    ref_best = float("inf")
    for _ in range(2):
        t0 = time.perf_counter()
        ref = []
        for h in np_layers:
            out = []
            for x, n in zip(h, lengths, strict=True):
                real = x[:n]
                out.append(np.linalg.norm(real - real.mean(axis=0)) / np.linalg.norm(real))
            ref.append(out)
        ref_best = min(ref_best, time.perf_counter() - t0)
    err = max(float(np.abs(np.asarray(r) - g.numpy()).max()) for r, g in zip(ref, got, strict=True))
    return {"name": "mu_probe_6_layers_256_sentences", "value": best, "unit": "s",
            "reference": ref_best, "ratio": ref_best / best,
            "case": f"{what}; max |torch - numpy| = {err:.1e}"}  # fmt: skip


BENCHMARKS: dict[str, Callable[[], dict[str, Any]]] = {
    "mu_probe_6_layers_256_sentences": bench_mu_probe,
}
