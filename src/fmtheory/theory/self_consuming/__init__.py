"""Closed forms for self-consuming training loops (model collapse), survey §5.4.

Conventions shared by every function here:

* **generation** ``n`` counts fits: generation 1 is the first fit, on real data only; generation
  ``n`` is the ``n``-th fit of the chain.  Generation 0 is the real distribution itself.
* **sample-size schedule**: generation ``i`` fits ``n_i = n0 * c_i`` points with
  ``c_i = max(1, round(i ** power))``: ``power = 0`` is the constant schedule, ``1`` linear, ``k``
  the polynomial ``i^k`` (Fu et al. 2024).  :func:`schedule_sizes` is the single definition; the
  experiment imports it, so the simulated loop and the formulas use the same ``n_i``.
* **replace**: generation ``i+1`` fits ``n_{i+1}`` fresh samples of model ``i`` only;
  **accumulate**: it fits every dataset drawn so far (the real one included) plus ``n_{i+1}`` fresh
  samples of model ``i`` (Gerstgrasser et al. 2024).
* **correction of strength γ**: every synthetic sample is replaced, independently with probability
  ``γ/(1+γ)``, by a fresh sample of the real distribution.  The synthetic part is then an exact draw
  from ``π_γ(p_θ) = (p_θ + γ p_data)/(1+γ)``, the idealized self-correction of Gillman et al. 2024
  (their correction towards ``p_θ*``, with ``p_θ* = p_data`` because the families here that carry a
  closed form are well specified).

Pure numpy/scipy: nothing of fmtheory is imported except the registry.  Split by concern:
:mod:`.schedule`, :mod:`.gaussian`, :mod:`.linreg`, :mod:`.mixing` (real data, correction,
Bertrand et al.'s condition), :mod:`.kde`, :mod:`.zipf`; :mod:`.formulas` registers them (names
``stl-*``, unchanged).
"""

from __future__ import annotations

from fmtheory.theory.self_consuming import formulas as _formulas  # noqa: F401  (registers)
from fmtheory.theory.self_consuming.gaussian import (
    gaussian_expected_w2sq,
    gaussian_logvar_mean,
    gaussian_logvar_variance,
    gaussian_mean_drift,
    gaussian_mle_variance,
    gaussian_w2,
    gaussian_w2_squared_batched,
    wishart_logdet_mean,
    wishart_logdet_variance,
)
from fmtheory.theory.self_consuming.kde import (
    kde_model_variance,
)
from fmtheory.theory.self_consuming.linreg import (
    inverse_wishart_trace_mean,
    linreg_accumulate_error,
    linreg_replace_error,
)
from fmtheory.theory.self_consuming.mixing import (
    StabilityCondition,
    bertrand_stability,
    gaussian_mix_mean_mse,
    mix_contraction,
)
from fmtheory.theory.self_consuming.schedule import (
    schedule_multipliers,
    schedule_sizes,
)
from fmtheory.theory.self_consuming.zipf import (
    zipf_missing_mass,
    zipf_probs,
    zipf_tail_mass,
)

__all__ = [
    "schedule_multipliers",
    "schedule_sizes",
    "wishart_logdet_mean",
    "wishart_logdet_variance",
    "gaussian_logvar_mean",
    "gaussian_logvar_variance",
    "gaussian_mle_variance",
    "gaussian_mean_drift",
    "gaussian_expected_w2sq",
    "gaussian_w2",
    "gaussian_w2_squared_batched",
    "inverse_wishart_trace_mean",
    "linreg_replace_error",
    "linreg_accumulate_error",
    "mix_contraction",
    "gaussian_mix_mean_mse",
    "StabilityCondition",
    "bertrand_stability",
    "kde_model_variance",
    "zipf_probs",
    "zipf_tail_mass",
    "zipf_missing_mass",
]
