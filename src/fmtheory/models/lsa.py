"""Linear self-attention (LSA) on in-context regression prompts, and the gradient-descent algorithm it
is compared with.

A prompt of n context pairs and one query is the matrix of tokens (von Oswald et al. 2023, "Transformers
learn in-context by gradient descent", §2; Zhang, Frei & Bartlett 2024, JMLR 25(49), eq. (2.3); Ahn et
al. 2023, "Transformers learn to implement preconditioned gradient descent for in-context learning",
eq. (2))::

    Z = [z_1 … z_n z_q],   z_i = (x_i, y_i) ∈ R^{d+1},   z_q = (x_q, 0),

held here batch-first with tokens as rows, ``z: (B, n + 1, d + 1)``.  One LSA layer is

    Z ← Z + (1/n) W_PV Z M Zᵀ W_KQ Z,      M = diag(1, …, 1, 0),                     (LSA)

with W_PV, W_KQ ∈ R^{(d+1)×(d+1)} (ZFB's parameterisation: the value-projection product and the
key-query product).  The mask M removes the query from the keys and values (Ahn et al. eq. (2); ZFB
keep it, which changes nothing below because its label slot is 0 and only adds a cubic nuisance
term).  The prediction is read from the query's label slot with von Oswald's sign, ŷ = −Z_{d+1, q}
(so that L stacked layers can run L GD steps on the residuals; for one layer the sign is absorbed by
W_PV).

**Effective Γ.**  Write W_PV's last row as (pᵀ, u) and W_KQ = [[W₁₁, ·], [kᵀ, ·]] (first d columns).
One layer predicts

    ŷ = −(1/n) Σ_j (pᵀx_j + u y_j)(x_jᵀ W₁₁ x_q + y_j kᵀx_q)
      = x_qᵀ Γ (1/n) Σ_j y_j x_j  +  nuisance,      Γ = −(u W₁₁ᵀ + k pᵀ),

where the nuisance −pᵀ S W₁₁ x_q − u (1/n) Σ y_j² kᵀx_q is even in w and so only adds error: at the
optimum p = k = 0 and ŷ = x_qᵀ Γ* h, one preconditioned GD step (see :mod:`fmtheory.theory.lsa`).

**GD as LSA** (von Oswald et al. 2023, Prop. 1): with W_PV = [[0, 0], [0, −1]] and W_KQ =
[[P_lᵀ, 0], [0, 0]], layer l maps the label slots y_j − w_lᵀx_j (context) and −w_lᵀx_q (query) to
those of w_{l+1} = w_l + P_l (1/n) Σ_j (y_j − w_lᵀx_j) x_j: L such layers = L steps of preconditioned
GD from w = 0 (:meth:`LSAStack.from_preconditioners`; :class:`PreconditionedGD` computes the same
steps directly, and also GD++, the variant that deep trained LSA stacks implement instead).
"""

from __future__ import annotations

import math
from typing import Literal

import torch
from torch import nn

from fmtheory.models.hooks import HookPoint

__all__ = ["LinearSelfAttention", "LSAStack", "PreconditionedGD", "lsa_tokens"]


def _positive_int(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} = {value!r}: must be an integer >= 1")
    return value


def _check_prompt(x: torch.Tensor, y: torch.Tensor, dim: int) -> None:
    if x.ndim != 3 or x.shape[-1] != dim:
        raise ValueError(f"x.shape = {tuple(x.shape)}: must be (batch, n + 1, dim={dim})")
    if x.shape[1] < 2:
        raise ValueError(
            f"x.shape = {tuple(x.shape)}: a prompt needs n >= 1 context pairs and a query "
            "(n_points >= 2)"
        )
    if tuple(y.shape) != tuple(x.shape[:2]):
        raise ValueError(
            f"y.shape = {tuple(y.shape)}: must be (batch, n + 1) = {tuple(x.shape[:2])}"
        )


