"""Fixtures shared by the estimator tests."""

from __future__ import annotations

import pytest

from fmtheory.estimators import _linalg as la


@pytest.fixture(params=["compiled", "torch"])
def gp_path(request, monkeypatch):
    """Run a test on the numba kernel and on the batched-torch path of sequential_gp_predictions
    (the path CUDA tensors and installs without numba take)."""
    if request.param == "torch":
        monkeypatch.setattr(la, "compiled_kernel", lambda: None)
    elif la.compiled_kernel() is None:
        pytest.skip("numba kernel unavailable")
    return request.param
