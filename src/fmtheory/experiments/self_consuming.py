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

**The loop.**  Generation 1 fits ``n_1`` real points.  Generation ``g ≥ 2`` fits ``n_g = n0·round(g^k)``
points (k = 0 constant, 1 linear, ``samples.power`` polynomial): ``round(α n_g)`` fresh real draws,
the rest drawn from model ``g−1``.  **Correction (implemented precisely):** each of those synthetic
samples is replaced, independently with probability ``γ/(1+γ)``, by a fresh real draw, so the
synthetic part is an exact sample of ``π_γ(p_θ) = (p_θ + γ p_data)/(1+γ)`` — Gillman et al.'s idealized
correction with ``p_θ* = p_data``.  ``replace`` fits this dataset alone; ``accumulate`` fits it
together with every earlier dataset.  Linear regression mixes at the level of design rows: a random
``round(αT)`` rows carry real labels, and each copy of another row is relabelled by ``w*`` with
probability ``γ/(1+γ)``.

**Regimes.**  Beside the configured one (``mix``, ``samples``), ``compare.enabled`` runs the reference
regimes the checks need: ``replace`` (α = 0), ``accumulate``, ``replace α=compare.real_fraction``,
the same with each ``γ`` of ``compare.gammas``, and ``replace n∝i^k`` (``k = compare.power``).

Generation numbers in the table count fits (1 = the fit on real data), as in the theory registry.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, Literal

import numpy as np
import pandas as pd
import torch
from pydantic import Field
from scipy.stats import norm

from fmtheory.experiments._stl_common import LoopOutput, Regime, make_regime, regime_rng
from fmtheory.experiments._stl_density import DensityLoopSpec, run_density_loop
from fmtheory.experiments._stl_exact import (
    GaussianLoopSpec,
    LinregLoopSpec,
    run_gaussian_loop,
    run_linreg_loop,
)
from fmtheory.experiments.base import (
    Check,
    ConfigError,
    Experiment,
    ExperimentConfig,
    Result,
    RunContext,
    Section,
    register_experiment,
)
from fmtheory.tasks.generative import GaussianSpec, ZipfSpec, make_mixture_data
from fmtheory.theory import self_consuming as th

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

#: family-wise false-alarm rate of every "simulation matches the closed form" check
FAMILY_ALPHA = 1e-3
#: z threshold of single comparisons between regimes (|z| < 2: inconclusive)
COMPARE_Z = 2.0
#: mean-type Gaussian metrics are compared only where Var[ln det] ≤ this (heavier tails beyond)
HEAVY_TAIL_LOGVAR = 0.5

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


class GmmSection(Section):
    """Gaussian mixture fitted by EM (scikit-learn) to a multimodal real distribution."""

    data: Literal["trimodal-1d", "ring-2d", "digits-2d"] = "trimodal-1d"
    components: int = Field(3, ge=1, le=64, description="mixture components K")
    eval_samples: int = Field(400, ge=10, le=5000, description="draws per side for W1/W2")
    grid: int = Field(200, ge=8, le=2000, description="grid points per axis for TV")
    n0: int = Field(500, ge=2, le=10**6)
    generations: int = Field(25, ge=1, le=100_000)
    replicates: int = Field(6, ge=1, le=10_000)


class KdeSection(Section):
    """Gaussian kernel density estimate (scikit-learn) of a multimodal real distribution."""

    data: Literal["trimodal-1d", "ring-2d", "digits-2d"] = "trimodal-1d"
    bandwidth: float = Field(0.3, gt=0.0, le=100.0, description="kernel bandwidth h", **_F)
    eval_samples: int = Field(400, ge=10, le=5000, description="draws per side for W1/W2")
    grid: int = Field(200, ge=8, le=2000, description="grid points per axis for TV")
    n0: int = Field(500, ge=2, le=10**6)
    generations: int = Field(25, ge=1, le=100_000)
    replicates: int = Field(6, ge=1, le=10_000)


