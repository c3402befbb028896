"""Prompt samplers: pure functions of (spec, generator). Shapes are batch-first."""

from fmtheory.tasks.regression import (
    RegressionBatch,
    RegressionSpec,
    make_generator,
    sample_regression,
)

__all__ = ["RegressionBatch", "RegressionSpec", "make_generator", "sample_regression"]
