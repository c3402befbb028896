"""The finite task pool and its pretraining sampler."""

import pytest
import torch

from fmtheory.tasks.regression import RegressionSpec, make_generator
from fmtheory.tasks.task_pool import nested_pools, sample_pool_regression, sample_task_pool

SPEC = RegressionSpec(dim=3, noise_std=0.0, w_scale=2.0, w_mean=0.5)


def test_pool_shape_prior_and_determinism():
    a = sample_task_pool(SPEC, n_tasks=20000, generator=make_generator(0))
    b = sample_task_pool(SPEC, n_tasks=20000, generator=make_generator(0))
    assert a.shape == (20000, 3) and torch.equal(a, b)
    # N(0.5, 2²): mean within 4 s.e. (2 / sqrt(20000) ≈ 0.014), std within 2%.
    assert (a.mean(0) - 0.5).abs().max() < 4 * 2.0 / 20000**0.5
    assert (a.std(0) / 2.0 - 1).abs().max() < 0.02


def test_prompts_use_only_pool_tasks_and_noiseless_labels_are_linear():
    pool = sample_task_pool(SPEC, n_tasks=4, generator=make_generator(1))
    b = sample_pool_regression(SPEC, pool, batch=500, n_points=6, generator=make_generator(2))
    assert b.x.shape == (500, 6, 3) and b.y.shape == (500, 6) and b.task_index.shape == (500,)
    assert torch.equal(b.w, pool[b.task_index])
    assert torch.allclose(b.y, torch.einsum("bnd,bd->bn", b.x, b.w), atol=1e-5)
    counts = torch.bincount(b.task_index, minlength=4)
    assert counts.min() > 80  # uniform over 4 tasks: 125 expected each


def test_noise_has_the_stated_variance():
    spec = RegressionSpec(dim=2, noise_std=0.7)
    pool = sample_task_pool(spec, n_tasks=3, generator=make_generator(3))
    b = sample_pool_regression(spec, pool, batch=4000, n_points=5, generator=make_generator(4))
    resid = b.y - torch.einsum("bnd,bd->bn", b.x, b.w)
    assert abs(resid.std().item() / 0.7 - 1) < 0.03


def test_nested_pools_are_prefixes():
    big = sample_task_pool(SPEC, n_tasks=16, generator=make_generator(5))
    pools = nested_pools(big, [1, 4, 16])
    assert torch.equal(pools[4], big[:4]) and torch.equal(pools[16][:4], pools[4])


def test_bad_input_names_the_field():
    pool = torch.zeros(2, 3)
    with pytest.raises(ValueError, match="n_tasks"):
        sample_task_pool(SPEC, n_tasks=0, generator=make_generator(0))
    with pytest.raises(ValueError, match="pool.shape"):
        sample_pool_regression(SPEC, torch.zeros(2, 4), batch=2, n_points=2,
                               generator=make_generator(0))  # fmt: skip
    with pytest.raises(ValueError, match="n_points"):
        sample_pool_regression(SPEC, pool, batch=2, n_points=0, generator=make_generator(0))
    with pytest.raises(ValueError, match="M = 3"):
        nested_pools(pool, [3])
    with pytest.raises(ValueError, match="sparsity"):
        sample_task_pool(RegressionSpec(dim=3, sparsity=1), n_tasks=2, generator=make_generator(0))
