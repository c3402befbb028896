"""Shared pieces of the self-consuming-loop experiment: regimes, per-generation data mix, outputs.

Part of the ``self-consuming`` experiment (``experiments/self_consuming/``) (leading underscore: not auto-registered).
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from fmtheory.theory.self_consuming import schedule_sizes

__all__ = [
    "Regime",
    "regime_label",
    "LoopOutput",
    "ContractionSums",
    "regime_rng",
    "recorded_generations",
    "real_count",
    "Tick",
    "Sizes",
    "RegimeSet",
]

Tick = Callable[[int], None]


@dataclass(frozen=True)
class Regime:
    """One way of feeding a generation: real share, replace/accumulate, correction, schedule.

    ``power`` is the schedule exponent (``n_i = n0 · round(i^power)``; 0 = constant).
    """

    label: str
    real_fraction: float
    mode: Literal["replace", "accumulate"]
    gamma: float
    power: float
    schedule: Literal["constant", "linear", "polynomial"]

    @property
    def fully_synthetic(self) -> bool:
        return self.real_fraction == 0.0 and self.gamma == 0.0

    @property
    def correction_prob(self) -> float:
        """Probability that a synthetic sample is replaced by a real one: ``γ/(1+γ)``."""
        return self.gamma / (1.0 + self.gamma)

    def sizes(self, n0: int, generations: int, max_n: int | None = None) -> np.ndarray:
        """``n_i`` for ``i = 1..generations`` (float64 integers), capped at ``max_n``."""
        return schedule_sizes(n0, generations, power=self.power, max_n=max_n)


def regime_label(
    *, mode: str, real_fraction: float, gamma: float, schedule: str, power: float
) -> str:
    """A readable, parameter-determined name: equal settings give equal labels (deduplication)."""
    parts = [mode]
    if real_fraction > 0:
        parts.append(f"α={real_fraction:g}")
    if gamma > 0:
        parts.append(f"γ={gamma:g}")
    if power > 0:
        parts.append("n∝i" if power == 1 else f"n∝i^{power:g}")
    return " ".join(parts)


def make_regime(
    *, mode: str, real_fraction: float, gamma: float, schedule: str, power: float
) -> Regime:
    p = {"constant": 0.0, "linear": 1.0}.get(schedule, power)
    label = regime_label(
        mode=mode, real_fraction=real_fraction, gamma=gamma, schedule=schedule, power=p
    )
    return Regime(
        label=label,
        real_fraction=float(real_fraction),
        mode=mode,  # type: ignore[arg-type]
        gamma=float(gamma),
        power=float(p),
        schedule=schedule,  # type: ignore[arg-type]
    )


def regime_rng(seed: int, regime: Regime, stream: str) -> np.random.Generator:
    """A numpy generator that depends only on (seed, regime label, stream name).

    So a regime's numbers do not depend on which other regimes run beside it.
    """
    key = [int(seed), zlib.crc32(regime.label.encode()), zlib.crc32(stream.encode())]
    return np.random.default_rng(np.random.SeedSequence(key))


def recorded_generations(generations: int, every: int) -> np.ndarray:
    """Generations kept in the table: 1, 1+every, ..., and always the last (1-based)."""
    rec = set(range(1, generations + 1, max(1, every)))
    rec.add(generations)
    return np.array(sorted(rec), dtype=np.int64)


def real_count(n: int | float, real_fraction: float) -> int:
    """``round(α n)`` (half-up), the same rule as the theory module."""
    return int(math.floor(real_fraction * n + 0.5))


@dataclass
class ContractionSums:
    """Running sums for the regression through the origin of ``e_{t+1}`` on ``e_t``.

    With ``a = <e_t, e_{t+1}>`` and ``b = ||e_t||²`` summed over replicates and generations
    ``t ≥ 1``: ``κ̂ = Σa/Σb``; heteroskedasticity-robust standard error
    ``sqrt(Σ(a − κ̂ b)²)/Σb`` (White 1980; valid because ``e_{t+1} − κ e_t`` is a martingale
    difference given the past).
    """

    sa: float = 0.0
    sb: float = 0.0
    saa: float = 0.0
    sab: float = 0.0
    sbb: float = 0.0
    count: int = 0

    def add(self, e_prev: np.ndarray, e_next: np.ndarray) -> None:
        """``e_prev, e_next: (R, d)``."""
        a = (e_prev * e_next).sum(-1)
        b = (e_prev * e_prev).sum(-1)
        self.sa += float(a.sum())
        self.sb += float(b.sum())
        self.saa += float((a * a).sum())
        self.sab += float((a * b).sum())
        self.sbb += float((b * b).sum())
        self.count += a.size

    def estimate(self) -> tuple[float, float]:
        """(κ̂, robust standard error); (nan, nan) without data."""
        if self.sb <= 0:
            return float("nan"), float("nan")
        k = self.sa / self.sb
        rss = max(self.saa - 2 * k * self.sab + k * k * self.sbb, 0.0)
        return k, math.sqrt(rss) / self.sb


@dataclass
class LoopOutput:
    """What one regime's loop hands back.

    ``generations: (G_rec,)`` recorded generation numbers; ``metrics[name]: (G_rec, R)`` values per
    replicate; ``methods[name]`` the learner that produced a metric (default: the loop's
    ``method``); ``contraction``: slope sums (replace regimes only).
    """

    method: str
    generations: np.ndarray
    metrics: dict[str, np.ndarray]
    contraction: ContractionSums | None = None
    extra: dict[str, float] = field(default_factory=dict)
    metric_method: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Sizes:
    """Effective sizes of a run (the model section's values unless overridden at the top level)."""

    n0: int
    generations: int
    replicates: int
    record_every: int


@dataclass(frozen=True)
class RegimeSet:
    """The regimes to run and the labels of the reference roles (None when not run)."""

    regimes: list[Regime]
    configured: str
    synthetic: str | None = None
    accumulate: str | None = None
    real: str | None = None
    corrected: tuple[str, ...] = ()
    growing: str | None = None
