"""hallucination: a calibrated fact model must hallucinate at the monofact rate (Kalai & Vempala 2024).

K arbitrary facts (entity → attribute, :mod:`fmtheory.tasks.facts`) repeat with Zipf frequencies
p_e ∝ e^(−s).  For every corpus size n of the grid and each of ``reps`` corpora, a neural bigram LM
(:class:`fmtheory.models.token_lm.TokenLM`) is trained by :func:`fmtheory.train.fit` on the
two-token documents ``[e, K + a_e]``.  Its distribution over facts is exact:
g(e, a) = g(e | BOS) · g(K + a | e), each renormalised over its token type.

Two models per corpus:

- ``lm``: the trained LM as it is.  It memorises its corpus and puts almost no mass on unseen
  entities, so it is miscalibrated by about the missing mass.
- ``calibrated``: the same LM with its entity marginal recalibrated by Good–Turing on the training
  corpus alone (Katz 1987 cutoff): the entities seen c times get, together, the Good–Turing mass
  (c + 1)N_{c+1}/n for c < ``cutoff`` (N₁/n for the unseen ones) and their empirical mass for
  c ≥ ``cutoff``, shared within the class in proportion to the LM's own g(e); the attribute
  conditionals g(a | e) are the LM's.

Measured on each:

- hallucination: g(H) = Σ_e g(e)(1 − g(a_e | e)), the probability that a generated fact is false.
- the Kalai–Vempala bound (Thm 1): g(H) ≥ N₁/n − Mis_b(g, p) − 3e^(−s)/δ − sqrt(6 ln(6/δ)/n), with
  Mis_b the g-binned miscalibration over all K·A possible facts and e^(−s) = 1/(A − 1), the ratio of
  true facts to plausible false ones (``theory/good_turing.py``).
- abstention and temperature, at the largest n: queries e ~ p answered by argmax g(a | e) unless
  max_a g(a | e) < τ (``abstain``), or by a sample from g_T(a | e) ∝ g(a | e)^(1/T) unless
  max_a g_T(a | e) < τ (``temperature``); coverage, and hallucination among the answered (for the
  sampled answers, the exact expectation 1 − g_T(a_e | e)).
- detection: K samples of the attribute per query; semantic entropy (distinct answers = classes,
  Farquhar et al. 2024) and EigenScore (Chen et al. 2024, INSIDE: (1/K) Σ log λ of the K × K
  covariance of the residual-stream embeddings of the K answers, + αI); AUROC (scikit-learn) of each
  for greedy answers that are wrong vs right, with a bootstrap standard error.
"""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from pydantic import Field, model_validator

from fmtheory.checks import (
    Z95,
    bound_check,
    ci_row,
    exact_row,
    inconclusive,
    not_applicable,
    trend_check,
)
from fmtheory.contract import (
    Chapter,
    Check,
    Experiment,
    ExperimentConfig,
    Result,
    RunContext,
    Section,
    register_experiment,
)
from fmtheory.models.token_lm import TokenLM, TokenLMConfig
from fmtheory.sections import TrainSection
from fmtheory.tasks.facts import FactWorld, make_world, sample_corpus
from fmtheory.theory.good_turing import (
    binned_miscalibration,
    kv_lower_bound,
    kv_slack,
    kv_sparsity_term,
    monofact_rate,
)
from fmtheory.train.fit import fit, make_generator, seeded

NAME = "hallucination"
SOURCE = "Kalai & Vempala 2024 (STOC), Thm 1; Chen et al. 2024 (INSIDE); Farquhar et al. 2024"
DETECTORS = ("eigenscore", "semantic_entropy")
#: ridge α of the EigenScore covariance (Chen et al. 2024 use 1e-3)
EIGEN_ALPHA = 1e-3
#: AUROC must exceed this (chance) with its whole 95% interval
CHANCE_AUROC = 0.5


