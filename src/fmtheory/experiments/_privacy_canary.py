"""The canary part of ``privacy``: exposure of inserted secrets in a toy language model
(Carlini et al. 2019, "The secret sharer: evaluating and testing unintended memorization in
neural networks", USENIX Security, arXiv:1802.08232; §4 exposure, §9 DP training).

A corpus of Markov-source documents receives ``per_repetition`` canaries at every repetition count
r in ``repetitions`` (``tasks/canary.py``: a distinct prefix, then a uniform secret of
``secret_len`` base-``base`` digits, inserted as r documents).  A neural n-gram LM
(``models/ngram_lm.py``) is trained on it through ``train.fit``, non-private and with Opacus
DP-SGD at target ``epsilon`` (one document = one example; Poisson sampling at q = 1/⌈N/B⌉ as in
``privacy``).  For every canary the log-perplexity of all base^secret_len candidate secrets is
computed exactly and exposure = log₂|R| − log₂ rank (``probes/exposure.py``), with Carlini et
al.'s skew-normal extrapolation alongside.  The whole is repeated on ``models`` independent corpora
(fresh source, canaries and text; fresh model seed); intervals are over the pooled canaries at
each r (canaries of one model share its training noise, so the s.e. is somewhat optimistic).

Checks (kind ``claim``), fixed before any run:
1. exposure grows with r in the non-private model: the least-squares slope of mean exposure on
   log₂ r (weights 1/s.e.² when every s.e. > 0, as :func:`fmtheory.checks.fit_line`) has a 95%
   interval above 0 (fails when it is below 0; inconclusive when it contains 0, or when every
   mean is within ``SATURATION_BITS`` of the maximum log₂|R|, where nothing can grow);
2. DP-SGD lowers exposure at the largest r: non-private minus DP exposure > 0, judged by the
   difference ± 1.96 combined s.e.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
import torch
from pydantic import Field, field_validator, model_validator
from torch import nn

from fmtheory.checks import (
    Z95,
    ci_row,
    difference_check,
    exact_row,
    inconclusive,
    not_applicable,
    trend_check,
)
from fmtheory.contract import Check, RunContext, Section
from fmtheory.models.ngram_lm import NGramLM, NGramLMConfig
from fmtheory.probes.exposure import (
    candidate_log_perplexities,
    exposure_from_scores,
    extrapolated_exposure,
    secret_index,
)
from fmtheory.sections import TrainSection
from fmtheory.tasks.canary import CanaryCorpus, make_canary_corpus
from fmtheory.theory.dp_accounting import dp_sgd_epsilon
from fmtheory.train.fit import fit, make_generator, seeded

__all__ = ["CanarySection", "canary_checks", "canary_figures", "canary_rows"]

SRC_CANARY = (
    "Carlini et al. 2019, The secret sharer (arXiv:1802.08232), §4 exposure, §9 DP training"
)
#: a mean exposure within this many bits of log₂|R| counts as saturated (nothing left to grow)
SATURATION_BITS = 0.5
METHOD = "canary_lm"


class CanarySection(Section):
    """Canary exposure in a toy LM (Carlini et al. 2019)."""

    per_repetition: int = Field(4, ge=0, le=256, description="canaries inserted at each "
                                "repetition count (0: skip the canary part; else >= 2)")  # fmt: skip
    models: int = Field(3, ge=1, le=64, description="independent corpora (fresh source, "
                        "canaries, text) and models per arm; canaries are pooled over them")  # fmt: skip
    repetitions: list[int] = Field([1, 2, 4, 8, 16], min_length=3, description="repetition counts "
                                   "r (>= 3 distinct values, each in [1, 10000])")  # fmt: skip
    base: int = Field(10, ge=2, le=10, description="digits per secret position")
    secret_len: int = Field(4, ge=1, le=6, description="secret digits (base^secret_len <= 1e6 "
                            "candidates, all enumerated)")  # fmt: skip
    prefix_len: int = Field(3, ge=1, le=16, description="prefix tokens of a canary")
    vocab: int = Field(32, ge=4, le=1024, description="background vocabulary")
    alpha: float = Field(0.3, gt=0.0, le=100.0, description="Dirichlet concentration of the "
                         "background Markov rows (small: peaky, low entropy)")  # fmt: skip
    documents: int = Field(20000, ge=16, le=1_000_000, description="background documents")
    length: int = Field(16, ge=2, le=512, description="tokens per document")
    context: int = Field(7, ge=1, le=64, description="tokens the n-gram LM sees before each one")
    embed_dim: int = Field(16, ge=2, le=512, description="token embedding width")
    hidden: int = Field(128, ge=4, le=4096, description="hidden width of the LM's MLP")
    epsilon: float | None = Field(8.0, description="target ε of the DP-SGD model (null: no DP "
                                  "model); δ and the clipping norm are dp.delta, dp.max_grad_norm")  # fmt: skip
    extrapolation_sample: int = Field(2000, ge=10, le=1_000_000, description="candidates "
                                      "the skew-normal is fitted to")  # fmt: skip
    train: TrainSection = TrainSection(steps=1500, batch_size=64, lr=0.003, warmup_steps=0,
                                       schedule="constant", grad_clip=None,
                                       checkpoint_every=10**6)  # fmt: skip

    @field_validator("repetitions")
    @classmethod
    def _reps(cls, v: list[int]) -> list[int]:
        for r in v:
            if not 1 <= r <= 10_000:
                raise ValueError(f"repetitions contains {r}: every count must be in [1, 10000]")
        if len(set(v)) < 3:
            raise ValueError(f"repetitions = {v}: need at least 3 distinct counts for a trend")
        return v

    @field_validator("per_repetition")
    @classmethod
    def _per(cls, v: int) -> int:
        if v == 1:
            raise ValueError("per_repetition = 1: must be 0 (skip) or >= 2 (an interval needs two)")
        return v

    @field_validator("epsilon")
    @classmethod
    def _eps(cls, v: float | None) -> float | None:
        if v is not None and not (0.0 < v <= 100.0):
            raise ValueError(f"epsilon is {v}: it must be in (0, 100] (or null)")
        return v

    @model_validator(mode="after")
    def _sizes(self) -> CanarySection:
        if self.length < self.prefix_len + self.secret_len:
            raise ValueError(f"length = {self.length}: must be >= prefix_len + secret_len = "
                             f"{self.prefix_len + self.secret_len}")  # fmt: skip
        n = self.per_repetition * len(set(self.repetitions))
        if self.vocab**self.prefix_len < n:
            raise ValueError(f"prefix_len = {self.prefix_len}: vocab^prefix_len = "
                             f"{self.vocab**self.prefix_len} distinct prefixes < {n} canaries")  # fmt: skip
        return self

    def label(self) -> str:
        return (f"{self.context + 1}-gram MLP LM ({self.embed_dim}-d embeddings, {self.hidden} "
                f"hidden), secrets of {self.secret_len} base-{self.base} digits")  # fmt: skip


def make_corpus(cfg: CanarySection, seed: int) -> CanaryCorpus:
    """The run's corpus: every repetition count ``per_repetition`` times (sorted by r)."""
    reps = [r for r in sorted(set(cfg.repetitions)) for _ in range(cfg.per_repetition)]
    return make_canary_corpus(
        vocab=cfg.vocab, alpha=cfg.alpha, documents=cfg.documents, length=cfg.length,
        prefix_len=cfg.prefix_len, secret_len=cfg.secret_len, base=cfg.base, repetitions=reps,
        generator=make_generator(seed + 31), source_seed=seed + 37,
    )  # fmt: skip


