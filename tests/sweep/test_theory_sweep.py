"""Theory sweeps end to end (cells are formulas: no training), the CLI, and sweep-report."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest
import yaml

from fmtheory.cli import main
from fmtheory.sweep import read_cells
from fmtheory.sweep import run as sweep
from fmtheory.theory import evaluate

pytestmark = pytest.mark.xdist_group("sweep-theory")


@pytest.fixture(scope="module")
def ols_sweep(tmp_path_factory):
    """A 2-axis theory sweep (d x k) through the local executor: 2 worker processes."""
    root = tmp_path_factory.mktemp("store")
    table = sweep(theory="ols-risk", grid=["d=4,8,16", "k=0:20:2"], overrides={"sigma": 0.5},
                  executor="local", workers=2, root=root)  # fmt: skip
    return root, table


def test_cells_equal_the_formula(ols_sweep):
    _, t = ols_sweep
    assert len(t) == 3 * 11 and (t["status"] == "complete").all()
    assert list(t["d"].unique()) == [4, 8, 16] and list(t["k"].unique()) == list(range(0, 21, 2))
    for _, row in t.iterrows():
        expected = evaluate("ols-risk", d=int(row["d"]), k=int(row["k"]), sigma=0.5).value
        assert row["value"] == expected or (np.isinf(expected) and np.isinf(row["value"]))
    assert t["seed"].isna().all()  # an exact formula has no seed
    assert t["run_dir"].isna().all() and t["claims_ok"].isna().all()


def test_sweep_folder(ols_sweep):
    _, t = ols_sweep
    from pathlib import Path

    sdir = Path(t.attrs["sweep_dir"])
    spec = yaml.safe_load((sdir / "sweep.yaml").read_text())
    assert spec["kind"] == "theory" and spec["target"] == "ols-risk"
    assert [a["key"] for a in spec["grid"]["axes"]] == ["d", "k"]
    assert spec["grid"]["axes"][1]["values"] == list(range(0, 21, 2))
    assert (sdir / "figures" / "heatmap_value.png").stat().st_size > 1000
    html = (sdir / "report.html").read_text()
    assert html.count("data:image/png;base64,") >= 1 and "ols-risk" in html
    assert "<img" in html and "src='figures/" not in html  # self-contained
    stored = read_cells(sdir / "cells.parquet")
    pd.testing.assert_frame_equal(stored.table, t, check_dtype=True)
    assert stored.spec["metrics"] == ["value"]


def test_sweep_report_rerenders_from_cells_parquet_alone(ols_sweep, tmp_path, capsys):
    _, t = ols_sweep
    from pathlib import Path

    alone = tmp_path / "copy"
    alone.mkdir()
    shutil.copy(Path(t.attrs["sweep_dir"]) / "cells.parquet", alone)
    assert main(["sweep-report", str(alone), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["figures"] == ["heatmap_value.png"]
    assert (alone / "report.html").read_text().count("data:image/png;base64,") == 1
    assert main(["sweep-report", str(tmp_path / "nothing")]) == 2
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "cells.parquet").write_bytes(b"not parquet")
    assert main(["sweep-report", str(tmp_path / "bad")]) == 2


def test_monte_carlo_formula_with_seeds_one_axis(tmp_path):
    """A seeded formula: --seeds are cells; one axis -> line plots with intervals over seeds."""
    t = sweep(theory="icl-bayes-risk", grid={"k": "1:4"}, seeds="0..2", executor="inline",
              overrides={"d": 3, "sigma": 0.5, "n_mc": 200}, root=tmp_path)  # fmt: skip
    assert len(t) == 12 and list(t["seed"]) == [0, 1, 2] * 4
    for _, row in t.iterrows():
        v = evaluate(
            "icl-bayes-risk", d=3, k=int(row["k"]), sigma=0.5, n_mc=200, seed=int(row["seed"])
        )
        assert row["value"] == v.value and row["stderr"] == v.stderr
    from pathlib import Path

    figs = sorted(p.name for p in (Path(t.attrs["sweep_dir"]) / "figures").iterdir())
    assert figs == ["line_stderr.png", "line_value.png"]


def test_cli_theory_sweep_json(tmp_path, capsys):
    code = main(["sweep", "--theory", "ols-risk", "--grid", "d=5,10", "--grid", "k=1:3",
                 "--set", "sigma=0.5", "--executor", "inline", "--out", str(tmp_path), "--json"])  # fmt: skip
    out = json.loads(capsys.readouterr().out)
    assert code == 0
    assert out["cells"] == 6 and out["complete"] == 6 and out["failed"] == 0
    t = pd.read_parquet(out["cells_table"])
    assert list(t["value"]) == [evaluate("ols-risk", d=d, k=k, sigma=0.5).value
                                for d in (5, 10) for k in (1, 2, 3)]  # fmt: skip


@pytest.mark.parametrize(
    "args",
    [
        ["icl-regression", "--grid", "task.dimm=1,2"],  # unknown key
        ["icl-regression", "--grid", "task.dim=5,x"],  # wrong type
        ["icl-regression", "--grid", "task.dim=5:1"],  # empty range
        ["icl-regression", "--grid", "task.dim=0,5"],  # out of range
        ["icl-regression", "--grid", "task.dim=1:100", "--grid", "task.n_points=1:101"],  # 10,100
        ["icl-regression", "--grid", "task.dim=2", "--seeds", "3..1"],
        ["icl-regression", "--grid", "task.dim=2", "--preset", "nope"],
        ["icl-regression", "--grid", "task.dim=2", "--executor", "local", "--address", "auto"],
        ["icl-regression", "--grid", "task.dim=2", "--workers", "0"],
        ["--theory", "ols-risk", "--grid", "d=5", "--grid", "k=1", "--set", "sigma=-1"],
        ["--theory", "nope", "--grid", "d=5"],
        ["icl-regression", "--theory", "ols-risk", "--grid", "d=5"],
        ["icl-regression"],  # nothing to sweep
    ],
)
def test_invalid_sweeps_exit_2_and_write_nothing(args, tmp_path, capsys):
    code = main(["sweep", *args, "--out", str(tmp_path / "store")])
    err = capsys.readouterr().err
    assert code == 2, err
    assert "error" in err
    assert not (tmp_path / "store").exists()
