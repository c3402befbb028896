"""Token transformers for the training-dynamics claims: attention-only stacks (Elhage et al. 2021,
"A Mathematical Framework for Transformer Circuits"; Olsson et al. 2022, "In-context learning and
induction heads") and, with ``mlp=True``, the one-layer transformer of grokking (Nanda et al. 2023,
"Progress measures for grokking via mechanistic interpretability", §3).

Blocks reuse :class:`fmtheory.models.gpt.Attention`, so every head's pattern passes the hook point
``blocks.{i}.attn.hook_pattern`` (B, H, T, T), read with :func:`fmtheory.models.hooks.run_with_cache`.
Shapes: tokens ``(B, T)`` int64 in ``[0, vocab)``; logits ``(B, T, vocab)``; residual ``(B, T, C)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from fmtheory.models.gpt import MLP, Attention, GPTConfig, init_gpt_weights
from fmtheory.models.hooks import HookPoint

__all__ = ["TokenTransformerConfig", "TokenTransformer"]


@dataclass(frozen=True)
class TokenTransformerConfig:
    """vocab: token types.  n_ctx: longest sequence.  n_layer, n_head, n_embd: as in GPT-2.
    layernorm: pre-LN blocks and a final LN (False: identity, as in Nanda et al. 2023).
    mlp: add an MLP after each attention sublayer (False: attention-only, Elhage et al. 2021).
    mlp_ratio: MLP hidden width / n_embd."""

    vocab: int
    n_ctx: int
    n_layer: int = 2
    n_head: int = 4
    n_embd: int = 64
    layernorm: bool = True
    mlp: bool = False
    mlp_ratio: int = 4

    def __post_init__(self) -> None:
        if self.vocab < 2:
            raise ValueError(f"vocab = {self.vocab}: must be >= 2")
        # GPTConfig validates n_layer, n_head, n_embd, n_ctx with one-line messages.
        self.gpt_config()

    def gpt_config(self) -> GPTConfig:
        return GPTConfig(n_layer=self.n_layer, n_head=self.n_head, n_embd=self.n_embd,
                         n_positions=self.n_ctx, attention="softmax", layernorm=self.layernorm,
                         mask="causal", mlp_ratio=self.mlp_ratio)  # fmt: skip


class _Block(nn.Module):
    """x + attn(ln_1(x)) [+ mlp(ln_2(x))]; hook points as in :class:`fmtheory.models.gpt.Block`."""

    def __init__(self, config: TokenTransformerConfig):
        super().__init__()
        g = config.gpt_config()
        ln = (lambda: nn.LayerNorm(g.n_embd)) if config.layernorm else nn.Identity
        self.ln_1 = ln()
        self.attn = Attention(g)
        self.mlp = MLP(g) if config.mlp else None
        self.ln_2 = ln() if config.mlp else None
        self.hook_attn_out = HookPoint()
        self.hook_resid_post = HookPoint()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.hook_attn_out(self.attn(self.ln_1(x)))  # (B, T, C)
        if self.mlp is not None:
            x = x + self.mlp(self.ln_2(x))
        return self.hook_resid_post(x)  # (B, T, C)


class TokenTransformer(nn.Module):
    """``forward(tokens: (B, T)) -> logits (B, T, vocab)``: ``logits[:, t]`` predicts ``tokens[:, t+1]``.

    Token embedding ``W_E`` (``embed``), learned positions (``pos``), blocks, final LN, unembedding
    ``W_U`` (``unembed``, no bias).  GPT-2 initialisation (:func:`init_gpt_weights`).
    """

    def __init__(self, config: TokenTransformerConfig):
        super().__init__()
        if not isinstance(config, TokenTransformerConfig):
            raise ValueError(f"config = {config!r}: must be a TokenTransformerConfig")
        self.config = config
        C = config.n_embd
        self.embed = nn.Embedding(config.vocab, C)
        self.pos = nn.Embedding(config.n_ctx, C)
        self.blocks = nn.ModuleList(_Block(config) for _ in range(config.n_layer))
        self.ln_f = nn.LayerNorm(C) if config.layernorm else nn.Identity()
        self.unembed = nn.Linear(C, config.vocab, bias=False)
        self.hook_embed = HookPoint()
        init_gpt_weights(self, n_layer=config.n_layer)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        if tokens.ndim != 2:
            raise ValueError(f"tokens.shape = {tuple(tokens.shape)}: must be (batch, T)")
        T = tokens.shape[1]
        if self.config.n_ctx < T:
            raise ValueError(f"sequence length T = {T}: must be <= n_ctx = {self.config.n_ctx}")
        x = self.hook_embed(self.embed(tokens) + self.pos.weight[:T])  # (B, T, C)
        for block in self.blocks:
            x = block(x)
        return self.unembed(self.ln_f(x))  # (B, T, vocab)

    def ov_circuit(self, layer: int, head: int) -> torch.Tensor:
        """The full OV circuit of one head, ``W_E W_V^h W_O^h W_U``: (vocab, vocab) (Elhage et al.
        2021, §"Zero-layer and one-layer transformers"); row a = the logits that attending to a
        token a adds.  LayerNorm scales are ignored (exact when ``layernorm=False``)."""
        attn = self.blocks[layer].attn
        C, D = self.config.n_embd, attn.head_size
        w_v = attn.c_attn.weight[2 * C :].T[:, head * D : (head + 1) * D]  # (C, D)
        w_o = attn.c_proj.weight.T[head * D : (head + 1) * D]  # (D, C)
        return self.embed.weight @ w_v @ w_o @ self.unembed.weight.T  # (vocab, vocab)
