"""self-correction: self-correction as in-context alignment (Wang, Wu, Wei, Wang & Wang 2024,
"A theoretical understanding of self-correction through in-context alignment", NeurIPS).

Task (:mod:`fmtheory.tasks.self_correction`): a query x repeated in every round; round i shows a
response y_i = r_i·y* + (1 − r_i)·ξ_i and its reward token r̃_i (r_i with probability 1 − p, a fresh
U[0, 1] otherwise).  One token per round, (x, y_i, r̃_i) ∈ R^{2d+1}.

Model: a linear read-in to width C, the GPT decoder of ``models/gpt.py`` (causal), and a linear
read-out of K scores, one per round slot.  At position t (after round t) the scores of slots ≤ t
rank the responses seen so far.  Training: the Plackett–Luce loss of those scores against the ranking
of the responses by their true quality r_i, averaged over the prefixes t = 2..K (accurate rewards).
The model's answer after t rounds is the response whose score is highest: its error
‖ŷ_t − y*‖²/d is measured on fresh prompts, for every t and every reward-noise level p.

References on the same prompts: selection by the observed reward (the best any ranker of the shown
rewards can do), random choice, and the closed forms of ``theory/self_correction.py``.

Ablations (Wang et al. §4–5: softmax attention ranks, multi-head attention separates tokens, the FFN
transforms the selected token, depth iterates): linear attention, one head, no FFN, fewer layers.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import pandas as pd
import torch
from pydantic import Field, field_validator, model_validator
from torch import nn

from fmtheory.checks import (
    ci_row,
    difference_check,
    exact_row,
    inconclusive,
    not_applicable,
    trend_check,
    z_check,
)
from fmtheory.contract import (
    Chapter,
    Check,
    Experiment,
    ExperimentConfig,
    Result,
    RunContext,
    register_experiment,
)
from fmtheory.models.gpt import GPT, GPTConfig
from fmtheory.sections import FixedTrainSection, GPTSection, TrainSection
from fmtheory.tasks.self_correction import (
    response_error,
    sample_self_correction,
    tokens,
)
from fmtheory.theory.self_correction import best_of_n_error, random_choice_error

NAME = "self-correction"
SOURCE = "Wang, Wu, Wei, Wang & Wang 2024 (NeurIPS), §3–5, arXiv:2405.18634"

#: smallest drop of the model's error from round 1 to round K (accurate rewards) that counts as a
#: self-correction gain (random choice: 2/3 at every round; the best-of-K oracle at K = 8: 0.044)
MIN_GAIN = 0.1
#: an ablated model must have a final-round error larger than the full model's by this much for the
#: ablated component to count as needed (about a sixth of the oracle's gain at K = 8)
MIN_ABLATION_GAP = 0.1
#: the gain at the largest reward noise must be smaller than at p = 0 by this much
MIN_NOISE_DROP = 0.1

Ablation = Literal["linear-attention", "one-head", "no-ffn"]
_ABLATION_TEXT = {
    "linear-attention": ("softmax attention", "linear attention"),
    "one-head": ("multi-head attention", "one head"),
    "no-ffn": ("the feed-forward layer", "no feed-forward layer"),
}


class Config(ExperimentConfig):
    dim: int = Field(8, ge=1, le=256, description="dimension d of the answer y* and the query x")
    rounds: int = Field(8, ge=1, le=64, description="self-correction rounds K shown in a prompt")
    reward_noise: list[float] = Field(
        [0.0, 0.25, 0.5, 0.75, 1.0],
        min_length=1,
        description="probabilities p that a reward token is replaced by noise, each in [0, 1]",
    )
    shuffle_rewards: bool = Field(
        False, description="permute the reward tokens across rounds (removes the ingredient)"
    )
    model: GPTSection = GPTSection(n_layer=3, n_head=3, n_embd=96, attention="softmax")
    train: FixedTrainSection = TrainSection(steps=800, batch_size=128, lr=1e-3, warmup_steps=50)
    ablations: list[Ablation] = Field(
        ["linear-attention", "one-head", "no-ffn"], description="components removed, one model each"
    )
    depths: list[int] = Field(
        [1],
        description="further depths (layers) trained for the depth ablation, each < model.n_layer",
    )
    eval_size: int = Field(2000, ge=10, le=1_000_000, description="test prompts")

    @field_validator("reward_noise")
    @classmethod
    def _noise_in_unit(cls, v: list[float]) -> list[float]:
        for p in v:
            if not 0.0 <= p <= 1.0:
                raise ValueError(f"reward_noise = {p}: must be in [0, 1]")
        if 0.0 not in v:
            raise ValueError(f"reward_noise = {v}: must contain 0.0 (accurate rewards)")
        return sorted(set(v))

    @model_validator(mode="after")
    def _depths_below(self) -> Config:
        for d in self.depths:
            if not 1 <= d < self.model.n_layer:
                raise ValueError(
                    f"depths = {self.depths}: each must be in [1, model.n_layer = {self.model.n_layer})"
                )
        if "one-head" in self.ablations and self.model.n_head == 1:
            raise ValueError("ablations = one-head: model.n_head must be > 1")
        return self


# ---------------------------------------------------------------------------------------------
class _NoFFN(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.zeros_like(x)


class SelfCorrectionModel(nn.Module):
    """Read-in (2d+1 → C), GPT backbone, read-out (C → K scores): ``forward(tokens (B, T, 2d+1))``
    returns scores (B, T, K); row t scores the slots 0..K−1 (only slots ≤ t are used)."""

    def __init__(self, *, dim: int, rounds: int, model: GPTSection, ffn: bool = True):
        super().__init__()
        cfg = GPTConfig(n_layer=model.n_layer, n_head=model.n_head, n_embd=model.n_embd,
                        n_positions=rounds, attention=model.attention,
                        layernorm=model.layernorm)  # fmt: skip
        self.read_in = nn.Linear(2 * dim + 1, model.n_embd)
        self.backbone = GPT(cfg)
        if not ffn:
            for b in self.backbone.blocks:
                b.mlp = _NoFFN()
        self.read_out = nn.Linear(model.n_embd, rounds)

    def forward(self, tok: torch.Tensor) -> torch.Tensor:
        return self.read_out(self.backbone(self.read_in(tok)))


def prefix_mask(rounds: int, device: Any = "cpu") -> torch.Tensor:
    """(K, K) bool: row t allows slots 0..t."""
    return torch.ones(rounds, rounds, dtype=torch.bool, device=device).tril()


def plackett_luce_loss(
    scores: torch.Tensor, quality: torch.Tensor, mask: torch.Tensor | None = None
) -> torch.Tensor:
    """Plackett–Luce negative log-likelihood of the ranking by ``quality`` under ``scores``.

    scores, quality, mask: (B, n); items with mask False are left out.  Per row, with π the order
    of decreasing quality over the kept items: −Σ_k [s_{π_k} − log Σ_{m ≥ k} exp s_{π_m}]
    (Plackett 1975; Luce 1959; the alignment objective of Wang et al. 2024 §3).  Returns (B,).
    """
    if mask is None:
        mask = torch.ones_like(scores, dtype=torch.bool)
    neg = torch.finfo(scores.dtype).min / 4
    q = torch.where(mask, quality, torch.full_like(quality, -torch.inf))
    order = q.argsort(dim=-1, descending=True, stable=True)
    s = torch.where(mask, scores, torch.full_like(scores, neg)).gather(-1, order)
    m = mask.gather(-1, order)
    tail = s.flip(-1).logcumsumexp(-1).flip(-1)  # log Σ_{m ≥ k} exp s_{π_m}
    return -((s - tail) * m).sum(-1)


def plackett_luce_loss_loop(scores: torch.Tensor, quality: torch.Tensor) -> torch.Tensor:
    """Reference: the same loss, one row and one rank at a time (for tests and the benchmark)."""
    out = []
    for s, q in zip(scores, quality, strict=True):
        order = torch.argsort(q, descending=True, stable=True)
        total = s.new_zeros(())
        for k in range(len(order)):
            total = total - (s[order[k]] - torch.logsumexp(s[order[k:]], 0))
        out.append(total)
    return torch.stack(out)


def training_loss(
    model: nn.Module, batch_tokens: torch.Tensor, quality: torch.Tensor
) -> torch.Tensor:
    """Mean PL loss over prefixes t = 2..K (per prefix, normalised by its length)."""
    K = quality.shape[1]
    scores = model(batch_tokens)  # (B, K, K)
    masks = prefix_mask(K, quality.device)
    total = scores.new_zeros(())
    for t in range(1, K):
        total = total + plackett_luce_loss(
            scores[:, t], quality, masks[t].expand_as(quality)
        ).mean() / (t + 1)
    return total / max(K - 1, 1)


@torch.no_grad()
def answer_errors(model: nn.Module, batch: Any) -> torch.Tensor:
    """Error ‖ŷ_t − y*‖²/d of the model's answer after t = 1..K rounds: (B, K)."""
    K = batch.quality.shape[1]
    scores = model(tokens(batch))  # (B, K, K)
    scores = scores.masked_fill(~prefix_mask(K, scores.device), -torch.inf)
    pick = scores.argmax(-1)  # (B, K)
    return response_error(batch).gather(1, pick)


