"""Iterative estimators: k-step gradient descent and the lasso, batched over prompts and prefixes."""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import torch
from torch import Tensor

from fmtheory.estimators._linalg import chunks, prefix_grams
from fmtheory.estimators.base import (
    COMPUTE_DTYPE,
    ConvergenceWarning,
    LinearICLEstimator,
    check_int,
    check_real,
    register_estimator,
)

__all__ = [
    "GradientDescent",
    "Lasso",
    "LassoSolution",
    "lasso_coordinate_descent",
    "lasso_kkt_polish",
    "lasso_kkt_ok",
    "lasso_homotopy",
    "gd_prefix_predictions_gram",
    "gd_prefix_predictions_dual",
]


class GradientDescent(LinearICLEstimator):
    """``steps`` full-batch gradient steps from ``w = 0`` on ``(1/2k) Σ_i (y_i − wᵀx_i)²``:
    ``w ← w − lr·(1/k)(XᵀX w − Xᵀy)``.

    von Oswald et al. 2023, "Transformers learn in-context by gradient descent", §2 (one linear
    self-attention layer implements one such step).  ``steps = 1, lr = 1`` is Garg et al.'s
    averaging estimator.  ``k = 0`` predicts 0.  All prefixes at once, in dual form (one batched
    ``n×n`` matmul per step) when ``n <= 3·dim``, else with cumulative Gram matrices.
    """

    name = "gd"

    def __init__(self, *, steps: int = 1, lr: float = 1.0) -> None:
        check_int("steps", steps, owner="gd", low=0)
        check_real("lr", lr, owner="gd", low=0.0, low_open=True)
        self.steps = steps
        self.lr = lr

    def _fit(self, x: Tensor, y: Tensor) -> None:
        x, y = x.to(COMPUTE_DTYPE), y.to(COMPUTE_DTYPE)
        k = max(x.shape[1], 1)
        g = x.transpose(1, 2) @ x / k
        b = torch.einsum("bkd,bk->bd", x, y) / k
        w = torch.zeros_like(b)
        for _ in range(int(self.steps)):
            w = w - float(self.lr) * ((g @ w.unsqueeze(-1)).squeeze(-1) - b)
        self.coef_ = w

    def _predict_prefixes(self, x: Tensor, y: Tensor) -> Tensor:
        x, y = x.to(COMPUTE_DTYPE), y.to(COMPUTE_DTYPE)
        n, d = x.shape[1], x.shape[2]
        if n <= 3 * d:
            return gd_prefix_predictions_dual(x, y, steps=int(self.steps), lr=float(self.lr))
        return gd_prefix_predictions_gram(x, y, steps=int(self.steps), lr=float(self.lr))


def gd_prefix_predictions_gram(x: Tensor, y: Tensor, *, steps: int, lr: float) -> Tensor:
    """GD at every prefix, primal form: ``w_k ← w_k − lr (G_k w_k − b_k)/k`` on ``(B, n, d, d)``.

    Cost ``O(n d²)`` per prompt and step; best when ``n >> d``.
    """
    batch, n, d = x.shape
    inv_k = 1.0 / torch.arange(n, dtype=x.dtype, device=x.device).clamp(min=1)
    out = torch.empty(batch, n, dtype=x.dtype, device=x.device)
    for sl in chunks(batch, n * d * d, budget=1 << 20):
        g, b = prefix_grams(x[sl], y[sl])
        g, b = g * inv_k[:, None, None], b * inv_k[:, None]
        w = torch.zeros_like(b)
        for _ in range(steps):
            w = w - lr * ((g @ w.unsqueeze(-1)).squeeze(-1) - b)
        out[sl] = (x[sl] * w).sum(-1)
    return out


