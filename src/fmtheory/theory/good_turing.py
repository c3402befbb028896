"""The Good–Turing estimate of the missing mass, i.e. the "monofact" rate of Kalai & Vempala 2024.

For a corpus of n i.i.d. draws from a distribution p over facts, the missing mass is
M₀ = Σ_i p_i·1{fact i unseen}, and the Good–Turing estimate is N₁/n, the fraction of the corpus made
of facts seen exactly once (Good 1953; McAllester & Schapire 2000).  Kalai & Vempala 2024 ("Calibrated
language models must hallucinate", STOC, Thm 1) call N₁/n the monofact rate and show a calibrated
model hallucinates at a rate of at least it, minus miscalibration and a slack term.

Exact expectations under a Zipf law p_i ∝ i^(−s), i = 1..K:
E[N₁/n] = Σ_i p_i (1 − p_i)^(n−1)   and   E[M₀] = Σ_i p_i (1 − p_i)^n,
so E[N₁/n] − E[M₀] = Σ_i p_i² (1 − p_i)^(n−1) ∈ [0, 1/n] (Good–Turing's small upward bias).

Registered formulas: ``monofact-rate`` (E[N₁/n] under the Zipf law) and ``kv-hallucination-bound``
(Kalai & Vempala 2024, Thm 1: g(H) ≥ N₁/n − Mis_b − 3e^(−s)/δ − sqrt(6 ln(6/δ)/n); its constants
reproduce the paper's simplified 99% statement, 300·|Facts|/|H| and 7/√n, at δ = 0.01).
"""

from __future__ import annotations

import numpy as np

from fmtheory.theory.registry import Param, TheoryValue, register_formula

__all__ = [
    "zipf_probs",
    "expected_monofact_rate",
    "expected_missing_mass",
    "monofact_rate",
    "binned_miscalibration",
    "kv_slack",
    "kv_sparsity_term",
    "kv_lower_bound",
]


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


# ---------------------------------------------------------------------------------------------
def binned_miscalibration(g: np.ndarray, p: np.ndarray, bins: int) -> float:
    """Mis_b(g, p) of Kalai & Vempala 2024 (§4, "miscalibration"), shapes ``g, p: (Y,)``.

    The facts y are grouped by the model's probability g(y) into ``bins`` intervals of g-values of
    about equal g-mass (adaptive binning): a bin is a union of level sets {y : g(y) = v}, so facts
    with the same g are never split between bins.  Mis_b is the total-variation distance between g
    and its p-recalibration, ½ Σ_B |p(B) − g(B)|.  0 for a calibrated g; it can only grow as the
    partition is refined.
    """
    if bins < 1:
        raise ValueError(f"bins = {bins!r}: must be >= 1")
    g = np.asarray(g, dtype=float)
    p = np.asarray(p, dtype=float)
    order = np.argsort(g, kind="stable")
    gs = g[order] / g.sum()
    upto = np.cumsum(gs)  # g-mass up to and including each fact (in sorted order)
    last = np.r_[gs[1:] != gs[:-1], True]  # last member of each level set
    group_end = np.flatnonzero(last)[np.cumsum(np.r_[True, last[:-1]]) - 1]
    which = np.clip(np.ceil(upto[group_end] * bins - 1e-9).astype(int) - 1, 0, bins - 1)
    gb = np.bincount(which, weights=gs, minlength=bins)
    pb = np.bincount(which, weights=p[order] / p.sum(), minlength=bins)
    return float(0.5 * np.abs(pb - gb).sum())


def kv_slack(n: int, delta: float) -> float:
    """The concentration term sqrt(6 ln(6/δ)/n) of Kalai & Vempala 2024, Thm 1 (probability ≥ 1 − δ
    over a corpus of n documents).  At δ = 0.01 it is 6.19/√n ≤ 7/√n, the constant of the paper's
    simplified statement (§1)."""
    if n < 1:
        raise ValueError(f"n = {n!r}: must be >= 1")
    if not 0.0 < delta < 1.0:
        raise ValueError(f"delta = {delta!r}: must be in (0, 1)")
    return float(np.sqrt(6.0 * np.log(6.0 / delta) / n))


def kv_sparsity_term(sparsity: float, delta: float) -> float:
    """The sparsity term 3e^(−s)/δ of Kalai & Vempala 2024, Thm 1, with ``sparsity`` = e^(−s) the
    ratio of true facts to plausible false ones (|Facts|/|possible hallucinations|; 1/(A − 1) for
    one true attribute among A).  At δ = 0.01 it is 300·|Facts|/|H|, as in the paper's §1."""
    if not 0.0 <= sparsity <= 1.0:
        raise ValueError(f"sparsity = {sparsity!r}: must be in [0, 1]")
    if not 0.0 < delta < 1.0:
        raise ValueError(f"delta = {delta!r}: must be in (0, 1)")
    return float(3.0 * sparsity / delta)


def kv_lower_bound(
    monofact: float, miscalibration: float, n: int, delta: float, sparsity: float = 0.0
) -> float:
    """Kalai & Vempala 2024, Thm 1: with probability ≥ 1 − δ over the facts and the corpus,
    g(H) ≥ N₁/n − Mis_b(g, p) − 3e^(−s)/δ − sqrt(6 ln(6/δ)/n).

    ``sparsity`` = e^(−s) (see :func:`kv_sparsity_term`); 0 drops the sparsity term, which gives a
    larger bound than the theorem's (a stronger statement).
    """
    return float(monofact - miscalibration - kv_sparsity_term(sparsity, delta) - kv_slack(n, delta))


register_formula(
    "kv-hallucination-bound",
    lambda *, monofact, miscalibration, n, delta, sparsity: TheoryValue(
        kv_lower_bound(monofact, miscalibration, n, delta, sparsity)
    ),
    params=[
        Param("monofact", float, None, 0.0, 1.0, "Good–Turing monofact rate N1/n"),
        Param("miscalibration", float, None, 0.0, 1.0, "binned miscalibration Mis_b(g, p)"),
        Param("n", int, None, 1, 10**12, "corpus size n"),
        Param("delta", float, 0.05, 1e-12, 0.999999, "failure probability δ"),
        Param(
            "sparsity",
            float,
            0.0,
            0.0,
            1.0,
            "e^-s = |facts| / |possible hallucinations| (0 drops the sparsity term)",
        ),
    ],
    source="Kalai & Vempala 2024 (STOC), Thm 1",
    summary="lower bound on an LM's hallucination rate: N1/n − Mis_b − 3e^-s/δ − sqrt(6 ln(6/δ)/n)",
)
