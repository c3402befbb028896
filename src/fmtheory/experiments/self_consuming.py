"""Claim: generative models retrained on their own samples collapse; real data, accumulation,
correction and growing sample sizes prevent it (survey §5.4).

* Collapse (Shumailov et al. 2024; survey §5.4): a Gaussian refitted on its own samples has
  ``E[ln(σ_n²/σ²)] = n[ψ((M−1)/2) − ln((M−1)/2)] → −∞`` while ``E[σ_n²] = σ²``.
* Linear regression on a fixed design (Dohmatob, Feng & Kempe 2024; Gerstgrasser et al. 2024): the
  error grows like ``nσ²d/(T−d−1)`` when labels are replaced, stays below ``π²/6`` times the first
  generation's when they accumulate.
* A real-data share keeps retraining stable (Bertrand et al. 2024, survey Thm 5.4); for a refitted
  mean the exact contraction factor is ``λ/(1+λ) = 1 − α``.
* A correction of strength ``γ`` (Gillman et al. 2024, survey Thm 5.6) divides it by ``1 + γ``.
* With no real data the sample size must grow, ``Σ 1/n_i < ∞`` (Fu et al. 2024, survey Cor 5.8).
* Tails go first (Dohmatob et al. 2024, "A tale of tails").

**The loop.**  Generation 1 fits ``n_1`` real points.  Generation ``g ≥ 2`` fits
``n_g = n0·round(g^k)`` points (k = 0 constant, 1 linear, ``samples.power`` polynomial):
``round(α n_g)`` fresh real draws, the rest drawn from model ``g−1``.  **Correction (implemented
precisely):** each of those synthetic samples is replaced, independently with probability
``γ/(1+γ)``, by a fresh real draw, so the synthetic part is an exact sample of
``π_γ(p_θ) = (p_θ + γ p_data)/(1+γ)`` — Gillman et al.'s idealized correction with
``p_θ* = p_data``.  ``replace`` fits this dataset alone; ``accumulate`` fits it together with
every earlier dataset.  Linear regression mixes at the level of design rows: a random ``round(αT)``
rows carry real labels, and each copy of another row is relabelled by ``w*`` with probability
``γ/(1+γ)``.

**Regimes.**  Beside the configured one (``mix``, ``samples``), ``compare.enabled`` runs the
reference regimes the checks need: ``replace`` (α = 0), ``accumulate``,
``replace α=compare.real_fraction``, the same with each ``γ`` of ``compare.gammas``, and
``replace n∝i^k`` (``k = compare.power``).

Generation numbers in the table count fits (1 = the fit on real data), as in the theory registry.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
import pandas as pd
from pydantic import Field

from fmtheory.experiments._stl_common import (
    ContractionSums,
    LoopOutput,
    Regime,
    RegimeSet,
    Sizes,
    make_regime,
    regime_rng,
)
from fmtheory.experiments._stl_density import DensityLoopSpec, run_density_loop
from fmtheory.experiments._stl_exact import (
    GaussianLoopSpec,
    LinregLoopSpec,
    run_gaussian_loop,
    run_linreg_loop,
)
from fmtheory.experiments._stl_report import build_checks, build_table, theory_curves
from fmtheory.experiments.base import (
    ConfigError,
    Experiment,
    ExperimentConfig,
    Result,
    RunContext,
    Section,
    register_experiment,
)
from fmtheory.progress import progress_bar
from fmtheory.tasks.generative import GaussianSpec, ZipfSpec, make_mixture_data

NAME = "self-consuming"
CLAIM = (
    "A generative model retrained on its own samples collapses; a real-data share, accumulation, "
    "correction toward the real distribution or a growing sample size keep it stable."
)
SOURCE = (
    "survey §5.4: Shumailov et al. 2024; Bertrand et al. 2024 (Thm 5.4); Gillman et al. 2024 "
    "(Thm 5.6); Fu et al. 2024 (Cor 5.8); Gerstgrasser et al. 2024; Dohmatob et al. 2024"
)

Model = Literal["gaussian", "linreg", "gmm", "kde", "neural"]
MODELS: tuple[str, ...] = ("gaussian", "linreg", "gmm", "kde", "neural")

_F = {"allow_inf_nan": False}


# --------------------------------------------------------------------------------------------
# configuration
# --------------------------------------------------------------------------------------------


class SamplesSection(Section):
    """Sample-size schedule ``n_i = n0 · round(i^k)``."""

    n0: int | None = Field(
        None,
        ge=1,
        le=10**8,
        description="points at generation 1 (linreg: design rows T; neural: sequences); "
        "None = the model section's n0",
    )
    schedule: Literal["constant", "linear", "polynomial"] = Field(
        "constant", description="constant (k = 0), linear (k = 1), polynomial (k = power)"
    )
    power: float = Field(2.0, ge=0.0, le=4.0, description="k of the polynomial schedule", **_F)


class MixSection(Section):
    """How a generation's dataset is made."""

    real_fraction: float = Field(
        0.0, ge=0.0, le=1.0, description="share α of fresh real data per generation", **_F
    )
    mode: Literal["replace", "accumulate"] = Field(
        "replace", description="replace: fit the new data only; accumulate: all data so far"
    )
    gamma: float = Field(
        0.0, ge=0.0, le=1e6, description="correction strength γ (swap prob. γ/(1+γ))", **_F
    )


