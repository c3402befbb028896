"""Every closed form of fmtheory.theory.self_consuming against a Monte Carlo simulation of the loop
built here from raw samples (numpy, independent of the experiment's vectorised samplers), or an
exact small case.

Tolerance: |MC − theory| ≤ 4·SE (+ a tiny absolute slack for float round-off), with SE the Monte
Carlo standard error of the estimate; seeds are fixed, so each test is deterministic.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.linalg

from fmtheory.theory import evaluate, get_formula
from fmtheory.theory import self_consuming as th

Z = 4.0


def _assert_mc(samples: np.ndarray, theory: float, *, z: float = Z, slack: float = 1e-10) -> None:
    m = samples.mean()
    se = samples.std(ddof=1) / math.sqrt(samples.size)
    assert abs(m - theory) <= z * se + slack, f"MC {m:.6g} ± {se:.2g} vs theory {theory:.6g}"


def _assert_var(samples: np.ndarray, theory: float, *, z: float = Z) -> None:
    """Sample variance vs theory with the distribution-free SE sqrt((m4 − s⁴)/n)."""
    s2 = samples.var(ddof=1)
    m4 = ((samples - samples.mean()) ** 4).mean()
    se = math.sqrt((m4 - s2 * s2) / samples.size)
    assert abs(s2 - theory) <= z * se, f"var {s2:.6g} ± {se:.2g} vs theory {theory:.6g}"


def _gaussian_chain(
    rng: np.random.Generator,
    *,
    reps: int,
    sizes: list[int],
    dim: int,
    mle: bool,
    std: float = 1.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Fully synthetic replace loop from raw samples: returns (mean (R, d), cov (R, d, d))."""
    mean = np.zeros((reps, dim))
    cov = np.broadcast_to(np.eye(dim) * std**2, (reps, dim, dim)).copy()
    for n in sizes:
        chol = np.linalg.cholesky(cov)
        x = mean[:, None, :] + np.einsum("rij,rnj->rni", chol, rng.standard_normal((reps, n, dim)))
        mean = x.mean(1)
        c = x - mean[:, None, :]
        cov = np.einsum("rni,rnj->rij", c, c) / (n if mle else n - 1)
    return mean, cov


# ---------------------------------------------------------------------------------------------
# schedule
# ---------------------------------------------------------------------------------------------


def test_schedule_multipliers_exact():
    assert th.schedule_multipliers(4, power=0).tolist() == [1, 1, 1, 1]
    assert th.schedule_multipliers(4, power=1).tolist() == [1, 2, 3, 4]
    assert th.schedule_multipliers(4, power=2).tolist() == [1, 4, 9, 16]
    # half-up rounding: 2^0.5 = 1.41 -> 1, 3^0.5 = 1.73 -> 2, 6.25^0.5 = 2.5 -> 3
    assert th.schedule_multipliers(3, power=0.5).tolist() == [1, 1, 2]
    assert th.schedule_sizes(10, 3, power=2, max_n=50).tolist() == [10, 40, 50]
    with pytest.raises(ValueError, match="power"):
        th.schedule_multipliers(3, power=-1)
    with pytest.raises(ValueError, match="max_n"):
        th.schedule_sizes(10, 3, max_n=5)


# ---------------------------------------------------------------------------------------------
# Gaussian collapse
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("mle", [False, True])
def test_logvar_mean_and_variance_1d(mle):
    rng = np.random.default_rng(1)
    m, n = 8, 6
    _, cov = _gaussian_chain(rng, reps=20_000, sizes=[m] * n, dim=1, mle=mle, std=1.7)
    log_ratio = np.log(cov[:, 0, 0] / 1.7**2)
    _assert_mc(log_ratio, th.gaussian_logvar_mean(M=m, generation=n, mle=mle))
    _assert_var(log_ratio, th.gaussian_logvar_variance(M=m, generation=n))


def test_logvar_survey_form_and_approximation():
    # n[ψ((M−1)/2) − ln((M−1)/2)] ≈ −n/(M−1) (survey §5.4)
    from scipy.special import digamma

    m, n = 50, 7
    exact = n * (digamma((m - 1) / 2) - math.log((m - 1) / 2))
    assert th.gaussian_logvar_mean(M=m, generation=n) == pytest.approx(exact, rel=1e-12)
    assert exact == pytest.approx(-n / (m - 1), rel=0.05)


