"""Synthetic arbitrary facts (entity → attribute) repeating with Zipf frequencies (Kalai & Vempala 2024).

K entities each carry one attribute drawn uniformly from A values, independently of everything else
(an "arbitrary" fact: nothing in the other facts predicts it).  A corpus is n i.i.d. draws of an
entity e from the Zipf law p_e ∝ e^(−s), each written as the two-token document ``[e, K + a_e]``.

Shapes: ``attributes (K,)`` int64 in ``[0, A)``; ``entities (n,)``; ``documents (n, 2)`` int64 in
``[0, K + A)``; ``counts (K,)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fmtheory.theory.good_turing import zipf_probs

__all__ = ["FactWorld", "make_world", "sample_corpus"]


@dataclass(frozen=True)
class FactWorld:
    """The true facts: ``probs[e]`` (Zipf law over entities) and ``attributes[e]`` (its attribute)."""

    probs: np.ndarray
    attributes: np.ndarray
    n_attributes: int

    @property
    def n_facts(self) -> int:
        return int(self.probs.size)

    @property
    def vocab(self) -> int:
        """Entity tokens 0..K−1, attribute tokens K..K+A−1."""
        return self.n_facts + self.n_attributes


def make_world(*, n_facts: int, n_attributes: int, exponent: float, seed: int) -> FactWorld:
    """K facts with Zipf(``exponent``) frequencies and attributes uniform on ``[0, n_attributes)``."""
    if n_attributes < 2:
        raise ValueError(f"n_attributes = {n_attributes!r}: must be >= 2")
    rng = np.random.default_rng([seed, 64199])
    attrs = rng.integers(0, n_attributes, size=n_facts)
    return FactWorld(zipf_probs(n_facts=n_facts, exponent=exponent), attrs, n_attributes)


def sample_corpus(
    world: FactWorld, n: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """n documents ``(n, 2)`` and the per-entity counts ``(K,)``."""
    ent = rng.choice(world.n_facts, size=n, p=world.probs)
    docs = np.stack([ent, world.n_facts + world.attributes[ent]], axis=1).astype(np.int64)
    return docs, np.bincount(ent, minlength=world.n_facts)
