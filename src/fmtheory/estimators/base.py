"""The in-context estimator contract and its registry.

An in-context estimator is a classical or Bayes-optimal learner run on the SAME prompts as a
transformer.  It follows scikit-learn's conventions (``__init__`` stores hyperparameters only,
``fit`` returns ``self``, learned state ends in ``_``) but works on a whole batch of prompts at once:

* ``fit(x, y)`` with ``x: (batch, k, dim)``, ``y: (batch, k)`` fits one model per prompt;
  linear estimators store ``coef_: (batch, dim)``.
* ``predict(x)`` with ``x: (batch, m, dim)`` returns ``(batch, m)``: prompt ``b``'s model at its
  ``m`` query points.
* ``predict_prefixes(x, y)`` with ``x: (batch, n, dim)``, ``y: (batch, n)`` returns ``(batch, n)``
  where ``out[:, k]`` is the prediction at ``x[:, k]`` from the ``k`` pairs before it
  (``k = 0 .. n-1``): the quantity every ICL error-vs-context-length figure plots (Garg et al. 2022,
  Fig. 2).  It is stateless and batched over prompts and prefix lengths at once.

Outputs have the dtype and device of ``x``; the linear algebra runs in float64.

The registry (as in Opacus' ``register_x`` / ``create_x``) is the single source of truth for the
names: :func:`register_estimator`, :func:`create_estimator`, :func:`list_estimators`.
"""

from __future__ import annotations

import inspect
import math
import numbers
from abc import ABC, abstractmethod
from typing import Any, ClassVar, Self

import torch
from torch import Tensor

__all__ = [
    "ICLEstimator",
    "LinearICLEstimator",
    "NotFittedError",
    "ConvergenceWarning",
    "register_estimator",
    "create_estimator",
    "get_estimator_class",
    "list_estimators",
    "check_real",
    "check_int",
    "check_xy",
    "check_x",
    "COMPUTE_DTYPE",
]

#: dtype of every estimator's internal linear algebra (outputs are cast back to ``x.dtype``).
COMPUTE_DTYPE = torch.float64


class NotFittedError(ValueError):
    """``predict`` was called before ``fit``."""


class ConvergenceWarning(UserWarning):
    """An iterative estimator stopped at its iteration cap before meeting its tolerance."""


# ----------------------------------------------------------------------------- validation helpers


def _where(owner: str, field: str) -> str:
    return f"{owner}.{field}" if owner else field


def check_real(
    field: str,
    value: Any,
    *,
    owner: str = "",
    low: float | None = None,
    low_open: bool = False,
    high: float | None = None,
) -> float:
    """``value`` as a finite float in the stated range; ValueError naming ``field`` otherwise."""
    lo = "-inf" if low is None else f"{low:g}"
    hi = "inf" if high is None else f"{high:g}"
    allowed = f"a finite number in {'(' if low_open else '['}{lo}, {hi}]"
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"{_where(owner, field)} = {value!r}: expected {allowed}")
    v = float(value)
    bad = not math.isfinite(v)
    bad = bad or (low is not None and (v <= low if low_open else v < low))
    bad = bad or (high is not None and v > high)
    if bad:
        raise ValueError(f"{_where(owner, field)} = {value!r}: expected {allowed}")
    return v


