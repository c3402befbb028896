"""The Good–Turing monofact rate against the exact missing mass of simulated corpora."""

from __future__ import annotations

import numpy as np
import pytest

from fmtheory.theory import evaluate
from fmtheory.theory.good_turing import (
    expected_missing_mass,
    expected_monofact_rate,
    monofact_rate,
    zipf_probs,
)


@pytest.mark.parametrize("k,s,n", [(1000, 1.1, 500), (5000, 1.5, 2000), (200, 0.5, 100)])
def test_monofact_rate_against_simulated_missing_mass(k: int, s: float, n: int) -> None:
    rng = np.random.default_rng(0)
    p = zipf_probs(n_facts=k, exponent=s)
    reps = 2000
    counts = rng.multinomial(n, p, size=reps)  # (reps, K)
    gt = np.array([monofact_rate(c) for c in counts])
    missing = ((counts == 0) * p).sum(1)  # exact missing mass of each corpus
    se = np.std(gt - missing, ddof=1) / np.sqrt(reps)
    # the formula equals the simulated mean of N1/n, and exceeds the exact missing mass by its
    # known bias Σ p_i² (1 − p_i)^(n−1) ∈ [0, 1/n]
    assert expected_monofact_rate(p, n) == pytest.approx(
        gt.mean(), abs=4 * gt.std() / np.sqrt(reps)
    )
    bias = expected_monofact_rate(p, n) - expected_missing_mass(p, n)
    assert 0 <= bias <= 1 / n
    assert abs((gt - missing).mean() - bias) <= 4 * se + 1e-12
    assert evaluate("monofact-rate", n_facts=k, exponent=s, n=n).value == pytest.approx(
        expected_monofact_rate(p, n)
    )


def test_bad_input() -> None:
    with pytest.raises(ValueError, match="exponent"):
        evaluate("monofact-rate", n_facts=10, exponent=-1.0, n=5)
    with pytest.raises(ValueError, match="empty"):
        monofact_rate(np.zeros(3))