def gd_prefix_predictions_dual(x: Tensor, y: Tensor, *, steps: int, lr: float) -> Tensor:
    """GD at every prefix, dual form: ``w_k = Xᵀa_k`` (``a_k`` zero from ``k`` on) and
    ``A ← A − lr·diag(1/k)·(M ⊙ (A K − 1yᵀ))``, ``K = XXᵀ``, ``M_kj = [j < k]``; row ``k`` of ``A``
    is prefix ``k``'s ``a``, the prediction ``x_kᵀw_k = (K a_k)_k``.

    Cost ``O(n³)`` per prompt and step in one batched matmul; best when ``n`` is a few ``d``.
    """
    batch, n, _ = x.shape
    inv_k = 1.0 / torch.arange(n, dtype=x.dtype, device=x.device).clamp(min=1)
    mask = torch.ones(n, n, dtype=torch.bool, device=x.device).tril(-1)
    scale = (lr * inv_k).unsqueeze(-1) * mask  # (n, n)
    out = torch.empty(batch, n, dtype=x.dtype, device=x.device)
    for sl in chunks(batch, n * n):
        xc, yc = x[sl], y[sl]
        kmat = torch.bmm(xc, xc.transpose(1, 2))
        a = torch.zeros_like(kmat)
        for _ in range(steps):
            a = a - scale * (torch.bmm(a, kmat) - yc.unsqueeze(1))
        out[sl] = (a * kmat).sum(-1)
    return out


@dataclass(frozen=True)
class LassoSolution:
    """``coef: (P, d)``; ``n_iter: (P,)`` sweeps used; ``converged: (P,)`` a stopping rule was met;
    ``exact: (P,)`` the coefficient solves the KKT system on its support (optimal to round-off)."""

    coef: Tensor
    n_iter: Tensor
    converged: Tensor
    exact: Tensor


#: Relative thresholds that prune small coordinates of the coordinate-descent iterate to form the
#: candidate supports of :func:`lasso_kkt_polish` (0: the iterate's own support).
_SUPPORT_CUTS = (0.0, 1e-3, 1e-2, 1e-1)

#: Off-support KKT slack, relative to ``max(λ, ‖b‖∞)``, for accepting a polished solution.
KKT_RTOL = 1e-9

#: At the target λ, unfinished problems are polished on sweeps 1, 1 + _POLISH_EVERY, ... of that
#: stage (and whenever coordinate descent meets ``tol``): a per-problem schedule, so a problem's
#: result never depends on the rest of the batch.
_POLISH_EVERY = 4


def lasso_kkt_ok(gram: Tensor, xty: Tensor, penalty: Tensor, w: Tensor) -> Tensor:
    """``(P,)`` bool: ``w`` satisfies the KKT conditions of ``½wᵀGw − bᵀw + λ‖w‖₁``.

    ``b_j − (Gw)_j = λ sign(w_j)`` where ``w_j ≠ 0`` and ``|b_j − (Gw)_j| <= λ`` elsewhere, with
    slack ``KKT_RTOL · max(λ, ‖b‖∞)``; by convexity such a ``w`` is a minimiser (Tibshirani 2013,
    "The lasso problem and uniqueness", Electron. J. Stat. 7, eq. (5)).
    """
    grad = xty - (gram @ w.unsqueeze(-1)).squeeze(-1)
    lam = penalty.unsqueeze(-1)
    slack = KKT_RTOL * torch.maximum(penalty, xty.abs().amax(-1)).unsqueeze(-1)
    on = (grad - lam * torch.sign(w)).abs() <= slack
    off = grad.abs() <= lam + slack
    return torch.where(w != 0, on, off).all(-1) & torch.isfinite(w).all(-1)


def lasso_kkt_polish(
    gram: Tensor, xty: Tensor, penalty: Tensor, w: Tensor
) -> tuple[Tensor, Tensor]:
    """Exact lasso solutions from guessed supports: ``(coef: (P, d), ok: (P,))``.

    For each candidate support ``A`` (from ``w``) and signs ``s = sign(w_A)``, solve
    ``G_AA w_A = b_A − λ s_A`` (the stationarity condition on ``A``) and accept when the KKT
    conditions of ``½wᵀGw − bᵀw + λ‖w‖₁`` hold: ``sign(w_A) = s_A`` and ``|b_j − (Gw)_j| <= λ``
    off ``A`` (slack ``KKT_RTOL``).  By convexity an accepted ``w`` is a minimiser (Tibshirani
    2013, "The lasso problem and uniqueness", Electron. J. Stat. 7, eq. (5)).
    """
    p_count, d = w.shape
    coef = w.clone()
    ok = torch.zeros(p_count, dtype=torch.bool, device=w.device)
    scale = torch.maximum(penalty, xty.abs().amax(-1)).clamp(min=1e-300)
    eye = torch.eye(d, dtype=w.dtype, device=w.device)
    wmax = w.abs().amax(-1, keepdim=True)
    for cut in _SUPPORT_CUTS:
        support = w.abs() > cut * wmax
        a = support.to(w.dtype)
        m = gram * a.unsqueeze(-1) * a.unsqueeze(-2) + eye * (1 - a).unsqueeze(-1)
        sign = torch.sign(w) * a
        rhs = (xty - penalty.unsqueeze(-1) * sign) * a
        chol, info = torch.linalg.cholesky_ex(m)
        cand = torch.cholesky_solve(rhs.unsqueeze(-1), chol).squeeze(-1) * a
        grad = xty - (gram @ cand.unsqueeze(-1)).squeeze(-1)
        slack = KKT_RTOL * scale.unsqueeze(-1)
        good = (info == 0) & torch.isfinite(cand).all(-1)
        good &= torch.where(
            support, cand * sign > 0, grad.abs() <= penalty.unsqueeze(-1) + slack
        ).all(-1)
        new = good & ~ok
        coef[new] = cand[new]
        ok |= good
    return coef, ok


