"""What a sweep sweeps: a registered experiment (cells are ordinary runs) or a registered formula.

A target turns a :class:`~fmtheory.sweep.grid.Grid` into :class:`CellJob` s, validating every cell
before any starts: an unknown key, a value of the wrong type or out of range, or a combination the
config rejects is a :class:`~fmtheory.contract.ConfigError` naming the field.
Nothing here is specific to one experiment: configs come from ``Experiment.make_config`` and
parameters from ``Formula.resolve``.
"""

from __future__ import annotations

import copy
import hashlib
import json
from typing import Any

import torch

from fmtheory.contract import (
    ConfigError,
    Experiment,
    get_experiment,
    set_dotted,
    validate_config,
)
from fmtheory.runs.store import RunStore, config_hash
from fmtheory.sweep.grid import Cell, Grid
from fmtheory.sweep.jobs import CellJob
from fmtheory.theory.registry import Formula, get_formula

__all__ = ["CellJob", "ExperimentTarget", "TheoryTarget", "Target", "make_target"]


class Target:
    """Base of the two targets; ``label`` names the sweep folder."""

    kind: str
    name: str
    label: str
    claim: str
    source: str

    def jobs(self, grid: Grid, *, device: torch.device) -> list[CellJob]:
        raise NotImplementedError

    def describe(self) -> dict[str, Any]:
        return {"kind": self.kind, "target": self.name, "claim": self.claim, "source": self.source}


class ExperimentTarget(Target):
    """Cells are runs of a registered experiment: preset + fixed overrides + the cell's values."""

    kind = "experiment"

    def __init__(self, experiment: Experiment, *, preset: str | None, overrides: dict[str, Any]):
        self.experiment = experiment
        self.name = self.label = experiment.name
        self.claim, self.source = experiment.claim, experiment.source
        self.preset = preset or experiment.default_preset
        self.overrides = dict(overrides)
        self._preset_data: dict[str, Any] | None = None
        experiment.make_config(self.preset, self.overrides)  # the fixed part alone must be valid

    def jobs(self, grid: Grid, *, device: torch.device) -> list[CellJob]:
        exp = self.experiment
        for axis in grid.axes:
            if axis.key in self.overrides:
                raise ConfigError(
                    f"--set {axis.key}", self.overrides[axis.key], "is also a grid axis; give one"
                )
            for v in axis.values:  # each value alone first, so a bad value is named at once
                try:
                    self.make_config({**self.overrides, axis.key: v})
                except ConfigError as e:
                    if e.field == axis.key or e.field.startswith(axis.key + "."):
                        raise
                    # a constraint between fields: it may hold in the cells; checked below

        module = getattr(exp.run, "__module__", None)
        if not module or module.startswith("fmtheory.experiments") or module == "__main__":
            module = None  # registered by the package itself (or not importable by name)
        out = []
        for cell in grid.cells():
            config = self._config(cell)
            cfg = config.model_dump(mode="json")
            h = config_hash(exp.name, cfg, device.type)
            out.append(
                CellJob(cell.index, self.kind, exp.name, cfg, h, str(device), module, self.preset)
            )
        return out

    def make_config(self, overrides: dict[str, Any], seed: int | None = None) -> Any:
        """``experiment.make_config(preset, overrides, seed)``, with the preset read once.

        Reading the preset (YAML) is most of the cost of a config; a 10,000-cell grid would spend a
        minute on it.  An experiment that overrides ``make_config`` itself gets its own method.
        """
        exp = self.experiment
        if type(exp).make_config is not Experiment.make_config:
            return exp.make_config(self.preset, overrides, seed=seed)
        if self._preset_data is None:
            self._preset_data = exp.preset_dict(self.preset)
        data = copy.deepcopy(self._preset_data)
        for key, value in overrides.items():  # as Experiment.make_config sets dotted keys
            set_dotted(data, key, value)
        if seed is not None:
            data["seed"] = seed
        return validate_config(exp.config_cls, data)

    def _config(self, cell: Cell) -> Any:
        try:
            return self.make_config({**self.overrides, **cell.point}, seed=cell.seed)
        except ConfigError as e:
            at = ", ".join(f"{k}={v!r}" for k, v in cell.point.items())
            raise ConfigError(e.field, e.value, f"{e.allowed} (in the grid cell {at})") from None

    def run_dir(self, root: Any, job: CellJob) -> Any:
        return RunStore(root).run_dir(self.name, job.hash)

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "preset": self.preset, "overrides": self.overrides}