def train_lm(cfg: CanarySection, corpus: CanaryCorpus, eps: float | None, *, delta: float,
             max_grad_norm: float, seed: int, ctx: RunContext, name: str = "canary_lm"
             ) -> tuple[NGramLM, dict[str, float]]:  # fmt: skip
    """The n-gram LM trained with Adam on ``corpus.tokens``; Opacus DP-SGD at ``eps`` when set
    (noise multiplier from Opacus's ``get_noise_multiplier`` for ``train.steps`` Poisson-sampled
    steps at q = 1/⌈N/B⌉).  Returns the model and its accounting (ε from Opacus's RDP accountant
    and from :func:`fmtheory.theory.dp_accounting.dp_sgd_epsilon`).  ``name`` (unique within a
    run) names its checkpoint."""
    x = corpus.tokens
    n, tr = x.shape[0], cfg.train
    q = 1.0 / math.ceil(n / tr.batch_size)
    mcfg = NGramLMConfig(vocab=corpus.n_tokens, context=cfg.context, embed_dim=cfg.embed_dim,
                         hidden=cfg.hidden)  # fmt: skip
    model = seeded(lambda: NGramLM(mcfg), seed)
    info: dict[str, float] = {"sigma": 0.0, "sample_rate": q}

    def nll(m: nn.Module, idx: torch.Tensor) -> torch.Tensor:
        xb = x[idx]
        return nn.functional.cross_entropy(m(xb).flatten(0, 1), xb.flatten())

    if eps is None:
        opt = torch.optim.Adam(model.parameters(), lr=tr.lr)

        def loss_fn(m: nn.Module, step: int, g: torch.Generator) -> torch.Tensor:
            return nll(m, torch.randint(0, n, (tr.batch_size,), generator=g))

        fit(model, loss_fn, tr, seed=seed, ctx=ctx, name=f"{name}_nonprivate", optimizer=opt)
        return model, info
    from opacus import PrivacyEngine
    from opacus.accountants.utils import get_noise_multiplier

    sigma = get_noise_multiplier(target_epsilon=eps, target_delta=delta, sample_rate=q,
                                 steps=tr.steps, accountant="rdp")  # fmt: skip
    engine = PrivacyEngine(accountant="rdp")
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x),
                                         batch_size=tr.batch_size)  # fmt: skip
    pmodel, opt, _ = engine.make_private(
        module=model, optimizer=torch.optim.Adam(model.parameters(), lr=tr.lr), data_loader=loader,
        noise_multiplier=sigma, max_grad_norm=max_grad_norm, poisson_sampling=True,
        noise_generator=make_generator(seed + 1),
    )  # fmt: skip

    def dp_loss(m: nn.Module, step: int, g: torch.Generator) -> torch.Tensor:
        idx = (torch.rand(n, generator=g) < q).nonzero().ravel()  # Poisson sampling
        if idx.numel() == 0:
            idx = torch.zeros(1, dtype=torch.long)
        return nll(m, idx)

    fit(pmodel, dp_loss, tr, seed=seed, ctx=ctx, name=f"{name}_dp_eps{eps:g}", optimizer=opt)
    info.update(sigma=sigma, eps_rdp=engine.accountant.get_epsilon(delta),
                eps_ours=dp_sgd_epsilon(sigma=sigma, sample_rate=q, steps=tr.steps, delta=delta))  # fmt: skip
    return pmodel._module, info


