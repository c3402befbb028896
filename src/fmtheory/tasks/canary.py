"""A training corpus with inserted canaries (Carlini et al. 2019, "The secret sharer", §3).

Background text: documents of ``length`` tokens from a random first-order Markov source over
``vocab`` tokens (:func:`fmtheory.tasks.markov.make_markov_source`, rows ~ Dirichlet(α)).  A canary
is the analogue of "my number is 2 8 1 9": a prefix of ``prefix_len`` background tokens, distinct
for every canary, followed by a secret of ``secret_len`` digits in base ``base`` drawn uniformly;
digits are ``base`` extra token ids ``vocab .. vocab + base − 1`` that the background never uses,
so a model learns them from the canaries alone.  A canary with repetition count r is inserted as r
documents, each the canary followed by fresh background text up to ``length``.

Shapes: ``tokens: (documents + Σ r, length)`` int64 in ``[0, vocab + base)``; ``prefixes:
(C, prefix_len)``; ``secrets: (C, secret_len)`` digits in ``[0, base)``; ``repetitions: (C,)``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from fmtheory.tasks.markov import make_markov_source

__all__ = ["CanaryCorpus", "make_canary_corpus"]


@dataclass(frozen=True)
class CanaryCorpus:
    """tokens: (N, length) the training documents, background first, then the canary copies.
    canary_of: (N,) index of the canary a document carries (−1: background).  test: (n_test, length)
    held-out background documents.  prefixes, secrets, repetitions: one row per canary.
    digit_offset: token id of digit 0 (= the background vocabulary).  n_tokens: vocab + base."""

    tokens: torch.Tensor
    canary_of: torch.Tensor
    test: torch.Tensor
    prefixes: torch.Tensor
    secrets: torch.Tensor
    repetitions: torch.Tensor
    base: int
    digit_offset: int
    n_tokens: int


def make_canary_corpus(
    *,
    vocab: int,
    alpha: float,
    documents: int,
    length: int,
    prefix_len: int,
    secret_len: int,
    base: int,
    repetitions: Sequence[int],
    generator: torch.Generator,
    source_seed: int,
    test_documents: int = 256,
) -> CanaryCorpus:
    """``documents`` background documents plus, for each entry r of ``repetitions``, one canary
    inserted r times.  The Markov source depends on ``source_seed`` alone; prefixes, secrets and
    text are drawn from ``generator``.  Prefixes are distinct (rejection), so each canary has its
    own key.  Raises ValueError on sizes that cannot hold a canary."""
    reps = [int(r) for r in repetitions]
    if any(r < 1 for r in reps):
        raise ValueError(f"repetitions = {reps}: every count must be >= 1")
    if length < prefix_len + secret_len:
        raise ValueError(f"length = {length}: must be >= prefix_len + secret_len = "
                         f"{prefix_len + secret_len}")  # fmt: skip
    if vocab**prefix_len < len(reps):
        raise ValueError(f"vocab^prefix_len = {vocab**prefix_len} < {len(reps)} canaries: "
                         "prefixes cannot be distinct")  # fmt: skip
    src = make_markov_source(vocab=vocab, order=1, alpha=alpha, seed=source_seed)
    c = len(reps)
    seen: set[tuple[int, ...]] = set()
    prefixes = torch.empty(c, prefix_len, dtype=torch.int64)
    for i in range(c):
        while True:
            p = torch.randint(0, vocab, (prefix_len,), generator=generator)
            key = tuple(p.tolist())
            if key not in seen:
                seen.add(key)
                prefixes[i] = p
                break
    secrets = torch.randint(0, base, (c, secret_len), generator=generator)
    background = src.sample(documents, length, generator)
    test = src.sample(test_documents, length, generator)
    k = prefix_len + secret_len
    parts, owner = [background], [torch.full((documents,), -1, dtype=torch.int64)]
    for i, r in enumerate(reps):
        doc = torch.empty(r, length, dtype=torch.int64)
        doc[:, :prefix_len] = prefixes[i]
        doc[:, prefix_len:k] = secrets[i] + vocab
        if length > k:
            doc[:, k:] = src.sample(r, max(length - k, 2), generator)[:, : length - k]
        parts.append(doc)
        owner.append(torch.full((r,), i, dtype=torch.int64))
    return CanaryCorpus(
        tokens=torch.cat(parts), canary_of=torch.cat(owner), test=test, prefixes=prefixes,
        secrets=secrets, repetitions=torch.tensor(reps, dtype=torch.int64), base=base,
        digit_offset=vocab, n_tokens=vocab + base,
    )  # fmt: skip
