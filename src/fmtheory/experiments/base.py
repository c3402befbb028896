"""The experiment contract: a pydantic Config, ``run(config, ctx) -> Result``, and the registry.

Every claim is one module in this package that calls :func:`register_experiment`.  The CLI's choices,
``fmtheory list`` and the sweep machinery read the registry; nothing dispatches on parsed strings.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import torch
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from fmtheory.errors import ConfigError

__all__ = [
    "ExperimentConfig",
    "Section",
    "Check",
    "Result",
    "RunContext",
    "Experiment",
    "ConfigError",
    "register_experiment",
    "get_experiment",
    "list_experiments",
    "set_dotted",
    "TABLE_COLUMNS",
]

#: Columns every result table has (grid-point columns such as ``n_context`` come in addition).
TABLE_COLUMNS = ("method", "metric", "value", "ci_low", "ci_high", "seed")

PRESET_DIR = Path(__file__).parent / "presets"


class Section(BaseModel):
    """A nested config section: unknown keys are errors, assignments are validated."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, frozen=False)


class ExperimentConfig(Section):
    """Base of every experiment's Config. ``seed`` fixes every random number of the run."""

    seed: int = Field(0, ge=0, le=2**31 - 1, description="seed of every generator in the run")


@dataclass
class Check:
    """One verdict. ``holds=None`` means not applicable at this size (``measured`` says why)."""

    claim: str
    source: str
    predicted: float | str
    measured: float | str
    tolerance: str
    holds: bool | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "claim": self.claim,
            "source": self.source,
            "predicted": self.predicted,
            "measured": self.measured,
            "tolerance": self.tolerance,
            "holds": self.holds,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Check:
        return cls(
            **{k: d[k] for k in ("claim", "source", "predicted", "measured", "tolerance", "holds")}
        )


@dataclass
class Result:
    """What a run produces. ``figures`` are built from ``table`` alone (see Experiment.figures)."""

    table: pd.DataFrame
    checks: list[Check]
    figures: dict[str, Any] = field(default_factory=dict)


@dataclass
class RunContext:
    """Where and how a run executes.

    ``workdir`` holds resumable checkpoints and artifacts (None: keep nothing on disk).
    ``progress`` turns the rich progress bars on.
    """

    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    workdir: Path | None = None
    progress: bool = False

    def path(self, name: str) -> Path | None:
        """A path inside the workdir (parents created), or None when the run keeps nothing."""
        if self.workdir is None:
            return None
        p = Path(self.workdir) / name
        p.parent.mkdir(parents=True, exist_ok=True)
        return p


@dataclass(frozen=True)
class Experiment:
    """A registered claim."""

    name: str
    claim: str
    source: str
    config_cls: type[ExperimentConfig]
    run: Callable[[Any, RunContext], Result]
    figures: Callable[[pd.DataFrame], dict[str, Any]]
    #: headline metrics of a result table, for sweep cells (name -> value)
    headline: Callable[[pd.DataFrame], dict[str, float]] | None = None
    default_preset: str = "quick"

    def presets(self) -> list[str]:
        d = PRESET_DIR / self.name
        return sorted(p.stem for p in d.glob("*.yaml")) if d.is_dir() else []

    def preset_dict(self, preset: str | None) -> dict[str, Any]:
        preset = preset or self.default_preset
        names = self.presets()
        if preset not in names:
            raise ConfigError(
                "preset", preset, f"allowed presets of {self.name}: {', '.join(names)}"
            )
        with open(PRESET_DIR / self.name / f"{preset}.yaml") as fh:
            data = yaml.safe_load(fh) or {}
        if not isinstance(data, dict):
            raise ConfigError("preset", preset, "preset file must hold a mapping")
        return data

    def make_config(
        self,
        preset: str | None = None,
        overrides: dict[str, Any] | Iterable[str] | None = None,
        seed: int | None = None,
    ) -> ExperimentConfig:
        """Preset + dotted overrides (``{"task.dim": 10}`` or ``["task.dim=10"]``) -> validated Config."""
        data = self.preset_dict(preset)
        for key, value in _parse_overrides(overrides):
            set_dotted(data, key, value)
        if seed is not None:
            data["seed"] = seed
        return validate_config(self.config_cls, data)


def validate_config(cls: type[ExperimentConfig], data: dict[str, Any]) -> ExperimentConfig:
    """``cls(**data)``, turning pydantic's report into a one-line :class:`ConfigError`."""
    try:
        return cls.model_validate(data)
    except ValidationError as e:
        err = e.errors()[0]
        loc = ".".join(str(x) for x in err["loc"])
        value = err.get("input")
        msg = err["msg"]
        if err["type"] == "extra_forbidden":
            parent = _field_model(cls, err["loc"][:-1])
            allowed = ", ".join(parent.model_fields) if parent is not None else "see the Config"
            msg = f"unknown key; allowed keys here: {allowed}"
        raise ConfigError(loc, value, msg) from None


def _field_model(cls: type[BaseModel], loc: tuple) -> type[BaseModel] | None:
    cur: Any = cls
    for part in loc:
        f = getattr(cur, "model_fields", {}).get(part)
        if f is None:
            return None
        cur = f.annotation
    return cur if isinstance(cur, type) and issubclass(cur, BaseModel) else None


def _parse_overrides(overrides: dict[str, Any] | Iterable[str] | None) -> list[tuple[str, Any]]:
    if overrides is None:
        return []
    if isinstance(overrides, dict):
        return list(overrides.items())
    out = []
    for item in overrides:
        if "=" not in item:
            raise ConfigError("--set", item, "expected KEY=VALUE, e.g. task.dim=10")
        key, raw = item.split("=", 1)
        try:
            value = yaml.safe_load(raw) if raw.strip() else raw
        except yaml.YAMLError:
            value = raw
        out.append((key.strip(), value))
    return out


def set_dotted(data: dict[str, Any], key: str, value: Any) -> None:
    """``data[a][b][c] = value`` for ``key = "a.b.c"`` (sections created as needed, value copied).

    ConfigError when a prefix of ``key`` names a value instead of a section.
    """
    parts = key.split(".")
    cur = data
    for i, part in enumerate(parts[:-1]):
        nxt = cur.setdefault(part, {})
        if not isinstance(nxt, dict):
            raise ConfigError(".".join(parts[: i + 1]), nxt, "is a value, not a section")
        cur = nxt
    cur[parts[-1]] = copy.deepcopy(value)


_REGISTRY: dict[str, Experiment] = {}


def register_experiment(exp: Experiment) -> Experiment:
    """Add ``exp`` to the registry (names are unique)."""
    if exp.name in _REGISTRY:
        raise ValueError(f"experiment '{exp.name}' is already registered")
    _REGISTRY[exp.name] = exp
    return exp


def get_experiment(name: str) -> Experiment:
    """The experiment called ``name``; :class:`ConfigError` listing the valid names otherwise."""
    _load_all()
    if name not in _REGISTRY:
        raise ConfigError("experiment", name, f"registered: {', '.join(sorted(_REGISTRY))}")
    return _REGISTRY[name]


def list_experiments() -> list[Experiment]:
    _load_all()
    return [_REGISTRY[k] for k in sorted(_REGISTRY)]


def _load_all() -> None:
    import fmtheory.experiments  # noqa: F401