def _select_by(values: torch.Tensor, err: torch.Tensor) -> torch.Tensor:
    """Error after t rounds when choosing the response with the highest ``values`` so far: (B, K)."""
    K = values.shape[1]
    v = (
        values.unsqueeze(1)
        .expand(-1, K, -1)
        .masked_fill(~prefix_mask(K, values.device), -torch.inf)
    )
    return err.gather(1, v.argmax(-1))


# ---------------------------------------------------------------------------------------------
def _variants(config: Config) -> list[tuple[str, GPTSection, bool]]:
    m = config.model
    out = [("full", m, True)]
    for a in config.ablations:
        if a == "linear-attention":
            out.append((a, m.model_copy(update={"attention": "linear"}), True))
        elif a == "one-head":
            out.append((a, m.model_copy(update={"n_head": 1}), True))
        else:
            out.append((a, m, False))
    for d in config.depths:
        out.append((f"depth-{d}", m.model_copy(update={"n_layer": d}), True))
    return out


def variant_label(model: GPTSection, ffn: bool) -> str:
    """e.g. "GPT 3L×3H×96, softmax attention" (", no FFN" when the feed-forward layers are removed)."""
    tail = "" if ffn else ", no FFN"
    return f"GPT {model.n_layer}L×{model.n_head}H×{model.n_embd}, {model.attention} attention{tail}"


