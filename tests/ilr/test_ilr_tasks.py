"""The ILR sampler (fmtheory.tasks.ilr): shapes, determinism, the low-rank structure, bad input."""

from __future__ import annotations

import pytest
import torch

from fmtheory.tasks.ilr import ILRSpec, sample_ilr, sample_ilr_prior
from fmtheory.tasks.regression import make_generator


def test_prior_is_orthonormal_and_w0_has_the_requested_norm():
    spec = ILRSpec(dim=7, rank=3, w0_norm=2.5)
    p = sample_ilr_prior(spec, generator=make_generator(0))
    assert p.basis.shape == (7, 3) and p.basis.dtype == torch.float64
    assert torch.allclose(p.basis.T @ p.basis, torch.eye(3, dtype=torch.float64), atol=1e-12)
    assert float(p.w0.norm()) == pytest.approx(2.5)
    assert torch.allclose(p.cov, p.basis @ p.basis.T)  # Λ = I
    q = sample_ilr_prior(spec, generator=make_generator(0))
    assert torch.equal(p.basis, q.basis) and torch.equal(p.w0, q.w0)


def test_tasks_live_on_the_affine_subspace_and_labels_follow_the_model():
    spec = ILRSpec(dim=6, rank=2, noise_std=0.0, prior_scale=1.5)
    p = sample_ilr_prior(spec, generator=make_generator(1))
    b = sample_ilr(
        spec, p, batch=4000, n_points=5, generator=make_generator(2), dtype=torch.float64
    )
    assert b.x.shape == (4000, 5, 6) and b.y.shape == (4000, 5) and b.w.shape == (4000, 6)
    assert b.v.shape == (4000, 2)
    assert torch.allclose(b.w, p.w0 + b.v @ p.basis.T, atol=1e-12)
    assert torch.allclose(b.y, torch.einsum("bnd,bd->bn", b.x, b.w), atol=1e-12)  # σ = 0
    # v ~ N(0, 1.5² I): sample variance within 5 standard errors (se of a variance ≈ v·sqrt(2/N))
    var = b.v.var(0)
    assert torch.all((var - 2.25).abs() <= 5 * 2.25 * (2 / 4000) ** 0.5)


def test_noise_and_condition_number():
    spec = ILRSpec(dim=4, rank=1, noise_std=0.5, x_cond=9.0)
    p = sample_ilr_prior(spec, generator=make_generator(3))
    b = sample_ilr(
        spec, p, batch=20000, n_points=3, generator=make_generator(4), dtype=torch.float64
    )
    resid = b.y - torch.einsum("bnd,bd->bn", b.x, b.w)
    assert float(resid.var()) == pytest.approx(0.25, rel=5 * (2 / resid.numel()) ** 0.5)
    v = spec.x_variances(torch.float64)
    assert float(v.sum()) == pytest.approx(4.0) and float(v.max() / v.min()) == pytest.approx(9.0)
    emp = b.x.reshape(-1, 4).var(0)
    assert torch.all((emp - v).abs() <= 5 * v * (2 / (20000 * 3)) ** 0.5)


def test_same_seed_same_prompts():
    spec = ILRSpec(dim=3, rank=2, noise_std=0.1)
    p = sample_ilr_prior(spec, generator=make_generator(5))
    a = sample_ilr(spec, p, batch=7, n_points=4, generator=make_generator(6))
    b = sample_ilr(spec, p, batch=7, n_points=4, generator=make_generator(6))
    assert torch.equal(a.x, b.x) and torch.equal(a.y, b.y) and torch.equal(a.w, b.w)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        (dict(dim=3, rank=4), "rank"),
        (dict(dim=0, rank=1), "dim"),
        (dict(dim=3, rank=1, noise_std=-1.0), "noise_std"),
        (dict(dim=3, rank=1, x_cond=0.5), "x_cond"),
        (dict(dim=3, rank=1, prior_scale=0.0), "prior_scale"),
    ],
)
def test_bad_spec_raises_naming_the_field(kwargs, field):
    with pytest.raises(ValueError, match=field):
        ILRSpec(**kwargs)


def test_bad_sampler_arguments():
    spec = ILRSpec(dim=3, rank=1)
    p = sample_ilr_prior(spec, generator=make_generator(0))
    with pytest.raises(ValueError, match="n_points"):
        sample_ilr(spec, p, batch=2, n_points=0, generator=make_generator(0))
    other = sample_ilr_prior(ILRSpec(dim=3, rank=2), generator=make_generator(0))
    with pytest.raises(ValueError, match="basis"):
        sample_ilr(spec, other, batch=2, n_points=2, generator=make_generator(0))


def test_weakest_alignment_puts_u_on_the_smallest_variance_axes():
    spec = ILRSpec(dim=6, rank=2, x_cond=10.0, alignment="weakest")
    p = sample_ilr_prior(spec, generator=make_generator(0))
    assert torch.allclose(p.basis.T @ p.basis, torch.eye(2, dtype=torch.float64), atol=1e-12)
    weakest = torch.argsort(spec.x_variances(torch.float64))[:2]
    others = [i for i in range(6) if i not in weakest.tolist()]
    assert float(p.basis[others].abs().max()) == 0.0
    with pytest.raises(ValueError, match="alignment"):
        ILRSpec(dim=6, rank=2, alignment="diagonal")