class NeuralSection(Section):
    """Tiny neural bigram model over i.i.d. Zipf tokens, trained with the shared loop."""

    vocab: int = Field(200, ge=2, le=100_000)
    exponent: float = Field(1.1, gt=0.0, le=10.0, description="Zipf exponent β", **_F)
    seq_len: int = Field(4, ge=1, le=256)
    head: int = Field(20, ge=1, description="ranks ≤ head are the head, the rest the tail")
    embed_dim: int = Field(16, ge=1, le=1024)
    hidden: int = Field(64, ge=1, le=4096)
    steps: int = Field(300, ge=1, le=1_000_000, description="optimizer steps per generation")
    lr: float = Field(3e-3, gt=0.0, le=10.0, **_F)
    batch_size: int = Field(256, ge=1, le=1_000_000)
    weight_decay: float = Field(0.0, ge=0.0, le=10.0, **_F)
    warm_start: bool = Field(False, description="continue from the previous generation")
    n0: int = Field(1000, ge=1, le=10**7, description="sequences per generation")
    generations: int = Field(10, ge=1, le=10_000)
    replicates: int = Field(2, ge=1, le=1000)


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
    def model_validate(cls, obj: Any, *args: Any, **kwargs: Any) -> Config:  # type: ignore[override]
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
        if self.model == "gmm" and n0 < self.gmm.components:
            raise ConfigError(field, n0, f"must be >= gmm.components = {self.gmm.components}")


@dataclass(frozen=True)
class Sizes:
    n0: int
    generations: int
    replicates: int
    record_every: int


# --------------------------------------------------------------------------------------------
# regimes
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RegimeSet:
    """The regimes to run and the labels of the reference roles (None when not run)."""

    regimes: list[Regime]
    configured: str
    synthetic: str | None = None
    accumulate: str | None = None
    real: str | None = None
    corrected: tuple[str, ...] = ()
    growing: str | None = None


def build_regimes(cfg: Config) -> RegimeSet:
    """Configured regime plus, if ``compare.enabled``, the reference ones (deduplicated by label)."""
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
    )
    torch_seed = int(rng.integers(0, 2**62))
    cat = run_categorical_loop(spec, regime, rng)
    net = run_neural_loop(spec, regime, torch_seed, device=ctx.device, tick=tick)
    return [net, cat]


def _ticks_per_generation(cfg: Config, sizes: Sizes) -> int:
    return 1 if cfg.model in ("gaussian", "linreg") else sizes.replicates


class _Bar:
    """A rich progress bar on stderr (or nothing)."""

    def __init__(self, enabled: bool, total: int, description: str):
        self._p = None
        if enabled:
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )

            self._p = Progress(
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                TimeRemainingColumn(),
                console=Console(stderr=True),
            )
            self._p.start()
            self._task = self._p.add_task(description, total=total)

    def describe(self, text: str) -> None:
        if self._p is not None:
            self._p.update(self._task, description=text)

    def tick(self, n: int) -> None:
        if self._p is not None:
            self._p.advance(self._task, n)

    def close(self) -> None:
        if self._p is not None:
            self._p.stop()


def run(config: Config, ctx: RunContext | None = None) -> Result:
    """Run every regime of ``config`` and compare with the closed forms (see the module docstring)."""
    ctx = ctx or RunContext()
    config.check_consistency()
    sizes = config.sizes()
    rset = build_regimes(config)
    per_gen = _ticks_per_generation(config, sizes)
    bar = _Bar(ctx.progress, len(rset.regimes) * sizes.generations * per_gen, NAME)
    outputs: dict[str, list[LoopOutput]] = {}
    try:
        for regime in rset.regimes:
            bar.describe(f"{config.model}: {regime.label}")
            outputs[regime.label] = _run_regime(config, sizes, regime, ctx, bar.tick)
    finally:
        bar.close()
    theory = {r.label: _theory_curves(config, sizes, r) for r in rset.regimes}
    table = _build_table(config, sizes, rset, outputs, theory)
    checks = _checks(config, sizes, rset, outputs, theory)
    return Result(table=table, checks=checks, figures=figures(table))


# --------------------------------------------------------------------------------------------
# closed forms per regime
# --------------------------------------------------------------------------------------------


