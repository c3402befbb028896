"""Shared test setup.

- One torch thread per test process (pytest-xdist runs one process per core), matplotlib's Agg
  backend, and every figure closed after each test (experiments return open figures).
- ``xdist_group`` under pytest >= 9: pytest-xdist (3.8) groups tests for ``--dist loadgroup`` by
  appending ``@group`` to ``item._nodeid``; pytest 9 derives ``item.nodeid`` from ``item._id``
  instead, so the suffix is lost, every test is scheduled on its own and module fixtures (a Ray
  instance, a training sweep, a trained CLI run) are built on both workers.  The hook below appends
  the suffix the way pytest 9 reads it.
"""

from __future__ import annotations

import os
import sys

os.environ.setdefault("MPLBACKEND", "Agg")

import pytest  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    if "matplotlib.pyplot" in sys.modules:
        import matplotlib.pyplot as plt

        plt.close("all")


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not getattr(config.option, "loadgroup", False):
        return
    try:
        from _pytest.nodeid import NodeId
    except ImportError:  # pytest < 9: xdist's own suffix works
        return
    for item in items:
        if "@" in item.nodeid:
            continue
        names = sorted({str(m.args[0] if m.args else m.kwargs.get("name", "default"))
                        for m in item.iter_markers("xdist_group")})  # fmt: skip
        if names and hasattr(item, "_id"):
            item._id = NodeId.parse(f"{item.nodeid}@{'_'.join(names)}")
