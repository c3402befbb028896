"""The command line: end to end on the tiny preset, bad input, cache, show/report, theory."""

import json
import subprocess
import sys

import pandas as pd
import pytest

from fmtheory.cli import main

pytestmark = pytest.mark.xdist_group("cli-e2e")


def _run(args, capsys):
    code = main(args)
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    proc = subprocess.run(
        [sys.executable, "-m", "fmtheory.cli", "run", "icl-regression", "--preset", "tiny",
         "--out", str(root), "--json", "--threads", "1"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    return root, json.loads(proc.stdout)


def test_run_folder_holds_everything(tiny_run):
    root, out = tiny_run
    from pathlib import Path

    run_dir = Path(out["run_dir"])
    for name in ("config.yaml", "results.parquet", "checks.json", "model.safetensors",
                 "report.html", "manifest.json", "figures/error_vs_context.png"):  # fmt: skip
        assert (run_dir / name).is_file(), name
    assert not (run_dir / "checkpoints").exists()
    assert set(out) >= {"run_dir", "checks"}
    for c in out["checks"]:
        assert set(c) >= {"claim", "kind", "predicted", "measured", "tolerance", "status", "why"}
    assert out["verdict"] in ("holds", "fails", "inconclusive", "n/a")
    assert out["model"].startswith("GPT ") and "attention" in out["model"]
    html = (run_dir / "report.html").read_text()
    assert "data:image/png;base64," in html and "Verdict:" in html and out["model"] in html
    # the claim checks come first in the report
    kinds = [c["kind"] for c in out["checks"]]
    assert "claim" in kinds
    table = pd.read_parquet(run_dir / "results.parquet")
    assert {"method", "n_context", "metric", "value", "se", "ci_low", "ci_high", "seed"} <= set(
        table.columns
    )


def test_transformer_beats_averaging_at_2d(tiny_run):
    root, out = tiny_run
    from pathlib import Path

    table = pd.read_parquet(Path(out["run_dir"]) / "results.parquet")
    k = 2 * 3  # 2d for the tiny preset's d = 3
    err = table[(table.metric == "normalized_mse") & (table.n_context == k)].set_index("method")
    assert (
        err.loc["GPT 2L×2H×32, linear attention, carry layout", "ci_high"]
        < err.loc["averaging", "ci_low"]
    )


def test_identical_config_is_cached(tiny_run, capsys):
    root, out = tiny_run
    code, stdout, _ = _run(["run", "icl-regression", "--preset", "tiny", "--out", str(root),
                            "--json"], capsys)  # fmt: skip
    assert code == 0
    again = json.loads(stdout)
    assert again["cached"] is True and again["run_dir"] == out["run_dir"]
    assert again["checks"] == out["checks"]


def test_show_and_report(tiny_run, capsys):
    root, out = tiny_run
    code, stdout, _ = _run(["show", out["run_dir"]], capsys)
    assert code == 0 and "transformer" in stdout and "checks" in stdout
    from pathlib import Path

    code, stdout, _ = _run(["report", out["run_dir"]], capsys)
    assert code == 0 and "report.html" in stdout
    manifest = json.loads((Path(out["run_dir"]) / "manifest.json").read_text())
    assert manifest["rechecked_by"]["source_hash"] == manifest["code"]["source_hash"]
    code, stdout, _ = _run(["show", out["run_dir"], "--json"], capsys)
    shown = json.loads(stdout)
    assert shown["experiment"] == "icl-regression" and shown["stale"] is False
    assert shown["stored_checks_differ"] is False


def test_show_reports_truncated_results(tiny_run, tmp_path, capsys):
    import shutil
    from pathlib import Path

    root, out = tiny_run
    copy = tmp_path / "copy"
    shutil.copytree(out["run_dir"], copy)
    res = copy / "results.parquet"
    res.write_bytes(res.read_bytes()[:100])
    code, stdout, err = _run(["show", str(copy)], capsys)
    assert code == 1 and "corrupt" in err and "results.parquet" in err
    (copy / "manifest.json").unlink()
    code, stdout, err = _run(["show", str(copy)], capsys)
    assert code == 1 and "incomplete" in err
    assert Path(out["run_dir"], "manifest.json").exists()


@pytest.mark.parametrize(
    "args, field",
    [
        (["--set", "task.dim=0"], "task.dim"),
        (["--set", "task.n_points=0"], "task.n_points"),
        (["--set", "task.noise_std=-1"], "task.noise_std"),
        (["--set", "task.dimm=3"], "task.dimm"),
        (["--set", "task.dim=abc"], "task.dim"),
        (["--set", "model.n_embd=30", "--set", "model.n_head=4"], "model"),
        (["--preset", "nope"], "preset"),
        (["--set", "novalue"], "--set"),
        (["--device", "tpu"], "--device"),
    ],
)
def test_bad_input_exit_2_and_no_folder(args, field, tmp_path, capsys):
    code, stdout, err = _run(["run", "icl-regression", "--out", str(tmp_path / "r"), *args], capsys)
    assert code == 2
    assert field in err
    assert stdout == ""
    assert not (tmp_path / "r").exists()


def test_unknown_experiment_exit_2(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "fmtheory.cli", "run", "no-such-claim", "--out",
                           str(tmp_path / "r")], capture_output=True, text=True)  # fmt: skip
    assert proc.returncode == 2 and "no-such-claim" in proc.stderr
    assert not (tmp_path / "r").exists()


def test_list_shows_experiments(capsys):
    code, stdout, _ = _run(["list", "--json"], capsys)
    items = json.loads(stdout)
    assert code == 0 and any(i["name"] == "icl-regression" for i in items)
    assert all(i["claim"] and i["source"] and i["chapter"] for i in items)
    code, stdout, _ = _run(["list"], capsys)
    lines = stdout.splitlines()
    assert "In-context learning" in lines and max(len(line) for line in lines) <= 80
    code, stdout, _ = _run(["theory", "list"], capsys)
    assert code == 0 and max(len(line) for line in stdout.splitlines()) <= 80


def test_theory_cli(capsys):
    code, stdout, _ = _run(["theory", "ols-risk", "--d", "5", "--k", "20", "--sigma", "0.5", "--json"],
                           capsys)  # fmt: skip
    res = json.loads(stdout)
    assert code == 0 and set(res) == {"name", "params", "value", "stderr", "source"}
    code, stdout, _ = _run(["theory", "ols-risk", "--d", "20", "--k", "20", "--sigma", "0.1",
                            "--json"], capsys)  # fmt: skip
    peak = json.loads(stdout)  # strict JSON: no Infinity
    assert peak["value"] is None and peak["value_text"] == "inf"
    # E(ŷ-y)² = σ² d/(k-d-1) + σ² for k > d+1 (Hastie et al. 2022)
    assert res["value"] == pytest.approx(0.25 * 5 / 14 + 0.25)
    code, stdout, err = _run(["theory", "ols-risk", "--d", "0", "--k", "3", "--sigma", "1"], capsys)
    assert code == 2 and "'d'" in err
    code, stdout, err = _run(["theory", "ols-risk", "--dd", "3"], capsys)
    assert code == 2 and "dd" in err
    code, stdout, err = _run(["theory", "no-such"], capsys)
    assert code == 2
    code, stdout, _ = _run(["theory", "list", "--json"], capsys)
    names = {f["name"] for f in json.loads(stdout)}
    assert {"icl-bayes-risk", "ols-risk"} <= names