def _theory_curves(cfg: Config, sizes: Sizes, reg: Regime) -> dict[str, Callable[[int], float]]:
    """metric -> (generation -> closed-form expectation) for the metrics that have one here."""
    out: dict[str, Callable[[int], float]] = {}
    n0, k = sizes.n0, reg.power
    if cfg.model == "gaussian":
        s = cfg.gaussian
        mle = s.estimator == "mle"
        if s.fit_covariance and reg.fully_synthetic and reg.mode == "replace":
            out["log_var_ratio"] = lambda g: th.gaussian_logvar_mean(
                M=n0, generation=g, dim=s.dim, power=k, mle=mle
            )
            out["log_var_ratio_var"] = lambda g: th.gaussian_logvar_variance(
                M=n0, generation=g, dim=s.dim, power=k
            )
            out["mean_sq_err"] = lambda g: th.gaussian_mean_drift(
                sigma=s.std, M=n0, generation=g, dim=s.dim, power=k, mle=mle
            )
            if s.dim == 1:
                out["var_ratio"] = lambda g: (
                    th.gaussian_mle_variance(sigma=1.0, M=n0, generation=g, power=k) if mle else 1.0
                )
                out["w2_sq"] = lambda g: th.gaussian_expected_w2sq(
                    sigma=s.std, M=n0, generation=g, power=k, mle=mle
                )
        if not s.fit_covariance:
            mse: Callable[[int], float] | None = None
            if reg.fully_synthetic:
                acc = reg.mode == "accumulate"
                mse = lambda g: th.gaussian_mean_drift(  # noqa: E731
                    sigma=s.std, M=n0, generation=g, dim=s.dim, power=k, accumulate=acc
                )
            elif reg.mode == "replace" and k == 0:
                mse = lambda g: th.gaussian_mix_mean_mse(  # noqa: E731
                    sigma=s.std,
                    n=n0,
                    real_fraction=reg.real_fraction,
                    gamma=reg.gamma,
                    generation=g,
                    dim=s.dim,
                )
            if mse is not None:
                out["mean_sq_err"] = mse
                out["w2_sq"] = mse  # Σ fixed: W2² = ||μ_g − μ*||²
    elif cfg.model == "linreg" and reg.fully_synthetic:
        s = cfg.linreg
        fn = th.linreg_replace_error if reg.mode == "replace" else th.linreg_accumulate_error
        out["distance"] = lambda g: fn(d=s.dim, T=n0, sigma=s.noise_std, generation=g, power=k)
    elif cfg.model == "kde" and reg.fully_synthetic and reg.mode == "replace":
        real_var = make_mixture_data(cfg.kde.data).variance()
        out["model_var"] = lambda g: th.kde_model_variance(
            real_var=real_var, bandwidth=cfg.kde.bandwidth, n0=n0, generation=g, power=k
        )
    elif cfg.model == "neural":
        s = cfg.neural
        miss = th.zipf_missing_mass(vocab=s.vocab, exponent=s.exponent, n=n0 * s.seq_len)
        out["missing_mass@categorical-mle"] = lambda g: miss if g == 1 else float("nan")
    return out


def _contraction_theory(cfg: Config, sizes: Sizes, reg: Regime) -> float | None:
    """Exact κ of ``E[e_{t+1} | e_t] = κ e_t`` for replace regimes of the exact families."""
    if cfg.model not in ("gaussian", "linreg") or reg.mode != "replace":
        return None
    if reg.power != 0 and reg.real_fraction > 0:
        return None  # the rounding of α n_i changes with i: no single κ
    return th.mix_contraction(real_fraction=reg.real_fraction, gamma=reg.gamma, n=sizes.n0)


# --------------------------------------------------------------------------------------------
# the table
# --------------------------------------------------------------------------------------------

Z95 = 1.959963984540054


def _mean_ci(v: np.ndarray) -> tuple[float, float, float, float]:
    """(mean, lo, hi, se) over the last axis, ignoring non-finite values."""
    v = v[np.isfinite(v)]
    if v.size == 0:
        return (float("nan"),) * 4
    m = float(v.mean())
    se = float(v.std(ddof=1) / math.sqrt(v.size)) if v.size > 1 else float("nan")
    return m, m - Z95 * se, m + Z95 * se, se


def _median_ci(v: np.ndarray) -> tuple[float, float, float]:
    """Median with the distribution-free 95% order-statistic interval."""
    v = np.sort(v[~np.isnan(v)])
    n = v.size
    if n == 0:
        return (float("nan"),) * 3
    lo = max(0, int(math.floor(n / 2 - Z95 * math.sqrt(n) / 2)) - 1)
    hi = min(n - 1, int(math.ceil(n / 2 + Z95 * math.sqrt(n) / 2)))
    return float(np.median(v)), float(v[lo]), float(v[hi])


def _var_ci(v: np.ndarray) -> tuple[float, float, float, float]:
    """Sample variance with a distribution-free SE ``sqrt((m4 − s⁴)/n)``."""
    v = v[np.isfinite(v)]
    if v.size < 3:
        return (float("nan"),) * 4
    s2 = float(v.var(ddof=1))
    m4 = float(((v - v.mean()) ** 4).mean())
    se = math.sqrt(max(m4 - s2 * s2, 0.0) / v.size)
    return s2, s2 - Z95 * se, s2 + Z95 * se, se


_MEDIAN_METRICS = ("distance", "var_ratio")
_VARIANCE_METRICS = ("log_var_ratio",)


