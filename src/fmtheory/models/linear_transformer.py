"""The linear transformer of Lu & Yu 2025 ("Transformer learns the cross-task prior and
regularization for in-context learning", arXiv:2505.12138) for inverse linear regression: it reads a
context (X, Y) and writes out an estimate ŵ ∈ R^d of the task vector.

Architecture (shapes: B = batch, n = context length, d = dim, C = n_embd, H = n_head, D = C // H):

* read-in: each pair becomes a token ``e_i = W_in [x_i; y_i] + b_in`` (B, n, C); a learned read-out
  token ``q`` (C,) is appended, so the sequence is (B, n + 1, C);
* L layers of multi-head **linear** attention (no softmax; von Oswald et al. 2023, "Transformers
  learn in-context by gradient descent", §2; Ahn et al. 2023), keys and values from the n context
  tokens only, normalised by n::

      attn(h)_t = W_O concat_heads( Σ_{i<=n} (q_t · k_i) v_i / n ),    h ← LayerNorm(h + attn(h))

  i.e. LayerNorm after each layer (post-LN, as the paper describes), no MLP;
* read-out: ``ŵ = W_out h_q + b_out`` (B, d) from the read-out token's final state.

The output is a function of the whole context and is invariant to the order of the pairs.
Linear attention is computed as ``q (Kᵀ V) / n`` (cost O(n C²), not O(n² C)).

Losses (functions of ŵ, never of the model): :func:`unsupervised_loss` = mean over pairs of
``(<x, ŵ> - y)²`` (the true w is never used; evaluated on the context itself or on fresh pairs of the
same task, the experiment decides) and :func:`supervised_loss` = mean ``‖ŵ - w‖²``.

Hook points (see :mod:`fmtheory.models.hooks`): ``hook_tokens`` (B, n, d + 1), ``hook_embed``
(B, n + 1, C), ``blocks.{i}.attn.hook_q/k/v`` (B, H, ·, D), ``blocks.{i}.attn.hook_z`` (B, H, n + 1, D),
``blocks.{i}.hook_attn_out`` (B, n + 1, C), ``blocks.{i}.hook_resid_post`` (B, n + 1, C),
``hook_readout`` (B, C), ``hook_w`` (B, d).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from fmtheory.models.hooks import HookPoint

__all__ = [
    "LinearTransformerConfig",
    "LinearTransformer",
    "LinearAttention",
    "unsupervised_loss",
    "supervised_loss",
]


@dataclass(frozen=True)
class LinearTransformerConfig:
    """Hyperparameters (validated on construction; bad values raise ValueError naming the field)."""

    dim: int  # d: dimension of x and of the read-out ŵ
    n_layer: int = 3  # L
    n_head: int = 2
    n_embd: int = 32  # C, divisible by n_head
    layernorm: bool = True  # False: no LayerNorm after the layers (ablation)
    init_std: float = 0.02  # N(0, init_std²) weights (GPT-2); the output projections are scaled
    # by 1/sqrt(2 L) as in GPT-2 / nanoGPT

    def __post_init__(self) -> None:
        for name in ("dim", "n_layer", "n_head", "n_embd"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"{name} = {v!r}: must be an integer >= 1")
        if self.n_embd % self.n_head:
            raise ValueError(f"n_embd = {self.n_embd}: must be divisible by n_head = {self.n_head}")
        if not (isinstance(self.init_std, (int, float)) and self.init_std > 0):
            raise ValueError(f"init_std = {self.init_std!r}: must be > 0")


class LinearAttention(nn.Module):
    """Multi-head linear attention: queries from every token, keys/values from the first n tokens.

    ``h: (B, T, C)``, ``n_ctx = n`` -> ``(B, T, C)``; output_t = W_O concat_h(q_t (K_hᵀ V_h) / n).
    """

    def __init__(self, n_embd: int, n_head: int):
        super().__init__()
        self.n_head = n_head
        self.q = nn.Linear(n_embd, n_embd, bias=False)
        self.k = nn.Linear(n_embd, n_embd, bias=False)
        self.v = nn.Linear(n_embd, n_embd, bias=False)
        self.proj = nn.Linear(n_embd, n_embd, bias=False)
        self.hook_q, self.hook_k, self.hook_v, self.hook_z = (HookPoint() for _ in range(4))

    def _heads(self, t: torch.Tensor) -> torch.Tensor:
        b, T, c = t.shape
        return t.view(b, T, self.n_head, c // self.n_head).transpose(1, 2)  # (B, H, T, D)

    def forward(self, h: torch.Tensor, n_ctx: int) -> torch.Tensor:
        b, T, c = h.shape
        ctx = h[:, :n_ctx]
        q = self.hook_q(self._heads(self.q(h)))  # (B, H, T, D)
        k = self.hook_k(self._heads(self.k(ctx)))  # (B, H, n, D)
        v = self.hook_v(self._heads(self.v(ctx)))  # (B, H, n, D)
        kv = k.transpose(-2, -1) @ v / n_ctx  # (B, H, D, D)
        z = self.hook_z(q @ kv)  # (B, H, T, D)
        return self.proj(z.transpose(1, 2).reshape(b, T, c))


class _Block(nn.Module):
    def __init__(self, cfg: LinearTransformerConfig):
        super().__init__()
        self.attn = LinearAttention(cfg.n_embd, cfg.n_head)
        self.ln = nn.LayerNorm(cfg.n_embd) if cfg.layernorm else nn.Identity()
        self.hook_attn_out = HookPoint()
        self.hook_resid_post = HookPoint()

    def forward(self, h: torch.Tensor, n_ctx: int) -> torch.Tensor:
        a = self.hook_attn_out(self.attn(h, n_ctx))
        return self.hook_resid_post(self.ln(h + a))  # post-LN: LayerNorm after each layer


class LinearTransformer(nn.Module):
    """``forward(x: (B, n, d), y: (B, n)) -> ŵ: (B, d)`` (any n >= 1; see the module docstring)."""

    def __init__(self, config: LinearTransformerConfig):
        super().__init__()
        if not isinstance(config, LinearTransformerConfig):
            raise ValueError(f"config = {config!r}: must be a LinearTransformerConfig")
        self.config = config
        d, c = config.dim, config.n_embd
        self.read_in = nn.Linear(d + 1, c)
        self.query = nn.Parameter(torch.zeros(c))
        self.blocks = nn.ModuleList(_Block(config) for _ in range(config.n_layer))
        self.read_out = nn.Linear(c, d)
        self.hook_tokens = HookPoint()
        self.hook_embed = HookPoint()
        self.hook_readout = HookPoint()
        self.hook_w = HookPoint()
        self._init_weights()

    def _init_weights(self) -> None:
        std = self.config.init_std
        for name, p in self.named_parameters():
            if name.endswith("bias"):
                nn.init.zeros_(p)
            elif "ln." in name:
                continue  # LayerNorm weight stays 1
            elif name.endswith("proj.weight"):
                nn.init.normal_(p, 0.0, std / (2 * self.config.n_layer) ** 0.5)
            else:
                nn.init.normal_(p, 0.0, std)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        d = self.config.dim
        if x.ndim != 3 or x.shape[-1] != d or x.shape[1] < 1:
            raise ValueError(f"x.shape = {tuple(x.shape)}: must be (batch, n >= 1, dim={d})")
        if tuple(y.shape) != tuple(x.shape[:2]):
            raise ValueError(
                f"y.shape = {tuple(y.shape)}: must be (batch, n) = {tuple(x.shape[:2])}"
            )
        b, n, _ = x.shape
        tokens = self.hook_tokens(torch.cat([x, y.to(x.dtype).unsqueeze(-1)], dim=-1))
        e = self.read_in(tokens)  # (B, n, C)
        h = self.hook_embed(torch.cat([e, self.query.expand(b, 1, -1)], dim=1))  # (B, n+1, C)
        for block in self.blocks:
            h = block(h, n)
        r = self.hook_readout(h[:, n])  # the read-out token, (B, C)
        return self.hook_w(self.read_out(r))  # (B, d)


def unsupervised_loss(w_hat: torch.Tensor, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """mean over prompts and pairs of (<x_i, ŵ> - y_i)²; ``w_hat: (B, d)``, ``x: (B, m, d)``,
    ``y: (B, m)``.  The true w is never used (Lu & Yu 2025's unsupervised objective)."""
    return (torch.einsum("bmd,bd->bm", x, w_hat) - y).pow(2).mean()


def supervised_loss(w_hat: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """mean over prompts of ‖ŵ - w‖²; ``w_hat``, ``w``: (B, d)."""
    return (w_hat - w).pow(2).sum(-1).mean()
