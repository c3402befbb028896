"""Generalization bounds for classifiers: kl inversion, PAC-Bayes-kl, test-set, VC, SGD stability,
and the norm-based margin bounds of a trained ReLU network.  Pure numpy/scipy.

Every bound returns an upper bound on the risk (expected 0-1 loss) of a classifier; a value ≥ 1 says
nothing (vacuous).  Sources, per function:

- :func:`kl_bernoulli`, :func:`kl_inverse_upper`: kl(q‖p) between Bernoulli laws and its upper
  inverse sup{p ∈ [q, 1] : kl(q‖p) ≤ c} (Langford 2005, §3; Seeger 2002).
- :func:`heldout_bound`: the binomial tail inversion of Langford 2005 ("Tutorial on practical
  prediction theory for classification", JMLR, Thm 3.3): k errors on n held-out points.
- :func:`pac_bayes_kl_bound`: Maurer 2004 / Seeger 2002 PAC-Bayes-kl,
  kl(ê_Q ‖ e_Q) ≤ (KL(Q‖P) + ln(2√n / δ)) / n, with the Monte Carlo correction of Langford &
  Caruana 2002 (ê_Q estimated from m sampled networks: ê_Q ≤ kl⁻¹(ê_m, ln(2/δ')/m)) and a union
  bound over a grid of J prior variances (δ → δ/J), as in Dziugaite & Roy 2017 (UAI, §3-4).
- :func:`vc_bound`: Bousquet, Boucheron & Lugosi 2004 ("Introduction to statistical learning
  theory", Thm 3 with Sauer's lemma): R ≤ R̂ + 2 √(2 (ln S(2n) + ln(2/δ)) / n) with
  ln S(2n) ≤ min(2n ln 2, h ln(2en/h)).
- :func:`sgd_stability_gap`: uniform stability of SGD on a β-smooth, L-Lipschitz loss (Hardt,
  Recht & Singer 2016, ICML, Lemma 2.5 and the recursion in the proof of Thm 3.12), iterated over
  the actual learning rates; for mini-batches of size B the differing example enters a step with
  probability B/n.
- :func:`spectral_margin_bound`: Bartlett, Foster & Telgarsky 2017 (NeurIPS), Lemma A.8 (the
  fixed-norm form behind Thm 1.1): spectrally-normalised margin bound.
- :func:`rademacher_margin_bound`: Golowich, Rakhlin & Shamir 2018 (COLT), Thm 1 (Rademacher
  complexity of Frobenius-norm-bounded ReLU networks) in the multiclass margin bound of Mohri,
  Rostamizadeh & Talwalkar 2018 ("Foundations of ML", 2nd ed., Thm 9.2).

Registered formulas: ``kl-inverse``, ``test-set-bound``, ``pac-bayes-kl``, ``vc-bound``,
``sgd-stability``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from scipy import optimize, stats

from fmtheory.theory.registry import Param, TheoryValue, register_formula

__all__ = [
    "kl_bernoulli",
    "kl_inverse_upper",
    "heldout_bound",
    "pac_bayes_kl_bound",
    "mc_risk_upper",
    "vc_bound",
    "sgd_stability_gap",
    "spectral_complexity",
    "spectral_margin_bound",
    "rademacher_complexity_frobenius",
    "rademacher_margin_bound",
    "margin_grid",
]

_EPS = 1e-15


def _check_prob(name: str, v: float, *, open_: bool = False) -> None:
    ok = (0.0 < v < 1.0) if open_ else (0.0 <= v <= 1.0)
    if not (isinstance(v, (int, float)) and math.isfinite(v) and ok):
        where = "(0, 1)" if open_ else "[0, 1]"
        raise ValueError(f"{name} = {v!r} is invalid: must be in {where}")


def kl_bernoulli(q: float, p: float) -> float:
    """kl(q‖p) = q ln(q/p) + (1 − q) ln((1 − q)/(1 − p)), with 0 ln 0 = 0 (inf when p ∈ {0, 1}
    and q ≠ p)."""
    _check_prob("q", q)
    _check_prob("p", p)
    out = 0.0
    for a, b in ((q, p), (1.0 - q, 1.0 - p)):
        if a > 0:
            if b <= 0:
                return math.inf
            out += a * math.log(a / b)
    return max(out, 0.0)


def kl_inverse_upper(q: float, c: float) -> float:
    """sup{p ∈ [q, 1] : kl(q‖p) ≤ c} (Langford 2005, §3), by Brent's method to 1e-13."""
    _check_prob("q", q)
    if not (math.isfinite(c) and c >= 0):
        raise ValueError(f"c = {c!r} is invalid: must be a finite number >= 0")
    if c == 0 or q >= 1.0:
        return q
    hi = 1.0 - _EPS
    if kl_bernoulli(q, hi) <= c:
        return 1.0
    return float(optimize.brentq(lambda p: kl_bernoulli(q, p) - c, q, hi, xtol=1e-14, rtol=1e-13))


