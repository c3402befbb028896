"""Self-consuming loop for the neural family: a tiny token model over Zipf-distributed tokens.

Each generation trains :class:`fmtheory.models.token_lm.TokenLM` with the shared training loop
(:func:`fmtheory.train.fit`) on ``n_g`` sequences mixed from real Zipf data and the previous
model's samples.  Beside it runs the exact maximum-likelihood counterpart — a categorical model
(empirical token frequencies), vectorised over replicates — whose generation-1 missing mass has a
closed form.  Part of the ``self-consuming`` experiment (``experiments/self_consuming/``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from fmtheory.contract import RunContext
from fmtheory.experiments.self_consuming.regimes import (
    LoopOutput,
    Regime,
    Tick,
    real_count,
    recorded_generations,
)
from fmtheory.models.token_lm import TokenLM, TokenLMConfig
from fmtheory.tasks.generative import ZipfSpec, sample_zipf_tokens
from fmtheory.train import TrainSpec, fit

__all__ = ["NeuralLoopSpec", "run_neural_loop", "run_categorical_loop", "token_metrics"]


@dataclass(frozen=True)
class NeuralLoopSpec:
    """Sizes of the neural loop.  ``n0`` counts sequences of ``seq_len`` tokens; ``head``: ranks
    ``≤ head`` form the head, the rest the tail; ``warm_start``: continue from the previous
    generation's weights instead of a fresh initialisation."""

    zipf: ZipfSpec
    seq_len: int
    n0: int
    generations: int
    replicates: int
    head: int
    model: TokenLMConfig
    steps: int
    lr: float
    batch_size: int
    weight_decay: float = 0.0
    warm_start: bool = False
    record_every: int = 1
    max_n: int | None = None


def token_metrics(q: np.ndarray, p: np.ndarray, *, head: int, tokens: np.ndarray) -> dict:
    """Metrics of model distributions ``q: (R, V)`` against the truth ``p: (V,)``.

    A token counts as *lost* when ``q_i < 0.1/N`` with ``N = tokens`` (per replicate) the number of
    tokens the model was fitted on — for the categorical MLE exactly the tokens never seen.

    ``distance`` = TV ``½Σ|q − p|``; ``missing_mass`` = ``Σ_i p_i 1{lost}``; ``lost_head`` /
    ``lost_tail`` = fraction of the head (ranks ≤ head) / tail tokens lost; ``tail_ratio`` =
    ``q(tail)/p(tail)``; ``log_ratio_head`` / ``log_ratio_tail`` = mean of
    ``ln(max(q_i, 0.1/N)/p_i)`` over head / tail tokens (how far the typical token's probability
    has shrunk; a neutral resampling drift shrinks it by about ``1/(2 N p_i)`` per generation, so
    the tail first).
    """
    floor = (0.1 / tokens)[:, None]
    tv = 0.5 * np.abs(q - p[None, :]).sum(-1)
    lost = q < floor
    log_ratio = np.log(np.maximum(q, floor) / p[None, :])
    return {
        "distance": tv,
        "missing_mass": (lost * p[None, :]).sum(-1),
        "lost_head": lost[:, :head].mean(-1),
        "lost_tail": lost[:, head:].mean(-1),
        "log_ratio_head": log_ratio[:, :head].mean(-1),
        "log_ratio_tail": log_ratio[:, head:].mean(-1),
        "tail_ratio": q[:, head:].sum(-1) / p[head:].sum(),
    }


def run_categorical_loop(
    spec: NeuralLoopSpec, regime: Regime, rng: np.random.Generator
) -> LoopOutput:
    """The loop with the exact MLE: ``q_g`` = empirical frequencies of generation ``g``'s tokens.

    Sequences are i.i.d. tokens under both the truth and this model, so a dataset of ``n``
    sequences is ``n·L`` tokens; the real share and correction act on whole sequences, as in the
    neural loop.  Unseen tokens get probability 0 and can never come back (absorbing).
    """
    p = spec.zipf.probs()
    r, v, seq = spec.replicates, p.size, spec.seq_len
    sizes = regime.sizes(spec.n0, spec.generations, spec.max_n).astype(np.int64)
    rec = recorded_generations(spec.generations, spec.record_every)
    names = tuple(token_metrics(np.ones((1, 2)) / 2, np.ones(2) / 2, head=1, tokens=np.ones(1)))
    out = {k: np.empty((rec.size, r)) for k in names}
    p_corr = regime.correction_prob
    acc = np.zeros((r, v))
    q = None
    ri = 0
    for g in range(1, spec.generations + 1):
        n = int(sizes[g - 1])
        if g == 1:
            counts = rng.multinomial(n * seq, p, size=r).astype(np.float64)
        else:
            n_r = real_count(n, regime.real_fraction)
            k = rng.binomial(n - n_r, p_corr, size=r) if p_corr > 0 else np.zeros(r, np.int64)
            real_tokens = (n_r + k) * seq
            counts = np.stack([rng.multinomial(int(m), p) for m in real_tokens]) + rng.multinomial(
                (n - n_r - k) * seq, q
            )
            counts = counts.astype(np.float64)
        if regime.mode == "accumulate":
            acc += counts
            counts = acc
        total = counts.sum(-1)
        q = counts / total[:, None]
        if ri < rec.size and rec[ri] == g:
            for key, val in token_metrics(q, p, head=spec.head, tokens=total).items():
                out[key][ri] = val
            ri += 1
    return LoopOutput(method="categorical-mle", generations=rec, metrics=out)