class FactsSection(Section):
    """The world of arbitrary facts."""

    n_facts: int = Field(2000, ge=10, le=1_000_000, description="K entities, one fact each")
    n_attributes: int = Field(16, ge=2, le=4096, description="A possible attribute values")
    exponent: float = Field(
        1.2, gt=1.0, le=10.0,
        description="Zipf exponent s > 1 (a proper Zipf law as K → ∞, so the largest fact "
        "probability and the monofact rate do not depend on K alone)",
    )  # fmt: skip
    n_grid: list[int] = Field(
        default_factory=lambda: [500, 1000, 2000, 4000], min_length=3,
        description="corpus sizes n (at least 3, increasing)",
    )  # fmt: skip
    reps: int = Field(3, ge=2, le=1000, description="independent corpora (and models) per n")

    @model_validator(mode="after")
    def _grid(self) -> FactsSection:
        if any(b <= a for a, b in zip(self.n_grid, self.n_grid[1:], strict=False)):
            raise ValueError(f"n_grid = {self.n_grid}: must be strictly increasing")
        if self.n_grid[0] < 10:
            raise ValueError(f"n_grid value {self.n_grid[0]} must be >= 10")
        return self


class ModelSection(Section):
    """The neural bigram LM."""

    embed_dim: int = Field(32, ge=2, le=1024, description="embedding width")
    hidden: int = Field(64, ge=2, le=4096, description="MLP width")


class EvalSection(Section):
    """Bound, abstention and detection settings."""

    bins: int = Field(10, ge=1, le=1000, description="b: g-quantile bins of Mis_b")
    delta: float = Field(0.05, gt=0.0, lt=1.0, description="failure probability δ of the bound")
    thresholds: list[float] = Field(
        default_factory=lambda: [0.0, 0.2, 0.4, 0.6, 0.8], min_length=2,
        description="abstention thresholds τ on max_a g(a | e), each in [0, 1)",
    )  # fmt: skip
    queries: int = Field(2000, ge=20, le=1_000_000, description="queries e ~ p for detection")
    samples: int = Field(10, ge=2, le=200, description="K answers sampled per query")
    detectors: list[str] = Field(
        default_factory=lambda: list(DETECTORS), min_length=1,
        description=f"detectors, among {DETECTORS}",
    )  # fmt: skip
    bootstrap: int = Field(200, ge=20, le=10_000, description="bootstrap resamples of the AUROC")
    cutoff: int = Field(
        5, ge=1, le=100,
        description="Good–Turing recalibration: count classes c < cutoff get (c + 1)N_{c+1}/n, "
        "the others keep c·N_c/n (Katz 1987)",
    )  # fmt: skip
    temperatures: list[float] = Field(
        default_factory=lambda: [0.5, 1.0, 2.0], min_length=1,
        description="sampling temperatures T of the abstention sweep, each in (0, 10]",
    )  # fmt: skip

    @model_validator(mode="after")
    def _valid(self) -> EvalSection:
        for d in self.detectors:
            if d not in DETECTORS:
                raise ValueError(f"detectors value {d!r} is unknown: allowed {DETECTORS}")
        for t in self.thresholds:
            if not 0.0 <= t < 1.0:
                raise ValueError(f"thresholds value {t} must be in [0, 1)")
        for t in self.temperatures:
            if not 0.0 < t <= 10.0:
                raise ValueError(f"temperatures value {t} must be in (0, 10]")
        return self


class Config(ExperimentConfig):
    facts: FactsSection = FactsSection()
    model: ModelSection = ModelSection()
    train: TrainSection = TrainSection(steps=1500, batch_size=256, lr=1e-2, warmup_steps=50,
                                       weight_decay=0.0)  # fmt: skip
    eval: EvalSection = EvalSection()


