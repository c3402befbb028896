"""Training and measuring the digits MLPs of ``generalization-bounds``: SGD through ``train.fit``,
the PAC-Bayes posterior optimisation (Dziugaite & Roy 2017) through ``train.fit``, the Monte Carlo
risk of a Gaussian posterior, and the Lipschitz / smoothness estimates of the stability bound.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.func import grad, vmap

from fmtheory.models.mlp import MLP, mlp_forward
from fmtheory.theory.generalization import pac_bayes_kl_bound
from fmtheory.train.fit import fit, make_generator
from fmtheory.train.loop import TrainSpec, lr_at

__all__ = [
    "train_sgd",
    "GaussianPosterior",
    "optimise_posterior",
    "gibbs_errors",
    "PacBayesResult",
    "pac_bayes_from_posterior",
    "lipschitz_smoothness",
    "zero_one",
]


def zero_one(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """(…, n, k) logits, (n,) labels -> (…,) mean 0-1 error."""
    return (logits.argmax(-1) != y).double().mean(-1)


def train_sgd(
    model: MLP,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    steps: int,
    lr: float,
    batch: int,
    seed: int,
    ctx: object,
    name: str,
) -> np.ndarray:
    """Plain SGD (no momentum, no clipping, no weight decay, constant step) on the cross-entropy,
    batches drawn uniformly with replacement; returns the step sizes α_1..α_T that were used."""
    spec = TrainSpec(steps=steps, lr=lr, warmup_steps=0, schedule="constant", grad_clip=None,
                     checkpoint_every=max(1, steps))  # fmt: skip
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    n = x.shape[0]

    def loss_fn(m: nn.Module, step: int, g: torch.Generator) -> torch.Tensor:
        idx = torch.randint(0, n, (min(batch, n),), generator=g, device=g.device)
        return F.cross_entropy(m(x[idx]), y[idx])

    fit(model, loss_fn, None, seed=seed, ctx=ctx, name=name, optimizer=opt, spec=spec)
    return np.array([lr_at(spec, t) for t in range(steps)])


class GaussianPosterior(nn.Module):
    """Q = N(μ, diag σ²) over the weights of an :class:`MLP`; prior P = N(μ₀, λ I) with a learned
    scalar λ = exp(2 log_prior_std) (Dziugaite & Roy 2017, §4).  ``mean[i]``: (out_i, in_i)."""

    def __init__(
        self,
        mean: Sequence[torch.Tensor],
        prior_mean: Sequence[torch.Tensor],
        *,
        init_std: float,
        prior_std: float,
    ):
        super().__init__()
        self.mean = nn.ParameterList(nn.Parameter(m.detach().clone()) for m in mean)
        self.log_std = nn.ParameterList(
            nn.Parameter(torch.full_like(m.detach(), math.log(init_std))) for m in mean
        )
        self.log_prior_std = nn.Parameter(torch.tensor(math.log(prior_std)))
        for i, m in enumerate(prior_mean):
            self.register_buffer(f"prior_{i}", m.detach().clone())

    def prior_mean(self) -> list[torch.Tensor]:
        return [getattr(self, f"prior_{i}") for i in range(len(self.mean))]

    def n_params(self) -> int:
        return sum(m.numel() for m in self.mean)

    def sample(self, s: int, generator: torch.Generator) -> list[torch.Tensor]:
        """s networks drawn from Q: a list of (s, out_i, in_i)."""
        out = []
        for m, ls in zip(self.mean, self.log_std, strict=True):
            eps = torch.randn((s, *m.shape), generator=generator, device=m.device, dtype=m.dtype)
            out.append(m + eps * ls.exp())
        return out

    def kl(self, prior_std: torch.Tensor | float | None = None) -> torch.Tensor:
        """KL(Q‖N(μ₀, λI)) in nats, λ = prior_std² (default: the learned one)."""
        if prior_std is None:
            log_lam = 2 * self.log_prior_std
        else:
            log_lam = 2 * torch.log(torch.as_tensor(prior_std, dtype=torch.float64))
        total = torch.zeros((), dtype=torch.float64, device=self.log_prior_std.device)
        for m, ls, m0 in zip(self.mean, self.log_std, self.prior_mean(), strict=True):
            var = (2 * ls.double()).exp()
            lam = log_lam.exp()
            total = (
                total
                + 0.5
                * (
                    (var + (m.double() - m0.double()) ** 2) / lam - 1.0 - 2 * ls.double() + log_lam
                ).sum()
            )
        return total


def optimise_posterior(
    post: GaussianPosterior,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    steps: int,
    lr: float,
    delta: float,
    n_priors: int,
    samples: int,
    batch: int,
    seed: int,
    ctx: object,
    name: str,
) -> None:
    """Minimise E_Q[cross-entropy] + √((KL(Q‖P) + ln(2√n J/δ)) / (2n)) over μ, σ and λ with
    AdamW through ``train.fit`` (the differentiable surrogate of Dziugaite & Roy 2017, eq. 10);
    the empirical term on ``batch`` points drawn with replacement each step."""
    n = x.shape[0]
    const = math.log(2 * math.sqrt(n) * n_priors / delta)
    spec = TrainSpec(steps=steps, lr=lr, warmup_steps=0, schedule="constant", grad_clip=None,
                     checkpoint_every=max(1, steps))  # fmt: skip

    def loss_fn(m: nn.Module, step: int, g: torch.Generator) -> torch.Tensor:
        idx = torch.randint(0, n, (min(batch, n),), generator=g, device=g.device)
        ws = m.sample(samples, g)
        logits = mlp_forward(ws, x[idx]).reshape(-1, ws[-1].shape[1])
        ce = F.cross_entropy(logits, y[idx].repeat(samples))
        return ce + torch.sqrt((m.kl() + const).clamp_min(0) / (2 * n)).float()

    fit(post, loss_fn, None, seed=seed, ctx=ctx, name=name, spec=spec)


@torch.no_grad()
def gibbs_errors(
    post: GaussianPosterior,
    xs: Sequence[torch.Tensor],
    ys: Sequence[torch.Tensor],
    *,
    n_mc: int,
    seed: int,
    chunk: int = 100,
) -> list[float]:
    """Monte Carlo 0-1 risk of the Gibbs classifier Q on each (x, y) pair: the mean error of the
    SAME ``n_mc`` networks drawn from Q on every set."""
    g = make_generator(seed, post.log_prior_std.device)
    totals = [0.0] * len(xs)
    done = 0
    while done < n_mc:
        s = min(chunk, n_mc - done)
        ws = post.sample(s, g)
        for i, (x, y) in enumerate(zip(xs, ys, strict=True)):
            totals[i] += float(zero_one(mlp_forward(ws, x), y).sum())
        done += s
    return [t / n_mc for t in totals]


@dataclass(frozen=True)
class PacBayesResult:
    """The bound at the best grid prior; ``emp_mc``: MC Gibbs risk on the bound points;
    ``test_gibbs``: MC Gibbs risk on the test points with clean labels; ``test_gibbs_noisy``: the
    same with the test labels corrupted like the training labels (the risk the bound bounds)."""

    bound: float
    kl: float
    prior_std: float
    emp_mc: float
    test_gibbs: float
    test_gibbs_noisy: float


def pac_bayes_from_posterior(
    post: GaussianPosterior,
    x: torch.Tensor,
    y: torch.Tensor,
    x_test: torch.Tensor,
    y_test: torch.Tensor,
    y_test_noisy: torch.Tensor,
    *,
    prior_grid: np.ndarray,
    delta: float,
    delta_mc: float,
    n_mc: int,
    seed: int,
) -> PacBayesResult:
    """The PAC-Bayes-kl bound of Q with the MC correction, minimised over the prior grid (union
    bound over its J values: valid whichever grid point is chosen after the fact)."""
    emp, test, noisy = gibbs_errors(
        post, [x, x_test, x_test], [y, y_test, y_test_noisy], n_mc=n_mc, seed=seed
    )
    best = None
    with torch.no_grad():
        for s in prior_grid:
            kl = float(post.kl(float(s)))
            b = pac_bayes_kl_bound(emp_risk=emp, kl=kl, n=x.shape[0], delta=delta, n_mc=n_mc,
                                   delta_mc=delta_mc, n_priors=len(prior_grid))  # fmt: skip
            if best is None or b < best[0]:
                best = (b, kl, float(s))
    assert best is not None
    return PacBayesResult(best[0], best[1], best[2], emp, test, noisy)


def lipschitz_smoothness(
    weights_list: Sequence[Sequence[torch.Tensor]],
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    power_iters: int,
    seed: int,
) -> tuple[float, float]:
    """Estimates of L = max_i ‖∇_w ℓ(w; x_i, y_i)‖ and β = λ_max(∇²_w mean ℓ) (power iteration),
    each the largest over the weight vectors given (e.g. initial and final).  They are measured
    at these points only, so they are lower estimates of the global constants that Hardt et al.
    assume."""

    def one_loss(ws: list[torch.Tensor], xi: torch.Tensor, yi: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(mlp_forward(ws, xi[None]), yi[None])

    per_grad = vmap(grad(one_loss), in_dims=(None, 0, 0))
    lip, beta = 0.0, 0.0
    g = make_generator(seed, x.device)
    for ws in weights_list:
        ws = [w.detach() for w in ws]
        grads = per_grad(ws, x, y)
        norms = torch.sqrt(sum((gr.reshape(gr.shape[0], -1) ** 2).sum(1) for gr in grads))
        lip = max(lip, float(norms.max()))
        params = [w.clone().requires_grad_(True) for w in ws]
        loss = F.cross_entropy(mlp_forward(params, x), y)
        gr = torch.autograd.grad(loss, params, create_graph=True)
        v = [torch.randn(w.shape, generator=g, device=w.device) for w in ws]
        lam = 0.0
        for _ in range(power_iters):
            norm = torch.sqrt(sum((vi**2).sum() for vi in v))
            v = [vi / norm for vi in v]
            hv = torch.autograd.grad(gr, params, grad_outputs=v, retain_graph=True)
            lam = float(sum((a * b).sum() for a, b in zip(hv, v, strict=True)))
            v = [h.detach() for h in hv]
        beta = max(beta, abs(lam))
    return lip, beta