def _train(variant: str, m: GPTSection, ffn: bool, config: Config, ctx: RunContext) -> nn.Module:
    from fmtheory.train.fit import fit, seeded

    K, d = config.rounds, config.dim
    net = seeded(lambda: SelfCorrectionModel(dim=d, rounds=K, model=m, ffn=ffn), config.seed + 101)

    def loss_fn(model: nn.Module, step: int, g: torch.Generator) -> torch.Tensor:
        b = sample_self_correction(batch=config.train.batch_size, rounds=K, dim=d, reward_noise=0.0,
                                   generator=g, shuffle_rewards=config.shuffle_rewards)  # fmt: skip
        return training_loss(model, tokens(b), b.quality)

    fit(net, loss_fn, config.train, seed=config.seed + 7, ctx=ctx, name=f"{NAME}-{variant}")
    return net.eval()


def run(config: Config, ctx: RunContext | None = None) -> Result:
    """Train the full model and each ablation; tidy table of errors by (variant, noise, rounds)."""
    from fmtheory.train.fit import make_generator

    ctx = ctx or RunContext()
    K = config.rounds
    evals = {}
    for p in config.reward_noise:
        g = make_generator(config.seed + 1_000 + int(round(p * 1000)), ctx.device)
        evals[p] = sample_self_correction(batch=config.eval_size, rounds=K, dim=config.dim,
                                          reward_noise=p, generator=g,
                                          shuffle_rewards=config.shuffle_rewards)  # fmt: skip
    rows: list[dict[str, Any]] = []
    seed = config.seed
    for p, b in evals.items():
        err = response_error(b)
        by_reward = _select_by(b.reward, err)
        for t in range(K):
            rows.append(ci_row("select by observed reward", "error", by_reward[:, t].numpy(),
                               seed=seed, variant="reference", noise=p, rounds=t + 1))  # fmt: skip
            rows.append(ci_row("first response", "error", err[:, 0].numpy(), seed=seed,
                               variant="reference", noise=p, rounds=t + 1))  # fmt: skip
    for t in range(K):
        rows.append(exact_row("theory: best of n (accurate reward)", "error",
                              best_of_n_error(n=t + 1).value, seed=seed, variant="theory",
                              noise=0.0, rounds=t + 1))  # fmt: skip
        rows.append(exact_row("theory: random choice", "error", random_choice_error(n=t + 1).value,
                              seed=seed, variant="theory", noise=0.0, rounds=t + 1))  # fmt: skip
    for variant, m, ffn in _variants(config):
        net = _train(variant, m, ffn, config, ctx)
        name = variant_label(m, ffn)
        for p, b in evals.items():
            e = answer_errors(net, b).cpu()
            for t in range(K):
                rows.append(ci_row(name, "error", e[:, t].numpy(), seed=seed, variant=variant,
                                   noise=p, rounds=t + 1))  # fmt: skip
            gain = (e[:, 0] - e[:, -1]).numpy()
            rows.append(ci_row(name, "gain", gain, seed=seed, variant=variant, noise=p, rounds=K))
    table = pd.DataFrame(rows)
    return Result(table=table, checks=checks(table, config), figures=figures(table))