@pytest.mark.parametrize("mle", [False, True])
def test_logvar_multivariate_with_schedule(mle):
    rng = np.random.default_rng(2)
    sizes = th.schedule_sizes(4, 4, power=1).astype(int).tolist()  # 4, 8, 12, 16
    _, cov = _gaussian_chain(rng, reps=10_000, sizes=sizes, dim=2, mle=mle)
    logdet = np.linalg.slogdet(cov)[1]
    _assert_mc(logdet, th.gaussian_logvar_mean(M=4, generation=4, dim=2, power=1, mle=mle))
    _assert_var(logdet, th.gaussian_logvar_variance(M=4, generation=4, dim=2, power=1))


def test_mle_variance():
    rng = np.random.default_rng(3)
    _, cov = _gaussian_chain(rng, reps=20_000, sizes=[10] * 4, dim=1, mle=True, std=2.0)
    _assert_mc(cov[:, 0, 0], th.gaussian_mle_variance(sigma=2.0, M=10, generation=4))
    assert th.gaussian_mle_variance(sigma=2.0, M=10, generation=4) == pytest.approx(4 * 0.9**4)


@pytest.mark.parametrize("mle", [False, True])
def test_mean_drift_replace(mle):
    rng = np.random.default_rng(4)
    mean, _ = _gaussian_chain(rng, reps=20_000, sizes=[6] * 5, dim=2, mle=mle, std=1.5)
    err = (mean**2).sum(-1)
    _assert_mc(err, th.gaussian_mean_drift(sigma=1.5, M=6, generation=5, dim=2, mle=mle))
    if not mle:
        assert th.gaussian_mean_drift(sigma=1.5, M=6, generation=5, dim=2) == pytest.approx(
            5 * 2 * 1.5**2 / 6
        )


def test_mean_drift_accumulate_fixed_covariance():
    """Accumulate every dataset, covariance fixed at σ²: raw concatenation, 4 generations."""
    rng = np.random.default_rng(5)
    reps, m, sigma = 20_000, 5, 0.8
    sizes = th.schedule_sizes(m, 4, power=1).astype(int)
    pool = np.empty((reps, 0))
    mean = np.zeros(reps)
    for n in sizes:
        x = mean[:, None] + sigma * rng.standard_normal((reps, n))
        pool = np.concatenate([pool, x], axis=1)
        mean = pool.mean(1)
    _assert_mc(
        mean**2,
        th.gaussian_mean_drift(sigma=sigma, M=m, generation=4, power=1, accumulate=True),
    )


def test_expected_w2sq_1d():
    rng = np.random.default_rng(6)
    for mle in (False, True):
        mean, cov = _gaussian_chain(rng, reps=20_000, sizes=[6] * 3, dim=1, mle=mle, std=1.3)
        w2sq = mean[:, 0] ** 2 + (np.sqrt(cov[:, 0, 0]) - 1.3) ** 2
        _assert_mc(w2sq, th.gaussian_expected_w2sq(sigma=1.3, M=6, generation=3, mle=mle))


def test_gaussian_w2_exact_cases():
    assert th.gaussian_w2(mu1=1.0, sigma1=2.0, mu2=-1.0, sigma2=0.5) == pytest.approx(2.5)
    rng = np.random.default_rng(7)
    a = rng.standard_normal((5, 3, 3))
    b = rng.standard_normal((5, 3, 3))
    c1 = a @ a.transpose(0, 2, 1) + 0.1 * np.eye(3)
    c2 = b @ b.transpose(0, 2, 1) + 0.1 * np.eye(3)
    m1, m2 = rng.standard_normal((5, 3)), rng.standard_normal((5, 3))
    got = th.gaussian_w2_squared_batched(m1, c1, m2, c2)
    for i in range(5):  # reference: scipy sqrtm in the Bures formula
        r2 = scipy.linalg.sqrtm(c2[i])
        cross = np.real(scipy.linalg.sqrtm(r2 @ c1[i] @ r2))
        ref = ((m1[i] - m2[i]) ** 2).sum() + np.trace(c1[i] + c2[i] - 2 * cross)
        assert got[i] == pytest.approx(ref, rel=1e-8, abs=1e-10)
    # commuting (diagonal) covariances: Σ (√a − √b)²
    da, db = np.diag([1.0, 4.0]), np.diag([9.0, 0.25])
    assert th.gaussian_w2_squared_batched(np.zeros(2), da, np.zeros(2), db) == pytest.approx(
        (1 - 3) ** 2 + (2 - 0.5) ** 2
    )
    assert th.gaussian_w2_squared_batched(m1, c1, m1, c1) == pytest.approx(np.zeros(5), abs=1e-8)


