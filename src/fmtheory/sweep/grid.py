"""Grids: parse ``KEY=SPEC`` axes and seed lists, and expand them into cells.

An axis SPEC is a comma-separated list of items; each item is

- a value, read as YAML: ``5``, ``0.5``, ``1e-3``, ``true``, ``null``, ``softmax``;
- an inclusive arithmetic range ``START:STOP[:STEP]`` (STEP 1 by default; integers stay integers):
  ``10:40:10`` is 10, 20, 30, 40 and ``0:1:0.25`` is 0, 0.25, 0.5, 0.75, 1;
- an inclusive geometric range ``START:STOP:*FACTOR``: ``1:64:*2`` is 1, 2, 4, ..., 64.

So ``task.dim=2:10:2,20`` is 2, 4, 6, 8, 10, 20.  Seeds are ``A..B`` (inclusive), a list ``0,3,7``,
or a single seed ``5`` (that seed, not five of them).

The cells of a grid are the product of its axes (the first axis varies slowest) times its seeds.
Every error is a :class:`~fmtheory.contract.ConfigError` naming the field, the value and
what is allowed, raised before any cell starts.
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import yaml

from fmtheory.contract import ConfigError

__all__ = [
    "MAX_CELLS",
    "HARD_MAX_CELLS",
    "Axis",
    "Cell",
    "Grid",
    "parse_axis",
    "parse_value",
    "parse_values",
    "parse_seeds",
    "parse_sets",
    "make_grid",
]

#: Grids larger than this need an explicit ``--yes`` (``yes=True``).
MAX_CELLS = 10_000
#: No grid may be larger than this, ``--yes`` or not (the plan alone would not fit in memory).
HARD_MAX_CELLS = 1_000_000

_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")
_NUM = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")
_INT = re.compile(r"^[+-]?\d+$")


@dataclass(frozen=True)
class Axis:
    """One grid axis: a dotted config key (or a formula parameter) and its values, in order.

    ``spec`` is the text the user wrote (kept for ``sweep.yaml``), None when given as a list.
    """

    key: str
    values: tuple[Any, ...]
    spec: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"key": self.key, "values": list(self.values), "spec": self.spec}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Axis:
        return cls(str(d["key"]), tuple(d["values"]), d.get("spec"))


@dataclass(frozen=True)
class Cell:
    """One cell of a grid: its position ``index``, the axis values ``point`` and its ``seed``."""

    index: int
    point: dict[str, Any]
    seed: int | None


@dataclass(frozen=True)
class Grid:
    """Axes and seeds.  ``seeds=None`` means one cell per grid point with the config's own seed."""

    axes: tuple[Axis, ...]
    seeds: tuple[int, ...] | None = None

    @property
    def keys(self) -> list[str]:
        return [a.key for a in self.axes]

    @property
    def n_points(self) -> int:
        return math.prod(len(a.values) for a in self.axes)

    @property
    def n_cells(self) -> int:
        return self.n_points * (len(self.seeds) if self.seeds is not None else 1)

    def points(self) -> Iterator[dict[str, Any]]:
        """Every grid point as ``{key: value}``, the first axis varying slowest."""
        for combo in itertools.product(*(a.values for a in self.axes)):
            yield dict(zip(self.keys, combo, strict=True))

    def cells(self) -> list[Cell]:
        """Every (point, seed) pair; seeds vary fastest, so a point's seeds sit side by side."""
        seeds: Sequence[int | None] = self.seeds if self.seeds is not None else (None,)
        out = []
        for point in self.points():
            for s in seeds:
                out.append(Cell(len(out), dict(point), s))
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "axes": [a.to_dict() for a in self.axes],
            "seeds": None if self.seeds is None else list(self.seeds),
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Grid:
        seeds = d.get("seeds")
        return cls(
            tuple(Axis.from_dict(a) for a in d.get("axes", [])),
            None if seeds is None else tuple(int(s) for s in seeds),
        )


def parse_value(raw: str) -> Any:
    """One value as YAML (``0.5``, ``true``, ``null``, ``softmax``); ``1e-3`` is a float too."""
    text = raw.strip()
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError:
        return text
    if isinstance(value, str) and _NUM.match(text):
        return int(text) if _INT.match(text) else float(text)
    return value


