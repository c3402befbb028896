"""The Good–Turing estimate of the missing mass, i.e. the "monofact" rate of Kalai & Vempala 2024.

For a corpus of n i.i.d. draws from a distribution p over facts, the missing mass is
M₀ = Σ_i p_i·1{fact i unseen}, and the Good–Turing estimate is N₁/n, the fraction of the corpus made
of facts seen exactly once (Good 1953; McAllester & Schapire 2000).  Kalai & Vempala 2024 ("Calibrated
language models must hallucinate", STOC, Thm 1) call N₁/n the monofact rate and show a calibrated
model hallucinates at a rate of at least it, minus miscalibration and a slack term.

Exact expectations under a Zipf law p_i ∝ i^(−s), i = 1..K:
E[N₁/n] = Σ_i p_i (1 − p_i)^(n−1)   and   E[M₀] = Σ_i p_i (1 − p_i)^n,
so E[N₁/n] − E[M₀] = Σ_i p_i² (1 − p_i)^(n−1) ∈ [0, 1/n] (Good–Turing's small upward bias).

Registered formula: ``monofact-rate`` (E[N₁/n] under the Zipf law).
"""

from __future__ import annotations

import numpy as np

from fmtheory.theory.registry import Param, TheoryValue, register_formula

__all__ = ["zipf_probs", "expected_monofact_rate", "expected_missing_mass", "monofact_rate"]


def zipf_probs(*, n_facts: int, exponent: float) -> np.ndarray:
    """p_i ∝ i^(−s), i = 1..K, shape (K,)."""
    if n_facts < 1:
        raise ValueError(f"n_facts = {n_facts!r}: must be >= 1")
    if not exponent >= 0.0:
        raise ValueError(f"exponent = {exponent!r}: must be >= 0")
    w = np.arange(1, n_facts + 1, dtype=float) ** (-exponent)
    return w / w.sum()


def expected_monofact_rate(p: np.ndarray, n: int) -> float:
    """E[N₁/n] = Σ p_i (1 − p_i)^(n−1) for n ≥ 1 draws from ``p``."""
    if n < 1:
        raise ValueError(f"n = {n!r}: must be >= 1")
    return float(np.sum(p * np.exp((n - 1) * np.log1p(-np.minimum(p, 1 - 1e-300)))))


def expected_missing_mass(p: np.ndarray, n: int) -> float:
    """E[M₀] = Σ p_i (1 − p_i)^n."""
    return float(np.sum(p * np.exp(n * np.log1p(-np.minimum(p, 1 - 1e-300)))))


def monofact_rate(counts: np.ndarray) -> float:
    """N₁/n from the per-fact counts of one corpus, shape (K,)."""
    counts = np.asarray(counts)
    n = int(counts.sum())
    if n == 0:
        raise ValueError("monofact_rate: empty corpus")
    return float((counts == 1).sum() / n)


register_formula(
    "monofact-rate",
    lambda *, n_facts, exponent, n: TheoryValue(
        expected_monofact_rate(zipf_probs(n_facts=n_facts, exponent=exponent), n)
    ),
    params=[
        Param("n_facts", int, None, 1, 10**8, "number of distinct facts K"),
        Param("exponent", float, None, 0.0, 20.0, "Zipf exponent s (p_i ∝ i^−s)"),
        Param("n", int, None, 1, 10**12, "corpus size n"),
    ],
    source="Good 1953; Kalai & Vempala 2024, Thm 1 (monofact rate)",
    summary="E[N1/n] = Σ p_i (1 − p_i)^(n−1) under a Zipf law: the Good–Turing missing-mass estimate",
)
