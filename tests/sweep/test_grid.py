"""Grid parsing and expansion, config validation of every cell (property-based with hypothesis)."""

from __future__ import annotations

import itertools
import math
import types
import typing
from typing import Any, Literal

import pytest
import yaml
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from fmtheory.errors import ConfigError
from fmtheory.experiments import get_experiment, list_experiments
from fmtheory.sweep import Axis, Grid, make_grid, parse_axis, parse_seeds, parse_values, plan
from fmtheory.sweep.grid import MAX_CELLS, parse_sets, parse_value
from fmtheory.theory import list_formulas

FAST = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# ------------------------------------------------------------------------------------------
# examples


@pytest.mark.parametrize(
    ("spec", "values"),
    [
        ("5,10,20", (5, 10, 20)),
        ("10:40:10", (10, 20, 30, 40)),
        ("10:45:10", (10, 20, 30, 40)),  # STOP not reached exactly: the last value below it
        ("1:5", (1, 2, 3, 4, 5)),
        ("0:1:0.25", (0.0, 0.25, 0.5, 0.75, 1.0)),
        ("0.1:0.3:0.1", (0.1, 0.2, 0.3)),  # no 0.30000000000000004
        ("1:64:*2", (1, 2, 4, 8, 16, 32, 64)),
        ("0.001:1:*10", (0.001, 0.01, 0.1, 1.0)),
        ("5:1:-2", (5, 3, 1)),
        ("2:6:2,20", (2, 4, 6, 20)),
        ("softmax,linear", ("softmax", "linear")),
        ("true,false", (True, False)),
        ("null,2", (None, 2)),
        ("1e-3,0.5", (0.001, 0.5)),
        ("7", (7,)),
    ],
)
def test_axis_values(spec, values):
    got = parse_values("k", spec)
    assert got == values
    assert [type(v) for v in got] == [type(v) for v in values]


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("", "at least one value"),
        ("5:1", "empty range"),
        ("1:5:-1", "empty range"),
        ("1:5:0", "must not be 0"),
        ("1:64:*1", "FACTOR"),
        ("64:1:*2", "empty range"),
        ("0:8:*2", "START, STOP > 0"),
        ("1:2:3:4", "a range is"),
        ("5,5", "appears twice"),
        ("1:3,2", "appears twice"),
        ("1,,2", "empty item"),
        ("1:", "a range is"),
    ],
)
def test_bad_axis_values(spec, message):
    with pytest.raises(ConfigError) as e:
        parse_values("task.dim", spec)
    assert e.value.field == "task.dim"
    assert message in str(e.value)


def test_parse_axis_and_keys():
    assert parse_axis("task.dim=5,10") == Axis("task.dim", (5, 10), "5,10")
    for bad in ["task.dim", "=5", "task..dim=5", "1x=3", "seed=1,2"]:
        with pytest.raises(ConfigError) as e:
            parse_axis(bad)
        assert e.value.field == "--grid"
    with pytest.raises(ConfigError, match="twice"):
        make_grid(["task.dim=1,2", "task.dim=3"])
    with pytest.raises(ConfigError, match="inside axis"):
        make_grid({"task": [{"dim": 2}], "task.dim": [1]})


@pytest.mark.parametrize(
    ("seeds", "expected"),
    [("0..4", (0, 1, 2, 3, 4)), ("0,3,7", (0, 3, 7)), ("5", (5,)), (3, (3,)), ([1, 2], (1, 2)),
     ("0..1,5", (0, 1, 5)), (None, None)],
)  # fmt: skip
def test_seeds(seeds, expected):
    assert parse_seeds(seeds) == expected


@pytest.mark.parametrize("seeds", ["", "4..1", "a", "-1", "1,1", [-1], [True], "0..x", 2**31])
def test_bad_seeds(seeds):
    with pytest.raises(ConfigError) as e:
        parse_seeds(seeds)
    assert e.value.field == "--seeds"


def test_sets():
    assert parse_sets(["train.steps=50", "model.attention=linear", "task.sparsity=null"]) == {
        "train.steps": 50,
        "model.attention": "linear",
        "task.sparsity": None,
    }
    with pytest.raises(ConfigError, match="set twice"):
        parse_sets(["a=1", "a=2"])
    with pytest.raises(ConfigError, match="KEY=VALUE"):
        parse_sets(["a"])


