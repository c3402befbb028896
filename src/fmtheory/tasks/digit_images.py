"""scikit-learn's bundled handwritten digits (1,797 images of 8×8, offline), as tensors in [0, 1].

Split into train / validation / test by a seeded, class-stratified permutation.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

__all__ = ["DigitImages", "load_digit_images"]


@dataclass(frozen=True)
class DigitImages:
    """x_*: (n, 64) float32 in [0, 1]; y_*: (n,) int64 in 0..9."""

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_val: torch.Tensor
    y_val: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor


def load_digit_images(
    *,
    seed: int,
    n_train: int | None = None,
    val_fraction: float = 0.15,
    test_fraction: float = 0.25,
) -> DigitImages:
    """The digits, split per class in the given fractions; ``n_train`` keeps the first n of the
    (shuffled) training part (a smaller training set overfits sooner)."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    if not (0 < val_fraction < 1 and 0 < test_fraction < 1 and val_fraction + test_fraction < 1):
        raise ValueError(f"val_fraction = {val_fraction}, test_fraction = {test_fraction}: "
                         "each in (0, 1), summing to < 1")  # fmt: skip
    d = load_digits()
    x = (d.data / 16.0).astype(np.float32)
    y = d.target.astype(np.int64)
    x_rest, x_test, y_rest, y_test = train_test_split(
        x, y, test_size=test_fraction, stratify=y, random_state=seed
    )
    x_tr, x_val, y_tr, y_val = train_test_split(
        x_rest, y_rest, test_size=val_fraction / (1 - test_fraction), stratify=y_rest,
        random_state=seed,
    )  # fmt: skip
    if n_train is not None:
        if not 1 <= n_train <= len(y_tr):
            raise ValueError(f"n_train = {n_train}: must be in [1, {len(y_tr)}]")
        x_tr, y_tr = x_tr[:n_train], y_tr[:n_train]
    t = torch.from_numpy
    return DigitImages(t(x_tr), t(y_tr), t(x_val), t(y_val), t(x_test), t(y_test))