def check_int(field: str, value: Any, *, owner: str = "", low: int = 0) -> int:
    """``value`` as an int ``>= low``; ValueError naming ``field`` otherwise."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or int(value) < low:
        raise ValueError(f"{_where(owner, field)} = {value!r}: expected an integer >= {low}")
    return int(value)


def _check_float_tensor(name: str, t: Any, ndim: int, what: str) -> Tensor:
    if not isinstance(t, Tensor):
        raise ValueError(f"{name} = {type(t).__name__}: expected a torch.Tensor {what}")
    if not t.is_floating_point():
        raise ValueError(f"{name}.dtype = {t.dtype}: expected a floating dtype")
    if t.ndim != ndim:
        raise ValueError(f"{name}.shape = {tuple(t.shape)}: expected {what}")
    # A sum in the tensor's own dtype is NaN/inf whenever some entry is; it can also overflow with
    # every entry finite, so only a non-finite sum triggers the exact elementwise check.  (10× less
    # time than a float64 sum or isfinite().all() on 8M float32 entries.)
    suspicious = t.numel() > 0 and not bool(torch.isfinite(t.sum()))
    if suspicious and not bool(torch.isfinite(t).all()):
        raise ValueError(f"{name} holds NaN or inf: every entry must be finite")
    return t


def check_xy(x: Any, y: Any) -> tuple[Tensor, Tensor]:
    """Validate a batch of prompts ``x: (batch, n, dim)``, ``y: (batch, n)``."""
    _check_float_tensor("x", x, 3, "of shape (batch, n_points, dim)")
    _check_float_tensor("y", y, 2, "of shape (batch, n_points)")
    if tuple(y.shape) != tuple(x.shape[:2]):
        raise ValueError(
            f"y.shape = {tuple(y.shape)}: expected (batch, n_points) = {tuple(x.shape[:2])} "
            f"to match x.shape = {tuple(x.shape)}"
        )
    if y.device != x.device:
        raise ValueError(f"y.device = {y.device}: expected x's device {x.device}")
    if x.shape[0] < 1 or x.shape[2] < 1:
        raise ValueError(f"x.shape = {tuple(x.shape)}: batch and dim must be >= 1")
    return x, y


def check_x(x: Any) -> Tensor:
    """Validate query points ``x: (batch, m, dim)``."""
    _check_float_tensor("x", x, 3, "of shape (batch, n_points, dim)")
    if x.shape[0] < 1 or x.shape[2] < 1:
        raise ValueError(f"x.shape = {tuple(x.shape)}: batch and dim must be >= 1")
    return x


# ----------------------------------------------------------------------------- the contract


class ICLEstimator(ABC):
    """Base class: subclasses implement ``_fit``, ``_predict`` and ``_predict_prefixes``.

    Subclass rules (checked by ``tests/estimators/test_estimators_conformance.py`` for every
    registered estimator): ``__init__`` takes keyword-only hyperparameters, validates them
    (ValueError naming the field) and stores each under its own name, nothing else; ``_fit`` sets
    attributes ending in ``_`` only; ``_predict_prefixes`` changes no attribute.
    """

    name: ClassVar[str]

    # -- public API -------------------------------------------------------------------------

    def fit(self, x: Tensor, y: Tensor) -> Self:
        """Fit one model per prompt on ``x: (batch, k, dim)``, ``y: (batch, k)``; ``k = 0`` allowed.

        Sets ``n_prompts_``, ``n_features_in_``, ``n_context_`` and the estimator's own state.
        """
        x, y = check_xy(x, y)
        self._fit(x, y)
        self.n_prompts_, self.n_context_, self.n_features_in_ = (int(s) for s in x.shape)
        return self

    def predict(self, x: Tensor) -> Tensor:
        """Predictions ``(batch, m)`` at query points ``x: (batch, m, dim)`` (same batch as ``fit``)."""
        if not hasattr(self, "n_features_in_"):
            raise NotFittedError(f"{type(self).__name__} is not fitted: call fit(x, y) first")
        x = check_x(x)
        if x.shape[0] != self.n_prompts_ or x.shape[2] != self.n_features_in_:
            raise ValueError(
                f"x.shape = {tuple(x.shape)}: expected (batch={self.n_prompts_}, m, "
                f"dim={self.n_features_in_}) as in fit"
            )
        if x.shape[1] == 0:
            return x.new_zeros(x.shape[:2])
        return self._predict(x).to(x.dtype)

    def predict_prefixes(self, x: Tensor, y: Tensor) -> Tensor:
        """``out[:, k]`` = prediction at ``x[:, k]`` from the pairs ``(x[:, :k], y[:, :k])``.

        ``x: (batch, n, dim)``, ``y: (batch, n)`` -> ``(batch, n)``, ``k = 0 .. n-1``.  Equals
        ``fit(x[:, :k], y[:, :k]).predict(x[:, k:k+1])[:, 0]`` for every ``k``, computed for all
        ``k`` at once.  Leaves the estimator unchanged.
        """
        x, y = check_xy(x, y)
        if x.shape[1] == 0:
            return x.new_zeros(x.shape[:2])
        return self._predict_prefixes(x, y).to(x.dtype)

    def get_params(self) -> dict[str, Any]:
        """The hyperparameters, as passed to ``__init__`` (scikit-learn's ``get_params``)."""
        return {name: getattr(self, name) for name in self._param_names()}

    @classmethod
    def example_params(cls) -> dict[str, Any]:
        """Hyperparameters that make a valid instance (for the conformance suite and the docs).

        Override when a hyperparameter has no default.
        """
        return {}

    def __repr__(self) -> str:
        def short(v: Any) -> str:
            return f"Tensor{tuple(v.shape)}" if isinstance(v, Tensor) else repr(v)

        args = ", ".join(f"{k}={short(v)}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({args})"

    # -- subclass hooks ---------------------------------------------------------------------

    @classmethod
    def _param_names(cls) -> list[str]:
        sig = inspect.signature(cls.__init__)
        return [
            p.name
            for p in sig.parameters.values()
            if p.name != "self" and p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)
        ]

    @abstractmethod
    def _fit(self, x: Tensor, y: Tensor) -> None: ...

    @abstractmethod
    def _predict(self, x: Tensor) -> Tensor: ...

    @abstractmethod
    def _predict_prefixes(self, x: Tensor, y: Tensor) -> Tensor: ...


class LinearICLEstimator(ICLEstimator):
    """An estimator whose fitted model is a vector ``coef_: (batch, dim)``; prediction ``x @ coef_``."""

    coef_: Tensor

    def _predict(self, x: Tensor) -> Tensor:
        coef = self.coef_.to(device=x.device, dtype=COMPUTE_DTYPE)
        return torch.einsum("bmd,bd->bm", x.to(COMPUTE_DTYPE), coef)


# ----------------------------------------------------------------------------- registry

_REGISTRY: dict[str, type[ICLEstimator]] = {}


def register_estimator(name: str, cls: type[ICLEstimator]) -> type[ICLEstimator]:
    """Register ``cls`` under ``name`` (must equal ``cls.name``); ValueError if the name is taken."""
    if not isinstance(name, str) or not name.isidentifier():
        raise ValueError(f"name = {name!r}: expected a Python identifier such as 'ridge'")
    if not (isinstance(cls, type) and issubclass(cls, ICLEstimator)):
        raise ValueError(f"cls = {cls!r}: expected a subclass of ICLEstimator")
    if getattr(cls, "name", None) != name:
        raise ValueError(
            f"{cls.__name__}.name = {getattr(cls, 'name', None)!r}: must equal the registered "
            f"name {name!r}"
        )
    old = _REGISTRY.get(name)
    if old is not None and old is not cls:
        raise ValueError(f"estimator '{name}' is already registered (by {old.__qualname__})")
    _REGISTRY[name] = cls
    return cls


def _load_all() -> None:
    # Importing the package imports every estimator module, which registers its classes.
    import fmtheory.estimators  # noqa: F401


def list_estimators() -> list[str]:
    """Names of every registered estimator, sorted."""
    _load_all()
    return sorted(_REGISTRY)


def get_estimator_class(name: str) -> type[ICLEstimator]:
    """The class registered as ``name``; ValueError listing the valid names otherwise."""
    _load_all()
    try:
        return _REGISTRY[name]
    except (KeyError, TypeError):
        raise ValueError(
            f"estimator = {name!r}: unknown; registered: {', '.join(sorted(_REGISTRY)) or '(none)'}"
        ) from None


def create_estimator(name: str, **params: Any) -> ICLEstimator:
    """``get_estimator_class(name)(**params)``, with unknown or missing hyperparameters as ValueError."""
    cls = get_estimator_class(name)
    sig = inspect.signature(cls.__init__)
    valid = [p for p in sig.parameters.values() if p.name != "self"]
    names = {p.name for p in valid}
    unknown = sorted(set(params) - names)
    if unknown:
        raise ValueError(
            f"estimator '{name}' has no hyperparameter {', '.join(map(repr, unknown))}; "
            f"allowed: {', '.join(sorted(names)) or '(none)'}"
        )
    missing = [p.name for p in valid if p.default is p.empty and p.name not in params]
    if missing:
        raise ValueError(f"estimator '{name}' needs hyperparameter(s) {', '.join(missing)}")
    return cls(**params)
