"""Canary-exposure speed (``privacy``'s canary part, quick-preset sizes).

``canary_dp_step``: one Opacus DP-SGD step of the 8-gram MLP LM (vocabulary 42, batch 64 documents
of 16 tokens) against the same non-private Adam step; ``ratio = value / reference``.
``canary_exposure_enumeration``: the log-perplexity of all 10^4 four-digit candidates by
:func:`fmtheory.probes.exposure.candidate_log_perplexities` (one pass over the 10^3 partial
secrets) against a forward pass over all 10^4 full candidates; ``ratio`` < 1 is the saving.
Best of 5 timings, ``torch.set_num_threads(1)``, measured under load.
"""

from __future__ import annotations

import time
from typing import Any

import torch
from torch import nn

REPEATS = 5


def _best(fn: Any, n: int = 1) -> float:
    best = float("inf")
    for _ in range(REPEATS):
        t0 = time.perf_counter()
        for _ in range(n):
            fn()
        best = min(best, (time.perf_counter() - t0) / n)
    return best


def _model() -> nn.Module:
    from fmtheory.models.ngram_lm import NGramLM, NGramLMConfig

    torch.manual_seed(0)
    return NGramLM(NGramLMConfig(vocab=42, context=7, embed_dim=16, hidden=128))


def bench_canary_dp_step() -> dict[str, Any]:
    from opacus import PrivacyEngine

    torch.set_num_threads(1)
    x = torch.randint(0, 42, (64, 16), generator=torch.Generator().manual_seed(0))
    ce = nn.functional.cross_entropy

    def stepper(model: nn.Module, opt: torch.optim.Optimizer) -> Any:
        def step() -> None:
            opt.zero_grad(set_to_none=True)
            ce(model(x).flatten(0, 1), x.flatten()).backward()
            opt.step()

        return step

    plain = _model()
    reference = _best(stepper(plain, torch.optim.Adam(plain.parameters(), lr=3e-3)), 20)
    m = _model()
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x), batch_size=64)
    pm, opt, _ = PrivacyEngine().make_private(
        module=m, optimizer=torch.optim.Adam(m.parameters(), lr=3e-3), data_loader=loader,
        noise_multiplier=1.0, max_grad_norm=1.0,
    )  # fmt: skip
    value = _best(stepper(pm, opt), 20)
    return {"name": "canary_dp_step", "value": value, "unit": "s/step", "reference": reference,
            "ratio": value / reference}  # fmt: skip


def bench_canary_exposure_enumeration() -> dict[str, Any]:
    from fmtheory.probes.exposure import candidate_log_perplexities

    torch.set_num_threads(1)
    m = _model()
    prefix = torch.tensor([3, 1, 4])

    def lp(t: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return torch.log_softmax(m(t), -1)

    def fast() -> None:
        candidate_log_perplexities(lp, prefix, base=10, secret_len=4, digit_offset=32)

    idx = torch.arange(10_000)
    digits = torch.stack([(idx // 10 ** (3 - j)) % 10 for j in range(4)], 1) + 32
    full = torch.cat([prefix.expand(10_000, 3), digits], 1)

    def brute() -> None:
        out = lp(full)[:, 3:].gather(2, full[:, 3:, None]).sum((1, 2))
        assert out.shape == (10_000,)

    value, reference = _best(fast), _best(brute)
    return {"name": "canary_exposure_enumeration", "value": value, "unit": "s/canary",
            "reference": reference, "ratio": value / reference}  # fmt: skip


BENCHMARKS = {
    "canary_dp_step": bench_canary_dp_step,
    "canary_exposure_enumeration": bench_canary_exposure_enumeration,
}
