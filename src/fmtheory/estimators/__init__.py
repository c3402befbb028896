"""Classical and Bayes-optimal in-context estimators, run on the same prompts as the transformer.

Every estimator is batched over prompts and over prefix lengths: ``predict_prefixes(x, y)[:, k]``
is the prediction at ``x[:, k]`` from the ``k`` pairs before it.  Names come from the registry::

    from fmtheory.estimators import create_estimator, list_estimators
    est = create_estimator("ridge", alpha=0.25)
    pred = est.predict_prefixes(x, y)          # x: (batch, n, dim), y: (batch, n) -> (batch, n)

Every non-underscore module of this package is imported here, so a new estimator module registers
itself (no list to keep in sync).
"""

from fmtheory._discover import import_submodules
from fmtheory.estimators.base import (
    ConvergenceWarning,
    ICLEstimator,
    LinearICLEstimator,
    NotFittedError,
    create_estimator,
    get_estimator_class,
    list_estimators,
    register_estimator,
)
from fmtheory.estimators.baselines import KNN, Averaging, Zero
from fmtheory.estimators.dmmse import DMMSE
from fmtheory.estimators.iterative import GradientDescent, Lasso
from fmtheory.estimators.least_squares import OLS, BayesLinear, Ridge

import_submodules(__name__)

__all__ = [
    "ICLEstimator",
    "LinearICLEstimator",
    "NotFittedError",
    "ConvergenceWarning",
    "register_estimator",
    "create_estimator",
    "get_estimator_class",
    "list_estimators",
    "Zero",
    "Averaging",
    "KNN",
    "OLS",
    "Ridge",
    "BayesLinear",
    "GradientDescent",
    "Lasso",
    "DMMSE",
]