# ---------------------------------------------------------------------------------------------
@torch.no_grad()
def fact_probs(model: TokenLM, world: FactWorld) -> tuple[np.ndarray, np.ndarray]:
    """``g(e) (K,)`` and ``g(a | e) (K, A)``, float64, each renormalised over its token type (only
    the BOS → entity and entity → attribute blocks of the head are evaluated)."""
    k = world.n_facts
    dev = model.embed.weight.device
    prev = torch.cat([torch.arange(k, device=dev), torch.tensor([model.bos], device=dev)])
    e = model.embed(prev)
    h = (e + model.fc_out(F.gelu(model.fc_in(e)))).double()  # (K + 1, C)
    w, b = model.head.weight.double(), model.head.bias.double()
    ge = torch.softmax(h[-1] @ w[:k].T + b[:k], dim=-1)
    ga = torch.softmax(h[:k] @ w[k:].T + b[k:], dim=-1)
    return ge.cpu().numpy(), ga.cpu().numpy()


def hallucination_rate(ge: np.ndarray, ga: np.ndarray, attributes: np.ndarray) -> float:
    """g(H) = Σ_e g(e)(1 − g(a_e | e))."""
    return float(np.sum(ge * (1.0 - ga[np.arange(ge.size), attributes])))


def miscalibration(ge: np.ndarray, ga: np.ndarray, world: FactWorld, bins: int) -> float:
    """Mis_b over all K·A possible facts: g(e, a) against p(e, a) = p_e·1{a = a_e}."""
    g = (ge[:, None] * ga).ravel()
    p = np.zeros_like(ga)
    p[np.arange(world.n_facts), world.attributes] = world.probs
    return binned_miscalibration(g, p.ravel(), bins)


def train_model(cfg: Config, docs: np.ndarray, vocab: int, seed: int, ctx: RunContext,
                name: str) -> TokenLM:  # fmt: skip
    """A TokenLM fit to ``docs (n, 2)`` by minibatch cross-entropy."""
    mcfg = TokenLMConfig(vocab=vocab, embed_dim=cfg.model.embed_dim, hidden=cfg.model.hidden)
    model = seeded(lambda: TokenLM(mcfg), seed)
    data = torch.as_tensor(docs, device=ctx.device)
    bs = min(cfg.train.batch_size, len(docs))

    def loss_fn(m: torch.nn.Module, step: int, gen: torch.Generator) -> torch.Tensor:
        idx = torch.randint(0, data.shape[0], (bs,), generator=gen, device=gen.device)
        return m.loss(data[idx.to(data.device)])

    fit(model, loss_fn, cfg.train, seed=seed, ctx=ctx, name=name)
    return model.eval()


@torch.no_grad()
def sample_answers(model: TokenLM, world: FactWorld, entities: np.ndarray, k: int,
                   gen: torch.Generator) -> tuple[np.ndarray, torch.Tensor]:  # fmt: skip
    """K attributes per query, batched: answers ``(Q, K)`` in [0, A) and the embeddings ``(Q, K, C)``
    of the K two-token documents (the residual stream after the MLP, at the answer's position, read
    as the next-token state of ``[e, a]``)."""
    kf = world.n_facts
    dev = model.embed.weight.device
    e = torch.as_tensor(entities, device=dev)
    logits = model._logits(e[:, None])[:, 0, kf:]  # (Q, A)
    probs = torch.softmax(logits.double(), dim=-1).float()
    ans = torch.multinomial(probs.to(gen.device), k, replacement=True, generator=gen).to(dev)
    tok = ans + kf  # (Q, K)
    emb = model.embed(tok)
    h = emb + model.fc_out(F.gelu(model.fc_in(emb)))  # (Q, K, C)
    return ans.cpu().numpy(), h


def semantic_entropy(answers: np.ndarray) -> np.ndarray:
    """Entropy (nats) of the distinct answers among each row's K samples, ``(Q, K) -> (Q,)``."""
    out = np.empty(answers.shape[0])
    for i, row in enumerate(answers):
        _, c = np.unique(row, return_counts=True)
        q = c / c.sum()
        out[i] = float(-(q * np.log(q)).sum())
    return out


