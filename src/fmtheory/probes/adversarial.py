"""Attacks and certificates on any classifier ``model(x) -> logits``.

- :func:`pgd_attack`: projected gradient descent on the cross-entropy (Madry et al. 2018, "Towards
  deep learning models resistant to adversarial attacks", §2), ℓ∞ (signed steps) or ℓ2 (normalised
  steps), random start, optional box [lo, hi].
- :func:`smoothed_predict` / :func:`certify`: randomized smoothing (Cohen, Rosenfeld & Kolter 2019,
  PREDICT and CERTIFY): the smoothed classifier's class by Monte Carlo over N(0, σ²I) noise and its
  certified ℓ2 radius σ Φ⁻¹(p̲_A), p̲_A a Clopper–Pearson lower bound.
- :func:`smooth_pgd`: PGD on the smoothed soft classifier (the expectation of the softmax over noise;
  Salman et al. 2019, "Provably robust deep learning via adversarially trained smoothed
  classifiers"), the attack a certificate must never beat.

Shapes: ``x: (batch, dim)`` (any trailing shape works for ℓ∞; ℓ2 norms are over all but dim 0),
``y: (batch,)`` int64 labels.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import torch
import torch.nn.functional as F
from scipy import stats

__all__ = ["pgd_attack", "robust_accuracy", "smoothed_predict", "certify", "smooth_pgd"]

Model = Callable[[torch.Tensor], torch.Tensor]


def _flat_norm(v: torch.Tensor) -> torch.Tensor:
    return v.flatten(1).norm(dim=1).clamp_min(1e-12).view(-1, *([1] * (v.ndim - 1)))


def _project(delta: torch.Tensor, eps: float, norm: str) -> torch.Tensor:
    if norm == "inf":
        return delta.clamp(-eps, eps)
    n = _flat_norm(delta)
    return delta * (eps / n).clamp(max=1.0)


def _init(
    x: torch.Tensor, eps: float, norm: str, generator: torch.Generator | None
) -> torch.Tensor:
    u = torch.rand(x.shape, generator=generator, dtype=x.dtype, device=x.device) * 2 - 1
    if norm == "inf":
        return u * eps
    g = torch.randn(x.shape, generator=generator, dtype=x.dtype, device=x.device)
    r = torch.rand((x.shape[0],), generator=generator, dtype=x.dtype, device=x.device)
    return g / _flat_norm(g) * eps * r.view(-1, *([1] * (x.ndim - 1)))


def pgd_attack(
    model: Model,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    eps: float,
    norm: Literal["inf", "2"] = "inf",
    steps: int = 10,
    step_size: float | None = None,
    random_start: bool = True,
    box: tuple[float, float] | None = (0.0, 1.0),
    generator: torch.Generator | None = None,
    loss: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
) -> torch.Tensor:
    """Adversarial inputs ``x + δ`` with ‖δ‖ ≤ ε maximising the loss (cross-entropy by default).

    step_size defaults to 2.5·ε/steps (Madry et al.).  Gradients flow to x only; the model's
    parameters receive none.  Returns a detached tensor of x's shape.
    """
    if eps < 0:
        raise ValueError(f"eps = {eps}: must be >= 0")
    if norm not in ("inf", "2"):
        raise ValueError(f"norm = {norm!r}: allowed 'inf', '2'")
    if eps == 0 or steps == 0:
        return x.detach().clone()
    lossf = loss or (lambda logits, t: F.cross_entropy(logits, t))
    alpha = step_size if step_size is not None else 2.5 * eps / steps
    delta = _init(x, eps, norm, generator) if random_start else torch.zeros_like(x)
    delta = _project(delta, eps, norm)
    if box is not None:
        delta = (x + delta).clamp(*box) - x
    for _ in range(steps):
        delta.requires_grad_(True)
        with torch.enable_grad():
            value = lossf(model(x + delta), y)
            (grad,) = torch.autograd.grad(value, delta)
        with torch.no_grad():
            if norm == "inf":
                delta = delta + alpha * grad.sign()
            else:
                delta = delta + alpha * grad / _flat_norm(grad)
            delta = _project(delta, eps, norm)
            if box is not None:
                delta = (x + delta).clamp(*box) - x
    return (x + delta).detach()


@torch.no_grad()
def robust_accuracy(
    model: Model,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    eps: float,
    norm: Literal["inf", "2"] = "inf",
    steps: int = 10,
    generator: torch.Generator | None = None,
    box: tuple[float, float] | None = (0.0, 1.0),
) -> torch.Tensor:
    """Per-example correctness (bool, (batch,)) under :func:`pgd_attack` at ε."""
    adv = pgd_attack(model, x, y, eps=eps, norm=norm, steps=steps, generator=generator, box=box)
    return model(adv).argmax(-1) == y


@torch.no_grad()
def smoothed_predict(
    model: Model,
    x: torch.Tensor,
    *,
    sigma: float,
    n: int,
    n_classes: int,
    generator: torch.Generator | None = None,
    chunk: int = 100,
) -> torch.Tensor:
    """Class counts of the base classifier under N(0, σ²I) noise: (batch, n_classes) int64."""
    counts = torch.zeros(x.shape[0], n_classes, dtype=torch.long, device=x.device)
    done = 0
    while done < n:
        m = min(chunk, n - done)
        noise = torch.randn((m, *x.shape), generator=generator, dtype=x.dtype, device=x.device)
        pred = model((x.unsqueeze(0) + sigma * noise).flatten(0, 1)).argmax(-1).view(m, -1)
        counts += F.one_hot(pred, n_classes).sum(0)
        done += m
    return counts


def certify(
    model: Model,
    x: torch.Tensor,
    *,
    sigma: float,
    n0: int,
    n: int,
    alpha: float,
    n_classes: int,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Cohen et al.'s CERTIFY: (predicted class or −1 for abstain, certified ℓ2 radius), each (batch,).

    The class is chosen on ``n0`` noise draws, p_A estimated on ``n`` fresh draws; radius
    σ Φ⁻¹(p̲_A) with p̲_A the one-sided (1 − α) Clopper–Pearson bound; abstain when p̲_A ≤ 1/2.
    """
    if sigma <= 0:
        raise ValueError(f"sigma = {sigma}: must be > 0")
    top = smoothed_predict(model, x, sigma=sigma, n=n0, n_classes=n_classes,
                           generator=generator).argmax(-1)  # fmt: skip
    counts = smoothed_predict(model, x, sigma=sigma, n=n, n_classes=n_classes, generator=generator)
    k = counts.gather(1, top.view(-1, 1)).squeeze(1).cpu().numpy()
    p_low = stats.beta.ppf(alpha, k, n - k + 1)
    p_low[k == 0] = 0.0
    radius = sigma * stats.norm.ppf(p_low.clip(1e-300, 1 - 1e-16))
    pred = torch.where(torch.as_tensor(p_low > 0.5), top.cpu(), torch.full_like(top.cpu(), -1))
    radius_t = torch.as_tensor(radius, dtype=torch.float64).clamp_min(0.0)
    radius_t[pred < 0] = 0.0
    return pred, radius_t


def smooth_pgd(
    model: Model,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    sigma: float,
    eps: float,
    m: int = 16,
    steps: int = 10,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """ℓ2 PGD against the smoothed soft classifier: the loss is −log E_δ[softmax(f(x + δ))_y] over
    ``m`` noise draws per step (no box: the certificate is over all of R^d)."""

    def smoothed_logp(z: torch.Tensor) -> torch.Tensor:
        noise = torch.randn((m, *z.shape), generator=generator, dtype=z.dtype, device=z.device)
        p = torch.softmax(model((z.unsqueeze(0) + sigma * noise).flatten(0, 1)), -1)
        return p.view(m, z.shape[0], -1).mean(0).clamp_min(1e-12).log()

    return pgd_attack(smoothed_logp, x, y, eps=eps, norm="2", steps=steps, box=None,
                      generator=generator, loss=lambda lp, t: F.nll_loss(lp, t))  # fmt: skip
