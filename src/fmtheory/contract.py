"""The experiment contract: Config base classes, Check, Result, RunContext, Experiment, the registry.

This module imports neither torch nor any experiment, so the run store, the reports and the sweep
machinery can read results on a machine without torch.  An experiment module imports it; it never
imports an experiment (the registry fills itself when ``fmtheory.experiments`` is first imported).

A claim is one module in ``fmtheory/experiments/`` that calls :func:`register_experiment` with

- ``run(config, ctx) -> Result``: samples, trains, evaluates, and returns a tidy table;
- ``checks(table, config) -> list[Check]``: the verdicts, computed from the stored table alone, so
  ``fmtheory recheck`` can recompute them with the installed code;
- ``figures(table) -> {name: Figure}``: drawn from the table alone.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from fmtheory.errors import ConfigError

__all__ = [
    "CHAPTERS",
    "KINDS",
    "STATUSES",
    "TABLE_COLUMNS",
    "Chapter",
    "Check",
    "ConfigError",
    "Experiment",
    "ExperimentConfig",
    "Result",
    "RunContext",
    "Section",
    "get_experiment",
    "list_experiments",
    "register_experiment",
    "set_dotted",
    "validate_config",
    "verdict",
    "check_counts",
    "counts_text",
]

#: Columns every result table has (grid-point columns such as ``n_context`` come in addition).
#: ``se`` is the standard error of ``value`` (0 for an exact number, NaN when unknown).
TABLE_COLUMNS = ("method", "metric", "value", "se", "ci_low", "ci_high", "seed")

PRESET_DIR = Path(__file__).parent / "experiments" / "presets"


class Chapter(StrEnum):
    """The chapters of the survey (arXiv:2410.11444), in the order its report follows."""

    GENERALIZATION = "generalization"
    EXPRESSIVITY = "expressivity"
    IN_CONTEXT_LEARNING = "in-context-learning"
    DYNAMICS = "dynamics"
    ALIGNMENT = "alignment"
    SELF_CONSUMING = "self-consuming"
    ETHICS = "ethics"
    REPRESENTATIONS = "representations"
    ROBUSTNESS = "robustness-and-scale"

    @property
    def title(self) -> str:
        return _CHAPTER_TITLES[self]


_CHAPTER_TITLES = {
    Chapter.GENERALIZATION: "Generalization",
    Chapter.EXPRESSIVITY: "Expressive power and chain of thought",
    Chapter.IN_CONTEXT_LEARNING: "In-context learning",
    Chapter.DYNAMICS: "Dynamics and emergence",
    Chapter.ALIGNMENT: "Alignment",
    Chapter.SELF_CONSUMING: "Self-consuming loops",
    Chapter.ETHICS: "Ethics: privacy, fairness, hallucination",
    Chapter.REPRESENTATIONS: "Representations",
    Chapter.ROBUSTNESS: "Robustness and scale",
}

#: chapter names in survey order
CHAPTERS: tuple[str, ...] = tuple(c.value for c in Chapter)

#: ``claim``: the trained model against theory or the paper; ``theory``: a formula against an
#: independent simulation; ``sanity``: an invariant, or a reference computed the same way.
KINDS: tuple[str, ...] = ("claim", "theory", "sanity")

#: ``inconclusive``: the data cannot decide (``why`` says why); ``n/a``: the check does not apply.
STATUSES: tuple[str, ...] = ("holds", "fails", "inconclusive", "n/a")


# ---------------------------------------------------------------------------------------------
class Section(BaseModel):
    """A nested config section: unknown keys are errors, assignments are validated."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, frozen=False)


class ExperimentConfig(Section):
    """Base of every experiment's Config. ``seed`` fixes every random number of the run."""

    seed: int = Field(0, ge=0, le=2**31 - 1, description="seed of every generator in the run")


# ---------------------------------------------------------------------------------------------
def _json_number(v: Any) -> Any:
    """A float that JSON can hold (NaN/inf become None); anything else unchanged."""
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