#: A coordinate that just joined (left) may leave (rejoin) only below μ·_REVERSE_MARGIN: events
#: closer to the current breakpoint are round-off echoes of the change just made.
_REVERSE_MARGIN = 1.0 - 1e-7


def _event(t: Tensor, where: Tensor, upper: Tensor) -> Tensor:
    """``t`` where it is a valid breakpoint (finite, in ``(0, upper)``, allowed), else -1."""
    ok = where & torch.isfinite(t) & (t > 0) & (t < upper)
    return torch.where(ok, t, torch.full_like(t, -1.0))


def lasso_homotopy(gram: Tensor, xty: Tensor, penalty: Tensor, *, max_steps: int) -> LassoSolution:
    """Exact lasso solutions of ``P`` problems by the homotopy (LARS-lasso) path, all at once.

    Minimises ``½ wᵀGw − bᵀw + λ‖w‖₁`` (``gram: (P, d, d)``, ``xty: (P, d)``, ``penalty: (P,)``)
    by following the piecewise-linear path ``w(μ)`` from ``μ = ‖b‖∞`` (``w = 0``) down to ``λ``
    (Osborne, Presnell & Turlach 2000, IMA J. Numer. Anal. 20; Efron, Hastie, Johnstone &
    Tibshirani 2004, Ann. Statist. 32, §3.1): on the active set ``A`` with signs ``s``,
    ``w_A(μ) = G_AA⁻¹(b_A − μ s_A)``; the next breakpoint is the largest ``μ`` below the current
    one at which an inactive correlation ``|b_j − G_jA w_A(μ)|`` reaches ``μ`` (``j`` joins) or an
    active ``w_j(μ)`` reaches 0 (``j`` leaves).  One event per problem and step, a batched masked
    Cholesky per step; problems leave the batch when the next breakpoint is below ``λ``.  The
    result is checked by :func:`lasso_kkt_ok` (``exact``); a problem whose ``G_AA`` is singular or
    that needs more than ``max_steps`` events is returned with ``converged = False``.
    """
    p_count, d, _ = gram.shape
    dev, dt = gram.device, gram.dtype
    coef = torch.zeros(p_count, d, dtype=dt, device=dev)
    n_iter = torch.zeros(p_count, dtype=torch.long, device=dev)
    converged = torch.zeros(p_count, dtype=torch.bool, device=dev)
    rows = torch.arange(p_count, device=dev)
    mu = xty.abs().amax(-1)  # the path starts where w = 0 stops being optimal
    first = xty.abs().argmax(-1)
    in_a = torch.zeros(p_count, d, dtype=torch.bool, device=dev)
    in_a[rows, first] = True
    sign = torch.zeros(p_count, d, dtype=dt, device=dev)
    sign[rows, first] = torch.sign(xty[rows, first])
    zero = mu <= penalty  # w = 0 is optimal (also every k = 0 problem)
    converged |= zero
    keep = ~zero
    active, g, b, pen = rows[keep], gram[keep], xty[keep], penalty[keep]
    mu, in_a, sign = mu[keep], in_a[keep], sign[keep]
    eye = torch.eye(d, dtype=dt, device=dev)
    margin = 1.0 - 1e-12  # a breakpoint must lie strictly below the current μ
    just_joined = in_a.clone()
    just_left = torch.zeros_like(in_a)
    for step in range(1, max_steps + 1):
        if active.numel() == 0:
            break
        a = in_a.to(dt)
        m = g * a.unsqueeze(-1) * a.unsqueeze(-2) + eye * (1 - a).unsqueeze(-1)
        chol, info = torch.linalg.cholesky_ex(m)
        uv = torch.cholesky_solve(torch.stack([b * a, sign], -1), chol) * a.unsqueeze(-1)
        u, v = uv[..., 0], uv[..., 1]  # w_A(μ) = u − μ v
        guv = g @ uv
        p, q = b - guv[..., 0], guv[..., 1]  # inactive correlations: c_j(μ) = p_j + μ q_j
        with torch.no_grad():
            join_pos = p / (1 - q)  # c_j = +μ
            join_neg = -p / (1 + q)  # c_j = −μ
            leave = u / v  # w_j = 0
        lim = (mu * margin).unsqueeze(-1)
        # the coordinate that changed at the current breakpoint: round-off (G_AA may be
        # ill-conditioned) puts its reverse event just below μ, so it needs a wider margin
        lim_changed = (mu * _REVERSE_MARGIN).unsqueeze(-1)
        upper_join = torch.where(just_left, lim_changed, lim)
        upper_leave = torch.where(just_joined, lim_changed, lim)
        ev = torch.stack(
            [
                _event(join_pos, ~in_a, upper_join),
                _event(join_neg, ~in_a, upper_join),
                _event(leave, in_a, upper_leave),
            ],
            1,
        )
        best, flat = ev.flatten(1).max(-1)  # (Pa,): the next breakpoint, -1 if none
        kind, j = flat // d, flat % d
        failed = info != 0
        done = ~failed & (best <= pen)
        finished = done | failed
        if bool(finished.any()):
            w_fin = (u - pen.unsqueeze(-1) * v) * a
            idx = active[done]
            coef[idx], n_iter[idx], converged[idx] = w_fin[done], step, True
            n_iter[active[failed]] = step
            keep = ~finished
            active, g, b, pen, mu = active[keep], g[keep], b[keep], pen[keep], mu[keep]
            in_a, sign, best, kind, j = in_a[keep], sign[keep], best[keep], kind[keep], j[keep]
            just_joined, just_left = just_joined[keep], just_left[keep]
        r = torch.arange(active.numel(), device=dev)
        mu = best
        in_a[r, j] = kind < 2
        sign[r, j] = torch.where(kind == 0, 1.0, torch.where(kind == 1, -1.0, 0.0)).to(dt)
        just_joined = torch.zeros_like(in_a)
        just_joined[r, j] = kind < 2
        just_left = torch.zeros_like(in_a)
        just_left[r, j] = kind == 2
    n_iter[active] = max_steps
    exact = converged & lasso_kkt_ok(gram, xty, penalty, coef)
    return LassoSolution(coef=coef, n_iter=n_iter, converged=exact, exact=exact)


