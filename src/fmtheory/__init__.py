"""fmtheory: an executable laboratory for the mathematics of foundation models.

Layers (each imports only those listed before it): theory, tasks, estimators, models, train,
probes, experiments, report, runs, sweep, cli.  See docs/architecture.md.
"""

__version__ = "0.1.0"