# ---------------------------------------------------------------------------------------------
def _sel(
    table: pd.DataFrame, variant: str, metric: str, noise: float | None = None
) -> pd.DataFrame:
    t = table[(table.variant == variant) & (table.metric == metric)]
    if noise is not None:
        t = t[np.isclose(t.noise.astype(float), noise)]
    return t.sort_values(["noise", "rounds"])


def checks(table: pd.DataFrame, config: Config) -> list[Check]:
    out: list[Check] = []
    K = config.rounds
    full = _sel(table, "full", "error", 0.0)
    claim = "With accurate rewards, the error of the model's answer decreases with the number of "
    claim += "self-correction rounds"
    if len(full) < 3:
        out.append(inconclusive(claim, SOURCE, "claim", f"{len(full)} rounds: a trend needs 3"))
    else:
        out.append(trend_check(claim, SOURCE, "claim", x=1.0 / full.rounds, y=full.value,
                               y_se=full.se, increasing=True,
                               where=f"error = c + b/t against 1/t, p = 0, t = 1..{K}; "
                               "b > 0: the error falls with t"))  # fmt: skip
    gain0 = _sel(table, "full", "gain", 0.0)
    claim_g = (
        f"With accurate rewards, K = {K} rounds lower the answer's error by more than {MIN_GAIN}"
    )
    if gain0.empty:
        out.append(inconclusive(claim_g, SOURCE, "claim", "no gain row for p = 0"))
    else:
        g = gain0.iloc[0]
        out.append(difference_check(claim_g, SOURCE, "claim", a=g.value, a_se=g.se, b=0.0, b_se=0.0,
                                    min_effect=MIN_GAIN, where="a = error(round 1) − error(round K)"))  # fmt: skip
    oracle = _sel(table, "reference", "error", 0.0)
    oracle = oracle[oracle.method == "select by observed reward"]
    claim_t = "Choosing the best of K responses by accurate reward has error 4/((K+1)(K+2))"
    if oracle.empty:
        out.append(inconclusive(claim_t, SOURCE, "theory", "no reference rows"))
    else:
        o = oracle.iloc[-1]
        out.append(z_check(claim_t, SOURCE + " (closed form derived in theory/self_correction.py)",
                           "theory", measured=o.value, measured_se=o.se,
                           predicted=best_of_n_error(n=int(o.rounds)).value, predicted_se=0.0,
                           where=f"K = {int(o.rounds)}, simulation on the test prompts"))  # fmt: skip
    gains = _sel(table, "full", "gain")
    claim_n = "With noisy rewards, the self-correction gain shrinks as the noise grows"
    if gains.empty or gains.noise.nunique() < 3:
        out.append(not_applicable(claim_n, SOURCE, "claim", "fewer than 3 reward-noise levels"))
    else:
        out.append(trend_check(claim_n, SOURCE, "claim", x=gains.noise, y=gains.value,
                               y_se=gains.se, increasing=False,
                               where="gain = error(round 1) − error(round K) against p"))  # fmt: skip
        lo, hi = gains.iloc[0], gains.iloc[-1]
        out.append(difference_check(
            f"The gain at p = {hi.noise:g} is smaller than with accurate rewards by more than "
            f"{MIN_NOISE_DROP}", SOURCE, "claim", a=lo.value, a_se=lo.se, b=hi.value, b_se=hi.se,
            min_effect=MIN_NOISE_DROP, where="a = gain at p = 0, b = gain at the largest p"))  # fmt: skip
    full_k = _sel(table, "full", "error", 0.0)
    full_k = full_k[full_k.rounds == K]
    for a in ("linear-attention", "one-head", "no-ffn"):
        comp, _ = _ABLATION_TEXT[a]
        claim_a = f"Self-correction needs {comp} (Wang et al.: it does)"
        out.append(_ablation_check(claim_a, table, a, full_k, K))
    depth_variants = sorted(v for v in table.variant.unique() if str(v).startswith("depth-"))
    if not depth_variants:
        out.append(not_applicable("Self-correction needs depth (Wang et al.: it does)", SOURCE,
                                  "claim", "no shallower model in this preset (see paper)"))  # fmt: skip
    for v in depth_variants:
        claim_d = (
            f"Self-correction needs more than {v.split('-')[1]} layer(s) (Wang et al.: depth helps)"
        )
        out.append(_ablation_check(claim_d, table, v, full_k, K))
    return out


