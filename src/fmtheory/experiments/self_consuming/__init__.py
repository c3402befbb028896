"""Claim: generative models retrained on their own samples collapse; real data, accumulation,
correction and growing sample sizes prevent it (survey arXiv:2410.11444 §5.4).

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
``n_g = n0·round(g^k)`` points: ``round(α n_g)`` fresh real draws, the rest drawn from model
``g−1``; each synthetic sample is replaced, independently with probability ``γ/(1+γ)``, by a
fresh real draw (Gillman et al.'s idealized correction, exactly).  ``replace`` fits this dataset
alone; ``accumulate`` fits it together with every earlier dataset.

**Regimes.**  Beside the configured one (``mix``, ``samples``), ``compare.enabled`` runs the
reference regimes the comparative checks need (``build_regimes``).  The headline numbers are the
configured regime's.

Layout: :mod:`.config` (sections, regimes of a config), :mod:`.regimes` (regime, outputs),
:mod:`.loops_exact` (Gaussian, linear regression), :mod:`.loops_density` (GMM, KDE),
:mod:`.loops_neural` (token model, categorical MLE), :mod:`.runner` (run, regime files),
:mod:`.table`, :mod:`.checks`, :mod:`.figures`.
"""

from fmtheory.contract import Chapter, Experiment, register_experiment
from fmtheory.experiments.self_consuming.checks import checks
from fmtheory.experiments.self_consuming.config import (
    CLAIM,
    MODELS,
    NAME,
    SOURCE,
    Config,
    build_regimes,
)
from fmtheory.experiments.self_consuming.figures import figures, headline
from fmtheory.experiments.self_consuming.runner import run


def label(config: Config) -> str:
    """The refitted model family, named from its config."""
    m = config.model
    if m == "gaussian":
        s = config.gaussian
        cov = f"{s.estimator} covariance" if s.fit_covariance else "covariance fixed"
        return f"Gaussian N(μ, Σ) in {s.dim}-D, {cov}"
    if m == "linreg":
        return f"OLS on a fixed design, d = {config.linreg.dim}, σ = {config.linreg.noise_std:g}"
    if m == "gmm":
        return f"GMM ({config.gmm.components} components, EM) on {config.gmm.data}"
    if m == "kde":
        return f"Gaussian KDE (h = {config.kde.bandwidth:g}) on {config.kde.data}"
    s = config.neural
    return (f"token bigram MLP (vocab {s.vocab}, embed {s.embed_dim}, hidden {s.hidden}) and the "
            "categorical MLE")  # fmt: skip


EXPERIMENT = register_experiment(
    Experiment(
        name=NAME,
        claim=CLAIM,
        source=SOURCE,
        chapter=Chapter.SELF_CONSUMING,
        config_cls=Config,
        run=run,
        checks=checks,
        figures=figures,
        headline=headline,
        label=label,
        formula="E[ln σ_n²/σ²] = n[ψ((M−1)/2) − ln((M−1)/2)] (collapse); κ = (1−α)/(1+γ) "
        "(real share α, correction γ); Σ 1/n_i < ∞ keeps a synthetic loop bounded",
        key_figure="distance",
    )
)

__all__ = ["Config", "run", "checks", "figures", "headline", "label", "build_regimes",
           "EXPERIMENT", "MODELS"]  # fmt: skip