# ---------------------------------------------------------------------------------------------
# linear regression on a fixed design (raw stacked least squares)
# ---------------------------------------------------------------------------------------------


def _linreg_chain(
    rng: np.random.Generator, *, reps: int, d: int, t: int, sigma: float, copies, accumulate: bool
) -> np.ndarray:
    x = rng.standard_normal((reps, t, d))
    w_star = rng.standard_normal((reps, d))
    xs, ys = [], []
    w = w_star
    for c in copies:
        xc = np.concatenate([x] * int(c), axis=1)  # c labelled copies of the design
        yc = np.einsum("rtd,rd->rt", xc, w) + sigma * rng.standard_normal(xc.shape[:2])
        if accumulate:
            xs.append(xc)
            ys.append(yc)
            xa, ya = np.concatenate(xs, axis=1), np.concatenate(ys, axis=1)
        else:
            xa, ya = xc, yc
        gram = np.einsum("rti,rtj->rij", xa, xa)
        w = np.linalg.solve(gram, np.einsum("rti,rt->ri", xa, ya)[..., None])[..., 0]
    return ((w - w_star) ** 2).sum(-1)


@pytest.mark.parametrize("power", [0.0, 1.0])
@pytest.mark.parametrize("accumulate", [False, True])
def test_linreg_closed_forms(power, accumulate):
    rng = np.random.default_rng(8)
    d, t, sigma, n = 3, 9, 0.5, 4
    copies = th.schedule_multipliers(n, power=power)
    err = _linreg_chain(rng, reps=6000, d=d, t=t, sigma=sigma, copies=copies, accumulate=accumulate)
    fn = th.linreg_accumulate_error if accumulate else th.linreg_replace_error
    _assert_mc(err, fn(d=d, T=t, sigma=sigma, generation=n, power=power))


def test_linreg_survey_forms():
    d, t, s = 10, 100, 0.7
    first = s**2 * d / (t - d - 1)
    assert th.linreg_replace_error(d=d, T=t, sigma=s, generation=7) == pytest.approx(7 * first)
    acc = th.linreg_accumulate_error(d=d, T=t, sigma=s, generation=50)
    assert acc == pytest.approx(first * sum(1 / i**2 for i in range(1, 51)))
    assert acc < math.pi**2 / 6 * first
    with pytest.raises(ValueError, match="T"):
        th.linreg_replace_error(d=5, T=6, sigma=1.0, generation=1)


def test_inverse_wishart_trace():
    rng = np.random.default_rng(9)
    x = rng.standard_normal((20_000, 12, 4))
    tr = np.trace(np.linalg.inv(np.einsum("rti,rtj->rij", x, x)), axis1=1, axis2=2)
    _assert_mc(tr, th.inverse_wishart_trace_mean(d=4, T=12))


# ---------------------------------------------------------------------------------------------
# real share, correction, stability
# ---------------------------------------------------------------------------------------------


def _mixed_mean_step(rng, mean_prev, *, n, alpha, gamma, sigma=1.0):
    """One generation: round(αn) real N(0, σ²) + synthetic N(mean_prev, σ²), each synthetic
    sample swapped for a real one w.p. γ/(1+γ); returns the fitted mean."""
    reps = mean_prev.shape[0]
    n_r = int(math.floor(alpha * n + 0.5))
    centre = np.concatenate(
        [np.zeros((reps, n_r)), np.broadcast_to(mean_prev[:, None], (reps, n - n_r))], axis=1
    )
    swap = rng.random((reps, n)) < gamma / (1 + gamma)
    swap[:, :n_r] = False
    centre = np.where(swap, 0.0, centre)
    return (centre + sigma * rng.standard_normal((reps, n))).mean(1)