def heldout_bound(*, errors: int, n: int, delta: float) -> float:
    """Langford 2005, Thm 3.3: with probability ≥ 1 − δ over n held-out points, the risk is at most
    max{p : P[Bin(n, p) ≤ errors] ≥ δ} (the Clopper-Pearson upper limit, via the beta quantile)."""
    _check_prob("delta", delta, open_=True)
    if n < 1 or not 0 <= errors <= n:
        raise ValueError(f"errors = {errors}, n = {n}: need n >= 1 and 0 <= errors <= n")
    if errors == n:
        return 1.0
    return float(stats.beta.ppf(1.0 - delta, errors + 1, n - errors))


def mc_risk_upper(*, mc_risk: float, n_mc: int, delta_mc: float) -> float:
    """Langford & Caruana 2002 (Dziugaite & Roy 2017, eq. 8): the empirical risk of the Gibbs
    classifier Q is at most kl⁻¹(ê_m, ln(2/δ')/m) when ê_m averages m networks drawn from Q
    (probability ≥ 1 − δ'); ``n_mc = 0`` means ê is exact and is returned unchanged."""
    if n_mc == 0:
        return mc_risk
    _check_prob("delta_mc", delta_mc, open_=True)
    return kl_inverse_upper(mc_risk, math.log(2.0 / delta_mc) / n_mc)


def pac_bayes_kl_bound(
    *,
    emp_risk: float,
    kl: float,
    n: int,
    delta: float,
    n_mc: int = 0,
    delta_mc: float = 0.01,
    n_priors: int = 1,
) -> float:
    """PAC-Bayes-kl bound on the Gibbs risk e_Q (Maurer 2004; Dziugaite & Roy 2017, §3-4).

    emp_risk: the empirical 0-1 risk of Q on the n bound points (exact, or a Monte Carlo estimate
    over ``n_mc`` networks).  kl: KL(Q‖P) in nats.  n_priors: size J of the prior grid the best prior
    was chosen from (union bound: δ/J).  Holds with probability ≥ 1 − δ − δ' (δ' only if n_mc > 0):
    e_Q ≤ kl⁻¹( mc_risk_upper(emp_risk), (KL + ln(2√n J/δ)) / n ).
    """
    _check_prob("delta", delta, open_=True)
    _check_prob("emp_risk", emp_risk)
    if n < 1 or n_priors < 1 or n_mc < 0:
        raise ValueError(f"n = {n}, n_priors = {n_priors}, n_mc = {n_mc}: need n, J >= 1, m >= 0")
    if not (math.isfinite(kl) and kl >= 0):
        raise ValueError(f"kl = {kl!r} is invalid: must be a finite number >= 0")
    q = mc_risk_upper(mc_risk=emp_risk, n_mc=n_mc, delta_mc=delta_mc)
    c = (kl + math.log(2.0 * math.sqrt(n) * n_priors / delta)) / n
    return kl_inverse_upper(q, c)


def vc_bound(*, train_error: float, vc_dim: float, n: int, delta: float) -> float:
    """Bousquet, Boucheron & Lugosi 2004, Thm 3 with Sauer's lemma: with probability ≥ 1 − δ,
    R ≤ R̂ + 2 √(2 (ln S(2n) + ln(2/δ)) / n), ln S(2n) ≤ min(2n ln 2, h ln(2en/h)), h = vc_dim.
    Binary classification; for k classes apply it with the Natarajan dimension in place of h."""
    _check_prob("delta", delta, open_=True)
    _check_prob("train_error", train_error)
    if vc_dim <= 0 or n < 1:
        raise ValueError(f"vc_dim = {vc_dim}, n = {n}: both must be >= 1")
    log_growth = min(2 * n * math.log(2.0), vc_dim * math.log(2.0 * math.e * n / vc_dim))
    if vc_dim >= 2 * n:
        log_growth = 2 * n * math.log(2.0)
    return train_error + 2.0 * math.sqrt(2.0 * (log_growth + math.log(2.0 / delta)) / n)


