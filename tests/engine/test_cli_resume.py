"""Ctrl-C during `fmtheory run` leaves a resumable checkpoint; re-running resumes and gives the
numbers of an uninterrupted run (CPU, same seed)."""

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

pytestmark = pytest.mark.xdist_group("cli-resume")

ARGS = ["run", "icl-regression", "--preset", "tiny", "--set", "train.steps=600",
        "--set", "train.checkpoint_every=50", "--threads", "1", "--json"]  # fmt: skip


def _default_sigint() -> None:
    """Under nohup (SIGINT ignored) the child would inherit SIG_IGN: give it Ctrl-C back."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _cli(root: Path, **kw) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "fmtheory.cli", *ARGS, "--out", str(root)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=_default_sigint, **kw)  # fmt: skip


def test_interrupt_then_resume_matches_uninterrupted(tmp_path):
    root = tmp_path / "a"
    proc = _cli(root)
    deadline = time.time() + 240
    ckpts = []
    while time.time() < deadline and not ckpts:
        ckpts = list(root.glob("*/checkpoints/*.safetensors"))
        time.sleep(0.2)
    assert ckpts, "no checkpoint appeared"
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err[-1500:]
    assert "resume" in err
    run_dir = ckpts[0].parent.parent
    assert ckpts[0].exists() and not (run_dir / "manifest.json").exists()

    resumed = _cli(root)
    out, err = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, err[-1500:]
    assert json.loads(out)["run_dir"] == str(run_dir)

    fresh = _cli(tmp_path / "b")
    out_b, err_b = fresh.communicate(timeout=300)
    assert fresh.returncode == 0, err_b[-1500:]
    a = pd.read_parquet(run_dir / "results.parquet")
    b = pd.read_parquet(Path(json.loads(out_b)["run_dir"]) / "results.parquet")
    pd.testing.assert_frame_equal(a, b)