def eigenscore(h: torch.Tensor, alpha: float = EIGEN_ALPHA) -> np.ndarray:
    """Chen et al. 2024, eq. 5: (1/K) Σ_i log λ_i of Zᵀ J_d Z / d + αI, Z the (d, K) embeddings;
    ``h (Q, K, d) -> (Q,)``."""
    z = h.double()
    z = z - z.mean(dim=2, keepdim=True)  # J_d: centre each embedding over its d coordinates
    cov = z @ z.transpose(1, 2) / z.shape[2]  # (Q, K, K)
    eye = torch.eye(cov.shape[1], dtype=cov.dtype, device=cov.device)
    lam = torch.linalg.eigvalsh(cov + alpha * eye)
    return torch.log(lam).mean(dim=1).cpu().numpy()


def auroc_with_se(
    labels: np.ndarray, scores: np.ndarray, reps: int, seed: int
) -> tuple[float, float]:
    """roc_auc_score (positives: hallucinated) and its bootstrap standard error."""
    from sklearn.metrics import roc_auc_score

    auc = float(roc_auc_score(labels, scores))
    rng = np.random.default_rng([seed, 7])
    boots = []
    for _ in range(reps):
        idx = rng.integers(0, labels.size, labels.size)
        if labels[idx].min() == labels[idx].max():
            continue
        boots.append(roc_auc_score(labels[idx], scores[idx]))
    return auc, float(np.std(boots, ddof=1))


def good_turing_recalibrate(ge: np.ndarray, counts: np.ndarray, cutoff: int) -> np.ndarray:
    """The entity marginal ``ge (K,)`` recalibrated on the count classes of the training corpus
    ``counts (K,)`` (Good 1953; Katz 1987): class c (entities seen c times) gets the mass
    (c + 1)N_{c+1}/n if c < ``cutoff`` (N₁/n for c = 0) and c·N_c/n otherwise, shared within the
    class in proportion to ``ge``; the total is renormalised to 1.  Returns ``(K,)``."""
    n = counts.sum()
    nc = np.bincount(counts)
    out = np.zeros_like(ge)
    for c in np.unique(counts):
        members = counts == c
        mass = (c + 1) * (nc[c + 1] if c + 1 < nc.size else 0) / n if c < cutoff else c * nc[c] / n
        out[members] = mass * ge[members] / ge[members].sum()
    return out / out.sum()


def temperature_probs(ga: np.ndarray, temperature: float) -> np.ndarray:
    """g_T(a | e) ∝ g(a | e)^(1/T), ``(Q, A) -> (Q, A)``."""
    z = np.log(np.maximum(ga, 1e-300)) / temperature
    z -= z.max(axis=1, keepdims=True)
    w = np.exp(z)
    return w / w.sum(axis=1, keepdims=True)


