"""The theory registry: every closed form an experiment relies on, evaluable without training.

A formula is registered with its parameters (typed, bounded, with defaults) and its citation, so that
``fmtheory theory list`` and ``fmtheory theory NAME --param VALUE`` are generated from here alone.

Registered functions take keyword-only parameters and return a :class:`TheoryValue`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "Param",
    "Formula",
    "TheoryValue",
    "register_formula",
    "formula",
    "get_formula",
    "list_formulas",
    "evaluate",
]


@dataclass(frozen=True)
class TheoryValue:
    """The value of a formula; ``stderr`` is the Monte Carlo standard error (None when exact)."""

    value: float
    stderr: float | None = None


@dataclass(frozen=True)
class Param:
    """One parameter of a registered formula.

    ``kind`` is ``int`` or ``float``; ``default=None`` means required; ``low``/``high`` are inclusive
    bounds (None = unbounded).
    """

    name: str
    kind: type = float
    default: float | int | None = None
    low: float | None = None
    high: float | None = None
    help: str = ""

    def allowed(self) -> str:
        lo = "-inf" if self.low is None else f"{self.low:g}"
        hi = "inf" if self.high is None else f"{self.high:g}"
        what = "an integer" if self.kind is int else "a number"
        return f"{what} in [{lo}, {hi}]"

    def coerce(self, value: Any) -> float | int:
        """Parse and range-check ``value``; raise ValueError naming the parameter otherwise."""
        try:
            if self.kind is int:
                if isinstance(value, float) and not value.is_integer():
                    raise ValueError
                v: float | int = (
                    int(str(value)) if not isinstance(value, (int, float)) else int(value)
                )
            else:
                v = float(value)
        except (TypeError, ValueError):
            raise ValueError(
                f"parameter '{self.name}' = {value!r} is invalid: expected {self.allowed()}"
            ) from None
        if isinstance(v, float) and not math.isfinite(v):
            raise ValueError(f"parameter '{self.name}' = {value!r} is invalid: must be finite")
        if (self.low is not None and v < self.low) or (self.high is not None and v > self.high):
            raise ValueError(
                f"parameter '{self.name}' = {value!r} is out of range: expected {self.allowed()}"
            )
        return v


@dataclass(frozen=True)
class Formula:
    """A registered closed form: ``fn(**params) -> TheoryValue``."""

    name: str
    fn: Callable[..., TheoryValue]
    params: tuple[Param, ...]
    source: str
    summary: str
    check: Callable[[dict[str, Any]], None] | None = field(default=None, repr=False)

    def param(self, name: str) -> Param:
        for p in self.params:
            if p.name == name:
                return p
        raise ValueError(
            f"formula '{self.name}' has no parameter '{name}'; "
            f"allowed: {', '.join(p.name for p in self.params)}"
        )

    def resolve(self, params: dict[str, Any]) -> dict[str, float | int]:
        """Validate ``params`` (unknown names, types, ranges, required) and fill defaults."""
        out: dict[str, float | int] = {}
        for name, value in params.items():
            out[name] = self.param(name).coerce(value)
        for p in self.params:
            if p.name not in out:
                if p.default is None:
                    raise ValueError(
                        f"formula '{self.name}' needs parameter '{p.name}' ({p.allowed()})"
                    )
                out[p.name] = p.default
        if self.check is not None:
            self.check(out)
        return out


_REGISTRY: dict[str, Formula] = {}


def register_formula(
    name: str,
    fn: Callable[..., TheoryValue],
    *,
    params: list[Param] | tuple[Param, ...],
    source: str,
    summary: str,
    check: Callable[[dict[str, Any]], None] | None = None,
) -> Formula:
    """Register ``fn`` under ``name``; raise if the name is taken (one source of truth)."""
    if name in _REGISTRY:
        raise ValueError(f"formula '{name}' is already registered")
    f = Formula(name, fn, tuple(params), source, summary, check)
    _REGISTRY[name] = f
    return f


def formula(
    name: str,
    *,
    params: list[Param] | tuple[Param, ...],
    source: str,
    summary: str,
    check: Callable[[dict[str, Any]], None] | None = None,
) -> Callable[[Callable[..., TheoryValue]], Callable[..., TheoryValue]]:
    """Decorator form of :func:`register_formula`."""

    def deco(fn: Callable[..., TheoryValue]) -> Callable[..., TheoryValue]:
        register_formula(name, fn, params=params, source=source, summary=summary, check=check)
        return fn

    return deco


def get_formula(name: str) -> Formula:
    """The formula called ``name``; ValueError listing the valid names otherwise."""
    _load_all()
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ValueError(
            f"unknown formula '{name}'; registered: {', '.join(sorted(_REGISTRY)) or '(none)'}"
        ) from None


def list_formulas() -> list[Formula]:
    """Every registered formula, sorted by name."""
    _load_all()
    return [_REGISTRY[k] for k in sorted(_REGISTRY)]


def evaluate(name: str, **params: Any) -> TheoryValue:
    """Validate ``params`` and evaluate formula ``name``."""
    f = get_formula(name)
    return f.fn(**f.resolve(params))


def _load_all() -> None:
    # Importing the package imports every theory module, which registers its formulas.
    import fmtheory.theory  # noqa: F401