def canary_exposures(model: NGramLM, corpus: CanaryCorpus, *, sample: int, seed: int
                     ) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """(exact, extrapolated) exposure of every canary, shape (C,) each."""
    model.eval()

    def log_probs(t: torch.Tensor) -> torch.Tensor:
        return torch.log_softmax(model(t), -1)

    rng = np.random.default_rng(seed)
    k = corpus.secrets.shape[1]
    exact, extra = [], []
    for i in range(corpus.secrets.shape[0]):
        px = candidate_log_perplexities(log_probs, corpus.prefixes[i], base=corpus.base,
                                        secret_len=k, digit_offset=corpus.digit_offset)  # fmt: skip
        j = secret_index(corpus.secrets[i], corpus.base)
        exact.append(exposure_from_scores(px, j))
        sub = px if px.size <= sample else px[rng.choice(px.size, sample, replace=False)]
        extra.append(extrapolated_exposure(sub, float(px[j])).exposure)
    return np.array(exact), np.array(extra)


def canary_rows(cfg: CanarySection, *, delta: float, max_grad_norm: float, seed: int,
                ctx: RunContext) -> list[dict[str, Any]]:  # fmt: skip
    """Table rows of the canary part (method ``canary_lm``): per model (``target_eps``) the held-out
    test loss, and per repetition count (``repetitions``) the exact and extrapolated exposure
    (mean ± s.e. over the canaries of all ``models`` corpora; an infinite extrapolation is counted
    in ``extrapolated_infinite`` and left out of the mean); for the DP model its spent ε and σ
    (the same for every corpus: same size, steps and rate)."""
    if cfg.per_repetition == 0:
        return []
    max_bits = cfg.secret_len * math.log2(cfg.base)
    rows: list[dict[str, Any]] = []
    for eps in [None] + ([cfg.epsilon] if cfg.epsilon is not None else []):
        c: dict[str, Any] = dict(seed=seed, target_eps=math.inf if eps is None else eps)
        ex, ext, reps, nlls, infos = [], [], [], [], []
        for m in range(cfg.models):
            s = seed + 101 * m
            corpus = make_corpus(cfg, s)
            model, info = train_lm(cfg, corpus, eps, delta=delta, max_grad_norm=max_grad_norm,
                                   seed=s, ctx=ctx, name=f"canary_lm{m}")  # fmt: skip
            with torch.no_grad():
                lp = torch.log_softmax(model(corpus.test), -1)
                nlls.append(-lp.gather(2, corpus.test[..., None]).squeeze(2).mean(1).numpy())
            a, b = canary_exposures(model, corpus, sample=cfg.extrapolation_sample, seed=s + 41)
            ex.append(a)
            ext.append(b)
            reps.append(corpus.repetitions.numpy())
            infos.append(info)
        exa, exta, repa = np.concatenate(ex), np.concatenate(ext), np.concatenate(reps)
        rows.append(ci_row(METHOD, "test_nll", np.concatenate(nlls), **c))
        rows.append(exact_row(METHOD, "max_exposure", max_bits, **c))
        for r in np.unique(repa):
            rows.append(ci_row(METHOD, "exposure", exa[repa == r], repetitions=int(r), **c))
            ext_r = exta[repa == r]
            fin = ext_r[np.isfinite(ext_r)]  # +inf: the fitted CDF underflows (far beyond |R|)
            if fin.size:
                rows.append(ci_row(METHOD, "exposure_extrapolated", fin, repetitions=int(r), **c))
            if fin.size < ext_r.size:
                rows.append(exact_row(METHOD, "extrapolated_infinite", ext_r.size - fin.size,
                                      repetitions=int(r), **c))  # fmt: skip
        if eps is not None:
            rows.append(exact_row(METHOD, "epsilon_rdp", infos[0]["eps_rdp"], **c))
            rows.append(exact_row(METHOD, "epsilon_ours", infos[0]["eps_ours"], **c))
            rows.append(exact_row(METHOD, "sigma", infos[0]["sigma"], **c))
    return rows


