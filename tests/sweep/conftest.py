"""Make ``xdist_group`` work for the sweep tests under pytest >= 9.

pytest-xdist (3.8) groups tests for ``--dist loadgroup`` by appending ``@group`` to
``item._nodeid``; pytest 9 derives ``item.nodeid`` from ``item._id`` instead, so the suffix is lost,
every test is scheduled on its own and module fixtures (a Ray instance, a training sweep) are built
on both workers.  This hook appends the suffix the way pytest 9 reads it, for this folder only.
"""

from __future__ import annotations

from pathlib import Path

import pytest

HERE = Path(__file__).parent


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not getattr(config.option, "loadgroup", False):
        return
    try:
        from _pytest.nodeid import NodeId
    except ImportError:  # pytest < 9: xdist's own suffix works
        return
    for item in items:
        if HERE not in Path(item.path).parents or "@" in item.nodeid:
            continue
        names = sorted({str(m.args[0] if m.args else m.kwargs.get("name", "default"))
                        for m in item.iter_markers("xdist_group")})  # fmt: skip
        if names and hasattr(item, "_id"):
            item._id = NodeId.parse(f"{item.nodeid}@{'_'.join(names)}")