def _range(key: str, item: str) -> list[int | float]:
    """``START:STOP[:STEP]`` or ``START:STOP:*FACTOR``, inclusive of STOP when it is reached."""
    parts = item.split(":")
    geometric = len(parts) == 3 and parts[2].strip().startswith("*")
    nums = [p.strip().lstrip("*") if i == 2 else p.strip() for i, p in enumerate(parts)]
    bad = ConfigError(
        key,
        item,
        "a range is START:STOP[:STEP] or START:STOP:*FACTOR with numbers, e.g. 10:40:10 or 1:64:*2",
    )
    if len(parts) not in (2, 3) or not all(_NUM.match(n) for n in nums):
        raise bad
    integer = all(_INT.match(n) for n in nums)
    conv = int if integer else float
    start, stop = conv(nums[0]), conv(nums[1])
    step = conv(nums[2]) if len(nums) == 3 else conv(1)
    if geometric:
        if not (start > 0 and stop > 0 and step > 0 and step != 1):
            raise ConfigError(
                key, item, "a geometric range needs START, STOP > 0 and FACTOR > 0, ≠ 1"
            )
        if (stop - start) * (step - 1) < 0:
            raise ConfigError(key, item, "empty range: FACTOR moves away from STOP")
        n = math.floor(math.log(stop / start) / math.log(step) + 1e-9) + 1
        _check_len(key, item, n)
        vals: list[Any] = [start * step**i for i in range(n)]
    else:
        if step == 0:
            raise ConfigError(key, item, "STEP must not be 0")
        if (stop - start) * step < 0:
            raise ConfigError(key, item, "empty range: STEP moves away from STOP")
        n = math.floor((stop - start) / step + 1e-9) + 1
        _check_len(key, item, n)
        vals = [start + i * step for i in range(n)]
    if not integer:
        vals = [float(f"{v:.12g}") for v in vals]  # 0.30000000000000004 -> 0.3
    return vals


def _check_len(key: str, item: str, n: int) -> None:
    if n > HARD_MAX_CELLS:
        raise ConfigError(key, item, f"a range of {n} values: at most {HARD_MAX_CELLS:,}")


def parse_values(key: str, spec: str) -> tuple[Any, ...]:
    """The values of an axis SPEC (see the module docstring); duplicates and empties are errors."""
    if not isinstance(spec, str) or not spec.strip():
        raise ConfigError(key, spec, "an axis needs at least one value, e.g. 5,10,20 or 10:40:10")
    values: list[Any] = []
    for item in _split_items(spec):
        if not item.strip():
            raise ConfigError(key, spec, "empty item in the list (two commas in a row?)")
        if ":" in item and all(_NUM.match(p.strip().lstrip("*")) for p in item.split(":")):
            values += _range(key, item)
        elif ":" in item and item.strip()[0] in "+-.0123456789*":
            _range(key, item)  # a malformed numeric range: raise its error
        else:
            values.append(parse_value(item))
    return _no_duplicates(key, spec, values)


def _split_items(spec: str) -> list[str]:
    """Split on commas outside brackets, so a YAML list value ``[1,2]`` stays one item."""
    items, depth, cur = [], 0, []
    for ch in spec:
        if ch in "[{":
            depth += 1
        elif ch in "]}":
            depth -= 1
        if ch == "," and depth == 0:
            items.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    items.append("".join(cur))
    return items


def _no_duplicates(key: str, spec: Any, values: Sequence[Any]) -> tuple[Any, ...]:
    seen: list[Any] = []
    for v in values:
        # 1 == 1.0 == True in Python: compare type and value, so `1,1.0` is two values
        if any(type(v) is type(s) and v == s for s in seen):
            raise ConfigError(key, spec, f"value {v!r} appears twice; each value once")
        seen.append(v)
    return tuple(values)


def parse_axis(text: str) -> Axis:
    """``"task.dim=5,10,20"`` -> ``Axis("task.dim", (5, 10, 20), "5,10,20")``."""
    if not isinstance(text, str) or "=" not in text:
        raise ConfigError(
            "--grid", text, "expected KEY=VALUES, e.g. task.dim=5,10,20 or n=10:100:10"
        )
    key, spec = text.split("=", 1)
    key = key.strip()
    _check_key(key)
    return Axis(key, parse_values(key, spec), spec.strip())


def _check_key(key: str) -> None:
    if not _KEY.match(key):
        raise ConfigError("--grid", key, "a key is a dotted name such as task.dim")
    if key == "seed":
        raise ConfigError(
            "--grid", key, "seeds are not a grid axis: use --seeds, e.g. --seeds 0..4"
        )


