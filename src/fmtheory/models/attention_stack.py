"""A random-weight self-attention stack for rank-collapse studies, with each ingredient switchable.

One block maps token matrices ``X: (B, T, C) -> (B, T, C)``:

    Y = A(X) X W_V                       single-head softmax attention, A = softmax(X W_Q W_Kᵀ Xᵀ / √C + log M)
    Y = X + α·Y            (residual)    α = ``branch_scale``
    Y = Y + α·MLP(Y)       (mlp, residual)   or  Y = MLP(Y) without the residual
    Y = LayerNorm(Y)       (layernorm)   post-LN, no affine parameters

This is the self-attention network (SAN) of Dong, Cordonnier & Loukas 2021 ("Attention is not all you
need: pure attention loses rank doubly exponentially with depth", ICML, eq. 1 with H = 1 and W_O folded
into W_V) and the attention dynamics X ← LN(A X W_V) of Wu, Ajorlou, Wang, Jegelka & Jadbabaie 2024
("On the role of attention masks and LayerNorm in transformers", NeurIPS, §3-4).  The mask M is the
attention graph of Wu et al.: ``"full"`` (complete graph), ``"causal"`` (token t sees s ≤ t) and
``"sliding"`` (t sees t − window < s ≤ t).

Weights are drawn once from a ``torch.Generator`` (no global random state): W_Q, W_K ~ N(0, 1/C);
W_V ~ N(0, 1/C) (``value="gaussian"``) or a Haar-random orthogonal matrix (``value="orthogonal"``, the
setting of Wu et al.'s collapse theorem with LayerNorm); MLP weights ~ N(0, 1/fan_in).  Every block output
passes the hook point ``blocks.{i}.hook_resid_post`` and the input passes ``hook_embed``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from fmtheory.models.hooks import HookPoint

__all__ = ["MASKS", "VALUES", "StackConfig", "AttentionStack", "stack_mask"]

MASKS = ("full", "causal", "sliding")
VALUES = ("gaussian", "orthogonal")


@dataclass(frozen=True)
class StackConfig:
    """Hyperparameters of :class:`AttentionStack` (bad values raise ValueError naming the field)."""

    depth: int
    width: int  # token dimension C
    n_tokens: int  # T, the sequence length the mask is built for
    mask: Literal["full", "causal", "sliding"] = "full"
    window: int | None = None  # keys seen under mask="sliding", the query itself included
    residual: bool = False
    mlp: bool = False
    layernorm: bool = False
    value: Literal["gaussian", "orthogonal"] = "gaussian"
    branch_scale: float = 1.0  # α: weight of the attention / MLP branch on the residual stream

    def __post_init__(self) -> None:
        for name in ("depth", "width", "n_tokens"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"{name} = {v!r}: must be an integer >= 1")
        if self.mask not in MASKS:
            raise ValueError(f"mask = {self.mask!r}: must be one of {MASKS}")
        if self.value not in VALUES:
            raise ValueError(f"value = {self.value!r}: must be one of {VALUES}")
        if self.mask == "sliding":
            w = self.window
            if w is None or isinstance(w, bool) or not isinstance(w, int) or w < 1:
                raise ValueError(f"window = {w!r}: mask='sliding' needs an integer window >= 1")
        elif self.window is not None:
            raise ValueError(f"window = {self.window!r}: only used with mask='sliding'")
        if not (math.isfinite(self.branch_scale) and self.branch_scale > 0):
            raise ValueError(f"branch_scale = {self.branch_scale!r}: must be a finite number > 0")


def stack_mask(mask: str, n_tokens: int, window: int | None = None) -> torch.Tensor:
    """Boolean ``(T, T)`` attention graph: entry [t, s] is True when query t attends to key s."""
    idx = torch.arange(n_tokens)
    diff = idx[:, None] - idx[None, :]  # t - s
    if mask == "full":
        return torch.ones(n_tokens, n_tokens, dtype=torch.bool)
    if mask == "causal":
        return diff >= 0
    if mask == "sliding":
        if window is None or window < 1:
            raise ValueError(f"window = {window!r}: mask='sliding' needs an integer window >= 1")
        return (diff >= 0) & (diff < window)
    raise ValueError(f"mask = {mask!r}: must be one of {MASKS}")


def _normal(shape: tuple[int, ...], std: float, g: torch.Generator) -> nn.Parameter:
    return nn.Parameter(torch.randn(shape, generator=g, dtype=torch.float64) * std)


def _orthogonal(n: int, g: torch.Generator) -> nn.Parameter:
    # Haar measure: QR of a Gaussian matrix with the signs of R's diagonal moved into Q (Mezzadri 2007).
    q, r = torch.linalg.qr(torch.randn(n, n, generator=g, dtype=torch.float64))
    return nn.Parameter(q * torch.sign(torch.diagonal(r))[None, :])


class StackBlock(nn.Module):
    """One block of :class:`AttentionStack`: ``(B, T, C) -> (B, T, C)`` (see the module docstring)."""

    def __init__(self, config: StackConfig, g: torch.Generator):
        super().__init__()
        C = config.width
        self.config = config
        self.w_q = _normal((C, C), 1 / math.sqrt(C), g)
        self.w_k = _normal((C, C), 1 / math.sqrt(C), g)
        self.w_v = (
            _orthogonal(C, g)
            if config.value == "orthogonal"
            else _normal((C, C), 1 / math.sqrt(C), g)
        )
        if config.mlp:
            self.w_1 = _normal((C, 4 * C), 1 / math.sqrt(C), g)
            self.w_2 = _normal((4 * C, C), 1 / math.sqrt(4 * C), g)
        self.register_buffer(
            "mask", stack_mask(config.mask, config.n_tokens, config.window), persistent=False
        )
        self.hook_pattern = HookPoint()
        self.hook_resid_post = HookPoint()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        cfg, T = self.config, x.shape[1]
        scores = (
            (x @ self.w_q) @ (x @ self.w_k).transpose(-2, -1) / math.sqrt(cfg.width)
        )  # (B, T, T)
        pattern = self.hook_pattern(
            torch.softmax(scores.masked_fill(~self.mask[:T, :T], float("-inf")), dim=-1)
        )  # (B, T, T)
        y = pattern @ x @ self.w_v  # (B, T, C)
        if cfg.residual:
            y = x + cfg.branch_scale * y
        if cfg.mlp:
            m = F.gelu(y @ self.w_1) @ self.w_2  # (B, T, C)
            y = y + cfg.branch_scale * m if cfg.residual else m
        if cfg.layernorm:
            y = F.layer_norm(y, (cfg.width,))
        return self.hook_resid_post(y)  # (B, T, C)


class AttentionStack(nn.Module):
    """``depth`` random blocks in float64: ``forward(x: (B, T, C)) -> (B, T, C)``, T ≤ n_tokens."""

    def __init__(self, config: StackConfig, *, generator: torch.Generator):
        super().__init__()
        if not isinstance(config, StackConfig):
            raise ValueError(f"config = {config!r}: must be a StackConfig")
        self.config = config
        self.hook_embed = HookPoint()
        self.blocks = nn.ModuleList(StackBlock(config, generator) for _ in range(config.depth))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 3 or x.shape[-1] != self.config.width or x.shape[1] > self.config.n_tokens:
            raise ValueError(
                f"x.shape = {tuple(x.shape)}: must be (batch, T <= {self.config.n_tokens}, "
                f"{self.config.width})"
            )
        x = self.hook_embed(x.to(torch.float64))
        for block in self.blocks:
            x = block(x)
        return x
