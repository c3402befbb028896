"""Zipf-distributed tokens: tail mass and the missing mass of the categorical MLE (Dohmatob et al. 2024, "A tale of tails").

Conventions: see :mod:`fmtheory.theory.self_consuming`.
"""

from __future__ import annotations

import numpy as np

__all__ = ["zipf_probs", "zipf_tail_mass", "zipf_missing_mass"]

# --------------------------------------------------------------------------------------------
# Zipf tokens: tails disappear first (Dohmatob et al. 2024)
# --------------------------------------------------------------------------------------------


def zipf_probs(vocab: int, exponent: float) -> np.ndarray:
    """``p_i ∝ i^{-exponent}``, ``i = 1..vocab``, shape ``(vocab,)``."""
    if vocab < 1:
        raise ValueError(f"vocab = {vocab}: must be >= 1")
    if exponent < 0:
        raise ValueError(f"exponent = {exponent}: must be >= 0")
    w = np.arange(1, vocab + 1, dtype=np.float64) ** (-float(exponent))
    return w / w.sum()


def zipf_tail_mass(*, vocab: int, exponent: float, k: int) -> float:
    """``Σ_{i>k} p_i``: the error plateau once the generating model cuts the tail at rank ``k``.

    Dohmatob, Feng, Yang, Charton & Kempe 2024 ("A tale of tails: model collapse as a change of
    scaling laws", ICML, tail cutting): training on data from a model that drops ranks ``> k``
    leaves an irreducible error equal to the lost tail mass (``≍ k^{1−β}`` for exponent ``β > 1``).
    It is exactly the total variation between ``p`` and ``p`` truncated at ``k`` and renormalised.
    """
    if not 0 <= k <= vocab:
        raise ValueError(f"k = {k}: must be in [0, vocab = {vocab}]")
    p = zipf_probs(vocab, exponent)
    return float(p[k:].sum())


def zipf_missing_mass(*, vocab: int, exponent: float, n: int) -> float:
    """``E[Σ_i p_i 1{token i unseen in n draws}] = Σ_i p_i (1 − p_i)^n``.

    The mass that the categorical MLE (empirical frequencies) of generation 1 assigns zero, and that
    a fully synthetic loop of such MLEs can never recover (unseen tokens are absorbing): the first
    step of the tail cut of Dohmatob et al. 2024 (Good & Turing's missing mass).
    """
    p = zipf_probs(vocab, exponent)
    return float((p * np.exp(n * np.log1p(-p))).sum()) if vocab > 1 else 0.0