def test_cells_order_and_count():
    g = make_grid(["a=1,2,3", "b=x,y"], "0..1")
    cells = g.cells()
    assert g.n_cells == len(cells) == 12
    assert [c.index for c in cells] == list(range(12))
    # first axis slowest, seeds fastest
    assert [(c.point["a"], c.point["b"], c.seed) for c in cells[:5]] == [
        (1, "x", 0), (1, "x", 1), (1, "y", 0), (1, "y", 1), (2, "x", 0),
    ]  # fmt: skip


# ------------------------------------------------------------------------------------------
# property-based: grids round-trip through the CLI text and through YAML

_RESERVED_WORDS = {"true", "false", "null", "yes", "no", "on", "off", "y", "n", "inf", "nan"}
_words = st.from_regex(r"[a-z][a-z0-9_]{0,7}", fullmatch=True).filter(
    lambda s: s.lower() not in _RESERVED_WORDS
)
_scalars = st.one_of(
    st.integers(-10**9, 10**9),
    st.floats(allow_nan=False, allow_infinity=False, width=64).filter(lambda f: abs(f) < 1e300),
    st.booleans(),
    st.none(),
    _words,
)  # fmt: skip


def _unique(values: list[Any]) -> list[Any]:
    out: list[Any] = []
    for v in values:
        if not any(type(v) is type(o) and v == o for o in out):
            out.append(v)
    return out