def _exposure(table: pd.DataFrame, private: bool) -> pd.DataFrame:
    if not {"method", "metric", "repetitions"} <= set(table.columns):
        return table.iloc[0:0]
    t = table[(table["method"] == METHOD) & (table["metric"] == "exposure")]
    inf = np.isinf(t["target_eps"].astype(float))
    return t[~inf if private else inf].sort_values("repetitions")


CLAIM_GROWS = "canary exposure grows with the number of repetitions r (non-private LM)"


def canary_checks(table: pd.DataFrame, cfg: CanarySection) -> list[Check]:
    """The two canary claims, from the table's ``canary_lm`` rows alone."""
    claim_dp = f"DP-SGD at ε = {cfg.epsilon} lowers canary exposure at the largest repetition count"
    if _exposure(table, False).empty:
        why = "canary.per_repetition = 0: no canaries"
        return [not_applicable(CLAIM_GROWS, SRC_CANARY, "claim", why),
                not_applicable(claim_dp, SRC_CANARY, "claim", why)]  # fmt: skip
    out: list[Check] = []
    e = _exposure(table, False)
    max_bits = float(
        table[(table["method"] == METHOD) & (table["metric"] == "max_exposure")]["value"].iloc[0]
    )
    where = "least squares of mean exposure on log₂ r, weights 1/s.e.² when every s.e. > 0"
    if bool((e["value"] >= max_bits - SATURATION_BITS).all()):
        out.append(inconclusive(
            CLAIM_GROWS, SRC_CANARY, "claim",
            f"every mean exposure is within {SATURATION_BITS} bits of the maximum "
            f"{max_bits:.2f}: saturated, nothing can grow", predicted="increasing",
            measured=", ".join(f"{v:.2f}" for v in e["value"]),
        ))  # fmt: skip
    else:
        out.append(trend_check(CLAIM_GROWS, SRC_CANARY, "claim",
                               x=np.log2(e["repetitions"].astype(float)), y=e["value"],
                               y_se=e["se"], increasing=True, where=where))  # fmt: skip
    d = _exposure(table, True)
    if d.empty:
        out.append(not_applicable(claim_dp, SRC_CANARY, "claim", "canary.epsilon is null"))
        return out
    r_max = float(e["repetitions"].max())
    a, b = e[e["repetitions"] == r_max], d[d["repetitions"] == r_max]
    if b.empty:
        out.append(inconclusive(claim_dp, SRC_CANARY, "claim",
                                f"no DP exposure row at r = {r_max:g}"))  # fmt: skip
        return out
    out.append(difference_check(claim_dp, SRC_CANARY, "claim", a=float(a["value"].iloc[0]),
                                a_se=float(a["se"].iloc[0]), b=float(b["value"].iloc[0]),
                                b_se=float(b["se"].iloc[0]), greater=True,
                                where=f"a = non-private, b = DP exposure at r = {r_max:g}"))  # fmt: skip
    return out


