"""Rank-collapse theory (theory/rank_collapse.py) against independent simulations.

* graph radius: closed form vs breadth-first search on the boolean mask the models use;
* Wu et al.'s contraction bound: simulated products of masked softmax attention matrices shrink the
  token spread at least as fast as (1 − ε^r)^(1/r) per layer (a bound: measured ≤ bound, exactly);
* Dong et al.'s closed form vs iterating the one-layer inequality r ← c r³ as an equality;
* the increment growth of the two decay laws vs simulated sequences.
"""

from __future__ import annotations

import math
from collections import deque

import numpy as np
import pytest
import torch

from fmtheory.models.attention_stack import stack_mask
from fmtheory.theory import evaluate
from fmtheory.theory.rank_collapse import (
    dong_residual_bound,
    increment_growth,
    mask_graph_radius,
    masked_rate_bound,
)


def _bfs_radius(mask: torch.Tensor) -> float:
    """Max over tokens of the hop count to token 0 along attention edges t -> s (mask[t, s])."""
    T = mask.shape[0]
    dist = [math.inf] * T
    dist[0] = 0
    queue = deque([0])
    while queue:  # reverse edges: s is reached from t when t attends to s
        s = queue.popleft()
        for t in range(T):
            if mask[t, s] and dist[t] == math.inf:
                dist[t] = dist[s] + 1
                queue.append(t)
    return float(max(dist))


@pytest.mark.parametrize("T", [2, 7, 32, 33])
@pytest.mark.parametrize("w", [1, 2, 3, 4, 8, 40])
def test_sliding_radius_matches_bfs(T: int, w: int) -> None:
    assert mask_graph_radius(n_tokens=T, mask="sliding", window=w) == _bfs_radius(
        stack_mask("sliding", T, w)
    )


@pytest.mark.parametrize("mask", ["full", "causal"])
def test_full_and_causal_radius_is_one(mask: str) -> None:
    assert mask_graph_radius(n_tokens=16, mask=mask) == _bfs_radius(stack_mask(mask, 16)) == 1.0


@pytest.mark.parametrize(("mask", "w"), [("causal", None), ("sliding", 3), ("sliding", 6)])
def test_masked_products_contract_at_least_as_fast_as_the_bound(mask: str, w: int | None) -> None:
    T, layers = 12, 24
    g = torch.Generator().manual_seed(1)
    m = stack_mask(mask, T, w)
    r = mask_graph_radius(n_tokens=T, mask=mask, window=w)
    x = torch.randn(T, generator=g, dtype=torch.float64)
    spread0 = float(x.max() - x.min())
    eps = 1.0
    for layer in range(1, layers + 1):
        scores = torch.randn(T, T, generator=g, dtype=torch.float64)
        a = torch.softmax(scores.masked_fill(~m, float("-inf")), dim=-1)
        eps = min(eps, float(a[m].min()))
        x = a @ x
        if layer % r == 0:  # the theorem contracts over blocks of r layers
            bound = masked_rate_bound(eps=eps, radius=r) ** layer * spread0
            assert float(x.max() - x.min()) <= bound * (1 + 1e-12)


def test_masked_rate_bound_limits() -> None:
    assert masked_rate_bound(eps=0.5, radius=1) == pytest.approx(0.5)
    assert masked_rate_bound(eps=0.1, radius=math.inf) == 1.0
    assert masked_rate_bound(eps=0.1, radius=2) > masked_rate_bound(eps=0.1, radius=1)
    with pytest.raises(ValueError, match="eps"):
        masked_rate_bound(eps=0.0, radius=1)


@pytest.mark.parametrize(("r0", "c"), [(0.5, 1.0), (0.3, 2.0), (0.9, 0.5)])
def test_dong_closed_form_equals_iterated_recursion(r0: float, c: float) -> None:
    r = r0
    for depth in range(0, 5):
        assert dong_residual_bound(r0=r0, c=c, depth=depth) == pytest.approx(r, rel=1e-9)
        r = c * r**3
    assert dong_residual_bound(r0=0.0, c=1.0, depth=3) == 0.0


def test_increment_growth_matches_simulated_laws() -> None:
    ln_exp = np.log(0.9) + np.arange(8) * np.log(0.7)  # μ_l = 0.9 · 0.7^l
    d = -np.diff(ln_exp)
    assert np.log(d[1:] / d[:-1]) == pytest.approx(increment_growth("exponential"), abs=1e-12)
    ln_dong = [math.log(0.5)]
    for _ in range(5):
        ln_dong.append(math.log(0.8) + 3 * ln_dong[-1])  # ln μ_{l+1} = ln c + 3 ln μ_l
    d = -np.diff(ln_dong)
    assert np.log(d[1:] / d[:-1]) == pytest.approx(
        increment_growth("doubly-exponential"), abs=1e-12
    )
    with pytest.raises(ValueError, match="form"):
        increment_growth("linear")


def test_registered_formulas() -> None:
    assert evaluate("rank-collapse-mask-radius", n_tokens=32, window=4).value == 11.0
    assert evaluate("rank-collapse-masked-rate", eps=0.5, radius=1).value == pytest.approx(0.5)
    assert evaluate("rank-collapse-dong-bound", r0=0.5, c=1.0, depth=1).value == pytest.approx(
        0.125
    )
    with pytest.raises(ValueError, match="window"):
        evaluate("rank-collapse-mask-radius", n_tokens=32, window=0)
