"""Three cheap test claims for the survey and the results browser, registered from outside
``fmtheory.experiments``: one holds, one fails, one crashes.  ``n`` varies the curve."""

from __future__ import annotations

from typing import Any

import pandas as pd
from pydantic import Field

from fmtheory.contract import (
    Check,
    ConfigError,
    Experiment,
    ExperimentConfig,
    Result,
    RunContext,
    get_experiment,
    register_experiment,
)


class Config(ExperimentConfig):
    n: int = Field(4, ge=1, le=50, description="points on the curve")
    slope: float = Field(1.0, ge=-10, le=10)


def _table(config: Config) -> pd.DataFrame:
    rows = [dict(method="model", metric="err", value=config.slope * k, se=0.01,
                 ci_low=config.slope * k - 0.02, ci_high=config.slope * k + 0.02,
                 seed=config.seed, k=k) for k in range(config.n)]  # fmt: skip
    return pd.DataFrame(rows)


def _figures(table: pd.DataFrame) -> dict[str, Any]:
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(3, 2))
    ax.plot(table["k"], table["value"])
    return {"curve": fig}


def _checks(table: pd.DataFrame, config: Config) -> list[Check]:
    rising = bool(table["value"].iloc[-1] > table["value"].iloc[0])
    return [
        Check("the error rises", "test", "claim", "rising", float(table["value"].iloc[-1]),
              "last > first", "holds" if rising else "fails"),
        Check("rows are finite", "test", "sanity", "finite", "finite", "", "holds"),
    ]  # fmt: skip


def _run(config: Config, ctx: RunContext | None = None) -> Result:
    t = _table(config)
    return Result(t, _checks(t, config), _figures(t))


def _crash(config: Config, ctx: RunContext | None = None) -> Result:
    raise RuntimeError("this claim crashes on purpose")


class _Exp(Experiment):
    def presets(self) -> list[str]:
        return ["quick"]

    def preset_dict(self, preset: str | None) -> dict[str, Any]:
        if (preset or "quick") != "quick":
            raise ConfigError("preset", preset, f"allowed presets of {self.name}: quick")
        return {"slope": -1.0} if self.name == "survey-fails" else {}


def _register(name: str, chapter: str, run: Any) -> Experiment:
    try:
        return get_experiment(name)
    except ConfigError:
        return register_experiment(_Exp(
            name=name, claim=f"{name}: a test claim", source="tests", chapter=chapter,
            config_cls=Config, run=run, checks=_checks, figures=_figures,
            label=lambda c: f"line with {c.n} points", formula="err = slope · k",
            key_figure="curve",
        ))  # fmt: skip


NAMES = ("survey-holds", "survey-fails", "survey-crash")
HOLDS = _register("survey-holds", "generalization", _run)
FAILS = _register("survey-fails", "alignment", _run)
CRASH = _register("survey-crash", "ethics", _crash)