def _build_table(
    cfg: Config,
    sizes: Sizes,
    rset: RegimeSet,
    outputs: dict[str, list[LoopOutput]],
    theory: dict[str, dict[str, Callable[[int], float]]],
) -> pd.DataFrame:
    rows: list[dict[str, Any]] = []
    for reg in rset.regimes:
        base = {
            "seed": cfg.seed,
            "model": cfg.model,
            "regime": reg.label,
            "configured": reg.label == rset.configured,
            "real_fraction": reg.real_fraction,
            "mode": reg.mode,
            "gamma": reg.gamma,
            "schedule": reg.schedule,
            "power": reg.power,
            "n0": sizes.n0,
            "replicates": sizes.replicates,
        }
        for out in outputs[reg.label]:
            for metric, arr in out.metrics.items():
                for gi, g in enumerate(out.generations):
                    m, lo, hi, _ = _mean_ci(arr[gi])
                    rows.append(
                        base
                        | dict(method=out.method, metric=metric, generation=int(g), value=m)
                        | dict(ci_low=lo, ci_high=hi)
                    )
                    if metric in _MEDIAN_METRICS:
                        med, mlo, mhi = _median_ci(arr[gi])
                        rows.append(
                            base
                            | dict(method=out.method, metric=f"{metric}_median", generation=int(g))
                            | dict(value=med, ci_low=mlo, ci_high=mhi)
                        )
                    if metric in _VARIANCE_METRICS:
                        s2, vlo, vhi, _ = _var_ci(arr[gi])
                        rows.append(
                            base
                            | dict(method=out.method, metric=f"{metric}_var", generation=int(g))
                            | dict(value=s2, ci_low=vlo, ci_high=vhi)
                        )
            if out.contraction is not None and out.contraction.count > 0:
                k, se = out.contraction.estimate()
                rows.append(
                    base
                    | dict(method=out.method, metric="contraction", generation=None, value=k)
                    | dict(ci_low=k - Z95 * se, ci_high=k + Z95 * se)
                )
            for key, val in out.extra.items():
                rows.append(
                    base
                    | dict(method=out.method, metric=key, generation=None, value=val)
                    | dict(ci_low=val, ci_high=val)
                )
        gens = outputs[reg.label][0].generations
        for metric, fn in theory[reg.label].items():
            name = metric.split("@")[0]
            for g in gens:
                v = fn(int(g))
                if math.isfinite(v):
                    rows.append(
                        base
                        | dict(method="theory", metric=name, generation=int(g), value=v)
                        | dict(ci_low=v, ci_high=v)
                    )
        kappa = _contraction_theory(cfg, sizes, reg)
        if kappa is not None:
            rows.append(
                base
                | dict(method="theory", metric="contraction", generation=None, value=kappa)
                | dict(ci_low=kappa, ci_high=kappa)
            )
    table = pd.DataFrame(rows)
    table["generation"] = table["generation"].astype("Int64")
    first = ["method", "metric", "value", "ci_low", "ci_high", "seed", "model", "regime"]
    return table[first + [c for c in table.columns if c not in first]]


# --------------------------------------------------------------------------------------------
# checks
# --------------------------------------------------------------------------------------------


def _output(outputs: dict[str, list[LoopOutput]], label: str | None, method: str | None = None):
    if label is None or label not in outputs:
        return None
    for out in outputs[label]:
        if method is None or out.method == method:
            return out
    return None


def _match_check(
    *,
    claim: str,
    source: str,
    out: LoopOutput,
    metric: str,
    fn: Callable[[int], float],
    stat: Literal["mean", "var"] = "mean",
    keep: Callable[[int], bool] | None = None,
    note: str = "",
) -> Check:
    """Simulation vs closed form at every recorded generation, Bonferroni over generations."""
    gens, means, ses, preds = [], [], [], []
    for gi, g in enumerate(out.generations):
        if keep is not None and not keep(int(g)):
            continue
        pred = fn(int(g))
        if not math.isfinite(pred):
            continue
        m, _, _, se = _mean_ci(out.metrics[metric][gi]) if stat == "mean" else _var_ci(
            out.metrics[metric][gi]
        )
        gens.append(int(g))
        means.append(m)
        ses.append(se)
        preds.append(pred)
    if not gens:
        return Check(claim, source, "n/a", "no generation qualifies " + note, "-", None)
    k = len(gens)
    zc = float(norm.ppf(1 - FAMILY_ALPHA / (2 * k)))
    means_a, ses_a, preds_a = np.array(means), np.array(ses), np.array(preds)
    slack = 1e-9 * (1.0 + np.abs(preds_a))
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(ses_a > 0, (means_a - preds_a) / ses_a, np.inf)
    z = np.where(np.abs(means_a - preds_a) <= slack, 0.0, z)
    finite = np.isfinite(means_a)
    holds = bool(finite.all() and (np.abs(z) <= zc).all())
    worst = int(np.nanargmax(np.where(np.isfinite(z), np.abs(z), 1e300)))
    stat_name = "variance" if stat == "var" else "mean"
    return Check(
        claim=claim,
        source=source,
        predicted=f"{preds_a[-1]:.6g} at generation {gens[-1]}",
        measured=(
            f"{stat_name} {means_a[-1]:.6g} ± {ses_a[-1]:.2g} (SE) at generation {gens[-1]}; "
            f"worst |z| = {abs(z[worst]):.2f} at generation {gens[worst]}"
        ),
        tolerance=(
            f"|{stat_name} − theory| ≤ {zc:.2f}·SE at each of {k} recorded generations "
            f"(Bonferroni, family-wise {FAMILY_ALPHA:g}){note}"
        ),
        holds=holds,
    )


