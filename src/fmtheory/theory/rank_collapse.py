"""Rates of rank collapse in self-attention networks (pure numpy).

* :func:`dong_residual_bound` — doubly exponential decay of pure full attention: Dong, Cordonnier &
  Loukas 2021, "Attention is not all you need: pure attention loses rank doubly exponentially with
  depth", ICML, Thm 2.2 / Cor 2.3: one layer maps a residual r to at most c·r³ (c = 4γβ/√d_qk), so
  after L layers r_L ≤ c^((3^L − 1)/2) · r_0^(3^L).
* :func:`increment_growth` — what separates the two forms in data: the per-layer decays of ln μ stay
  constant under exponential decay and triple from layer to layer under Dong's recursion.
* :func:`mask_graph_radius` and :func:`masked_rate_bound` — exponential decay under attention masks:
  Wu, Ajorlou, Wang, Jegelka & Jadbabaie 2024, "On the role of attention masks and LayerNorm in
  transformers", NeurIPS, Thm 1: if the mask graph has a centre node reachable from every token in at
  most r hops and every attention weight on the graph is ≥ ε, the token spread shrinks by a factor
  (1 − ε^r) every r layers, i.e. at most (1 − ε^r)^(1/r) per layer.  A larger radius (a sparser,
  more local mask) gives a slower guaranteed rate.
"""

from __future__ import annotations

import math

from fmtheory.theory.registry import Param, TheoryValue, formula

__all__ = [
    "dong_residual_bound",
    "increment_growth",
    "mask_graph_radius",
    "masked_rate_bound",
]


def dong_residual_bound(*, r0: float, c: float, depth: int) -> float:
    """r_L ≤ c^((3^L − 1)/2) · r_0^(3^L) (Dong et al. 2021, Cor 2.3), computed in log space.

    r0 ≥ 0: the input's residual ‖res(X)‖_{1,∞}; c > 0: the per-layer constant 4γβ/√d_qk; depth L ≥ 0.
    Returns 0 for r0 = 0 and inf when the bound overflows.
    """
    if r0 < 0 or c <= 0 or depth < 0:
        raise ValueError(f"r0 = {r0}, c = {c}, depth = {depth}: need r0 >= 0, c > 0, depth >= 0")
    if r0 == 0:
        return 0.0
    p = 3.0**depth
    log_r = (p - 1) / 2 * math.log(c) + p * math.log(r0)
    return math.exp(log_r) if log_r < 709 else math.inf


def increment_growth(form: str) -> float:
    """ln(Δ_{l+1}/Δ_l) for the per-layer decays Δ_l = ln μ_l − ln μ_{l+1} of a decay law.

    ``"exponential"`` (μ_l = μ_0 ρ^l, Wu et al. 2024 Thm 1): every Δ_l = −ln ρ, so 0.
    ``"doubly-exponential"`` (Dong et al. 2021, Thm 2.2 taken with equality, ln μ_{l+1} = ln c +
    3 ln μ_l): Δ_{l+1} = 3 Δ_l, so ln 3.
    """
    if form == "exponential":
        return 0.0
    if form == "doubly-exponential":
        return math.log(3.0)
    raise ValueError(f"form = {form!r}: must be 'exponential' or 'doubly-exponential'")


def mask_graph_radius(*, n_tokens: int, mask: str, window: int | None = None) -> float:
    """Radius r of the attention graph (Wu et al. 2024, Thm 1): hops for every token to reach token 0.

    full and causal masks: 1 (token 0 is attended by every token); sliding window w ≥ 2:
    ⌈(T − 1)/(w − 1)⌉ (each hop moves at most w − 1 positions back); w = 1 (each token sees only
    itself): inf, no centre and no collapse guarantee.  T = 1: 0.
    """
    if n_tokens < 1:
        raise ValueError(f"n_tokens = {n_tokens}: must be >= 1")
    if n_tokens == 1:
        return 0.0
    if mask in ("full", "causal"):
        return 1.0
    if mask == "sliding":
        if window is None or window < 1:
            raise ValueError(f"window = {window!r}: must be an integer >= 1")
        return math.inf if window == 1 else float(math.ceil((n_tokens - 1) / (window - 1)))
    raise ValueError(f"mask = {mask!r}: must be one of full, causal, sliding")


def masked_rate_bound(*, eps: float, radius: float) -> float:
    """Per-layer contraction bound (1 − ε^r)^(1/r) of the token spread (Wu et al. 2024, Thm 1).

    eps in (0, 1]: the smallest attention weight on the mask graph; radius r ≥ 1 (inf gives 1: no
    guaranteed contraction).
    """
    if not 0 < eps <= 1:
        raise ValueError(f"eps = {eps}: must be in (0, 1]")
    if radius < 1:
        raise ValueError(f"radius = {radius}: must be >= 1")
    if math.isinf(radius):
        return 1.0
    return math.exp(math.log1p(-(eps**radius)) / radius) if eps < 1 else 0.0


@formula(
    "rank-collapse-dong-bound",
    params=[
        Param("r0", float, 0.1, 0.0, None, "input residual ‖res(X)‖_{1,∞}"),
        Param("c", float, 1.0, 1e-12, None, "per-layer constant 4γβ/√d_qk"),
        Param("depth", int, 3, 0, 60, "number of pure attention layers L"),
    ],
    source="Dong, Cordonnier & Loukas 2021, ICML, Thm 2.2 / Cor 2.3",
    summary="pure attention residual after L layers ≤ c^((3^L-1)/2) r0^(3^L) (doubly exponential)",
)
def _dong(*, r0: float, c: float, depth: int) -> TheoryValue:
    return TheoryValue(dong_residual_bound(r0=r0, c=c, depth=depth))


@formula(
    "rank-collapse-mask-radius",
    params=[
        Param("n_tokens", int, 32, 1, 100_000, "sequence length T"),
        Param(
            "window", int, 4, 1, 100_000, "sliding-window size w (keys per query, itself included)"
        ),
    ],
    source="Wu, Ajorlou, Wang, Jegelka & Jadbabaie 2024, NeurIPS, Thm 1 (graph radius)",
    summary="radius of the sliding-window attention graph: ceil((T-1)/(w-1)); 1 for full/causal",
)
def _radius(*, n_tokens: int, window: int) -> TheoryValue:
    return TheoryValue(mask_graph_radius(n_tokens=n_tokens, mask="sliding", window=window))


@formula(
    "rank-collapse-masked-rate",
    params=[
        Param("eps", float, 0.01, 1e-300, 1.0, "smallest attention weight on the mask graph"),
        Param("radius", float, 1.0, 1.0, None, "radius of the mask graph"),
    ],
    source="Wu, Ajorlou, Wang, Jegelka & Jadbabaie 2024, NeurIPS, Thm 1",
    summary="per-layer contraction of the token spread under a masked attention: ≤ (1-eps^r)^(1/r)",
)
def _masked_rate(*, eps: float, radius: float) -> TheoryValue:
    return TheoryValue(masked_rate_bound(eps=eps, radius=radius))