class CompareSection(Section):
    """Reference regimes run beside the configured one (needed by the comparative checks)."""

    enabled: bool = Field(True, description="run the reference regimes")
    real_fraction: float = Field(
        0.2, gt=0.0, le=1.0, description="α of the real-share reference regime", **_F
    )
    gammas: list[Annotated[float, Field(gt=0.0, le=1e6, allow_inf_nan=False)]] = Field(
        default_factory=lambda: [1.0, 4.0],
        max_length=8,
        description="correction strengths γ > 0 run on top of the real-share regime",
    )
    power: float = Field(
        2.0, ge=0.0, le=4.0, description="k of the growing-sample-size reference regime", **_F
    )


class GaussianSection(Section):
    """Real data ``N(mean·1, std² I_dim)``; refit by MLE or the unbiased estimator."""

    dim: int = Field(1, ge=1, le=32, description="dimension")
    mean: float = Field(0.0, ge=-1e6, le=1e6, description="real mean (every coordinate)", **_F)
    std: float = Field(1.0, gt=0.0, le=1e6, description="real standard deviation", **_F)
    estimator: Literal["unbiased", "mle"] = Field("unbiased", description="covariance refit")
    fit_covariance: bool = Field(True, description="False: refit the mean only (Σ fixed)")
    n0: int = Field(20, ge=2, le=10**8, description="samples per generation M")
    generations: int = Field(200, ge=1, le=100_000)
    replicates: int = Field(1000, ge=1, le=100_000)


class LinregSection(Section):
    """Fixed design ``X: (T, d)`` with N(0, I) rows, ``w* ~ N(0, I)``, label noise ``σ``."""

    dim: int = Field(10, ge=1, le=1000, description="d")
    noise_std: float = Field(1.0, gt=0.0, le=1e6, description="label noise σ", **_F)
    n0: int = Field(50, ge=3, le=10**6, description="design rows T (> d + 1)")
    generations: int = Field(200, ge=1, le=100_000)
    replicates: int = Field(1000, ge=1, le=100_000)


class _DensitySection(Section):
    """What the two sample-based density families share: data, evaluation, loop sizes."""

    data: Literal["trimodal-1d", "ring-2d", "digits-2d"] = "trimodal-1d"
    eval_samples: int = Field(400, ge=10, le=5000, description="draws per side for W1/W2")
    grid: int = Field(200, ge=8, le=2000, description="grid points per axis for TV")
    n0: int = Field(500, ge=2, le=10**6)
    generations: int = Field(20, ge=1, le=100_000)
    replicates: int = Field(6, ge=1, le=10_000)
    max_n: int = Field(
        10_000, ge=1, le=10**7, description="cap on n_i of growing schedules (cost grows with n)"
    )


class GmmSection(_DensitySection):
    """Gaussian mixture fitted by EM (scikit-learn) to a multimodal real distribution."""

    components: int = Field(3, ge=1, le=64, description="mixture components K")


class KdeSection(_DensitySection):
    """Gaussian kernel density estimate (scikit-learn) of a multimodal real distribution."""

    bandwidth: float = Field(0.3, gt=0.0, le=100.0, description="kernel bandwidth h", **_F)