class TheoryTarget(Target):
    """Cells are evaluations of a registered formula: fixed parameters + the cell's values.

    A formula with a ``seed`` parameter (Monte Carlo) takes ``--seeds``; one without does not.
    """

    kind = "theory"

    def __init__(self, formula: Formula, *, overrides: dict[str, Any]):
        self.formula = formula
        self.name = formula.name
        self.label = f"theory-{formula.name}"
        self.claim, self.source = formula.summary, formula.source
        self.overrides = {}
        for key, value in overrides.items():
            self.overrides[key] = self._coerce(f"--set {key}", key, value)

    def _coerce(self, field: str, key: str, value: Any) -> Any:
        try:
            p = self.formula.param(key)
        except ValueError:
            names = ", ".join(p.name for p in self.formula.params)
            raise ConfigError(field, key, f"formula {self.name} has parameters {names}") from None
        try:
            return p.coerce(value)
        except ValueError:
            raise ConfigError(key, value, f"expected {p.allowed()}") from None

    def jobs(self, grid: Grid, *, device: torch.device) -> list[CellJob]:
        names = {p.name for p in self.formula.params}
        if grid.seeds is not None and "seed" not in names:
            raise ConfigError(
                "--seeds",
                list(grid.seeds),
                f"formula {self.name} has no seed parameter (it is exact): drop --seeds",
            )
        coerced: dict[str, dict[Any, Any]] = {}
        for axis in grid.axes:
            if axis.key in self.overrides:
                raise ConfigError(
                    f"--set {axis.key}", self.overrides[axis.key], "is also a grid axis; give one"
                )
            coerced[axis.key] = {}
            for v in axis.values:
                coerced[axis.key][_key(v)] = self._coerce(f"--grid {axis.key}", axis.key, v)
        out = []
        for cell in grid.cells():
            params = dict(self.overrides)
            params.update({k: coerced[k][_key(v)] for k, v in cell.point.items()})
            if cell.seed is not None:
                params["seed"] = self._coerce("--seeds", "seed", cell.seed)
            try:
                resolved = self.formula.resolve(params)
            except ValueError as e:
                at = ", ".join(f"{k}={v!r}" for k, v in cell.point.items())
                raise ConfigError("--grid", at or "(no axis)", str(e)) from None
            out.append(
                CellJob(
                    cell.index, self.kind, self.name, resolved, _theory_hash(self.name, resolved)
                )
            )
        return out

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "preset": None, "overrides": self.overrides}


def _key(v: Any) -> Any:
    return (type(v).__name__, json.dumps(v, sort_keys=True, default=str))


def _theory_hash(name: str, params: dict[str, Any]) -> str:
    payload = json.dumps({"formula": name, "params": params}, sort_keys=True, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()


def make_target(
    experiment: str | Experiment | None,
    *,
    theory: str | Formula | None,
    preset: str | None,
    overrides: dict[str, Any],
) -> Target:
    """The target of a sweep: exactly one of an experiment and a formula."""
    if (experiment is None) == (theory is None):
        raise ConfigError(
            "EXPERIMENT", experiment, "give exactly one of an experiment name and --theory NAME"
        )
    if theory is not None:
        if preset is not None:
            raise ConfigError("--preset", preset, "a theory sweep has no presets")
        if isinstance(theory, Formula):
            formula = theory
        else:
            try:
                formula = get_formula(theory)
            except ValueError as e:
                raise ConfigError("--theory", theory, str(e)) from None
        return TheoryTarget(formula, overrides=overrides)
    exp = experiment if isinstance(experiment, Experiment) else get_experiment(str(experiment))
    return ExperimentTarget(exp, preset=preset, overrides=overrides)
