"""Best-of-n selection by reward in the self-correction task of :mod:`fmtheory.tasks.self_correction`
(the synthetic setting of Wang, Wu, Wei, Wang & Wang 2024, "A theoretical understanding of
self-correction through in-context alignment", NeurIPS, §5; the closed forms are derived here).

A response y = r·y* + (1 − r)·ξ with y*, ξ ~ N(0, I_d) independent and r ~ U[0, 1] has
E[‖y − y*‖²/d | r] = (1 − r)²·E‖y* − ξ‖²/d = 2(1 − r)².

- Random choice (rewards carry no information): E = 2·E(1 − r)² = 2/3 whatever n.
- Best of n by accurate reward: 1 − max(r_1..r_n) ~ Beta(1, n), so E(1 − M)² = 2/((n + 1)(n + 2)) and

      E[error] = 4 / ((n + 1)(n + 2)).

- Best of n by noisy reward (each reward replaced by a fresh U[0, 1] with probability p): no closed
  form is registered; the experiment simulates the selection by observed reward as its reference.
"""

from __future__ import annotations

from fmtheory.theory.registry import Param, TheoryValue, formula

__all__ = ["best_of_n_error", "random_choice_error"]


@formula(
    "self-correction-best-of-n",
    params=[Param("n", int, 4, 1, None, "number of responses (self-correction rounds)")],
    source="derived for the synthetic task of Wang et al. 2024 §5 (1 − max of n uniforms ~ Beta(1, n))",
    summary="mean error ‖y − y*‖²/d of the best of n responses chosen by accurate reward: 4/((n+1)(n+2))",
)
def best_of_n_error(*, n: int) -> TheoryValue:
    """4/((n + 1)(n + 2)): the error of the response with the highest accurate reward among n."""
    if n < 1:
        raise ValueError(f"n = {n}: must be >= 1")
    return TheoryValue(4.0 / ((n + 1) * (n + 2)))


@formula(
    "self-correction-random-choice",
    params=[Param("n", int, 4, 1, None, "number of responses")],
    source="derived for the synthetic task of Wang et al. 2024 §5",
    summary="mean error of a response chosen without reward information: 2/3 for every n",
)
def random_choice_error(*, n: int) -> TheoryValue:
    """2·E(1 − r)² = 2/3 for r ~ U[0, 1], whatever the number n of responses."""
    if n < 1:
        raise ValueError(f"n = {n}: must be >= 1")
    return TheoryValue(2.0 / 3.0)
