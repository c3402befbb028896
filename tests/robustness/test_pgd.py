"""PGD against exact answers on linear models: the minimal ℓ2 perturbation is |w·x + b| / ‖w‖₂ and
the minimal ℓ∞ one is |w·x + b| / ‖w‖₁."""

import pytest
import torch

from fmtheory.probes.adversarial import pgd_attack


def _linear(w, b):
    def model(z):
        s = z @ w + b
        return torch.stack([-s / 2, s / 2], -1)

    return model


@pytest.mark.parametrize("norm", ["2", "inf"])
def test_pgd_flips_just_above_the_exact_radius_and_not_below(norm):
    g = torch.Generator().manual_seed(0)
    w = torch.randn(10, generator=g, dtype=torch.float64)
    b = torch.tensor(0.3, dtype=torch.float64)
    x = torch.randn(30, 10, generator=g, dtype=torch.float64)
    score = x @ w + b
    y = (score > 0).long()
    exact = score.abs() / (w.norm() if norm == "2" else w.abs().sum())
    model = _linear(w, b)
    for factor, flips in ((1.02, True), (0.98, False)):
        flipped = []
        for i in range(30):
            eps = float(exact[i] * factor)
            adv = pgd_attack(model, x[i : i + 1], y[i : i + 1], eps=eps, norm=norm, steps=50, step_size=eps / 4,
                             box=None, generator=g)  # fmt: skip
            flipped.append(bool(model(adv).argmax(-1).item() != y[i].item()))
            delta = (adv - x[i : i + 1]).flatten()
            size = delta.norm() if norm == "2" else delta.abs().max()
            assert size <= eps * (1 + 1e-9)
        assert all(f == flips for f in flipped), (factor, flipped)


def test_pgd_respects_the_box_and_bad_arguments():
    model = _linear(torch.ones(4), torch.tensor(0.0))
    x = torch.full((2, 4), 0.95)
    adv = pgd_attack(model, x, torch.tensor([1, 1]), eps=0.5, norm="inf", box=(0.0, 1.0))
    assert adv.min() >= 0 and adv.max() <= 1
    with pytest.raises(ValueError, match="eps"):
        pgd_attack(model, x, torch.tensor([1, 1]), eps=-0.1)
    with pytest.raises(ValueError, match="norm"):
        pgd_attack(model, x, torch.tensor([1, 1]), eps=0.1, norm="1")
