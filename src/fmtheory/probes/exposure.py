"""Exposure of a secret (Carlini et al. 2019, "The secret sharer", §4).

For a canary "prefix s" with the secret s drawn uniformly from a space R of candidates, the
log-perplexity of a candidate r is Px(r) = −Σ_j log₂ p(r_j | prefix, r_<j) and

    exposure(s) = log₂|R| − log₂ rank(s),    (Carlini et al. 2019, arXiv:1802.08232, §4)

where rank(s) is the position of s among all candidates sorted by Px (1 = most likely).  Ties get
the mid-rank, so a model that scores every candidate alike gives rank (|R| + 1)/2, exposure ≈ 1
bit, and a random secret under a model that knows nothing has E[exposure] ≈ log₂ e ≈ 1.44.

The extrapolated exposure (§4.3): fit a skew-normal law to the log-perplexities of candidates and
take −log₂ P[Px(r) ≤ Px(s)] under the fit; it can exceed log₂|R| when s lies beyond every
candidate, which is how Carlini et al. measure exposure when R is too large to enumerate.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

__all__ = [
    "ExposureFit",
    "candidate_log_perplexities",
    "exposure_from_scores",
    "extrapolated_exposure",
    "secret_index",
]


def secret_index(digits: torch.Tensor | np.ndarray | list[int], base: int) -> int:
    """The candidate index of a secret: its digits read as a base-``base`` number, first digit most
    significant (the order of :func:`candidate_log_perplexities`)."""
    idx = 0
    for d in np.asarray(digits, dtype=np.int64).ravel():
        if not 0 <= d < base:
            raise ValueError(f"digit {d} outside [0, {base})")
        idx = idx * base + int(d)
    return idx


def exposure_from_scores(scores: np.ndarray, index: int) -> float:
    """Exact exposure log₂|R| − log₂ rank of candidate ``index`` among ``scores`` (log-perplexities
    of every candidate, shape (|R|,); lower = more likely).  rank = 1 + #{strictly lower} +
    #{equal, other}/2 (mid-rank for ties)."""
    s = np.asarray(scores, dtype=np.float64).ravel()
    if not 0 <= index < s.size:
        raise ValueError(f"index = {index}: outside [0, {s.size})")
    x = s[index]
    lower = int(np.count_nonzero(s < x))
    ties = int(np.count_nonzero(s == x)) - 1
    rank = 1.0 + lower + 0.5 * ties
    return math.log2(s.size) - math.log2(rank)


@dataclass(frozen=True)
class ExposureFit:
    """The extrapolated exposure and the skew-normal fit (scipy's a, loc, scale) it comes from."""

    exposure: float
    a: float
    loc: float
    scale: float


def extrapolated_exposure(sample: np.ndarray, secret_score: float) -> ExposureFit:
    """Carlini et al. 2019 §4.3: a skew-normal fitted by maximum likelihood
    (``scipy.stats.skewnorm.fit``) to ``sample`` (log-perplexities of candidates, shape (m,),
    m ≥ 10), and exposure ≈ −log₂ F(secret_score) with F its CDF; +inf when F underflows (the
    secret lies tens of fitted scales below every candidate)."""
    from scipy import stats

    x = np.asarray(sample, dtype=np.float64).ravel()
    if x.size < 10 or not np.all(np.isfinite(x)):
        raise ValueError(f"sample: need >= 10 finite values, got {x.size}")
    a, loc, scale = stats.skewnorm.fit(x)
    logcdf = float(stats.skewnorm.logcdf(secret_score, a, loc, scale))
    return ExposureFit(-logcdf / math.log(2.0), float(a), float(loc), float(scale))


@torch.no_grad()
def candidate_log_perplexities(
    log_probs: Callable[[torch.Tensor], torch.Tensor],
    prefix: torch.Tensor,
    *,
    base: int,
    secret_len: int,
    digit_offset: int,
    batch: int = 8192,
) -> np.ndarray:
    """Px (bits) of every secret in ``[0, base)^secret_len`` after ``prefix``: shape
    (base^secret_len,), indexed as :func:`secret_index`.

    ``log_probs(tokens: (N, T)) -> (N, T, V)`` gives log p(tokens[:, t] | tokens[:, :t]) at every t
    (the convention of ``models/ngram_lm.py`` and ``models/token_lm.py``: no shift).  Digit d is
    token ``digit_offset + d``.  One forward pass over the base^(secret_len−1) partial secrets
    gives every full candidate: the last position's distribution scores all ``base`` last digits.
    """
    p = prefix.numel()
    k = secret_len
    n_partial = base ** (k - 1)
    # digits of every partial secret, most significant first: (n_partial, k − 1)
    idx = np.arange(n_partial)
    digits = np.stack([(idx // base ** (k - 2 - j)) % base for j in range(k - 1)], 1) if k > 1 \
        else np.zeros((1, 0), dtype=np.int64)  # fmt: skip
    seq = torch.empty(n_partial, p + k, dtype=torch.int64)
    seq[:, :p] = prefix.to(torch.int64)
    seq[:, p : p + k - 1] = torch.from_numpy(digits).to(torch.int64) + digit_offset
    seq[:, p + k - 1] = digit_offset  # placeholder: its logits are read for every last digit
    out = np.empty((n_partial, base), dtype=np.float64)
    for s in range(0, n_partial, batch):
        chunk = seq[s : s + batch]
        lp = log_probs(chunk).double()  # (b, p + k, V)
        head = torch.zeros(chunk.shape[0], dtype=torch.float64)
        for j in range(k - 1):
            head -= lp[:, p + j].gather(1, chunk[:, p + j, None]).squeeze(1)
        last = lp[:, p + k - 1, digit_offset : digit_offset + base]  # (b, base)
        out[s : s + batch] = (head[:, None] - last).numpy()
    return out.reshape(-1) / math.log(2.0)
