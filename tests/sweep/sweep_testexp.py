"""A test-only experiment for sweeps, registered from outside ``fmtheory.experiments``.

Cheap and deterministic; a cell fails on demand: ``mode=raise`` raises, ``mode=nan`` reports a
non-finite training loss, ``mode=crash`` kills its worker process outright (``os._exit(7)``) when
x < 3 (each crash costs a new worker process, so tests keep them few).  With the
environment variable ``SWEEP_TEST_HEAL=1`` every mode succeeds (to test ``--retry-failed``).
Worker processes import this module by name (``CellJob.module``), which registers it there too.
"""

from __future__ import annotations

import os
from typing import Any, Literal

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
from fmtheory.train import NonFiniteLossError

NAME = "sweep-test"


class Config(ExperimentConfig):
    x: int = Field(1, ge=0, le=100, description="a grid value")
    scale: float = Field(0.5, gt=0.0, le=10.0)
    mode: Literal["ok", "raise", "nan", "crash"] = "ok"


def run(config: Config, ctx: RunContext | None = None) -> Result:
    if os.environ.get("SWEEP_TEST_HEAL") != "1":
        if config.mode == "raise":
            raise ValueError(f"boom at x={config.x}")
        if config.mode == "nan":
            raise NonFiniteLossError(3, float("nan"), None)
        if config.mode == "crash" and config.x < 3:
            os._exit(7)
    value = config.scale * config.x + 0.01 * config.seed
    table = pd.DataFrame(
        [dict(method="m", metric="err", value=value, se=0.05, ci_low=value - 0.1,
              ci_high=value + 0.1, seed=config.seed, x=config.x)]
    )  # fmt: skip
    if ctx is not None and ctx.workdir is not None:
        ctx.path("artifact.bin").write_bytes(bytes([config.x % 256]) * 16)
    return Result(table=table, checks=checks(table, config), figures={})


def checks(table: pd.DataFrame, config: Config) -> list[Check]:
    x = int(table["x"].iloc[0])
    return [
        Check("x is small", "test", "claim", "< 3", x, "x < 3", "holds" if x < 3 else "fails"),
        Check("always n/a", "test", "sanity", "n/a", "n/a", "", "n/a", why="never applies"),
    ]


def headline(table: pd.DataFrame, config: Config) -> dict[str, float]:
    return {"err": float(table["value"].iloc[0])}


class _TestExperiment(Experiment):
    """Presets live in the package; this one has a single empty preset, in memory."""

    def presets(self) -> list[str]:
        return ["quick"]

    def preset_dict(self, preset: str | None) -> dict[str, Any]:
        if (preset or "quick") != "quick":
            raise ConfigError("preset", preset, "allowed presets of sweep-test: quick")
        return {}


try:
    EXPERIMENT = get_experiment(NAME)
except ConfigError:
    EXPERIMENT = register_experiment(
        _TestExperiment(
            name=NAME, claim="a test experiment", source="tests", chapter="dynamics",
            config_cls=Config, run=run, checks=checks, figures=lambda table: {}, headline=headline,
        )
    )  # fmt: skip