def _ablation_check(
    claim: str, table: pd.DataFrame, variant: str, full_k: pd.DataFrame, K: int
) -> Check:
    abl = _sel(table, variant, "error", 0.0)
    abl = abl[abl.rounds == K]
    if abl.empty:
        return not_applicable(
            claim, SOURCE, "claim", f"ablation {variant} not in this preset (see paper)"
        )
    if full_k.empty:
        return inconclusive(claim, SOURCE, "claim", "no full-model rows")
    a, f = abl.iloc[0], full_k.iloc[0]
    return difference_check(claim, SOURCE, "claim", a=a.value, a_se=a.se, b=f.value, b_se=f.se,
                            min_effect=MIN_ABLATION_GAP,
                            where=f"a = ablated ({variant}), b = full; error at round {K}, p = 0")  # fmt: skip


def figures(table: pd.DataFrame) -> dict[str, Any]:
    import matplotlib.pyplot as plt

    figs: dict[str, Any] = {}
    err0 = table[(table.metric == "error") & np.isclose(table.noise.astype(float), 0.0)]
    if not err0.empty:
        fig, ax = plt.subplots(figsize=(5.5, 3.8))
        for method, s in err0.groupby("method", sort=False):
            s = s.sort_values("rounds")
            ax.errorbar(s.rounds, s.value, yerr=1.96 * s.se, marker="o", ms=3, label=method)
        ax.set_xlabel("self-correction rounds")
        ax.set_ylabel("‖ŷ − y*‖²/d")
        ax.set_title("accurate rewards")
        ax.legend(fontsize=6)
        fig.tight_layout()
        figs["rounds"] = fig
    gains = table[(table.metric == "gain")]
    if not gains.empty:
        fig, ax = plt.subplots(figsize=(5.5, 3.8))
        for method, s in gains.groupby("method", sort=False):
            s = s.sort_values("noise")
            ax.errorbar(s.noise, s.value, yerr=1.96 * s.se, marker="o", ms=3, label=method)
        ax.set_xlabel("reward noise p")
        ax.set_ylabel("gain: error(round 1) − error(round K)")
        ax.legend(fontsize=6)
        fig.tight_layout()
        figs["noise"] = fig
    return figs


def headline(table: pd.DataFrame, config: Config) -> dict[str, float]:
    out: dict[str, float] = {}
    for v in table.variant.unique():
        g = _sel(table, v, "gain", 0.0)
        if not g.empty:
            out[f"gain_{v}"] = float(g.value.iloc[0])
    return out


def label(config: Config) -> str:
    return f"{variant_label(config.model, True)}; K = {config.rounds} rounds, d = {config.dim}"


EXPERIMENT = register_experiment(
    Experiment(
        name=NAME,
        claim="A transformer trained with a Plackett–Luce ranking loss on (response, reward) rounds "
        "corrects itself in context: its answer's error falls with the rounds when rewards are "
        "accurate, less so as they get noisy, and the effect needs softmax attention, several heads, "
        "the feed-forward layer and depth.",
        source=SOURCE,
        chapter=Chapter.ALIGNMENT.value,
        config_cls=Config,
        run=run,
        checks=checks,
        figures=figures,
        headline=headline,
        label=label,
        formula="best of n by accurate reward: E‖ŷ − y*‖²/d = 4/((n+1)(n+2)); random: 2/3",
        key_figure="rounds",
    )
)
