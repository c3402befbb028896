"""The survey's test claims, registered here and (through PYTHONPATH) in worker processes."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).parent


@pytest.fixture(scope="session")
def test_claims():
    import importlib

    from fmtheory import contract

    mp = pytest.MonkeyPatch()
    mp.syspath_prepend(str(HERE))
    mp.setenv("PYTHONPATH", os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]))
    mod = importlib.import_module("survey_testexp")
    yield mod
    for name in mod.NAMES:
        contract._REGISTRY.pop(name, None)
    sys.modules.pop("survey_testexp", None)
    mp.undo()