def sgd_stability_gap(
    lrs: Sequence[float] | np.ndarray,
    *,
    lipschitz: float,
    smoothness: float,
    n: int,
    batch: int = 1,
) -> float:
    """Hardt, Recht & Singer 2016, Lemma 2.5 + proof of Thm 3.12: expected generalisation gap of
    SGD on a β-smooth, L-Lipschitz loss after the steps α_1..α_T in ``lrs``.

    Two runs on data sets differing in one example, weights δ_t apart in expectation:
    the differing example is in the step's batch with probability p = B/n; then
    δ_{t+1} ≤ (1 + α_t β (B − 1)/B) δ_t + 2 α_t L / B, otherwise δ_{t+1} ≤ (1 + α_t β) δ_t.
    With δ_0 = 0 the gap is at most ε = L E[δ_T] (B = 1 gives HRS's
    δ_{t+1} ≤ (1 − 1/n)(1 + α_t β) δ_t + (1/n)(δ_t + 2 α_t L)).  Returns ε (inf on overflow).
    """
    if lipschitz < 0 or smoothness < 0 or n < 1 or not 1 <= batch <= n:
        raise ValueError(
            f"lipschitz = {lipschitz}, smoothness = {smoothness}, n = {n}, batch = {batch}: "
            "need L, β >= 0 and 1 <= batch <= n"
        )
    p = batch / n
    d = 0.0
    for a in np.asarray(lrs, dtype=float).tolist():
        if a < 0:
            raise ValueError(f"learning rate {a}: must be >= 0")
        grow_in = 1.0 + a * smoothness * (batch - 1) / batch
        grow_out = 1.0 + a * smoothness
        d = p * (grow_in * d + 2.0 * a * lipschitz / batch) + (1.0 - p) * grow_out * d
        if not math.isfinite(d):
            return math.inf
    return float(lipschitz * d)


# ---------------------------------------------------------------------------------------------
def margin_grid(low: float = 2.0**-12, high: float = 2.0**12) -> np.ndarray:
    """The fixed margin grid γ ∈ {2^k} that both margin bounds take a union bound over."""
    k = np.arange(math.floor(math.log2(low)), math.ceil(math.log2(high)) + 1)
    return 2.0 ** k.astype(float)


def _margins_below(margins: np.ndarray, gamma: float) -> float:
    return float(np.mean(margins <= gamma))


def spectral_complexity(
    weights: Sequence[np.ndarray], references: Sequence[np.ndarray] | None = None
) -> float:
    """R_A = (∏ ‖A_i‖_σ) (Σ (‖A_iᵀ − M_iᵀ‖_{2,1} / ‖A_i‖_σ)^{2/3})^{3/2} (Bartlett, Foster &
    Telgarsky 2017, eq. 1.2) for 1-Lipschitz activations; A_i: (out, in); M_i: reference matrices
    (None: zero).  ‖Bᵀ‖_{2,1} is the sum of the Euclidean norms of the rows of B (out, in)."""
    prod, acc = 1.0, 0.0
    for i, a in enumerate(weights):
        a = np.asarray(a, dtype=float)
        m = np.zeros_like(a) if references is None else np.asarray(references[i], dtype=float)
        s = float(np.linalg.norm(a, ord=2))
        prod *= s
        l21 = float(np.linalg.norm(a - m, axis=1).sum())
        acc += (l21 / s) ** (2.0 / 3.0)
    return prod * acc**1.5


