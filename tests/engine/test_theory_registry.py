"""The theory registry: validation of parameters, lookup errors, listing."""

import pytest

from fmtheory.theory import Param, TheoryValue, evaluate, get_formula, list_formulas, registry
from fmtheory.theory.registry import register_formula


def test_every_formula_is_documented():
    fs = list_formulas()
    assert fs, "no formula registered"
    for f in fs:
        assert f.source.strip() and f.summary.strip(), f.name
        assert len({p.name for p in f.params}) == len(f.params)


def test_unknown_formula_lists_names():
    with pytest.raises(ValueError, match="registered:"):
        get_formula("no-such-formula")


def test_param_validation():
    p = Param("d", int, low=1)
    assert p.coerce("3") == 3
    for bad in ("0", "x", 2.5, float("nan")):
        with pytest.raises(ValueError, match="'d'"):
            p.coerce(bad)
    q = Param("sigma", float, default=0.0, low=0.0)
    with pytest.raises(ValueError, match="sigma"):
        q.coerce(-1)
    with pytest.raises(ValueError, match="inf"):
        q.coerce("inf")


def test_resolve_fills_defaults_and_rejects_unknown(monkeypatch):
    list_formulas()  # load the real registry, then work on a copy of it
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))
    f = register_formula(
        "test-square",
        lambda *, a, b: TheoryValue(a * a + b),
        params=[Param("a"), Param("b", default=1.0)],
        source="test",
        summary="a² + b",
    )
    assert evaluate("test-square", a=2).value == 5.0
    with pytest.raises(ValueError, match="needs parameter 'a'"):
        f.resolve({})
    with pytest.raises(ValueError, match="no parameter 'c'"):
        f.resolve({"a": 1, "c": 2})
    with pytest.raises(ValueError, match="already registered"):
        register_formula("test-square", f.fn, params=[], source="x", summary="x")