def lsa_tokens(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Tokens ``(B, n + 1, d + 1)``: rows (x_i, y_i) for the context and (x_q, 0) for the query.

    ``x: (B, n + 1, d)``, ``y: (B, n + 1)``; the last pair is the query and its label is ignored.
    """
    y = y.to(x.dtype).clone()
    y[:, -1] = 0.0
    return torch.cat([x, y.unsqueeze(-1)], dim=-1)


class LinearSelfAttention(nn.Module):
    """One LSA layer (eq. (LSA) of the module docstring) on tokens ``z: (B, n + 1, d + 1)``.

    Parameters ``w_pv``, ``w_kq``: ``(d + 1, d + 1)``, initialised i.i.d. N(0, init_std²) (from
    ``generator`` when given).  Hook points: ``hook_scores`` ``(B, n, n + 1)`` = z_jᵀ W_KQ z_t for
    context key j and every token t; ``hook_update`` ``(B, n + 1, d + 1)`` = the added term.
    """

    def __init__(
        self, dim: int, *, init_std: float = 0.02, generator: torch.Generator | None = None
    ):
        super().__init__()
        self.dim = _positive_int("dim", dim)
        if not (math.isfinite(init_std) and init_std >= 0):
            raise ValueError(f"init_std = {init_std!r}: must be a finite number >= 0")
        D = dim + 1
        self.w_pv = nn.Parameter(torch.randn(D, D, generator=generator) * init_std)
        self.w_kq = nn.Parameter(torch.randn(D, D, generator=generator) * init_std)
        self.hook_scores = HookPoint()
        self.hook_update = HookPoint()

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """``z: (B, n + 1, d + 1)`` (context tokens first, the query last) -> same shape."""
        n = z.shape[1] - 1
        zc = z[:, :n]  # (B, n, D): keys and values come from the context only (mask M)
        scores = self.hook_scores(zc @ self.w_kq.to(z.dtype) @ z.transpose(1, 2))  # (B, n, T)
        values = zc @ self.w_pv.to(z.dtype).T  # (B, n, D): W_PV z_j
        update = self.hook_update(scores.transpose(1, 2) @ values / n)  # (B, T, D)
        return z + update

    def gamma(self) -> torch.Tensor:
        """Γ = −(u W₁₁ᵀ + k pᵀ), ``(d, d)``: ŷ = x_qᵀ Γ (1/n) Σ y_j x_j + nuisance (one layer)."""
        d = self.dim
        u, p = self.w_pv[d, d], self.w_pv[d, :d]
        w11, k = self.w_kq[:d, :d], self.w_kq[d, :d]
        return -(u * w11.T + torch.outer(k, p))

    def nuisance_norm(self) -> float:
        """‖p‖·‖W₁₁‖ + |u|·‖k‖: size of the blocks that only add error (0 at the optimum)."""
        d = self.dim
        u, p = self.w_pv[d, d], self.w_pv[d, :d]
        w11, k = self.w_kq[:d, :d], self.w_kq[d, :d]
        return float((p.norm() * w11.norm() + u.abs() * k.norm()).detach())


class LSAStack(nn.Module):
    """L linear self-attention layers with residual connections; prediction ŷ = −(query label slot).

    ``forward(x: (B, n + 1, d), y: (B, n + 1)) -> (B,)``: the prediction for the last point (the
    query) from the n pairs before it; works for any n >= 1 (each layer divides by its n).
    ``n_layer = 1`` is the single-layer LSA of Zhang, Frei & Bartlett 2024; more layers are the deep
    LSA of von Oswald et al. 2023 §3 / Ahn et al. 2023 §4.  Hook points: ``hook_tokens`` (input
    tokens), ``layers.{l}.hook_scores``, ``layers.{l}.hook_update``, ``hook_resid_post`` (output
    tokens of the last layer).
    """

    def __init__(
        self,
        dim: int,
        n_layer: int = 1,
        *,
        init_std: float = 0.02,
        generator: torch.Generator | None = None,
    ):
        super().__init__()
        self.dim = _positive_int("dim", dim)
        self.n_layer = _positive_int("n_layer", n_layer)
        self.layers = nn.ModuleList(
            LinearSelfAttention(dim, init_std=init_std, generator=generator) for _ in range(n_layer)
        )
        self.hook_tokens = HookPoint()
        self.hook_resid_post = HookPoint()

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        _check_prompt(x, y, self.dim)
        z = self.hook_tokens(lsa_tokens(x, y))  # (B, n + 1, d + 1)
        for layer in self.layers:
            z = layer(z)
        z = self.hook_resid_post(z)
        return -z[:, -1, self.dim]  # (B,)

    def gamma(self) -> torch.Tensor:
        """The effective Γ ``(d, d)`` of a single-layer stack (ValueError for n_layer > 1)."""
        if self.n_layer != 1:
            raise ValueError(
                f"n_layer = {self.n_layer}: an effective Γ exists for one layer only; "
                "use layer_gammas() for the per-layer matrices"
            )
        return self.layers[0].gamma()

    def layer_gammas(self) -> torch.Tensor:
        """Per-layer Γ_l = −(u_l W₁₁,lᵀ + k_l p_lᵀ), ``(L, d, d)`` (the preconditioners when the x part
        of the tokens is left unchanged, i.e. the top d rows of every W_PV are 0)."""
        return torch.stack([layer.gamma() for layer in self.layers])

    @classmethod
    def from_preconditioners(cls, preconditioners: torch.Tensor) -> LSAStack:
        """The stack that runs L steps of preconditioned GD exactly (von Oswald et al. 2023, Prop. 1).

        ``preconditioners: (L, d, d)`` P_l; layer l gets W_PV = [[0, 0], [0, −1]], W_KQ = [[P_lᵀ, 0],
        [0, 0]], so its label-slot update is −x_tᵀ P_l (1/n) Σ_j r_j x_j on every token t.
        """
        p = torch.as_tensor(preconditioners)
        if p.ndim != 3 or p.shape[1] != p.shape[2]:
            raise ValueError(f"preconditioners.shape = {tuple(p.shape)}: must be (L, d, d)")
        L, d = p.shape[0], p.shape[1]
        stack = cls(d, L, init_std=0.0)
        if p.is_floating_point():
            stack = stack.to(p.dtype)  # keep the preconditioners' precision
        with torch.no_grad():
            for layer, pl in zip(stack.layers, p, strict=True):
                layer.w_pv.zero_()
                layer.w_pv[d, d] = -1.0
                layer.w_kq.zero_()
                layer.w_kq[:d, :d] = pl.T.to(layer.w_kq.dtype)
        return stack


class PreconditionedGD(nn.Module):
    """L steps of (preconditioned) gradient descent from w = 0 on (1/2n) Σ_i (y_i − wᵀx_i)², with
    learnable step sizes / preconditioners (fitted by the caller):

    * ``kind="scalar"``: w_{l+1} = w_l + η_l (1/n) Σ_i (y_i − w_lᵀx_i) x_i (plain GD, one step size
      per step);
    * ``kind="matrix"``: the same with a full preconditioner P_l ``(d, d)`` in place of η_l
      (preconditioned GD, Ahn et al. 2023 §3-4);
    * ``kind="gdpp"``: GD++ (von Oswald et al. 2023 §3): each step also transforms every input,
      x_t ← x_t − γ_l S x_t with S = (1/n) Σ_i x_i x_iᵀ of the current context inputs (a data-dependent
      preconditioner that approaches S⁻¹), simultaneously with the GD step η_l on the residuals.

    Prediction ŷ = x_qᵀ w_L (computed in data space as −(the query's residual slot), which is the same
    number).  ``forward(x: (B, n + 1, d), y: (B, n + 1)) -> (B,)`` as :class:`LSAStack` (the last pair
    is the query).  Step sizes start at ``init_step`` (γ_l at 0).
    """

    def __init__(
        self,
        dim: int,
        n_steps: int,
        *,
        kind: Literal["scalar", "matrix", "gdpp"] = "scalar",
        init_step: float = 0.1,
    ):
        super().__init__()
        self.dim = _positive_int("dim", dim)
        self.n_steps = _positive_int("n_steps", n_steps)
        if kind not in ("scalar", "matrix", "gdpp"):
            raise ValueError(f"kind = {kind!r}: must be 'scalar', 'matrix' or 'gdpp'")
        self.kind = kind
        if kind == "matrix":
            self.P = nn.Parameter(float(init_step) * torch.eye(dim).repeat(n_steps, 1, 1))
        else:
            self.eta = nn.Parameter(torch.full((n_steps,), float(init_step)))
        if kind == "gdpp":
            self.gamma = nn.Parameter(torch.zeros(n_steps))

    def preconditioners(self) -> torch.Tensor:
        """``(L, d, d)``: η_l I or P_l (for "gdpp": the η_l I applied to the transformed inputs)."""
        if self.kind == "matrix":
            return self.P
        return self.eta[:, None, None] * torch.eye(self.dim, dtype=self.eta.dtype)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        _check_prompt(x, y, self.dim)
        n = x.shape[1] - 1
        P = self.preconditioners().to(x.dtype)
        xs = x  # (B, n + 1, d): inputs, transformed by GD++ steps
        r = y.to(x.dtype).clone()  # (B, n + 1): residual slots y_i − w_lᵀx_i; query slot −w_lᵀx_q
        r[:, -1] = 0.0
        for l in range(self.n_steps):
            xc = xs[:, :n]
            g = torch.einsum("bn,bnd->bd", r[:, :n], xc) / n  # −∇ of the loss at w_l, (B, d)
            r_new = r - torch.einsum("btd,bd->bt", xs, g @ P[l].T)  # r_t − x_tᵀ P_l g
            if self.kind == "gdpp":
                S = xc.transpose(1, 2) @ xc / n  # (B, d, d)
                xs = xs - self.gamma[l].to(x.dtype) * xs @ S  # x_t − γ_l S x_t (S symmetric)
            r = r_new
        return -r[:, -1]