def spectral_margin_bound(
    *,
    margins: np.ndarray,
    weights: Sequence[np.ndarray],
    x_norm: float,
    width: int,
    delta: float,
    references: Sequence[np.ndarray] | None = None,
) -> float:
    """Bartlett, Foster & Telgarsky 2017, Lemma A.8: for networks with these spectral and (2,1)
    norms, with probability ≥ 1 − δ, P[argmax f(x) ≠ y] ≤
    R̂_γ + 8/n + 72 ‖X‖_F R_A ln(2W) ln(n) / (γ n) + 3 √(ln(1/δ)/(2n)),
    minimised over the grid γ ∈ :func:`margin_grid` with a union bound (δ/J).

    margins: (n,) f(x)_y − max_{j≠y} f(x)_j on the training set.  x_norm: ‖X‖_F = √Σ‖x_i‖².
    width: the largest layer width W.  The union over the norm values (Thm 1.1's extra log terms)
    is not taken: the norms are those of the trained network.
    """
    _check_prob("delta", delta, open_=True)
    margins = np.asarray(margins, dtype=float)
    n = margins.size
    grid = margin_grid()
    ra = spectral_complexity(weights, references)
    conf = 3.0 * math.sqrt(math.log(len(grid) / delta) / (2 * n))
    best = math.inf
    for g in grid:
        cap = 72.0 * x_norm * ra * math.log(2 * width) * math.log(n) / (g * n)
        best = min(best, _margins_below(margins, g) + 8.0 / n + cap + conf)
    return best


def rademacher_complexity_frobenius(
    weights: Sequence[np.ndarray], *, x_norm: float, n: int
) -> float:
    """Golowich, Rakhlin & Shamir 2018, Thm 1: empirical Rademacher complexity of depth-d ReLU
    networks with ‖W_j‖_F ≤ M_j (scalar output): (∏ M_j)(√(2 d ln 2) + 1) ‖X‖_F / n.
    The last matrix's Frobenius norm bounds each of its rows (one output coordinate)."""
    d = len(weights)
    prod = float(np.prod([np.linalg.norm(np.asarray(w, dtype=float)) for w in weights]))
    return prod * (math.sqrt(2.0 * d * math.log(2.0)) + 1.0) * x_norm / n


def rademacher_margin_bound(
    *,
    margins: np.ndarray,
    weights: Sequence[np.ndarray],
    x_norm: float,
    n_classes: int,
    delta: float,
) -> float:
    """Mohri et al. 2018, Thm 9.2 with :func:`rademacher_complexity_frobenius`: with probability
    ≥ 1 − δ, R ≤ R̂_γ + (4k/γ) R̂_S(Π₁H) + 3 √(ln(2J/δ)/(2n)), minimised over γ ∈
    :func:`margin_grid` (J values, union bound).  Norms fixed at the trained network's (as in
    :func:`spectral_margin_bound`)."""
    _check_prob("delta", delta, open_=True)
    margins = np.asarray(margins, dtype=float)
    n = margins.size
    grid = margin_grid()
    rad = rademacher_complexity_frobenius(weights, x_norm=x_norm, n=n)
    conf = 3.0 * math.sqrt(math.log(2.0 * len(grid) / delta) / (2 * n))
    return min(_margins_below(margins, g) + 4.0 * n_classes * rad / g + conf for g in grid)


# ---------------------------------------------------------------------------------------------
def _kl_inverse_formula(*, q: float, c: float) -> TheoryValue:
    return TheoryValue(kl_inverse_upper(q, c))


def _test_set_formula(*, errors: int, n: int, delta: float) -> TheoryValue:
    return TheoryValue(heldout_bound(errors=errors, n=n, delta=delta))


def _pac_bayes_formula(
    *, emp_risk: float, kl: float, n: int, delta: float, n_mc: int, delta_mc: float, n_priors: int
) -> TheoryValue:
    return TheoryValue(pac_bayes_kl_bound(emp_risk=emp_risk, kl=kl, n=n, delta=delta, n_mc=n_mc,
                                          delta_mc=delta_mc, n_priors=n_priors))  # fmt: skip


def _vc_formula(*, train_error: float, vc_dim: float, n: int, delta: float) -> TheoryValue:
    return TheoryValue(vc_bound(train_error=train_error, vc_dim=vc_dim, n=n, delta=delta))


def _stability_formula(
    *, lr: float, steps: int, lipschitz: float, smoothness: float, n: int, batch: int
) -> TheoryValue:
    return TheoryValue(sgd_stability_gap(np.full(steps, lr), lipschitz=lipschitz,
                                         smoothness=smoothness, n=n, batch=batch))  # fmt: skip


