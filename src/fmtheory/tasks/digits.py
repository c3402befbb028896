"""scikit-learn's bundled digits (1,797 8×8 images, shipped with scikit-learn: no download) as a
classification task: even vs odd digit (binary) or the digit itself (10 classes), with a seeded
train/test split and a seeded corruption of a fraction of the training labels (Zhang et al. 2017,
"Understanding deep learning requires rethinking generalization", ICLR, §2: random labels).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch

__all__ = ["DigitsSplit", "load_digits_split", "corrupt_labels", "N_DIGITS"]

#: images in scikit-learn's digits data set
N_DIGITS = 1797


@dataclass(frozen=True)
class DigitsSplit:
    """x_*: (n, 65) float32, pixels / 16 in [0, 1] with a constant 1 appended (the bias feature);
    y_*: (n,) int64 labels in [0, n_classes)."""

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    n_classes: int


def load_digits_split(
    *, task: Literal["binary", "multiclass"], n_train: int, generator: torch.Generator
) -> DigitsSplit:
    """A random split of the digits into ``n_train`` training and ``1797 − n_train`` test images."""
    from sklearn.datasets import load_digits

    if not 1 <= n_train < N_DIGITS:
        raise ValueError(f"n_train = {n_train}: allowed 1..{N_DIGITS - 1}")
    data = load_digits()
    x = torch.as_tensor(np.asarray(data.data, dtype=np.float32) / 16.0)
    x = torch.cat([x, torch.ones(x.shape[0], 1)], dim=1)
    y = torch.as_tensor(np.asarray(data.target, dtype=np.int64))
    if task == "binary":
        y = y % 2
    perm = torch.randperm(x.shape[0], generator=generator)
    tr, te = perm[:n_train], perm[n_train:]
    k = 2 if task == "binary" else 10
    return DigitsSplit(x[tr], y[tr], x[te], y[te], k)


def corrupt_labels(
    y: torch.Tensor, *, fraction: float, n_classes: int, generator: torch.Generator
) -> torch.Tensor:
    """A copy of ``y`` whose first round(fraction·n) entries of a random permutation are replaced by
    uniformly random classes (Zhang et al. 2017: fraction 1 = random labels)."""
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"fraction = {fraction}: allowed [0, 1]")
    y = y.clone()
    m = round(fraction * y.numel())
    idx = torch.randperm(y.numel(), generator=generator)[:m]
    y[idx] = torch.randint(0, n_classes, (m,), generator=generator)
    return y