#: Continuation stages: λ goes geometrically from ‖b‖∞ (where w = 0 is optimal) down to the target
#: in this many steps (glmnet's pathwise strategy, Friedman et al. 2010 §2.5); a stage ends when a
#: sweep moves no coordinate by more than _STAGE_RTOL × max|w|, or after _STAGE_SWEEPS sweeps.
_STAGES = 8
_STAGE_RTOL = 1e-3
_STAGE_SWEEPS = 6


def lasso_coordinate_descent(
    gram: Tensor, xty: Tensor, penalty: Tensor, *, max_iter: int, tol: float
) -> LassoSolution:
    """Minimise ``½ wᵀGw − bᵀw + λ‖w‖₁`` for each of ``P`` problems.

    ``gram: (P, d, d)`` (``G = XᵀX``), ``xty: (P, d)``, ``penalty: (P,)`` (``λ = k·α``, which makes
    it scikit-learn's ``(1/2k)‖y − Xw‖² + α‖w‖₁``).  Pathwise cyclic coordinate descent (Friedman,
    Hastie & Tibshirani 2010, J. Stat. Softw. 33(1), eq. 5 and §2.5: ``w_j ← S(b_j − Σ_{l≠j} G_jl
    w_l, λ) / G_jj``, warm-started along ``_STAGES`` values of λ from ``‖b‖∞``) finds the support;
    at the target λ, :func:`lasso_kkt_polish` solves exactly on it every ``_POLISH_EVERY`` sweeps
    and whenever the largest coordinate change falls to ``<= tol ×`` the largest ``|w_j|``.  A
    problem stops at its first accepted polish (``exact``), else at that ``tol`` rule with the
    iterate as result, else at ``max_iter`` sweeps.  Finished problems leave the working set; each
    problem's result depends only on its own data.
    """
    p_count, d, _ = gram.shape
    dev, dt = gram.device, gram.dtype
    coef = torch.zeros(p_count, d, dtype=dt, device=dev)
    n_iter = torch.full((p_count,), max_iter, dtype=torch.long, device=dev)
    converged = torch.zeros(p_count, dtype=torch.bool, device=dev)
    exact = torch.zeros(p_count, dtype=torch.bool, device=dev)
    active = torch.arange(p_count, device=dev)
    g, b, pen = gram, xty, penalty
    # continuation: stage t in 1.._STAGES uses λ_t = pen · (λ_max / pen)^((_STAGES − t) / _STAGES)
    lam_max = b.abs().amax(-1)
    log_ratio = torch.log(torch.where(lam_max > pen, lam_max / pen.clamp(min=1e-300), 1.0))
    log_ratio = log_ratio.clamp(max=700.0)
    stage = torch.where(lam_max > pen, 1, _STAGES).to(torch.long)
    in_stage = torch.zeros(p_count, dtype=torch.long, device=dev)

    def stage_lambda(st: Tensor, pn: Tensor, lr: Tensor) -> Tensor:
        return pn * torch.exp(lr * (_STAGES - st).to(dt) / _STAGES)

    lam = stage_lambda(stage, pen, log_ratio)
    diag = g.diagonal(dim1=1, dim2=2).contiguous()
    # G_jj = 0 means column j of X is 0, so b_j = (Gw)_j = 0 and the update gives 0 / 1 = 0
    safe = torch.where(diag > 0, diag, torch.ones_like(diag))
    w = torch.zeros(p_count, d, dtype=dt, device=dev)
    gw = torch.zeros(p_count, d, dtype=dt, device=dev)
    sweeps_final = torch.zeros(p_count, dtype=torch.long, device=dev)
    for it in range(1, max_iter + 1):
        if active.numel() == 0:
            break
        w_old = w.clone()
        for j in range(d):
            rho = b[:, j] - gw[:, j] + diag[:, j] * w[:, j]
            # soft threshold S(ρ, λ) = ρ − clamp(ρ, −λ, λ)
            new = (rho - torch.clamp(rho, -lam, lam)) / safe[:, j]
            gw.addcmul_(g[:, j], (new - w[:, j]).unsqueeze(-1))  # G symmetric: row j = column j
            w[:, j] = new
        change = (w - w_old).abs().amax(-1)  # each coordinate moved once this sweep
        wmax = w.abs().amax(-1)
        final = stage == _STAGES
        # intermediate stages: move on to the next λ
        in_stage += 1
        advance = ~final & ((change <= _STAGE_RTOL * wmax) | (in_stage >= _STAGE_SWEEPS))
        if bool(advance.any()):
            stage = stage + advance.long()
            in_stage = torch.where(advance, 0, in_stage)
            lam = stage_lambda(stage, pen, log_ratio)
        # final stage: polish on schedule or when the tol rule holds
        sweeps_final += final.long()
        cd_done = final & (change <= tol * wmax)
        polish = cd_done | (final & (sweeps_final % _POLISH_EVERY == 1))
        finished = cd_done.clone()
        if bool(polish.any()):
            sel = polish.nonzero().squeeze(-1)
            wp, okp = lasso_kkt_polish(g[sel], b[sel], pen[sel], w[sel])
            idx = active[sel[okp]]
            coef[idx], exact[idx] = wp[okp], True
            finished[sel[okp]] = True
        if bool(finished.any()):
            plain = finished & ~exact[active]  # met the tol rule without an exact polish
            coef[active[plain]] = w[plain]
            n_iter[active[finished]] = it
            converged[active[finished]] = True
            keep = ~finished
            active, g, b, pen, lam = active[keep], g[keep], b[keep], pen[keep], lam[keep]
            diag, safe, w, gw = diag[keep], safe[keep], w[keep], gw[keep]
            stage, in_stage, log_ratio = stage[keep], in_stage[keep], log_ratio[keep]
            sweeps_final = sweeps_final[keep]
    if active.numel():
        coef[active] = w
    return LassoSolution(coef=coef, n_iter=n_iter, converged=converged, exact=exact)


