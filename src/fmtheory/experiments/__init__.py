"""One module per claim. Importing this package registers every experiment."""

from fmtheory._discover import import_submodules
from fmtheory.experiments.base import (
    Check,
    ConfigError,
    Experiment,
    ExperimentConfig,
    Result,
    RunContext,
    get_experiment,
    list_experiments,
    register_experiment,
)

# Every module of this package registers its experiment on import: a new claim is a new file.
import_submodules(__name__, skip=("base",))

__all__ = [
    "Check",
    "ConfigError",
    "Experiment",
    "ExperimentConfig",
    "Result",
    "RunContext",
    "get_experiment",
    "list_experiments",
    "register_experiment",
]