def _final(out: LoopOutput, metric: str) -> np.ndarray:
    return out.metrics[metric][-1]


def _compare_check(
    *, claim: str, source: str, low: np.ndarray, high: np.ndarray, what: str, paired: bool = False
) -> Check:
    """Predicted: mean(low) < mean(high).  z ≥ 2 holds, z ≤ −2 fails, else inconclusive (None)."""
    if paired:
        d = high - low
        d = d[np.isfinite(d)]
        diff = float(d.mean()) if d.size else float("nan")
        se = float(d.std(ddof=1) / math.sqrt(d.size)) if d.size > 1 else float("nan")
    else:
        ml, _, _, sl = _mean_ci(low)
        mh, _, _, sh = _mean_ci(high)
        diff, se = mh - ml, math.sqrt(sl**2 + sh**2)
    z = diff / se if se > 0 else (math.inf if diff > 0 else -math.inf if diff < 0 else 0.0)
    if not math.isfinite(diff):
        holds: bool | None = False
    elif z >= COMPARE_Z:
        holds = True
    elif z <= -COMPARE_Z:
        holds = False
    else:
        holds = None
    measured = f"{what}: difference {diff:.4g} ± {se:.2g} (SE), z = {z:.2f}"
    if holds is None:
        measured += " — inconclusive at this size"
    return Check(
        claim,
        source,
        "difference > 0",
        measured,
        f"holds if z ≥ {COMPARE_Z:g}; fails if z ≤ −{COMPARE_Z:g} "
        f"({'paired over replicates' if paired else 'Welch, independent regimes'})",
        holds,
    )


