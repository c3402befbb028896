"""One module (or subpackage) per claim. Importing this package registers every experiment.

The contract they implement lives in :mod:`fmtheory.contract` (torch-free).
"""

from fmtheory._discover import import_submodules
from fmtheory.contract import (
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
import_submodules(__name__)

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