def run(config: Config, ctx: RunContext | None = None) -> Result:
    """Columns: TABLE_COLUMNS + n, tau, temperature."""
    ctx = ctx or RunContext()
    f, ev = config.facts, config.eval
    world = make_world(n_facts=f.n_facts, n_attributes=f.n_attributes, exponent=f.exponent,
                       seed=config.seed)  # fmt: skip
    sparsity = 1.0 / (f.n_attributes - 1)
    rows: list[dict[str, Any]] = []
    last: tuple[TokenLM, np.ndarray] | None = None
    for n in f.n_grid:
        vals: dict[tuple[str, str], list[float]] = {}

        def put(method: str, metric: str, v: float, _vals: dict = vals) -> None:
            _vals.setdefault((method, metric), []).append(float(v))

        for r in range(f.reps):
            rng = np.random.default_rng([config.seed, n, r])
            docs, counts = sample_corpus(world, n, rng)
            model = train_model(config, docs, world.vocab, seed=config.seed * 1000 + r, ctx=ctx,
                                name=f"n{n}-r{r}")  # fmt: skip
            ge, ga = fact_probs(model, world)
            mf = monofact_rate(counts)
            unseen = counts == 0
            put("corpus", "monofact", mf)
            put("corpus", "missing_mass", world.probs[unseen].sum())
            put("corpus", "slack", kv_slack(n, ev.delta))
            put("corpus", "sparsity_term", kv_sparsity_term(sparsity, ev.delta))
            for meth, g_e in (
                ("lm", ge),
                ("calibrated", good_turing_recalibrate(ge, counts, ev.cutoff)),
            ):
                mis = miscalibration(g_e, ga, world, ev.bins)
                put(meth, "hallucination", hallucination_rate(g_e, ga, world.attributes))
                put(meth, "miscalibration", mis)
                put(meth, "bound", kv_lower_bound(mf, mis, n, ev.delta, sparsity))
                put(meth, "bound_leading", kv_lower_bound(mf, mis, n, ev.delta))
                put(meth, "unseen_mass", g_e[unseen].sum())
            if unseen.any():
                put("lm", "unseen_error",
                    np.mean(ga[unseen].argmax(axis=1) != world.attributes[unseen]))  # fmt: skip
            if r == 0:
                last = (model, counts)
        for (meth, met), v in vals.items():
            rows.append(ci_row(meth, met, v, seed=config.seed, n=n))
    assert last is not None
    model, _ = last
    n_big = f.n_grid[-1]
    ge, ga = fact_probs(model, world)
    rng = np.random.default_rng([config.seed, 99])
    q = rng.choice(world.n_facts, size=ev.queries, p=world.probs)
    gq = ga[q]
    conf = gq.max(axis=1)
    wrong = (gq.argmax(axis=1) != world.attributes[q]).astype(float)
    for tau in ev.thresholds:
        ans = conf >= tau
        rows.append(ci_row("abstain", "coverage", ans.astype(float), seed=config.seed, n=n_big,
                           tau=tau))  # fmt: skip
        if ans.sum() >= 2:
            rows.append(ci_row("abstain", "hallucination", wrong[ans], seed=config.seed, n=n_big,
                               tau=tau))  # fmt: skip
    for temp in ev.temperatures:
        gt = temperature_probs(gq, temp)
        err = 1.0 - gt[np.arange(q.size), world.attributes[q]]
        conf_t = gt.max(axis=1)
        for tau in ev.thresholds:
            ans = conf_t >= tau
            rows.append(ci_row("temperature", "coverage", ans.astype(float), seed=config.seed,
                               n=n_big, tau=tau, temperature=temp))  # fmt: skip
            if ans.sum() >= 2:
                rows.append(ci_row("temperature", "hallucination", err[ans], seed=config.seed,
                                   n=n_big, tau=tau, temperature=temp))  # fmt: skip
    gen = make_generator(config.seed + 17, "cpu")
    answers, h = sample_answers(model, world, q, ev.samples, gen)
    labels = wrong.astype(int)
    rows.append(ci_row("detect", "hallucinated_fraction", wrong, seed=config.seed, n=n_big))
    if 0 < labels.sum() < labels.size:
        scores = {"semantic_entropy": semantic_entropy(answers), "eigenscore": eigenscore(h)}
        for d in ev.detectors:
            auc, se = auroc_with_se(labels, scores[d], ev.bootstrap, config.seed)
            rows.append(exact_row(d, "auroc", auc, se=se, seed=config.seed, n=n_big))
    table = pd.DataFrame(rows)
    return Result(table=table, checks=checks(table, config), figures=figures(table))


# ---------------------------------------------------------------------------------------------
def _sel(table: pd.DataFrame, method: str, metric: str) -> pd.DataFrame:
    t = table[(table.method == method) & (table.metric == metric)]
    return t.sort_values("tau" if method in ("abstain", "temperature") else "n")


