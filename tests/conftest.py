"""Shared test setup: one torch thread per test process (pytest-xdist runs one process per core)."""

import os

os.environ.setdefault("MPLBACKEND", "Agg")

import torch  # noqa: E402

torch.set_num_threads(1)
