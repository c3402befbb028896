"""The rank-collapse residual μ(X) = ‖X − 1x̄ᵀ‖_F / ‖X‖_F on matrices whose value is known by hand."""

from __future__ import annotations

import math

import pytest
import torch

from fmtheory.probes.attention import rank_collapse_residual
from fmtheory.probes.rank import masked_rank_collapse_residual


def test_rank_one_token_matrix_gives_zero() -> None:
    x = torch.tensor([1.0, -2.0, 3.0], dtype=torch.float64)
    X = torch.ones(5, 1, dtype=torch.float64) * x  # every token equal: X = 1 xᵀ
    assert rank_collapse_residual(X[None]).item() == 0.0


def test_mean_zero_tokens_give_one() -> None:
    X = torch.tensor([[1.0, 0.0], [-1.0, 0.0], [0.0, 2.0], [0.0, -2.0]], dtype=torch.float64)
    assert rank_collapse_residual(X[None]).item() == pytest.approx(1.0, abs=1e-15)


def test_hand_computed_value() -> None:
    # X = [[1, 0], [3, 0]]: mean (2, 0), residual [[-1, 0], [1, 0]], ‖res‖ = √2, ‖X‖ = √10.
    X = torch.tensor([[[1.0, 0.0], [3.0, 0.0]]], dtype=torch.float64)
    assert rank_collapse_residual(X).item() == pytest.approx(math.sqrt(2 / 10), rel=1e-14)


def test_rank_one_but_not_constant_is_not_collapsed() -> None:
    # rank one in the matrix sense (X = u vᵀ) but tokens differ: μ > 0, as Dong et al.'s res(X).
    X = torch.outer(torch.tensor([1.0, 2.0, 3.0]), torch.tensor([1.0, 1.0]))[None]
    assert rank_collapse_residual(X).item() > 0.3


def test_zero_matrix_gives_zero() -> None:
    assert rank_collapse_residual(torch.zeros(2, 3, 4)).tolist() == [0.0, 0.0]


def test_masked_ignores_padding_and_matches_unmasked() -> None:
    g = torch.Generator().manual_seed(0)
    X = torch.randn(3, 6, 4, generator=g, dtype=torch.float64)
    lengths = [6, 4, 2]
    mask = torch.arange(6)[None, :] < torch.tensor(lengths)[:, None]  # (3, 6)
    padded = X.clone()
    padded[~mask] = 1e6  # padding must not count
    got = masked_rank_collapse_residual(padded, mask)
    want = torch.stack([rank_collapse_residual(X[i : i + 1, :n])[0] for i, n in enumerate(lengths)])
    torch.testing.assert_close(got, want, rtol=1e-12, atol=0)
    torch.testing.assert_close(masked_rank_collapse_residual(X, None), rank_collapse_residual(X))


def test_bad_shapes_raise() -> None:
    with pytest.raises(ValueError, match="resid.shape"):
        masked_rank_collapse_residual(torch.zeros(3, 4), torch.ones(3, 4, dtype=torch.bool))
    with pytest.raises(ValueError, match="mask.shape"):
        masked_rank_collapse_residual(torch.zeros(2, 3, 4), torch.ones(2, 4, dtype=torch.bool))