def parse_seeds(seeds: str | int | Iterable[int] | None) -> tuple[int, ...] | None:
    """``"0..4"`` -> (0, 1, 2, 3, 4); ``"0,3,7"``; ``5`` -> (5,); a list of ints; None -> None."""
    if seeds is None:
        return None
    allowed = "seeds are integers >= 0: A..B (inclusive), a list 0,3,7, or one seed"
    if isinstance(seeds, bool):
        raise ConfigError("--seeds", seeds, allowed)
    if isinstance(seeds, int):
        items: list[int] = [seeds]
    elif isinstance(seeds, str):
        items = []
        if not seeds.strip():
            raise ConfigError("--seeds", seeds, allowed)
        for part in seeds.split(","):
            p = part.strip()
            m = re.fullmatch(r"(\d+)\.\.(\d+)", p)
            if m:
                a, b = int(m[1]), int(m[2])
                if b < a:
                    raise ConfigError("--seeds", seeds, f"empty range {p}: need A <= B")
                if b - a + 1 > HARD_MAX_CELLS:
                    raise ConfigError("--seeds", seeds, f"at most {HARD_MAX_CELLS:,} seeds")
                items += range(a, b + 1)
            elif re.fullmatch(r"\d+", p):
                items.append(int(p))
            else:
                raise ConfigError("--seeds", seeds, allowed)
    else:
        items = list(seeds)
        for s in items:
            if isinstance(s, bool) or not isinstance(s, int) or s < 0:
                raise ConfigError("--seeds", s, allowed)
    if not items:
        raise ConfigError("--seeds", seeds, allowed)
    for s in items:
        if s > 2**31 - 1:
            raise ConfigError("--seeds", s, "a seed is at most 2**31 - 1")
    return _no_duplicates("--seeds", seeds, items)


def parse_sets(overrides: Mapping[str, Any] | Iterable[str] | None) -> dict[str, Any]:
    """Fixed overrides: ``["train.steps=50"]`` or ``{"train.steps": 50}`` -> ``{"train.steps": 50}``."""
    if overrides is None:
        return {}
    if isinstance(overrides, Mapping):
        out = dict(overrides)
    else:
        out = {}
        for item in overrides:
            if not isinstance(item, str) or "=" not in item:
                raise ConfigError("--set", item, "expected KEY=VALUE, e.g. train.steps=50")
            key, raw = item.split("=", 1)
            key = key.strip()
            if key in out:
                raise ConfigError("--set", key, "set twice; set each key once")
            out[key] = parse_value(raw) if raw.strip() else raw
    for key in out:
        if not isinstance(key, str) or not _KEY.match(key):
            raise ConfigError("--set", key, "a key is a dotted name such as train.steps")
    return out


def make_grid(
    grid: Grid | Mapping[str, Any] | Iterable[str] | None,
    seeds: str | int | Iterable[int] | None = None,
) -> Grid:
    """A :class:`Grid` from ``["task.dim=5,10", ...]``, ``{"task.dim": [5, 10], "n": "1:9"}`` or a Grid.

    Mapping values are lists of values (taken as given) or SPEC strings (parsed).
    """
    if isinstance(grid, Grid):
        axes = list(grid.axes)
        seeds_t = grid.seeds if seeds is None else parse_seeds(seeds)
    else:
        axes = []
        if grid is None:
            pass
        elif isinstance(grid, Mapping):
            for key, spec in grid.items():
                key = str(key).strip()
                _check_key(key)
                if isinstance(spec, str):
                    axes.append(Axis(key, parse_values(key, spec), spec.strip()))
                elif isinstance(spec, Iterable) and not isinstance(spec, (bytes, Mapping)):
                    vals = list(spec)
                    if not vals:
                        raise ConfigError(key, vals, "an axis needs at least one value")
                    axes.append(Axis(key, _no_duplicates(key, vals, vals), None))
                else:
                    axes.append(Axis(key, (spec,), None))
        elif isinstance(grid, str):
            axes.append(parse_axis(grid))
        else:
            axes = [parse_axis(t) for t in grid]
        seeds_t = parse_seeds(seeds)
    keys = [a.key for a in axes]
    for k in keys:
        if keys.count(k) > 1:
            raise ConfigError("--grid", k, "the same key is given twice; one --grid per key")
        for other in keys:
            if other != k and other.startswith(k + "."):
                raise ConfigError("--grid", other, f"inside axis {k}; give one or the other")
    return Grid(tuple(axes), seeds_t)
