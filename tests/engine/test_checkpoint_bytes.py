"""``save_model`` writes the same bytes for the same model in two processes (safetensors orders
several header keys by a per-process hash), and its metadata reads back."""

from __future__ import annotations

import subprocess
import sys

from fmtheory.train import model_metadata

SCRIPT = """
import sys, torch
from fmtheory.train import save_model
torch.manual_seed(0)
save_model(sys.argv[1], torch.nn.Linear(3, 2), {"experiment": "x", "model": "GPT 2L×2H×32", "n": "3"})
"""


def test_same_model_same_bytes_across_processes(tmp_path):
    paths = [tmp_path / f"m{i}.safetensors" for i in range(3)]
    for p in paths:
        subprocess.run([sys.executable, "-c", SCRIPT, str(p)], check=True)
    data = {p.read_bytes() for p in paths}
    assert len(data) == 1
    assert model_metadata(paths[0]) == {"experiment": "x", "model": "GPT 2L×2H×32", "n": "3"}