class NeuralSection(Section):
    """Tiny neural bigram model over i.i.d. Zipf tokens, trained with the shared loop."""

    vocab: int = Field(200, ge=2, le=100_000)
    exponent: float = Field(1.1, gt=0.0, le=10.0, description="Zipf exponent β", **_F)
    seq_len: int = Field(2, ge=1, le=256)
    head: int = Field(20, ge=1, description="ranks ≤ head are the head, the rest the tail")
    embed_dim: int = Field(16, ge=1, le=1024)
    hidden: int = Field(64, ge=1, le=4096)
    steps: int = Field(200, ge=1, le=1_000_000, description="optimizer steps per generation")
    lr: float = Field(3e-3, gt=0.0, le=10.0, **_F)
    batch_size: int = Field(128, ge=1, le=1_000_000)
    weight_decay: float = Field(0.0, ge=0.0, le=10.0, **_F)
    warm_start: bool = Field(False, description="continue from the previous generation")
    n0: int = Field(1000, ge=1, le=10**7, description="sequences per generation")
    generations: int = Field(8, ge=1, le=10_000)
    replicates: int = Field(2, ge=1, le=1000)
    mle_replicates: int = Field(
        200, ge=1, le=100_000, description="replicates of the (cheap) categorical-MLE baseline"
    )
    max_n: int = Field(
        10_000, ge=1, le=10**7, description="cap on n_i of growing schedules (sequences)"
    )