#: (method, name in the claim) of the models whose g(H) is held against the bound
BOUND_MODELS = (("calibrated", "Good–Turing-recalibrated LM"), ("lm", "trained LM as trained"))
#: (metric, claim) of the two bounds: Thm 1 as stated, and its leading terms alone
BOUNDS = (
    ("bound", "The {who}'s hallucination rate g(H) is at least the Kalai–Vempala bound (Thm 1) "
              "N₁/n − Mis_b − 3e^(−s)/δ − sqrt(6 ln(6/δ)/n), at every corpus size"),
    ("bound_leading", "The {who}'s hallucination rate g(H) is at least the Kalai–Vempala bound "
                      "without its sparsity term, N₁/n − Mis_b − sqrt(6 ln(6/δ)/n) (stronger than "
                      "Thm 1), at every corpus size"),
)  # fmt: skip


def checks(table: pd.DataFrame, config: Config) -> list[Check]:
    out: list[Check] = []
    for (meth, who), (metric, text) in itertools.product(BOUND_MODELS, BOUNDS):
        hall = _sel(table, meth, "hallucination")
        bound = _sel(table, meth, metric)
        claim = text.format(who=who)
        if hall.empty or bound.empty:
            out.append(inconclusive(claim, SOURCE, "claim", "no hallucination rows in the table"))
            continue
        m = hall.merge(bound, on="n", suffixes=("", "_b"))
        m = m[m.value_b + Z95 * m.se_b > 0].reset_index(drop=True)
        if m.empty:
            out.append(not_applicable(claim, SOURCE, "claim",
                                      "the bound is ≤ 0 at every corpus size (its 95% interval "
                                      "included): vacuous, so nothing can fail"))  # fmt: skip
            continue
        se = np.sqrt(m.se**2 + m.se_b**2)
        i = int(np.argmin((m.value - m.value_b) / np.maximum(se, 1e-12)))
        row = m.iloc[i]
        out.append(bound_check(claim, SOURCE, "claim", value=row.value - row.value_b,
                               value_se=float(se.iloc[i]), bound=0.0, below=False,
                               where=f"value = g(H) − bound at the worst n = {int(row.n)} of the "
                                     f"{len(m)} where the bound can be positive"))  # fmt: skip
    for name, t in (("monofact rate N₁/n", _sel(table, "corpus", "monofact")),
                    ("Good–Turing-recalibrated LM's hallucination rate g(H)",
                     _sel(table, "calibrated", "hallucination")),
                    ("trained LM's hallucination rate g(H)", _sel(table, "lm", "hallucination"))):  # fmt: skip
        c = f"As the corpus grows, the {name} falls"
        if len(t) < 3:
            out.append(inconclusive(c, SOURCE, "claim", "fewer than 3 corpus sizes"))
        else:
            out.append(trend_check(c, SOURCE, "claim", x=np.log(t.n.to_numpy(float)),
                                   y=t.value, y_se=t.se, increasing=False,
                                   where="slope in log n"))  # fmt: skip
    for d in config.eval.detectors:
        a = _sel(table, d, "auroc")
        c = f"{d} separates hallucinated from correct answers (AUROC > 0.5)"
        if a.empty:
            out.append(inconclusive(c, SOURCE, "claim", "no AUROC row (one class only)"))
        else:
            out.append(bound_check(c, SOURCE, "claim", value=a.value.iloc[0],
                                   value_se=a.se.iloc[0], bound=CHANCE_AUROC, below=False,
                                   where="bootstrap s.e."))  # fmt: skip
    return out