def canary_figures(table: pd.DataFrame) -> dict[str, Any]:
    """``canary``: exact (filled) and extrapolated (open) exposure vs r, non-private and DP."""
    if "repetitions" not in table.columns:
        return {}
    t = table[table["method"] == METHOD]
    if t.empty:
        return {}
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for k, (eps, grp) in enumerate(t.groupby("target_eps", sort=False)):
        name = "non-private" if math.isinf(float(eps)) else f"DP-SGD ε = {float(eps):g}"
        for metric, style in (("exposure", "o-"), ("exposure_extrapolated", "s--")):
            g = grp[grp["metric"] == metric].sort_values("repetitions")
            kw: dict[str, Any] = {"color": f"C{k}"}
            if metric != "exposure":
                kw["mfc"] = "none"
            label = name + (" (extrapolated)" if metric != "exposure" else "")
            ax.errorbar(g["repetitions"], g["value"], yerr=Z95 * g["se"], fmt=style, label=label,
                        capsize=2, **kw)  # fmt: skip
    mx = t[t["metric"] == "max_exposure"]["value"]
    if not mx.empty:
        ax.axhline(float(mx.iloc[0]), color="k", lw=0.8, ls=":", label="log₂|R| (rank 1)")
    ax.axhline(math.log2(math.e), color="grey", lw=0.8, ls="-.", label="chance (log₂ e)")
    ax.set_xscale("log", base=2)
    ax.set_xlabel("repetitions r of the canary in the training set")
    ax.set_ylabel("exposure (bits)")
    ax.set_title("canary exposure (Carlini et al. 2019)")
    ax.legend(fontsize=7)
    fig.tight_layout()
    return {"canary": fig}