class Config(ExperimentConfig):
    """Self-consuming loop.  ``generations``/``replicates``/``samples.n0`` left at None take the
    chosen model section's values."""

    model: Model = Field("gaussian", description="model family")
    generations: int | None = Field(None, ge=1, le=100_000, description="number of fits")
    replicates: int | None = Field(None, ge=1, le=100_000, description="independent chains")
    record_every: int | None = Field(
        None, ge=1, description="table rows every k generations (None: about 200 rows per regime)"
    )
    samples: SamplesSection = Field(default_factory=SamplesSection)
    mix: MixSection = Field(default_factory=MixSection)
    compare: CompareSection = Field(default_factory=CompareSection)
    gaussian: GaussianSection = Field(default_factory=GaussianSection)
    linreg: LinregSection = Field(default_factory=LinregSection)
    gmm: GmmSection = Field(default_factory=GmmSection)
    kde: KdeSection = Field(default_factory=KdeSection)
    neural: NeuralSection = Field(default_factory=NeuralSection)

    @classmethod
    def model_validate(  # type: ignore[override]
        cls, obj: Any, *args: Any, **kwargs: Any
    ) -> Config:
        cfg = super().model_validate(obj, *args, **kwargs)
        cfg.check_consistency()
        return cfg

    def section(self) -> Section:
        """The section of the chosen model family."""
        return getattr(self, self.model)

    def sizes(self) -> Sizes:
        sec = self.section()
        gens = self.generations or sec.generations
        every = self.record_every or max(1, gens // 200)
        return Sizes(
            n0=self.samples.n0 or sec.n0,
            generations=gens,
            replicates=self.replicates or sec.replicates,
            record_every=every,
        )

    def check_consistency(self) -> None:
        """Cross-field rules; :class:`ConfigError` naming the field otherwise."""
        n0 = self.samples.n0 or self.section().n0
        field = "samples.n0" if self.samples.n0 else f"{self.model}.n0"
        if self.model == "gaussian" and n0 <= self.gaussian.dim:
            raise ConfigError(field, n0, f"must exceed gaussian.dim = {self.gaussian.dim}")
        if self.model == "linreg" and n0 <= self.linreg.dim + 1:
            raise ConfigError(
                field, n0, f"design rows T must exceed linreg.dim + 1 = {self.linreg.dim + 1}"
            )
        if self.model == "neural" and self.neural.head >= self.neural.vocab:
            raise ConfigError(
                "neural.head", self.neural.head, f"must be < neural.vocab = {self.neural.vocab}"
            )
        if self.model in ("gmm", "kde", "neural") and self.section().max_n < n0:
            raise ConfigError(f"{self.model}.max_n", self.section().max_n, f"must be >= n0 = {n0}")
        if self.model == "gmm" and n0 < self.gmm.components:
            raise ConfigError(field, n0, f"must be >= gmm.components = {self.gmm.components}")


# --------------------------------------------------------------------------------------------
# regimes
# --------------------------------------------------------------------------------------------


def build_regimes(cfg: Config) -> RegimeSet:
    """The configured regime plus, if ``compare.enabled``, the reference ones (deduplicated)."""
    conf = make_regime(
        mode=cfg.mix.mode,
        real_fraction=cfg.mix.real_fraction,
        gamma=cfg.mix.gamma,
        schedule=cfg.samples.schedule,
        power=cfg.samples.power,
    )
    regimes = [conf]
    roles: dict[str, Any] = {}
    if cfg.compare.enabled:
        a = cfg.compare.real_fraction
        refs = {
            "synthetic": make_regime(
                mode="replace", real_fraction=0.0, gamma=0.0, schedule="constant", power=0.0
            ),
            "accumulate": make_regime(
                mode="accumulate", real_fraction=0.0, gamma=0.0, schedule="constant", power=0.0
            ),
            "real": make_regime(
                mode="replace", real_fraction=a, gamma=0.0, schedule="constant", power=0.0
            ),
            "growing": make_regime(
                mode="replace",
                real_fraction=0.0,
                gamma=0.0,
                schedule="polynomial",
                power=cfg.compare.power,
            ),
        }
        corrected = [
            make_regime(mode="replace", real_fraction=a, gamma=g, schedule="constant", power=0.0)
            for g in sorted(set(cfg.compare.gammas))
        ]
        for role, reg in refs.items():
            roles[role] = reg.label
            regimes.append(reg)
        roles["corrected"] = tuple(r.label for r in corrected)
        regimes.extend(corrected)
    seen: dict[str, Regime] = {}
    for r in regimes:
        seen.setdefault(r.label, r)
    return RegimeSet(regimes=list(seen.values()), configured=conf.label, **roles)


# --------------------------------------------------------------------------------------------
# running
# --------------------------------------------------------------------------------------------


def _run_regime(
    cfg: Config, sizes: Sizes, regime: Regime, ctx: RunContext, tick: Callable[[int], None]
) -> list[LoopOutput]:
    rng = regime_rng(cfg.seed, regime, cfg.model)
    if cfg.model == "gaussian":
        s = cfg.gaussian
        spec = GaussianLoopSpec(
            real=GaussianSpec(dim=s.dim, mean=s.mean, std=s.std),
            n0=sizes.n0,
            generations=sizes.generations,
            replicates=sizes.replicates,
            estimator=s.estimator,
            fit_covariance=s.fit_covariance,
            record_every=sizes.record_every,
        )
        return [run_gaussian_loop(spec, regime, rng, tick)]
    if cfg.model == "linreg":
        s = cfg.linreg
        spec = LinregLoopSpec(
            dim=s.dim,
            rows=sizes.n0,
            noise_std=s.noise_std,
            generations=sizes.generations,
            replicates=sizes.replicates,
            record_every=sizes.record_every,
        )
        return [run_linreg_loop(spec, regime, rng, tick)]
    if cfg.model in ("gmm", "kde"):
        s = cfg.gmm if cfg.model == "gmm" else cfg.kde
        spec = DensityLoopSpec(
            family=cfg.model,
            data=make_mixture_data(s.data),
            n0=sizes.n0,
            generations=sizes.generations,
            replicates=sizes.replicates,
            components=getattr(s, "components", 1),
            bandwidth=getattr(s, "bandwidth", 1.0),
            eval_samples=s.eval_samples,
            grid=s.grid,
            record_every=sizes.record_every,
            max_n=s.max_n,
        )
        return [run_density_loop(spec, regime, rng, tick)]
    # neural: imported here so that the numpy families never import torch models / train loop
    from fmtheory.experiments._stl_neural import (
        NeuralLoopSpec,
        run_categorical_loop,
        run_neural_loop,
    )
    from fmtheory.models.token_lm import TokenLMConfig

    s = cfg.neural
    spec = NeuralLoopSpec(
        zipf=ZipfSpec(vocab=s.vocab, exponent=s.exponent),
        seq_len=s.seq_len,
        n0=sizes.n0,
        generations=sizes.generations,
        replicates=sizes.replicates,
        head=s.head,
        model=TokenLMConfig(vocab=s.vocab, embed_dim=s.embed_dim, hidden=s.hidden),
        steps=s.steps,
        lr=s.lr,
        batch_size=s.batch_size,
        weight_decay=s.weight_decay,
        warm_start=s.warm_start,
        record_every=sizes.record_every,
        max_n=s.max_n,
    )
    torch_seed = int(rng.integers(0, 2**62))
    cat = run_categorical_loop(replace(spec, replicates=s.mle_replicates), regime, rng)
    net = run_neural_loop(spec, regime, torch_seed, device=ctx.device, tick=tick)
    return [net, cat]


def _ticks_per_generation(cfg: Config, sizes: Sizes) -> int:
    return 1 if cfg.model in ("gaussian", "linreg") else sizes.replicates


def run(config: Config, ctx: RunContext | None = None) -> Result:
    """Run every regime of ``config``; compare with the closed forms (see the module docstring)."""
    ctx = ctx or RunContext()
    config.check_consistency()
    sizes = config.sizes()
    rset = build_regimes(config)
    per_gen = _ticks_per_generation(config, sizes)
    bar = progress_bar(
        NAME, len(rset.regimes) * sizes.generations * per_gen, unit="fits", enabled=ctx.progress
    )
    outputs: dict[str, list[LoopOutput]] = {}
    fingerprint = config.model_dump_json()
    try:
        for regime in rset.regimes:
            bar.describe(f"{config.model}: {regime.label}")
            path = ctx.path(f"self-consuming/regime-{zlib.crc32(regime.label.encode()):08x}.npz")
            done = _load_outputs(path, fingerprint, regime.label)
            if done is None:
                done = _run_regime(config, sizes, regime, ctx, bar.advance)
                _save_outputs(path, fingerprint, regime.label, done)
            else:
                bar.advance(sizes.generations * per_gen)
            outputs[regime.label] = done
    finally:
        bar.close()
    theory = {r.label: theory_curves(config, sizes, r) for r in rset.regimes}
    table = build_table(config, sizes, rset, outputs, theory)
    checks = build_checks(config, sizes, rset, outputs, theory)
    return Result(table=table, checks=checks, figures=figures(table))


def _save_outputs(path: Path | None, fingerprint: str, label: str, outs: list[LoopOutput]) -> None:
    """Keep a finished regime in the run's workdir (``.npz``, no pickle), so a run interrupted
    later resumes without redoing it.  Written to a temporary name, then renamed (atomic)."""
    if path is None:
        return
    arrays: dict[str, np.ndarray] = {
        "fingerprint": np.array(fingerprint),
        "label": np.array(label),
        "n_outputs": np.array(len(outs)),
    }
    for i, o in enumerate(outs):
        arrays[f"{i}/method"] = np.array(o.method)
        arrays[f"{i}/generations"] = o.generations
        for k, v in o.metrics.items():
            arrays[f"{i}/metric/{k}"] = v
        for k, v in o.extra.items():
            arrays[f"{i}/extra/{k}"] = np.array(v)
        if o.contraction is not None:
            c = o.contraction
            arrays[f"{i}/contraction"] = np.array([c.sa, c.sb, c.saa, c.sab, c.sbb, c.count])
    tmp = path.with_name(path.name + ".tmp.npz")
    np.savez(tmp, **arrays)
    tmp.replace(path)


def _load_outputs(path: Path | None, fingerprint: str, label: str) -> list[LoopOutput] | None:
    """A regime saved by :func:`_save_outputs` for this exact config, else None."""
    if path is None or not path.exists():
        return None
    try:
        with np.load(path, allow_pickle=False) as f:
            if str(f["fingerprint"]) != fingerprint or str(f["label"]) != label:
                return None
            outs = []
            for i in range(int(f["n_outputs"])):
                pre = f"{i}/"
                metrics = {
                    k[len(pre + "metric/") :]: f[k]
                    for k in f.files
                    if k.startswith(pre + "metric/")
                }
                extra = {
                    k[len(pre + "extra/") :]: float(f[k])
                    for k in f.files
                    if k.startswith(pre + "extra/")
                }
                con = None
                if pre + "contraction" in f.files:
                    v = f[pre + "contraction"]
                    con = ContractionSums(*map(float, v[:5]), count=int(v[5]))
                outs.append(
                    LoopOutput(
                        method=str(f[pre + "method"]),
                        generations=f[pre + "generations"],
                        metrics=metrics,
                        contraction=con,
                        extra=extra,
                    )
                )
            return outs
    except (OSError, KeyError, ValueError):
        return None  # unreadable or partial: recompute


# --------------------------------------------------------------------------------------------
# figures and headline (from the table alone)
# --------------------------------------------------------------------------------------------

_YLABEL = {
    "gaussian": "exact W2 to the real Gaussian",
    "linreg": "E||ŵ − w*||² (test error)",
    "gmm": "total variation to the real density (grid)",
    "kde": "total variation to the real density (grid)",
    "neural": "total variation of p(x₀) to the Zipf law",
}
_FIGURE_METRICS = (
    "distance",
    "distance_median",
    "log_var_ratio",
    "log_var_ratio_var",
    "var_ratio_median",
    "mean_sq_err",
    "w2_sq",
    "w1",
    "w2",
    "model_variance",
    "missing_mass",
    "lost_tail",
    "lost_head",
    "log_ratio_tail",
    "log_ratio_head",
    "tail_ratio",
    "cond_tv",
)


def figures(table: pd.DataFrame) -> dict[str, Any]:
    """One figure per metric, every regime on it (lines: mean with 95% band; dashed: theory)."""
    from matplotlib import colormaps
    from matplotlib.figure import Figure

    figs: dict[str, Any] = {}
    if table.empty:
        return figs
    model = str(table["model"].iloc[0])
    curves = table[table["generation"].notna()]
    regimes = list(dict.fromkeys(curves["regime"]))
    tab10 = colormaps["tab10"]
    colors = {r: tab10(i % 10) for i, r in enumerate(regimes)}
    styles = ["-", ":", "-."]
    for metric in _FIGURE_METRICS:
        sub = curves[curves["metric"] == metric]
        if sub.empty:
            continue
        # layout="constrained": the layout is computed when the figure is drawn, not here
        fig = Figure(figsize=(7.5, 4.5), layout="constrained")  # not registered with pyplot
        ax = fig.subplots()
        groups = {k: g.sort_values("generation") for k, g in sub.groupby(["regime", "method"])}
        methods = [m for m in dict.fromkeys(sub["method"]) if m != "theory"]
        for reg in regimes:
            for mi, method in enumerate(methods):
                s = groups.get((reg, method))
                if s is None:
                    continue
                x = s["generation"].to_numpy(dtype=float)
                name = reg if len(methods) == 1 else f"{reg} ({method})"
                ax.plot(x, s["value"], styles[mi % 3], color=colors[reg], label=name)
                ax.fill_between(x, s["ci_low"], s["ci_high"], color=colors[reg], alpha=0.15)
            t = groups.get((reg, "theory"))
            if t is not None:
                ax.plot(
                    t["generation"].to_numpy(dtype=float),
                    t["value"],
                    "--",
                    color=colors[reg],
                    linewidth=1.0,
                    label=f"{reg} (theory)",
                )
        vals = sub["value"].to_numpy(dtype=float)
        vals = vals[np.isfinite(vals) & (vals > 0)]
        if vals.size and metric != "log_var_ratio" and vals.max() / vals.min() > 100:
            ax.set_yscale("log")
        ax.set_xlabel("generation (1 = fit on real data)")
        ax.set_ylabel(_YLABEL.get(model, "distance") if metric == "distance" else metric)
        ax.set_title(f"self-consuming loop, {model}: {metric}")
        ax.legend(fontsize=7, loc="best")
        figs[metric] = fig
    return figs


def headline(table: pd.DataFrame) -> dict[str, float]:
    """Final-generation mean distance per regime and the measured contraction factors."""
    out: dict[str, float] = {}
    sim = table[(table["method"] != "theory") & (table["metric"] == "distance")]
    if sim.empty:
        return out
    main = "token-lm" if "token-lm" in set(sim["method"]) else None
    if main is not None:
        sim = sim[sim["method"] == main]
    for reg, s in sim.groupby("regime", sort=False):
        last = s.loc[s["generation"].idxmax()]
        out[f"distance@final/{reg}"] = float(last["value"])
    con = table[(table["method"] != "theory") & (table["metric"] == "contraction")]
    for _, row in con.iterrows():
        out[f"contraction/{row['regime']}"] = float(row["value"])
    return out


EXPERIMENT = register_experiment(
    Experiment(
        name=NAME,
        claim=CLAIM,
        source=SOURCE,
        config_cls=Config,
        run=run,
        figures=figures,
        headline=headline,
    )
)

__all__ = ["Config", "run", "figures", "headline", "build_regimes", "EXPERIMENT", "MODELS"]
