"""The benchmark harness ``benchmarks/run.py``: discovery, ``--only``, ``--json`` and the result
convention, on a throw-away benchmark directory (the real benchmarks take tens of seconds)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

RUN_PY = Path(__file__).resolve().parents[2] / "benchmarks" / "run.py"


def load_run():
    spec = importlib.util.spec_from_file_location("_bench_run_under_test", RUN_PY)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


FAKE = """
def _fast():
    return {"name": "fast", "value": 0.5, "unit": "s", "reference": 50.0, "ratio": 100.0,
            "threads": 1}

def _other():
    return {"name": "other", "value": 2, "unit": "MB", "reference": 4, "ratio": 2.0}

BENCHMARKS = {"fast": _fast, "other": _other}
"""


@pytest.fixture
def bench_dir(tmp_path):
    (tmp_path / "bench_fake.py").write_text(FAKE)
    (tmp_path / "helper.py").write_text("raise RuntimeError('not a bench_ module: never imported')")
    return tmp_path


def test_discover_finds_bench_modules_only(bench_dir):
    run = load_run()
    assert sorted(run.discover(bench_dir)) == ["fast", "other"]


def test_json_output_is_exactly_the_result_list(bench_dir, capsys):
    run = load_run()
    assert run.main(["--json"], directory=bench_dir) == 0
    out = json.loads(capsys.readouterr().out)  # nothing else on stdout
    assert [r["name"] for r in out] == ["fast", "other"]
    assert out[0] == {
        "name": "fast",
        "value": 0.5,
        "unit": "s",
        "reference": 50.0,
        "ratio": 100.0,
        "threads": 1,
    }


def test_only_runs_one_and_unknown_name_exits_2(bench_dir, capsys):
    run = load_run()
    assert run.main(["--only", "other", "--json"], directory=bench_dir) == 0
    assert [r["name"] for r in json.loads(capsys.readouterr().out)] == ["other"]
    assert run.main(["--only", "nope"], directory=bench_dir) == 2
    err = capsys.readouterr().err
    assert "nope" in err and "fast" in err and "other" in err
    assert run.main(["--bogus"], directory=bench_dir) == 2


def test_table_output_and_result_convention(bench_dir, capsys):
    run = load_run()
    assert run.main([], directory=bench_dir) == 0
    out = capsys.readouterr().out
    assert "fast" in out and "threads=1" in out
    with pytest.raises(ValueError, match="ratio"):
        run.check_result("x", {"name": "x", "value": 1, "unit": "s", "reference": 1})


def test_duplicate_benchmark_names_are_an_error(bench_dir):
    (bench_dir / "bench_dup.py").write_text(FAKE)
    with pytest.raises(ValueError, match="both"):
        load_run().discover(bench_dir)


def test_estimator_benchmark_module_follows_the_convention(tmp_path):
    # only this area's module (the others import training code; their owners test them)
    src = RUN_PY.parent / "bench_estimators.py"
    (tmp_path / src.name).write_text(src.read_text())
    benches = load_run().discover(tmp_path)
    assert list(benches) == ["estimators"] and callable(benches["estimators"])