def figures(table: pd.DataFrame) -> dict[str, Any]:
    import matplotlib.pyplot as plt

    figs: dict[str, Any] = {}
    if not _sel(table, "calibrated", "hallucination").empty:
        fig, ax = plt.subplots(figsize=(5.4, 3.8))
        for meth, met, lab in (("calibrated", "hallucination", "g(H), GT-recalibrated LM"),
                               ("calibrated", "bound_leading",
                                "K–V bound w/o sparsity term, GT-recal. LM"),
                               ("lm", "hallucination", "g(H), LM as trained"),
                               ("corpus", "monofact", "N₁/n"),
                               ("corpus", "missing_mass", "missing mass")):  # fmt: skip
            t = _sel(table, meth, met)
            if not t.empty:
                ax.errorbar(t.n, t.value, yerr=Z95 * t.se, fmt="o-", label=lab, capsize=2)
        ax.axhline(0.0, color="grey", lw=0.6)
        ax.set_xscale("log")
        ax.set_xlabel("corpus size n")
        ax.set_ylabel("rate")
        ax.set_title("Hallucination vs the Kalai–Vempala bound")
        ax.legend(fontsize=7)
        fig.tight_layout()
        figs["bound"] = fig
    cov = _sel(table, "abstain", "coverage")
    if not cov.empty:
        fig, ax = plt.subplots(figsize=(5.4, 3.8))
        curves = [("greedy", cov, _sel(table, "abstain", "hallucination"))]
        tc, th = _sel(table, "temperature", "coverage"), _sel(table, "temperature", "hallucination")
        for temp in sorted(tc.temperature.dropna().unique()) if "temperature" in tc else []:
            curves.append((f"sampled, T = {temp:g}", tc[tc.temperature == temp],
                           th[th.temperature == temp]))  # fmt: skip
        for lab, c, h in curves:
            m = c.merge(h, on="tau", suffixes=("", "_h"))
            if m.empty:
                continue
            ax.plot(m.value, m.value_h, "o-", label=lab)
            for _, r in m.iterrows():
                ax.annotate(f"τ={r.tau:g}", (r.value, r.value_h), fontsize=6)
        ax.set_xlabel("coverage (fraction answered)")
        ax.set_ylabel("hallucination among answered")
        ax.set_title("Abstention and temperature: hallucination vs coverage")
        ax.legend(fontsize=7)
        fig.tight_layout()
        figs["abstain"] = fig
    return figs


def headline(table: pd.DataFrame, config: Config) -> dict[str, float]:
    out: dict[str, float] = {}
    for meth, met in (("calibrated", "hallucination"), ("calibrated", "bound_leading"),
                      ("calibrated", "miscalibration"), ("lm", "hallucination"),
                      ("lm", "miscalibration"), ("corpus", "monofact")):  # fmt: skip
        t = _sel(table, meth, met)
        if not t.empty:
            out[f"{meth}_{met}_at_largest_n"] = float(t.value.iloc[-1])
    for d in DETECTORS:
        t = _sel(table, d, "auroc")
        if not t.empty:
            out[f"{d}_auroc"] = float(t.value.iloc[0])
    return out


def label(config: Config) -> str:
    return (f"neural bigram LM (d = {config.model.embed_dim}, MLP {config.model.hidden}) on "
            f"K = {config.facts.n_facts} Zipf(s = {config.facts.exponent:g}) facts")  # fmt: skip


EXPERIMENT = register_experiment(
    Experiment(
        name=NAME,
        claim="A calibrated language model trained on arbitrary facts hallucinates at least at the "
        "monofact rate N₁/n minus its miscalibration; both fall as the corpus grows, abstention "
        "trades hallucination for coverage, and sampling-based detectors flag hallucinations.",
        source=SOURCE,
        chapter=Chapter.ETHICS.value,
        config_cls=Config,
        run=run,
        checks=checks,
        figures=figures,
        headline=headline,
        label=label,
        formula="g(H) ≥ N₁/n − Mis_b(g, p) − 3e^(−s)/δ − sqrt(6 ln(6/δ)/n)",
        key_figure="bound",
    )
)