def _delta_open(params: dict) -> None:
    for k in ("delta", "delta_mc"):
        if k in params and not 0.0 < params[k] < 1.0:
            raise ValueError(f"parameter '{k}' = {params[k]!r} is out of range: must be in (0, 1)")


def _errors_le_n(params: dict) -> None:
    _delta_open(params)
    if params["errors"] > params["n"]:
        raise ValueError(f"parameter 'errors' = {params['errors']} must be <= n = {params['n']}")


def _batch_le_n(params: dict) -> None:
    if params["batch"] > params["n"]:
        raise ValueError(f"parameter 'batch' = {params['batch']} must be <= n = {params['n']}")


register_formula(
    "kl-inverse",
    _kl_inverse_formula,
    params=[
        Param("q", float, None, 0.0, 1.0, "empirical risk q"),
        Param("c", float, None, 0.0, 1e6, "kl budget c"),
    ],
    source="Langford 2005 (JMLR), §3; Seeger 2002",
    summary="sup{p ∈ [q, 1] : kl(q‖p) ≤ c}, the Bernoulli kl inverse",
)
register_formula(
    "test-set-bound",
    _test_set_formula,
    params=[
        Param("errors", int, None, 0, 10**9, "errors on the held-out points"),
        Param("n", int, None, 1, 10**9, "held-out points"),
        Param("delta", float, 0.025, 0.0, 1.0, "confidence δ ∈ (0, 1)"),
    ],
    source="Langford 2005 (JMLR), Thm 3.3",
    summary="binomial tail inversion: max{p : P[Bin(n, p) <= errors] >= δ}",
    check=_errors_le_n,
)
register_formula(
    "pac-bayes-kl",
    _pac_bayes_formula,
    params=[
        Param("emp_risk", float, None, 0.0, 1.0, "empirical 0-1 risk of Q (exact or MC estimate)"),
        Param("kl", float, None, 0.0, 1e12, "KL(Q‖P) in nats"),
        Param("n", int, None, 1, 10**9, "bound points"),
        Param("delta", float, 0.025, 0.0, 1.0, "confidence δ ∈ (0, 1)"),
        Param("n_mc", int, 0, 0, 10**9, "networks in the MC estimate (0: exact)"),
        Param("delta_mc", float, 0.01, 0.0, 1.0, "confidence δ' of the MC correction"),
        Param("n_priors", int, 1, 1, 10**6, "prior-variance grid size J (union bound)"),
    ],
    source="Maurer 2004; Langford & Caruana 2002; Dziugaite & Roy 2017 (UAI), §3-4",
    summary="kl⁻¹(kl⁻¹(ê_m, ln(2/δ')/m), (KL + ln(2√n J/δ))/n): PAC-Bayes-kl with MC correction",
    check=_delta_open,
)
register_formula(
    "vc-bound",
    _vc_formula,
    params=[
        Param("train_error", float, 0.0, 0.0, 1.0, "training 0-1 error"),
        Param("vc_dim", float, None, 1.0, 1e15, "VC dimension h"),
        Param("n", int, None, 1, 10**12, "training points"),
        Param("delta", float, 0.025, 0.0, 1.0, "confidence δ ∈ (0, 1)"),
    ],
    source="Bousquet, Boucheron & Lugosi 2004, Thm 3 + Sauer's lemma",
    summary="R̂ + 2√(2(min(2n ln 2, h ln(2en/h)) + ln(2/δ))/n)",
    check=_delta_open,
)
register_formula(
    "sgd-stability",
    _stability_formula,
    params=[
        Param("lr", float, None, 0.0, 1e3, "constant learning rate α"),
        Param("steps", int, None, 0, 10**8, "SGD steps T"),
        Param("lipschitz", float, None, 0.0, 1e12, "Lipschitz constant L of the loss"),
        Param("smoothness", float, None, 0.0, 1e12, "smoothness β of the loss"),
        Param("n", int, None, 1, 10**12, "training points"),
        Param("batch", int, 1, 1, 10**9, "mini-batch size B"),
    ],
    source="Hardt, Recht & Singer 2016 (ICML), Lemma 2.5, proof of Thm 3.12",
    summary="expected generalisation gap L·E[δ_T] of T SGD steps (non-convex recursion)",
    check=_batch_le_n,
)
