"""Results carry the code that made them: a run of other code is stale, recomputed by `run`,
marked by `show`, and its checks rewritten by `recheck`.  Uses the cheap sweep test experiment."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from fmtheory.cli import main
from fmtheory.runs import execute, load_run, recheck
from fmtheory.runs.store import write_manifest

HERE = Path(__file__).parent.parent / "sweep"


@pytest.fixture(scope="module")
def exp():
    mp = pytest.MonkeyPatch()
    mp.syspath_prepend(str(HERE))
    import sweep_testexp

    yield sweep_testexp.EXPERIMENT
    mp.undo()
    sys.modules.pop("sweep_testexp", None)


def _age(run_dir: Path, **code) -> None:
    """Make the stored run look as if other code had made it (manifest rewritten consistently)."""
    m = json.loads((run_dir / "manifest.json").read_text())
    m.pop("files")
    m["code"] = {**m["code"], "source_hash": "0" * 16, **code}
    write_manifest(run_dir, m)


def test_code_version_is_recorded(exp, tmp_path):
    rec = execute(exp, exp.make_config(), root=tmp_path)
    code = rec.run.code
    assert code["source_hash"] and code["fmtheory"]
    assert not rec.stale and not rec.run.stale


def test_run_of_other_code_is_recomputed_not_returned(exp, tmp_path):
    cfg = exp.make_config()
    first = execute(exp, cfg, root=tmp_path)
    _age(first.run_dir)
    assert load_run(first.run_dir).stale
    again = execute(exp, cfg, root=tmp_path)
    assert again.cached is False and not again.run.stale
    _age(first.run_dir)
    reused = execute(exp, cfg, root=tmp_path, reuse_stale=True)
    assert reused.cached and reused.stale


def test_show_says_stale_and_recheck_rewrites_changed_checks(exp, tmp_path, capsys):
    rec = execute(exp, exp.make_config(None, {"x": 1}), root=tmp_path)
    d = rec.run_dir
    stored = json.loads((d / "checks.json").read_text())
    stored[0]["status"] = "fails"  # as older code might have judged it
    (d / "checks.json").write_text(json.dumps(stored))
    _age(d)
    assert main(["show", str(d)]) == 0
    out = capsys.readouterr().out
    assert "stale" in out and "x is small: fails → holds" in out
    res = recheck(d)
    assert res.changed == [("x is small", "fails", "holds")] and not res.written
    assert main(["recheck", str(d), "--json"]) == 0
    got = json.loads(capsys.readouterr().out)
    assert got["runs"][0]["changed"] == [["x is small", "fails", "holds"]]
    run = load_run(d)
    assert run.checks[0].status == "holds"
    assert run.manifest["rechecked_by"]["source_hash"] != "0" * 16
    assert recheck(d).changed == []


def test_strict_exit_code_follows_the_claim_checks(exp, tmp_path, capsys):
    base = ["run", "sweep-test", "--out", str(tmp_path), "--json", "--strict"]
    assert main([*base, "--set", "x=1"]) == 0
    assert json.loads(capsys.readouterr().out)["verdict"] == "holds"
    assert main([*base, "--set", "x=5"]) == 1
    assert json.loads(capsys.readouterr().out)["verdict"] == "fails"
    assert main(["run", "sweep-test", "--out", str(tmp_path), "--set", "x=5", "--json"]) == 0
    capsys.readouterr()


def test_recheck_needs_a_target(tmp_path, capsys):
    assert main(["recheck"]) == 2
    assert main(["recheck", "--all", "--out", str(tmp_path / "nope")]) == 2
    capsys.readouterr()