def run_neural_loop(
    spec: NeuralLoopSpec,
    regime: Regime,
    seed: int,
    *,
    device: torch.device,
    tick: Tick | None = None,
) -> LoopOutput:
    """Train ``spec.generations`` token models per replicate; metrics of ``p(x_0 | BOS)``.

    Data and sampling draw from one ``torch.Generator`` on ``device`` seeded with ``seed``; the
    minibatches of each fit from :func:`fmtheory.train.fit`'s generator, seeded by (seed, replicate,
    generation); weight initialisation from one CPU generator.  Metrics as in
    :func:`token_metrics`, plus ``cond_tv`` = ``E_{a~p} TV(q(·|a), p)`` over the bigram contexts.
    """
    p = spec.zipf.probs()
    sizes = regime.sizes(spec.n0, spec.generations, spec.max_n).astype(np.int64)
    rec = recorded_generations(spec.generations, spec.record_every)
    names = (
        *token_metrics(np.ones((1, 2)) / 2, np.ones(2) / 2, head=1, tokens=np.ones(1)),
        "cond_tv",
    )
    out = {k: np.empty((rec.size, spec.replicates)) for k in names}
    gen = torch.Generator(device=device)
    gen.manual_seed(int(seed))
    init_gen = torch.Generator()
    init_gen.manual_seed(int(seed) + 1)
    tspec = TrainSpec(
        steps=spec.steps,
        lr=spec.lr,
        warmup_steps=min(20, spec.steps // 10),
        schedule="cosine",
        weight_decay=spec.weight_decay,
        grad_clip=1.0,
        log_every=max(1, spec.steps),
    )
    fit_ctx = RunContext(
        device=device
    )  # nothing on disk: a generation takes a fraction of a second
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a tiny model: one thread is fastest, and the CPU is shared
    try:
        for rep in range(spec.replicates):
            model: TokenLM | None = None
            pool: list[torch.Tensor] = []
            ri = 0
            for g in range(1, spec.generations + 1):
                data = _generation_data(spec, regime, int(sizes[g - 1]), model, gen, device)
                if regime.mode == "accumulate":
                    pool.append(data)
                    data = torch.cat(pool)
                if model is None or not spec.warm_start:
                    model = TokenLM(spec.model, generator=init_gen).to(device)
                fit(
                    model,
                    _loss_on(data, spec.batch_size),
                    None,
                    spec=tspec,
                    ctx=fit_ctx,
                    seed=(int(seed) * 1_000_003 + rep * 10_007 + g) % 2**62,
                    name=f"token-lm {rep}/{g}",
                )
                if ri < rec.size and rec[ri] == g:
                    q = model.first_token_probs().cpu().numpy()[None, :]
                    tokens = np.array([float(data.numel())])
                    for key, val in token_metrics(q, p, head=spec.head, tokens=tokens).items():
                        out[key][ri, rep] = val[0]
                    cond = model.conditional_probs()[: spec.zipf.vocab].cpu().numpy()  # (V, V)
                    out["cond_tv"][ri, rep] = float(
                        (0.5 * np.abs(cond - p[None, :]).sum(-1) * p).sum()
                    )
                    ri += 1
                if tick is not None:
                    tick(1)
    finally:
        torch.set_num_threads(threads)
    return LoopOutput(method="token-lm", generations=rec, metrics=out)


def _generation_data(
    spec: NeuralLoopSpec,
    regime: Regime,
    n: int,
    model: TokenLM | None,
    gen: torch.Generator,
    device: torch.device,
) -> torch.Tensor:
    """``(n, seq_len)`` sequences: all real at generation 1 (``model`` None), else the mix."""
    zipf, seq = spec.zipf, spec.seq_len
    if model is None:
        return sample_zipf_tokens(zipf, batch=n, seq_len=seq, generator=gen).to(device)
    n_r = real_count(n, regime.real_fraction)
    n_s = n - n_r
    syn = model.sample(n_s, seq, generator=gen)
    p_corr = regime.correction_prob
    if p_corr > 0 and n_s > 0:
        swap = torch.rand(n_s, generator=gen, device=gen.device) < p_corr
        k = int(swap.sum())
        if k > 0:
            fresh = sample_zipf_tokens(zipf, batch=k, seq_len=seq, generator=gen)
            syn[swap.to(syn.device)] = fresh.to(syn.device)
    parts = [syn.to(device)]
    if n_r > 0:
        parts.insert(0, sample_zipf_tokens(zipf, batch=n_r, seq_len=seq, generator=gen).to(device))
    return torch.cat(parts)


def _loss_on(data: torch.Tensor, batch_size: int):
    """``loss_fn`` for :func:`fmtheory.train.fit`: a uniform minibatch of ``data`` drawn from the generator."""
    batch = min(batch_size, data.shape[0])

    def loss_fn(model: torch.nn.Module, step: int, generator: torch.Generator) -> torch.Tensor:
        idx = torch.randint(
            0, data.shape[0], (batch,), generator=generator, device=generator.device
        )
        return model.loss(data[idx.to(data.device)])

    return loss_fn
