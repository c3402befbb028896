"""The shift registry and samplers: shapes, labels, the geometry each shift promises, the second
moments handed to the closed-form LSA risk (vs empirical moments, 4 standard errors), bad input."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from fmtheory.tasks.regression import RegressionSpec, make_generator
from fmtheory.tasks.shift import ShiftError, get_shift, list_shifts, sample_shift

BASE = RegressionSpec(dim=4, noise_std=0.0)
ALL = [
    "none", "task-scale", "task-sparse", "query-scale", "query-orthogonal", "covariate-scale",
    "covariate-skewed", "noisy-labels", "orthant", "opposite-quadrant",
]  # fmt: skip


def test_registry_lists_every_shift_and_refuses_unknown_names():
    assert set(ALL) <= set(list_shifts())
    with pytest.raises(ValueError, match="valid shifts: .*covariate-scale"):
        get_shift("covariate-shfit")


@pytest.mark.parametrize("name", ALL)
def test_shapes_labels_and_determinism(name):
    n = 2 if name == "query-orthogonal" else 6
    b1 = sample_shift(name, BASE, n_context=n, batch=32, generator=make_generator(3))
    b2 = sample_shift(name, BASE, n_context=n, batch=32, generator=make_generator(3))
    assert b1.x.shape == (32, n + 1, 4) and b1.y.shape == (32, n + 1) and b1.w.shape == (32, 4)
    assert torch.equal(b1.x, b2.x) and torch.equal(b1.y, b2.y)
    if name != "noisy-labels":  # noiseless base: every label, the query's too, is <w, x>
        torch.testing.assert_close(b1.y, torch.einsum("bnd,bd->bn", b1.x, b1.w))


def test_query_orthogonal_is_orthogonal_and_keeps_the_query_norm():
    b = sample_shift("query-orthogonal", BASE, n_context=2, batch=4000,
                     generator=make_generator(0), dtype=torch.float64)  # fmt: skip
    dots = torch.einsum("bnd,bd->bn", b.x[:, :-1], b.x[:, -1])
    assert float(dots.abs().max()) <= 1e-12
    sq = b.x[:, -1].pow(2).sum(1).numpy()  # E‖x_q‖² = d after the sqrt(d/(d − n)) rescaling
    assert abs(sq.mean() - 4) <= 4 * sq.std(ddof=1) / math.sqrt(sq.size)
    with pytest.raises(ShiftError, match="n_context < dim") as info:
        sample_shift("query-orthogonal", BASE, n_context=4, batch=2, generator=make_generator(0))
    assert info.value.field == "n_context"


def test_orthant_and_opposite_quadrant_geometry():
    b = sample_shift("orthant", BASE, n_context=5, batch=200, generator=make_generator(1))
    s = torch.sign(b.x[:, 0])  # every context input shares the sign pattern of the first one
    assert bool((b.x[:, :-1] * s[:, None, :] >= 0).all())
    b = sample_shift("opposite-quadrant", BASE, n_context=5, batch=200, generator=make_generator(1))
    s = torch.sign(b.x[:, 0])
    assert bool((b.x[:, :-1] * s[:, None, :] >= 0).all())
    assert bool((b.x[:, -1] * s <= 0).all())  # the query in the opposite orthant


def test_task_sparse_has_k_nonzeros_and_refuses_k_above_dim():
    b = sample_shift("task-sparse", BASE, n_context=3, batch=50, generator=make_generator(2),
                     params={"k": 2})  # fmt: skip
    assert bool(((b.w != 0).sum(1) == 2).all())
    with pytest.raises(ShiftError, match="'k' = 5") as info:
        get_shift("task-sparse").validate(BASE, 3, {"k": 5})
    assert info.value.field == "params.k"


def test_bad_parameters_name_the_field():
    with pytest.raises(ValueError, match="parameter 'c' = -1"):
        get_shift("covariate-scale").resolve({"c": -1})
    with pytest.raises(ValueError, match="unknown parameter.*'scale'.*allowed: c"):
        get_shift("covariate-scale").resolve({"scale": 2})
    with pytest.raises(ValueError, match="parameter 'sigma' = -0.5"):
        get_shift("noisy-labels").resolve({"sigma": -0.5})
    with pytest.raises(ValueError, match="parameter 'k' = 1.5"):
        get_shift("task-sparse").resolve({"k": 1.5})
    with pytest.raises(ShiftError, match="n_context = 0"):
        sample_shift("none", BASE, n_context=0, batch=2, generator=make_generator(0))


@pytest.mark.parametrize(
    ("name", "params"),
    [("none", {}), ("task-scale", {"scale": 2.0}), ("task-sparse", {"k": 2}),
     ("query-scale", {"c": 3.0}), ("covariate-scale", {"c": 0.5}),
     ("covariate-skewed", {"cond": 20.0}), ("noisy-labels", {"sigma": 0.7})],
)  # fmt: skip
def test_moments_match_the_sampled_prompts(name, params):
    base = RegressionSpec(dim=3, noise_std=0.2, w_mean=0.5)
    shift = get_shift(name)
    b = shift.sample(base, n_context=4, batch=40_000, generator=make_generator(9), params=params,
                     dtype=torch.float64)  # fmt: skip
    mom = shift.moments(base, n_context=4, params=params)
    x, w = b.x.numpy(), b.w.numpy()
    for emp_samples, want in [
        (np.einsum("bni,bnj->bnij", x[:, :-1], x[:, :-1]).reshape(-1, 9), mom.ctx_cov),
        (np.einsum("bi,bj->bij", x[:, -1], x[:, -1]).reshape(-1, 9), mom.query_cov),
        (np.einsum("bi,bj->bij", w, w).reshape(-1, 9), mom.w_cov),
    ]:
        mean = emp_samples.mean(0)
        se = emp_samples.std(0, ddof=1) / math.sqrt(emp_samples.shape[0])
        assert np.all(np.abs(mean - want.ravel()) <= 4 * se + 1e-12), (mean, want.ravel(), se)
    resid = (b.y - torch.einsum("bnd,bd->bn", b.x, b.w)).numpy().ravel()
    assert abs(resid.std() - mom.noise_std) <= 4 * mom.noise_std / math.sqrt(2 * resid.size)


def test_non_gaussian_shifts_have_no_moments():
    for name in ("orthant", "opposite-quadrant", "query-orthogonal"):
        assert get_shift(name).moments(BASE, n_context=2) is None