def test_mix_contraction_one_step():
    rng = np.random.default_rng(10)
    delta, n, alpha, gamma = 1.0, 20, 0.25, 1.5
    nxt = _mixed_mean_step(rng, np.full(40_000, delta), n=n, alpha=alpha, gamma=gamma)
    kappa = th.mix_contraction(real_fraction=alpha, gamma=gamma, n=n)
    assert kappa == pytest.approx((1 - 5 / 20) / 2.5)
    _assert_mc(nxt, kappa * delta)
    # population form: λ/(1+λ) = 1 − α with λ = (1−α)/α
    lam = 3.0
    assert th.mix_contraction(real_fraction=1 / (1 + lam)) == pytest.approx(lam / (1 + lam))


def test_gaussian_mix_mean_mse():
    rng = np.random.default_rng(11)
    n, alpha, gamma, gens, sigma = 10, 0.3, 1.0, 6, 1.2
    mean = (sigma * rng.standard_normal((20_000, n))).mean(1)  # generation 1: real only
    for _ in range(gens - 1):
        mean = _mixed_mean_step(rng, mean, n=n, alpha=alpha, gamma=gamma, sigma=sigma)
    pred = th.gaussian_mix_mean_mse(
        sigma=sigma, n=n, real_fraction=alpha, gamma=gamma, generation=gens
    )
    _assert_mc(mean**2, pred)


def test_bertrand_condition_and_correction_rewriting():
    # γ = 0: Bertrand's κ = λ(1 + Lε/α)
    c = th.bertrand_stability(lam=0.4, lipschitz=2.0, eps=0.1, strong_concavity=0.5)
    assert c.kappa == pytest.approx(0.4 * (1 + 2.0 * 0.1 / 0.5))
    assert c.stable
    assert not th.bertrand_stability(lam=1.2, lipschitz=0.0, eps=0.0, strong_concavity=1.0).stable
    # the corrected objective is Bertrand's with λ_eff: the Gaussian factor λ_eff/(1+λ_eff)
    # equals the simulated (1 − α)/(1 + γ) of the correction as implemented
    for lam, gamma in [(0.5, 1.0), (3.0, 0.25), (9.0, 4.0)]:
        le = th.bertrand_stability(lam=lam, lipschitz=0, eps=0, strong_concavity=1, gamma=gamma)
        alpha = 1.0 / (1.0 + lam)
        assert le.lambda_eff / (1 + le.lambda_eff) == pytest.approx(
            th.mix_contraction(real_fraction=alpha, gamma=gamma)
        )


# ---------------------------------------------------------------------------------------------
# KDE
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("power, max_n", [(0.0, None), (1.0, 30)])
def test_kde_model_variance(power, max_n):
    """Raw KDE loop: resample the data and add h·N(0, 1); model variance = biased var + h²."""
    rng = np.random.default_rng(12)
    reps, n0, h, gens, sd = 4000, 15, 0.4, 5, 2.0
    sizes = th.schedule_sizes(n0, gens, power=power, max_n=max_n).astype(int)
    data = sd * rng.standard_normal((reps, sizes[0]))
    for n in sizes[1:]:
        idx = rng.integers(0, data.shape[1], size=(reps, n))
        data = np.take_along_axis(data, idx, axis=1) + h * rng.standard_normal((reps, n))
    model_var = data.var(axis=1) + h**2
    pred = th.kde_model_variance(
        real_var=sd**2, bandwidth=h, n0=n0, generation=gens, power=power, max_n=max_n
    )
    _assert_mc(model_var, pred)


def test_kde_fixed_point():
    assert th.kde_model_variance(
        real_var=5.0, bandwidth=0.1, n0=50, generation=20_000
    ) == pytest.approx(50 * 0.01, rel=1e-6)


# ---------------------------------------------------------------------------------------------
# Zipf tails
# ---------------------------------------------------------------------------------------------


