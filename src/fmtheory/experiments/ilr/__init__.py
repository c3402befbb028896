"""Claim: in-context learning as a Bayesian update with a learned low-rank cross-task prior (Lu & Yu
2025, arXiv:2505.12138).  A linear transformer pretrained on tasks w = w0 + Uv (rank r) estimates w
in context between the two-stage empirical Bayes estimator and the oracle; for r > n no model can.

Modules: ``config`` (sections, the plan of pretraining runs, seeds), ``training`` (the linear
transformer and the GPT forward predictor), ``table`` (measurements and theory rows), ``checks``,
``figures`` (and the headline).
"""

from __future__ import annotations

from fmtheory.contract import ConfigError, Experiment, Result, RunContext, register_experiment
from fmtheory.experiments.ilr.checks import cell_table, checks, exponent
from fmtheory.experiments.ilr.config import (
    NAME,
    SOURCE,
    Config,
    label,
    plan,
    train_contexts,
)
from fmtheory.experiments.ilr.figures import figures, headline
from fmtheory.experiments.ilr.table import (
    evaluate_cell,
    forward_rows,
    learned_prior_rows,
    run_table,
    theory_rows,
)
from fmtheory.experiments.ilr.training import train_gpt, train_run


def run(config: Config, ctx: RunContext | None = None) -> Result:
    """Train every pretraining run, evaluate every cell, compare with theory.  ``ctx=None``: CPU,
    nothing kept on disk."""
    table = run_table(config, ctx or RunContext())
    return Result(table=table, checks=checks(table, config), figures=figures(table))


EXPERIMENT = register_experiment(
    Experiment(
        name=NAME,
        claim="A transformer pretrained on tasks w = w0 + Uv learns the cross-task prior and "
        "estimates w in context close to the Bayes-optimal (oracle) estimator, even with fewer "
        "pairs than dimensions; for r > n no model can.",
        source=SOURCE,
        chapter="in-context-learning",
        config_cls=Config,
        run=run,
        checks=checks,
        figures=figures,
        headline=headline,
        label=label,
        formula="oracle MMSE = E tr(Λ⁻¹ + σ⁻²UᵀXᵀXU)⁻¹ ≈ σ²r/(n − r − 1); floor (r − n)λ for r > n",
        key_figure="phase_diagram",
    )
)

__all__ = ["Config", "run", "plan", "train_contexts", "train_run", "train_gpt", "evaluate_cell",
           "theory_rows", "learned_prior_rows", "forward_rows", "checks", "figures", "headline",
           "exponent", "cell_table", "label", "EXPERIMENT", "ConfigError"]  # fmt: skip