def _checks(
    cfg: Config,
    sizes: Sizes,
    rset: RegimeSet,
    outputs: dict[str, list[LoopOutput]],
    theory: dict[str, dict[str, Callable[[int], float]]],
) -> list[Check]:
    checks: list[Check] = []
    main_method = "token-lm" if cfg.model == "neural" else None
    g_last = sizes.generations

    # 1. closed forms, every regime that has one
    for reg in rset.regimes:
        for key, fn in theory[reg.label].items():
            metric, _, method = key.partition("@")
            out = _output(outputs, reg.label, method or None)
            if out is None:
                continue
            checks.extend(_closed_form_checks(cfg, sizes, reg, out, metric, fn))

    # 2. contraction factor of the refitted mean / OLS weights
    for reg in rset.regimes:
        kappa = _contraction_theory(cfg, sizes, reg)
        out = _output(outputs, reg.label)
        if kappa is None or out is None or out.contraction is None:
            continue
        k_hat, se = out.contraction.estimate()
        zc = float(norm.ppf(1 - FAMILY_ALPHA / 2))
        ok = math.isfinite(k_hat) and abs(k_hat - kappa) <= zc * se + 1e-9
        checks.append(
            Check(
                claim=f"[{reg.label}] E[e_(t+1) | e_t] = κ e_t with κ = (1−α)/(1+γ) "
                "= λ/(1+λ)/(1+γ) (exact contraction of the refitted mean)",
                source="Bertrand et al. 2024 Gaussian example (survey §5.4, Thm 5.4); "
                "Gillman et al. 2024 correction (Thm 5.6)",
                predicted=kappa,
                measured=f"{k_hat:.5g} ± {se:.2g} (robust SE, {out.contraction.count} pairs)",
                tolerance=f"|κ̂ − κ| ≤ {zc:.2f}·SE (regression through the origin, pooled)",
                holds=bool(ok),
            )
        )

    # 3. comparisons between regimes (final generation, distance to real)
    syn = _output(outputs, rset.synthetic, main_method)
    if syn is not None:
        if g_last > 1:
            checks.append(
                _compare_check(
                    claim="without real data the model drifts away from the real distribution "
                    f"(distance at generation {g_last} > at generation 1)",
                    source="survey §5.4; Shumailov et al. 2024",
                    low=syn.metrics["distance"][0],
                    high=_final(syn, "distance"),
                    what=f"distance, generation {g_last} − generation 1 ({rset.synthetic})",
                    paired=True,
                )
            )
        pairs = [
            (
                rset.real,
                "a real-data share keeps the loop closer to the real distribution than "
                "pure self-consumption",
                "Bertrand et al. 2024 (survey Thm 5.4)",
            ),
            (
                rset.accumulate,
                "accumulating data keeps the error below that of replacing it",
                "Gerstgrasser et al. 2024 (survey §5.4)",
            ),
            (
                rset.growing,
                f"a sample size growing like i^{cfg.compare.power:g} keeps a fully synthetic "
                "loop closer than a constant one",
                "Fu et al. 2024 (survey Cor 5.8)",
            ),
        ]
        for label, claim, source in pairs:
            other = _output(outputs, label, main_method)
            if other is None or label == rset.synthetic:
                continue
            checks.append(
                _compare_check(
                    claim=f"{claim} ({label} vs {rset.synthetic}, generation {g_last})",
                    source=source,
                    low=_final(other, "distance"),
                    high=_final(syn, "distance"),
                    what="distance(replace) − distance(" + label + ")",
                )
            )
    chain = [rset.real, *rset.corrected] if rset.real else []
    for a, b in zip(chain[:-1], chain[1:], strict=True):
        oa, ob = _output(outputs, a, main_method), _output(outputs, b, main_method)
        if oa is None or ob is None:
            continue
        checks.append(
            _compare_check(
                claim=f"a stronger correction brings the loop closer to the real distribution "
                f"({b} vs {a}, generation {g_last})",
                source="Gillman et al. 2024 (survey Thm 5.6)",
                low=_final(ob, "distance"),
                high=_final(oa, "distance"),
                what=f"distance({a}) − distance({b})",
            )
        )

    # 4. stability with a real share: the distance stops growing (exact families)
    real = _output(outputs, rset.real)
    if cfg.model in ("gaussian", "linreg") and real is not None and g_last >= 4:
        checks.append(_plateau_check(cfg, sizes, rset, real))

    # 5. family-specific
    if cfg.model == "gaussian":
        checks.extend(_gaussian_collapse_checks(cfg, sizes, rset, outputs))
    if cfg.model == "linreg":
        acc = _output(outputs, rset.accumulate)
        if acc is not None:
            s = cfg.linreg
            first = th.linreg_replace_error(d=s.dim, T=sizes.n0, sigma=s.noise_std, generation=1)
            bound = (math.pi**2 / 6) * first
            m, _, _, se = _mean_ci(_final(acc, "distance"))
            zc = float(norm.ppf(1 - FAMILY_ALPHA))
            checks.append(
                Check(
                    claim=f"[{rset.accumulate}] the error stays bounded by π²/6 times the first "
                    f"generation's σ²d/(T−d−1) (generation {g_last})",
                    source="Gerstgrasser et al. 2024 (survey §5.4)",
                    predicted=f"≤ {bound:.6g}",
                    measured=f"{m:.6g} ± {se:.2g} (SE)",
                    tolerance=f"one-sided: (mean − bound) ≤ {zc:.2f}·SE",
                    holds=bool(m - bound <= zc * se),
                )
            )
    if cfg.model == "neural":
        checks.extend(_neural_checks(cfg, sizes, rset, outputs))
    return checks