class Lasso(LinearICLEstimator):
    """``ŵ = argmin_w (1/2k)‖y − Xw‖² + α‖w‖₁`` (Tibshirani 1996), scikit-learn's ``Lasso``
    objective without intercept; the estimator for Garg et al. 2022's sparse linear functions (§4).

    Solved exactly on the cumulative Gram matrices of every prefix of every prompt at once, not by
    a loop over scikit-learn fits: the homotopy / LARS-lasso path (:func:`lasso_homotopy`, at most
    ``max_iter`` breakpoints), each result verified by the KKT conditions.  Problems that fail the
    check (degenerate paths) are solved by pathwise coordinate descent with an exact polish
    (:func:`lasso_coordinate_descent`: at most ``max_iter`` sweeps, stopping rule ``tol``), and a
    ``ConvergenceWarning`` names how many of those did not converge.  ``k = 0`` predicts 0.
    """

    name = "lasso"

    def __init__(self, *, alpha: float = 0.1, max_iter: int = 1000, tol: float = 1e-7) -> None:
        check_real("alpha", alpha, owner="lasso", low=0.0, low_open=True)
        check_int("max_iter", max_iter, owner="lasso", low=1)
        check_real("tol", tol, owner="lasso", low=0.0, low_open=True)
        self.alpha = alpha
        self.max_iter = max_iter
        self.tol = tol

    def _solve(self, g: Tensor, b: Tensor, k: Tensor) -> LassoSolution:
        pen = k * float(self.alpha)
        sol = lasso_homotopy(g, b, pen, max_steps=int(self.max_iter))
        bad = ~sol.exact
        if bool(bad.any()):  # degenerate path (ties, singular G_AA): coordinate descent instead
            cd = lasso_coordinate_descent(
                g[bad], b[bad], pen[bad], max_iter=int(self.max_iter), tol=float(self.tol)
            )
            sol.coef[bad], sol.n_iter[bad] = cd.coef, cd.n_iter
            sol.converged[bad], sol.exact[bad] = cd.converged, cd.exact
        if not bool(sol.converged.all()):
            warnings.warn(
                f"lasso: {int((~sol.converged).sum())} of {sol.converged.numel()} problems left "
                f"the exact path and did not reach tol={self.tol} in max_iter={self.max_iter} "
                "coordinate-descent sweeps",
                ConvergenceWarning,
                stacklevel=4,
            )
        return sol

    def _fit(self, x: Tensor, y: Tensor) -> None:
        x, y = x.to(COMPUTE_DTYPE), y.to(COMPUTE_DTYPE)
        g = x.transpose(1, 2) @ x
        b = torch.einsum("bkd,bk->bd", x, y)
        k = torch.full((x.shape[0],), float(x.shape[1]), dtype=COMPUTE_DTYPE, device=x.device)
        sol = self._solve(g, b, k)
        self.coef_, self.n_iter_ = sol.coef, sol.n_iter

    def _predict_prefixes(self, x: Tensor, y: Tensor) -> Tensor:
        x, y = x.to(COMPUTE_DTYPE), y.to(COMPUTE_DTYPE)
        batch, n, d = x.shape
        kk = torch.arange(n, dtype=COMPUTE_DTYPE, device=x.device)
        out = torch.empty(batch, n, dtype=COMPUTE_DTYPE, device=x.device)
        for sl in chunks(batch, n * d * d, budget=1 << 22):
            g, b = prefix_grams(x[sl], y[sl])
            nb = g.shape[0]
            sol = self._solve(g.flatten(0, 1), b.flatten(0, 1), kk.repeat(nb))
            out[sl] = (x[sl] * sol.coef.view(nb, n, d)).sum(-1)
        return out


register_estimator("gd", GradientDescent)
register_estimator("lasso", Lasso)
