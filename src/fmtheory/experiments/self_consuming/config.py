"""Configuration of the ``self-consuming`` experiment: the model families' sections, the data mix,
the sample-size schedule, the reference regimes, and :func:`build_regimes` (which regimes a config
runs, with their roles)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field

from fmtheory.contract import ConfigError, ExperimentConfig, Section
from fmtheory.experiments.self_consuming.regimes import Regime, RegimeSet, Sizes, make_regime

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