def _closed_form_checks(
    cfg: Config,
    sizes: Sizes,
    reg: Regime,
    out: LoopOutput,
    metric: str,
    fn: Callable[[int], float],
) -> list[Check]:
    """One 'simulation = closed form' check for ``metric`` of regime ``reg``."""
    names = {
        "log_var_ratio": ("E[ln det(Σ_n Σ⁻¹)] = Σ_i [E ln det Wishart − d ln k_i] "
                          "(= n[ψ((M−1)/2) − ln((M−1)/2)] for d = 1)",
                          "stl-gaussian-logvar; survey §5.4"),
        "log_var_ratio_var": ("Var[ln det(Σ_n Σ⁻¹)] = Σ_i Σ_j ψ'((n_i − j)/2)",
                              "stl-gaussian-logvar-variance; survey §5.4"),
        "mean_sq_err": ("E||μ_n − μ||² follows the closed form (nσ²/M for the unbiased refit)",
                        "stl-gaussian-mean-drift / stl-gaussian-mix-mean-mse; survey §5.4"),
        "var_ratio": ("E[σ_n²]/σ² = 1 (unbiased: martingale) or ((M−1)/M)^n (MLE)",
                      "stl-gaussian-mle-variance; survey §5.4"),
        "w2_sq": ("exact E[W2²(fitted Gaussian, real Gaussian)]",
                  "stl-gaussian-expected-w2sq; Dowson & Landau 1982"),
        "distance": ("E||ŵ_n − w*||² = σ²d/(T−d−1)·Σ_i 1/c_i (replace) or Σ_i c_i/C_i² "
                     "(accumulate): linear growth vs bounded",
                     "stl-linreg-replace / stl-linreg-accumulate; Gerstgrasser et al. 2024"),
        "model_var": ("variance of the refitted KDE follows E[v_i] = (n_i−1)/n_i (E[v_{i−1}] + h²)",
                      "stl-kde-variance (derived)"),
        "missing_mass": ("categorical MLE: mass of unseen tokens at generation 1 = "
                         "Σ_i p_i (1 − p_i)^(n0·L)",
                         "stl-zipf-missing-mass; Dohmatob et al. 2024"),
    }  # fmt: skip
    claim, source = names[metric]
    keep = None
    note = ""
    heavy = (
        cfg.model == "gaussian"
        and cfg.gaussian.fit_covariance
        and metric in ("mean_sq_err", "var_ratio", "w2_sq")
    )
    if heavy:
        s = cfg.gaussian

        def keep(g: int) -> bool:
            v = th.gaussian_logvar_variance(M=sizes.n0, generation=g, dim=s.dim, power=reg.power)
            return v <= HEAVY_TAIL_LOGVAR

        note = (
            f"; only generations with Var[ln det] ≤ {HEAVY_TAIL_LOGVAR:g} (beyond, the mean is "
            "dominated by rare paths: the median and log-variance are checked instead)"
        )
    stat = "var" if metric.endswith("_var") else "mean"
    raw = metric[: -len("_var")] if stat == "var" else metric
    return [
        _match_check(
            claim=f"[{reg.label}] {claim}",
            source=source,
            out=out,
            metric=raw,
            fn=fn,
            stat=stat,
            keep=keep,
            note=note,
        )
    ]


