"""Self-correction prompts: a query, then rounds of (response, reward) (Wang, Wu, Wei, Wang & Wang
2024, "A theoretical understanding of self-correction through in-context alignment", NeurIPS).

One prompt of K rounds, with d the answer's dimension:

- a query x ~ N(0, I_d), repeated in every round's token;
- a hidden answer y* ~ N(0, I_d), drawn independently of x (only the rewards reveal quality);
- a response per round y_i = r_i·y* + (1 − r_i)·ξ_i with quality r_i ~ U[0, 1], ξ_i ~ N(0, I_d);
- the reward shown to the model: r̃_i = r_i with probability 1 − p, otherwise a fresh u_i ~ U[0, 1]
  (``reward_noise`` = p ∈ [0, 1]: 0 accurate rewards, 1 rewards independent of quality).

The squared error of a response, normalised by d, is (1 − r_i)²‖y* − ξ_i‖²/d, of mean 2(1 − r_i)².
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

__all__ = ["SelfCorrectionBatch", "sample_self_correction", "response_error", "tokens"]


@dataclass(frozen=True)
class SelfCorrectionBatch:
    """Shapes: x, y_star (B, d); responses (B, K, d); quality, reward (B, K); corrupted (B, K) bool."""

    x: torch.Tensor
    y_star: torch.Tensor
    responses: torch.Tensor
    quality: torch.Tensor  # true r_i
    reward: torch.Tensor  # observed r̃_i (the reward token)
    corrupted: torch.Tensor  # True where r̃_i was replaced by noise


def sample_self_correction(
    *,
    batch: int,
    rounds: int,
    dim: int,
    reward_noise: float,
    generator: torch.Generator,
    shuffle_rewards: bool = False,
) -> SelfCorrectionBatch:
    """Sample ``batch`` prompts of ``rounds`` rounds (see the module docstring).

    ``shuffle_rewards``: permute the observed rewards across the rounds of each prompt, so that the
    reward token no longer belongs to its response (the ingredient removed).
    """
    if not 0.0 <= reward_noise <= 1.0:
        raise ValueError(f"reward_noise = {reward_noise}: must be in [0, 1]")
    if rounds < 1 or batch < 1 or dim < 1:
        raise ValueError(f"batch, rounds, dim = {batch}, {rounds}, {dim}: must be >= 1")
    dev = generator.device
    g = generator
    x = torch.randn(batch, dim, generator=g, device=dev)
    y_star = torch.randn(batch, dim, generator=g, device=dev)
    xi = torch.randn(batch, rounds, dim, generator=g, device=dev)
    quality = torch.rand(batch, rounds, generator=g, device=dev)
    r = quality.unsqueeze(-1)
    responses = r * y_star.unsqueeze(1) + (1.0 - r) * xi
    u = torch.rand(batch, rounds, generator=g, device=dev)
    corrupted = torch.rand(batch, rounds, generator=g, device=dev) < reward_noise
    reward = torch.where(corrupted, u, quality)
    if shuffle_rewards:
        perm = torch.rand(batch, rounds, generator=g, device=dev).argsort(dim=1)
        reward = reward.gather(1, perm)
    return SelfCorrectionBatch(x, y_star, responses, quality, reward, corrupted)


def response_error(b: SelfCorrectionBatch) -> torch.Tensor:
    """‖y_i − y*‖²/d of every response: (B, K)."""
    return (b.responses - b.y_star.unsqueeze(1)).pow(2).mean(-1)


def tokens(b: SelfCorrectionBatch) -> torch.Tensor:
    """One token per round, (x, y_i, r̃_i): (B, K, 2d + 1)."""
    K = b.responses.shape[1]
    x = b.x.unsqueeze(1).expand(-1, K, -1)
    return torch.cat([x, b.responses, b.reward.unsqueeze(-1)], dim=-1)