def test_zipf_tail_mass_is_tv_to_truncation_and_plateau():
    v, beta, k = 300, 1.2, 40
    p = th.zipf_probs(v, beta)
    tau = th.zipf_tail_mass(vocab=v, exponent=beta, k=k)
    trunc = np.where(np.arange(v) < k, p, 0.0)
    trunc /= trunc.sum()
    assert tau == pytest.approx(p[k:].sum())
    assert 0.5 * np.abs(trunc - p).sum() == pytest.approx(tau)
    # Dohmatob et al.: a learner fed T samples of the tail-cut model plateaus at τ:
    # τ ≤ TV(q̂_T, p) ≤ τ + TV(q̂_T, p_k), and E TV(q̂_T, p_k) ≤ ½ Σ sqrt(p_k,i / T)
    rng = np.random.default_rng(13)
    for t in (10**3, 10**5, 10**7):
        q = rng.multinomial(t, trunc, size=200) / t
        tv = 0.5 * np.abs(q - p).sum(-1)
        assert (tv >= tau - 1e-12).all()
        assert tv.mean() <= tau + 0.5 * np.sqrt(trunc / t).sum()
    assert tv.mean() == pytest.approx(tau, abs=2e-3)


def test_zipf_missing_mass():
    rng = np.random.default_rng(14)
    v, beta, n = 150, 1.1, 300
    p = th.zipf_probs(v, beta)
    counts = rng.multinomial(n, p, size=20_000)
    missing = ((counts == 0) * p).sum(-1)
    _assert_mc(missing, th.zipf_missing_mass(vocab=v, exponent=beta, n=n))


# ---------------------------------------------------------------------------------------------
# registry
# ---------------------------------------------------------------------------------------------

NAMES = [
    "stl-gaussian-logvar",
    "stl-gaussian-logvar-variance",
    "stl-gaussian-mle-variance",
    "stl-gaussian-mean-drift",
    "stl-gaussian-expected-w2sq",
    "stl-gaussian-w2",
    "stl-linreg-replace",
    "stl-linreg-accumulate",
    "stl-mix-contraction",
    "stl-gaussian-mix-mean-mse",
    "stl-bertrand-stability",
    "stl-kde-variance",
    "stl-zipf-tail-mass",
    "stl-zipf-missing-mass",
]


def test_registry_entries_cite_and_evaluate():
    for name in NAMES:
        f = get_formula(name)
        assert f.source and f.summary
    assert evaluate("stl-linreg-replace", d=10, T=100, sigma=1, generation=3).value == (
        pytest.approx(3 * 10 / 89)
    )
    assert evaluate("stl-linreg-accumulate", d=10, T=100, sigma=1, generation=2).value == (
        pytest.approx(10 / 89 * 1.25)
    )
    assert evaluate("stl-gaussian-logvar", M=20, generation=5).value == pytest.approx(
        th.gaussian_logvar_mean(M=20, generation=5)
    )
    assert evaluate("stl-gaussian-mle-variance", sigma=2, M=5, generation=2).value == (
        pytest.approx(4 * 0.64)
    )
    assert evaluate("stl-mix-contraction", real_fraction=0.25, gamma=1).value == 0.375
    assert evaluate("stl-gaussian-w2", mu1=3, sigma1=1, mu2=0, sigma2=5).value == 5.0


def test_registry_bad_parameters_name_the_parameter():
    with pytest.raises(ValueError, match="'T'"):
        evaluate("stl-linreg-replace", d=10, T=11, sigma=1, generation=1)
    with pytest.raises(ValueError, match="'M'"):
        evaluate("stl-gaussian-logvar", M=3, generation=1, dim=3)
    with pytest.raises(ValueError, match="'real_fraction'"):
        evaluate("stl-mix-contraction", real_fraction=1.5)
    with pytest.raises(ValueError, match="'gamma'"):
        evaluate("stl-mix-contraction", real_fraction=0.5, gamma=-1)
    with pytest.raises(ValueError, match="'k'"):
        evaluate("stl-zipf-tail-mass", vocab=10, k=11)
    with pytest.raises(ValueError, match="'generation'"):
        evaluate("stl-linreg-accumulate", d=2, T=10, sigma=1)