def _plateau_check(cfg: Config, sizes: Sizes, rset: RegimeSet, real: LoopOutput) -> Check:
    """With a real share the distance is stationary: generation G vs G/2, paired."""
    gens = list(real.generations)
    half = min(gens, key=lambda g: abs(g - sizes.generations // 2))
    kappa = th.mix_contraction(real_fraction=cfg.compare.real_fraction, gamma=0.0, n=sizes.n0)
    metric = "distance"
    claim = (
        f"[{rset.real}] with a real-data share the loop is stable: the distance to the real "
        f"distribution at generation {sizes.generations} equals that at generation {half}"
    )
    source = "Bertrand et al. 2024 (survey Thm 5.4)"
    if kappa ** (sizes.generations - half) > 0.01:
        return Check(
            claim,
            source,
            "stationary",
            f"κ^(G−G/2) = {kappa ** (sizes.generations - half):.3g} > 0.01: transient not over",
            "-",
            None,
        )
    d = real.metrics[metric][-1] - real.metrics[metric][gens.index(half)]
    d = d[np.isfinite(d)]
    m = float(d.mean())
    se = float(d.std(ddof=1) / math.sqrt(d.size)) if d.size > 1 else float("nan")
    zc = float(norm.ppf(1 - FAMILY_ALPHA / 2))
    return Check(
        claim,
        source,
        0.0,
        f"mean paired difference {m:.4g} ± {se:.2g} (SE)",
        f"|difference| ≤ {zc:.2f}·SE (the transient κ^(G/2) ≤ 0.01 is over)",
        bool(abs(m) <= zc * se + 1e-12),
    )


def _gaussian_collapse_checks(
    cfg: Config, sizes: Sizes, rset: RegimeSet, outputs: dict[str, list[LoopOutput]]
) -> list[Check]:
    s = cfg.gaussian
    syn = _output(outputs, rset.synthetic or rset.configured)
    reg_label = rset.synthetic or rset.configured
    regime = next(r for r in rset.regimes if r.label == reg_label)
    if syn is None or not s.fit_covariance or not regime.fully_synthetic:
        return []
    g = sizes.generations
    e_log = th.gaussian_logvar_mean(
        M=sizes.n0, generation=g, dim=s.dim, power=regime.power, mle=s.estimator == "mle"
    )
    approx_median = math.exp(e_log / s.dim)
    med, lo, hi = _median_ci(_final(syn, "var_ratio"))
    claim = (
        f"[{reg_label}] collapse: the median of det(Σ_n Σ⁻¹)^(1/d) (σ_n²/σ² in 1-D) falls "
        f"below 1 by generation {g}"
        + (" although E[σ_n²] = σ² (martingale)" if s.estimator == "unbiased" else "")
    )
    source = "survey §5.4; Shumailov et al. 2024"
    if approx_median > 0.9:
        return [
            Check(
                claim,
                source,
                f"≈ {approx_median:.3g} (exp of E ln)",
                f"median {med:.3g}; too few generations for a visible collapse",
                "-",
                None,
            )
        ]
    return [
        Check(
            claim,
            source,
            f"≈ {approx_median:.3g} (exp E[ln det]/d: the median if ln det is normal)",
            f"median {med:.4g}, 95% CI [{lo:.4g}, {hi:.4g}]",
            "upper 95% order-statistic bound < 1",
            bool(hi < 1.0),
        )
    ]


def _neural_checks(
    cfg: Config, sizes: Sizes, rset: RegimeSet, outputs: dict[str, list[LoopOutput]]
) -> list[Check]:
    checks: list[Check] = []
    label = rset.synthetic or rset.configured
    cat = _output(outputs, label, "categorical-mle")
    net = _output(outputs, label, "token-lm")
    regime = next(r for r in rset.regimes if r.label == label)
    if cat is not None and regime.fully_synthetic and regime.mode == "replace":
        mm = cat.metrics["missing_mass"]
        mono = bool((np.diff(mm, axis=0) >= -1e-12).all())
        checks.append(
            Check(
                f"[{label}] categorical MLE: a token once unseen never returns (the missing mass "
                "never decreases along a fully synthetic chain)",
                "Dohmatob et al. 2024; Shumailov et al. 2024",
                "non-decreasing in every replicate",
                f"missing mass {mm[0].mean():.4g} (generation 1) -> {mm[-1].mean():.4g} "
                f"(generation {sizes.generations}); monotone: {mono}",
                "exact (every replicate, every recorded generation)",
                mono,
            )
        )
    if net is not None and sizes.generations > 1:
        checks.append(
            _compare_check(
                claim=f"[{label}] token model: the tail (ranks > {cfg.neural.head}) loses mass "
                "over the generations",
                source="Dohmatob et al. 2024 ('A tale of tails'); Shumailov et al. 2024",
                low=_final(net, "tail_ratio"),
                high=net.metrics["tail_ratio"][0],
                what=f"q(tail)/p(tail), generation 1 − generation {sizes.generations}",
                paired=True,
            )
        )
    return checks


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
    "model_var",
    "tail_ratio",
    "missing_mass",
)


def figures(table: pd.DataFrame) -> dict[str, Any]:
    """One figure per metric, every regime on it (lines: mean with 95% band; dashed: theory)."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    figs: dict[str, Any] = {}
    if table.empty:
        return figs
    model = str(table["model"].iloc[0])
    curves = table[table["generation"].notna()]
    regimes = list(dict.fromkeys(curves["regime"]))
    colors = {r: plt.cm.tab10(i % 10) for i, r in enumerate(regimes)}
    styles = ["-", ":", "-."]
    for metric in _FIGURE_METRICS:
        sub = curves[curves["metric"] == metric]
        if sub.empty:
            continue
        fig, ax = plt.subplots(figsize=(7.5, 4.5))
        methods = [m for m in dict.fromkeys(sub["method"]) if m != "theory"]
        for reg in regimes:
            for mi, method in enumerate(methods):
                s = sub[(sub["regime"] == reg) & (sub["method"] == method)].sort_values(
                    "generation"
                )
                if s.empty:
                    continue
                x = s["generation"].to_numpy(dtype=float)
                name = reg if len(methods) == 1 else f"{reg} ({method})"
                ax.plot(x, s["value"], styles[mi % 3], color=colors[reg], label=name)
                ax.fill_between(x, s["ci_low"], s["ci_high"], color=colors[reg], alpha=0.15)
            t = sub[(sub["regime"] == reg) & (sub["method"] == "theory")].sort_values("generation")
            if not t.empty:
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
        if vals.size and metric not in ("log_var_ratio",) and vals.max() / vals.min() > 100:
            ax.set_yscale("log")
        ax.set_xlabel("generation (1 = fit on real data)")
        ax.set_ylabel(_YLABEL.get(model, "distance") if metric == "distance" else metric)
        ax.set_title(f"self-consuming loop, {model}: {metric}")
        ax.legend(fontsize=7, loc="best")
        fig.tight_layout()
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
