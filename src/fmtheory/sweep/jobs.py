"""What travels between a sweep's driver and its workers (standard library only, so a worker that
evaluates formulas starts without importing torch)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["CellJob", "CellOutcome"]


@dataclass(frozen=True)
class CellJob:
    """Everything a worker needs to compute one cell (picklable, no live objects).

    ``kind`` is "experiment" or "theory"; ``config`` is the validated config (``model_dump``) of an
    experiment or the resolved parameters of a formula; ``hash`` is the run store's cache key.
    """

    index: int
    kind: str
    target: str
    config: dict[str, Any]
    hash: str
    device: str = "cpu"
    #: a module to import before looking the experiment up, for experiments registered outside
    #: ``fmtheory.experiments`` (importing it registers them); None for the package's own
    module: str | None = None
    #: the preset the config came from (recorded in the run's manifest), when known
    preset: str | None = None


@dataclass
class CellOutcome:
    """How a cell ended.  ``status``: "complete" or "failed".  ``cached``: read back, not computed.

    ``run_dir`` for experiment cells; ``values`` (value, stderr) for theory cells.
    """

    index: int
    status: str
    hash: str
    cached: bool = False
    seconds: float | None = None
    run_dir: str | None = None
    error: str | None = None
    values: dict[str, float | None] | None = None