def _text(v: Any) -> str:
    """How a user types a value on the command line."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if v is None:
        return "null"
    if isinstance(v, float):
        return repr(v)
    return str(v)


@FAST
@given(st.lists(_scalars, min_size=1, max_size=6).map(_unique))
def test_values_round_trip_through_text(values):
    spec = ",".join(_text(v) for v in values)
    got = parse_values("k", spec)
    assert [(type(v), v) for v in got] == [(type(v), v) for v in values]


@FAST
@given(
    st.integers(-50, 50), st.integers(0, 60), st.integers(1, 9),
)  # fmt: skip
def test_int_range_matches_python_range(start, length, step):
    stop = start + length
    assert parse_values("k", f"{start}:{stop}:{step}") == tuple(range(start, stop + 1, step))


_keys = st.lists(
    st.from_regex(r"[a-z]{1,5}(\.[a-z]{1,5}){0,2}", fullmatch=True), min_size=0, max_size=3,
    unique=True,
).filter(lambda ks: not any(a != b and b.startswith(a + ".") for a in ks for b in ks))  # fmt: skip


@FAST
@given(
    _keys.flatmap(
        lambda ks: st.tuples(
            st.just(ks),
            st.lists(st.lists(_scalars, min_size=1, max_size=4).map(_unique), min_size=len(ks),
                     max_size=len(ks)),
        )
    ),
    st.one_of(st.none(), st.lists(st.integers(0, 2**31 - 1), min_size=1, max_size=4, unique=True)),
)  # fmt: skip
def test_grid_round_trips_through_yaml_and_expands_to_the_product(axes, seeds):
    keys, values = axes
    assume("seed" not in keys)
    g = make_grid(dict(zip(keys, values, strict=True)), seeds)
    again = Grid.from_dict(yaml.safe_load(yaml.safe_dump(g.to_dict())))
    assert again == g
    cells = g.cells()
    n_seeds = len(seeds) if seeds is not None else 1
    assert len(cells) == g.n_cells == math.prod(len(v) for v in values) * n_seeds
    combos = [tuple((k, repr(c.point[k])) for k in keys) + (c.seed,) for c in cells]
    assert len(set(combos)) == len(combos)  # every combination exactly once
    expected = {
        tuple((k, repr(v)) for k, v in zip(keys, combo, strict=True)) + (s,)
        for combo in itertools.product(*values)
        for s in (seeds if seeds is not None else [None])
    }
    assert set(combos) == expected


# ------------------------------------------------------------------------------------------
# property-based: every invalid config is rejected, naming the field; valid ones round-trip


def _leaves(model: type[BaseModel], prefix: str = "") -> list[tuple[str, Any, list]]:
    """(dotted path, annotation, constraints) of every leaf field of a Config."""
    out = []
    for name, f in model.model_fields.items():
        path = f"{prefix}{name}"
        ann = f.annotation
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            out += _leaves(ann, path + ".")
        elif path != "seed":
            out.append((path, ann, list(f.metadata)))
    return out


def _bounds(meta: list) -> tuple[float | None, float | None, bool, bool]:
    lo = hi = None
    lo_open = hi_open = False
    for m in meta:
        if hasattr(m, "ge"):
            lo = m.ge
        if hasattr(m, "gt"):
            lo, lo_open = m.gt, True
        if hasattr(m, "le"):
            hi = m.le
        if hasattr(m, "lt"):
            hi, hi_open = m.lt, True
    return lo, hi, lo_open, hi_open


def _base_kind(ann: Any) -> Any:
    """``int | None`` -> int; anything else (int, Literal[...], list[int], ...) as it is."""
    if typing.get_origin(ann) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(ann) if a is not type(None)]
        if len(args) == 1:
            return _base_kind(args[0])
    return ann


def _invalid_values(ann: Any, meta: list) -> list[Any]:
    kind = _base_kind(ann)
    lo, hi, lo_open, hi_open = _bounds(meta)
    bad: list[Any] = []
    if typing.get_origin(kind) is Literal:
        return ["zzz-not-allowed", 12345]
    if kind is bool:
        return ["maybe", 2.5]
    if kind in (int, float):
        bad.append("not-a-number")
        if kind is int:
            bad.append(1.5)
        if lo is not None:
            bad.append(lo if lo_open else (lo - 1 if kind is int else lo - abs(lo) * 0.5 - 1))
        if hi is not None:
            bad.append(hi if hi_open else (hi + 1 if kind is int else hi + abs(hi) * 0.5 + 1))
    return bad


# the package's own experiments (tests register others for a while; they must not leak in here)
_EXPERIMENTS = [
    e.name for e in list_experiments() if e.run.__module__.startswith("fmtheory.") and e.presets()
]


@st.composite
def _invalid_override(draw):
    name = draw(st.sampled_from(_EXPERIMENTS))
    exp = get_experiment(name)
    leaves = [(p, a, m) for p, a, m in _leaves(exp.config_cls) if _invalid_values(a, m)]
    path, ann, meta = draw(st.sampled_from(leaves))
    value = draw(st.sampled_from(_invalid_values(ann, meta)))
    return name, path, value


@FAST
@given(_invalid_override())
def test_every_invalid_value_is_rejected_naming_its_field(case):
    name, path, value = case
    with pytest.raises(ConfigError) as e:
        plan(name, {path: [value]}, preset=get_experiment(name).default_preset, root="/nonexistent")
    assert e.value.field == path, str(e.value)


@FAST
@given(
    st.sampled_from(_EXPERIMENTS),
    st.from_regex(r"[a-z]{1,8}(\.[a-z]{1,8}){0,2}", fullmatch=True),
)  # fmt: skip
def test_unknown_keys_are_rejected_naming_them(name, key):
    exp = get_experiment(name)
    known = {p for p, _, _ in _leaves(exp.config_cls)} | set(exp.config_cls.model_fields)
    assume(key not in known and key != "seed" and not any(k.startswith(key + ".") for k in known))
    with pytest.raises(ConfigError) as e:
        plan(name, {key: [1]}, root="/nonexistent")
    assert key.startswith(e.value.field) or e.value.field.startswith(key.split(".")[0]), str(
        e.value
    )
    assert key.split(".")[-1] in str(e.value) or e.value.field in key


@st.composite
def _valid_override(draw):
    name = draw(st.sampled_from(_EXPERIMENTS))
    exp = get_experiment(name)
    path, ann, meta = draw(st.sampled_from(_leaves(exp.config_cls)))
    kind = _base_kind(ann)
    lo, hi, lo_open, hi_open = _bounds(meta)
    if typing.get_origin(kind) is Literal:
        value = draw(st.sampled_from(typing.get_args(kind)))
    elif kind is bool:
        value = draw(st.booleans())
    elif kind is int:
        a = int(lo) + (1 if lo_open else 0) if lo is not None else -5
        b = min(int(hi) - (1 if hi_open else 0), a + 50) if hi is not None else a + 50
        value = draw(st.integers(a, max(a, b)))
    elif kind is float:
        a = float(lo) if lo is not None else -5.0
        b = min(float(hi), a + 10.0) if hi is not None else a + 10.0
        value = draw(st.floats(a, b, exclude_min=lo_open, exclude_max=hi_open or b < float("inf")))
    else:
        value = None
    assume(value is not None)
    return name, path, value


@FAST
@given(_valid_override(), st.integers(0, 2**31 - 1))
def test_valid_configs_round_trip_through_yaml_unchanged(case, seed):
    name, path, value = case
    exp = get_experiment(name)
    try:
        p = plan(name, {path: [value]}, [seed], root="/nonexistent")
    except ConfigError:
        # a constraint between fields may reject a value within its own bounds: then the
        # experiment's own make_config must reject it too (the sweep adds no rule of its own)
        with pytest.raises(ConfigError):
            exp.make_config(None, {path: value}, seed=seed)
        assume(False)
        return
    (job,) = p.jobs
    # the sweep's configs are exactly Experiment.make_config's (it reads the preset once)
    direct = exp.make_config(None, {path: value}, seed=seed).model_dump(mode="json")
    assert job.config == direct
    again = yaml.safe_load(yaml.safe_dump(job.config, sort_keys=False))
    assert again == job.config
    assert exp.config_cls.model_validate(again).model_dump(mode="json") == job.config
    cur: Any = job.config
    for part in path.split("."):
        cur = cur[part]
    assert cur == value and job.config["seed"] == seed


_FORMULAS = [f for f in list_formulas()]


@st.composite
def _invalid_param(draw):
    f = draw(st.sampled_from(_FORMULAS))
    p = draw(st.sampled_from([p for p in f.params if p.name != "seed"]))  # seeds: --seeds
    bad: list[Any] = ["abc"]
    if p.kind is int:
        bad.append(2.5)
    if p.low is not None:
        bad.append(p.low - 1 - abs(p.low))  # beyond the bound even where +1 is below float spacing
    if p.high is not None:
        bad.append(p.high + 1 + abs(p.high))
    return f.name, p.name, draw(st.sampled_from(bad))


@FAST
@given(_invalid_param())
def test_invalid_formula_parameters_are_rejected_naming_them(case):
    name, param, value = case
    with pytest.raises(ConfigError) as e:
        plan(theory=name, grid={param: [value]}, root="/nonexistent")
    assert e.value.field == param, str(e.value)


def test_theory_grid_errors():
    with pytest.raises(ConfigError, match="has parameters"):
        plan(theory="ols-risk", grid=["r=1:3"], overrides=["sigma=0.5"])
    with pytest.raises(ConfigError, match="needs parameter 'sigma'"):
        plan(theory="ols-risk", grid=["d=5", "k=1:3"])
    with pytest.raises(ConfigError, match="no seed parameter") as e:
        plan(theory="ols-risk", grid=["d=5", "k=1:3"], seeds="0..2", overrides=["sigma=0.5"])
    assert e.value.field == "--seeds"
    with pytest.raises(ConfigError, match="unknown formula"):
        plan(theory="no-such-formula", grid=["d=5"])
    with pytest.raises(ConfigError, match="also a grid axis"):
        plan(theory="ols-risk", grid=["d=5", "k=1:3"], overrides=["sigma=0.5", "d=3"])


def test_too_many_cells_need_yes():
    grid = ["task.dim=1:100", "task.n_points=1:101"]  # 10,100 cells
    with pytest.raises(ConfigError) as e:
        plan("icl-regression", grid, preset="tiny", root="/nonexistent")
    assert e.value.field == "--grid" and "--yes" in str(e.value)
    # just at the limit: allowed without --yes (planning only: nothing runs)
    p = plan(theory="ols-risk", grid=["d=1:100", "k=1:100"], overrides=["sigma=0.5"])
    assert len(p.jobs) == MAX_CELLS
    p = plan(theory="ols-risk", grid=["d=1:100", "k=0:100"], overrides=["sigma=0.5"], yes=True)
    assert len(p.jobs) == MAX_CELLS + 100


def test_cross_field_errors_name_the_cell():
    with pytest.raises(ConfigError) as e:
        plan("icl-regression", ["task.dim=2,8", "task.sparsity=1,4"], preset="tiny")
    assert "sparsity" in str(e.value) and "task.dim=2" in str(e.value)


def test_equal_configs_from_distinct_values_are_rejected():
    with pytest.raises(ConfigError, match="same config"):
        plan("icl-regression", {"task.dim": [3, 3.0]}, preset="tiny")


def test_parse_value_is_yaml_with_numeric_fallback():
    assert parse_value("1e-3") == 0.001 and parse_value("3") == 3 and parse_value("x") == "x"
    assert parse_value("[1, 2]") == [1, 2]
