"""Σx's normalisation (``x_scale``) and what it does to the κ law of the oracle error: with the
largest eigenvalue fixed and U on the weakest directions, the oracle's squared error grows about
linearly in κ; with trace d it grows like κ^0.6."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fmtheory.checks import fit_power_law
from fmtheory.contract import get_experiment
from fmtheory.errors import ConfigError
from fmtheory.tasks.ilr import ILRSpec, sample_ilr_prior
from fmtheory.theory.ilr import oracle_mse


@pytest.mark.parametrize("scale", ["trace", "max"])
def test_x_variances_follow_the_normalisation(scale):
    v = ILRSpec(dim=10, rank=2, x_cond=16.0, x_scale=scale).x_variances(torch.float64)
    assert float(v.max() / v.min()) == pytest.approx(16.0)
    assert float(v.sum() if scale == "trace" else v.max()) == pytest.approx(
        10.0 if scale == "trace" else 1.0
    )


def _kappa_exponent(scale: str) -> float:
    conds = np.array([1.0, 4.0, 16.0, 64.0])
    mses = []
    for k in conds:
        spec = ILRSpec(
            dim=10, rank=2, noise_std=0.1, x_cond=float(k), alignment="weakest", x_scale=scale
        )
        prior = sample_ilr_prior(spec, generator=torch.Generator().manual_seed(0))
        mses.append(oracle_mse(n=8, sigma=0.1, spectrum=np.ones(2), x_var=spec.x_variances(torch.float64).numpy(),
                               basis=prior.basis.numpy(), n_mc=4000).value)  # fmt: skip
    return fit_power_law(conds, mses).slope


def test_kappa_law_depends_on_the_normalisation():
    assert 0.85 <= _kappa_exponent("max") <= 1.0
    assert 0.5 <= _kappa_exponent("trace") <= 0.7


def test_config_passes_x_scale_and_rejects_unknown():
    exp = get_experiment("ilr")
    assert exp.make_config("quick", {"task.x_scale": "max"}).task.x_scale == "max"
    with pytest.raises(ConfigError) as e:
        exp.make_config("quick", {"task.x_scale": "min"})
    assert "x_scale" in str(e.value)