@dataclass
class Check:
    """One verdict on one sentence.

    claim: the sentence tested, in plain words.  source: paper + figure/theorem.
    kind: "claim" | "theory" | "sanity" (see :data:`KINDS`).
    predicted / measured: what theory says and what the run saw (numbers or short text).
    tolerance: the rule, fixed in code before the run.
    status: "holds" | "fails" | "inconclusive" | "n/a".  why: the reason for inconclusive / n/a.
    """

    claim: str
    source: str
    kind: str
    predicted: float | str
    measured: float | str
    tolerance: str
    status: str
    why: str = ""

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"Check.kind = {self.kind!r}: allowed {', '.join(KINDS)}")
        if self.status not in STATUSES:
            raise ValueError(f"Check.status = {self.status!r}: allowed {', '.join(STATUSES)}")
        if self.status in ("inconclusive", "n/a") and not self.why:
            raise ValueError(f"Check({self.claim!r}): status {self.status} needs a reason (why)")
        for name in ("predicted", "measured"):
            v = getattr(self, name)
            if hasattr(v, "item") and not isinstance(v, str):
                setattr(self, name, v.item())

    @property
    def holds(self) -> bool | None:
        """True / False for holds / fails; None for inconclusive and n/a."""
        return {"holds": True, "fails": False}.get(self.status)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: non-finite numbers become null with their text in ``*_text``."""
        d: dict[str, Any] = {
            "claim": self.claim,
            "source": self.source,
            "kind": self.kind,
            "predicted": _json_number(self.predicted),
            "measured": _json_number(self.measured),
            "tolerance": self.tolerance,
            "status": self.status,
            "why": self.why,
        }
        for name in ("predicted", "measured"):
            v = getattr(self, name)
            if isinstance(v, float) and not math.isfinite(v):
                d[f"{name}_text"] = str(v)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Check:
        """Inverse of :meth:`to_dict`; a check stored by older code (``holds``, no kind) is read
        as a claim with the status its ``holds`` gave."""
        vals = {}
        for name in ("predicted", "measured"):
            v = d.get(name)
            if v is None and f"{name}_text" in d:
                v = float(d[f"{name}_text"])
            vals[name] = "" if v is None else v
        if "status" in d:
            status, kind, why = d["status"], d["kind"], d.get("why", "")
        else:
            status = {True: "holds", False: "fails"}.get(d.get("holds"), "n/a")
            kind, why = "claim", "recorded by older code, before checks had kinds"
        return cls(
            claim=d["claim"],
            source=d["source"],
            kind=kind,
            tolerance=d["tolerance"],
            status=status,
            why=why,
            **vals,
        )


@dataclass
class Result:
    """What a run produces. ``checks`` = ``checks(table, config)``; ``figures`` come from ``table``."""

    table: Any  # pandas.DataFrame, tidy (TABLE_COLUMNS + grid-point columns)
    checks: list[Check]
    figures: dict[str, Any] = field(default_factory=dict)


@dataclass
class RunContext:
    """Where and how a run executes.

    device: a ``torch.device`` or its name ("cpu", "cuda").  workdir: resumable checkpoints and
    artifacts (None: keep nothing on disk).  progress: show progress bars.
    """

    device: Any = "cpu"
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
    """A registered claim.

    chapter: the survey chapter (a :class:`Chapter` value).  formula: the theory's statement as
    text (for the survey card).  key_figure: the name of the figure that shows the claim.
    label: ``label(config) -> str`` names the model(s) from the config.
    headline: ``headline(table, config) -> {metric: value}`` for sweep cells.
    """

    name: str
    claim: str
    source: str
    chapter: str
    config_cls: type[ExperimentConfig]
    run: Callable[[Any, RunContext], Result]
    checks: Callable[[Any, Any], list[Check]]
    figures: Callable[[Any], dict[str, Any]]
    headline: Callable[[Any, Any], dict[str, float]] | None = None
    label: Callable[[Any], str] | None = None
    formula: str = ""
    key_figure: str | None = None
    default_preset: str = "quick"

    def __post_init__(self) -> None:
        if self.chapter not in CHAPTERS:
            raise ValueError(
                f"Experiment({self.name}).chapter = {self.chapter!r}: allowed {', '.join(CHAPTERS)}"
            )

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

    def validate(self, data: dict[str, Any]) -> ExperimentConfig:
        """A stored config dict -> this experiment's Config (one-line ConfigError otherwise)."""
        return validate_config(self.config_cls, data)

    def model_label(self, config: Any) -> str:
        return self.label(config) if self.label is not None else ""


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
        elif err["type"] == "missing":
            msg = "required: the preset or --set must give it"
        raise ConfigError(loc, value if err["type"] != "missing" else None, msg) from None


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


# ---------------------------------------------------------------------------------------------
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
    """Every registered experiment, in survey order (chapter, then name)."""
    _load_all()
    order = {c: i for i, c in enumerate(CHAPTERS)}
    return sorted(_REGISTRY.values(), key=lambda e: (order[e.chapter], e.name))


def _load_all() -> None:
    import importlib

    importlib.import_module("fmtheory.experiments")


# ---------------------------------------------------------------------------------------------
def verdict(checks: Iterable[Check]) -> str:
    """A run's headline verdict, from its ``claim`` checks alone.

    "fails" if any claim check fails; else "inconclusive" if any is inconclusive; else "holds" if
    any holds; else "n/a" (no claim check applies).  Theory and sanity checks never set it.
    """
    statuses = {c.status for c in checks if c.kind == "claim"}
    for s in ("fails", "inconclusive", "holds"):
        if s in statuses:
            return s
    return "n/a"


def check_counts(checks: Iterable[Check]) -> dict[str, dict[str, int]]:
    """``{kind: {status: count}}`` for every kind and status (zeros included)."""
    out = {k: dict.fromkeys(STATUSES, 0) for k in KINDS}
    for c in checks:
        out[c.kind][c.status] += 1
    return out


def counts_text(checks: Iterable[Check]) -> str:
    """One line such as "claim: 2 hold, 1 fails · theory: 3 hold · sanity: 2 hold"."""
    words = {"holds": "hold", "fails": "fail", "inconclusive": "inconclusive", "n/a": "n/a"}
    parts = []
    for kind, st in check_counts(checks).items():
        bits = [f"{n} {words[s]}" for s, n in st.items() if n]
        if bits:
            parts.append(f"{kind}: {', '.join(bits)}")
    return " · ".join(parts) if parts else "no checks"
