"""A GPT-2-style decoder backbone in one file, after nanoGPT's ``model.py`` (Karpathy,
https://github.com/karpathy/nanoGPT), with the variants that learning-theory claims vary:
softmax or linear attention, LayerNorm on or off, causal / sliding-window / no mask.

The backbone maps embeddings to embeddings, ``(B, T, n_embd) -> (B, T, n_embd)``; readers in
:mod:`fmtheory.models.icl` put a read-in before it and a read-out after it.  Every internal activation
passes a named :class:`~fmtheory.models.hooks.HookPoint` (shapes with B = batch, T = sequence length,
H = n_head, C = n_embd, D = C // H):

=================================  ============  ==================================================
name                               shape         what
=================================  ============  ==================================================
``hook_embed``                     (B, T, C)     the input embeddings as given
``hook_pos_embed``                 (B, T, C)     learned positional embeddings (broadcast view)
``blocks.{i}.hook_resid_pre``      (B, T, C)     residual stream entering block i
``blocks.{i}.attn.hook_q/k/v``     (B, H, T, D)  queries, keys, values per head
``blocks.{i}.attn.hook_pattern``   (B, H, T, T)  attention weights (query t, key s); computed only
                                                 when hooked for softmax attention (SDPA otherwise)
``blocks.{i}.attn.hook_z``         (B, H, T, D)  pattern @ values, before the output projection
``blocks.{i}.hook_attn_out``       (B, T, C)     attention sublayer output (added to the residual)
``blocks.{i}.hook_resid_mid``      (B, T, C)     residual stream between attention and MLP
``blocks.{i}.hook_mlp_out``        (B, T, C)     MLP sublayer output
``blocks.{i}.hook_resid_post``     (B, T, C)     residual stream leaving block i
``hook_final``                     (B, T, C)     after the final LayerNorm (the backbone's output)
=================================  ============  ==================================================
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from fmtheory.models.hooks import HookPoint

__all__ = ["GPTConfig", "GPT", "Block", "Attention", "MLP", "init_gpt_weights", "attention_mask"]

_ATTENTIONS = ("softmax", "linear")
_MASKS = ("causal", "sliding", "none")


@dataclass(frozen=True)
class GPTConfig:
    """Hyperparameters of the backbone (validated on construction; bad values raise ValueError)."""

    n_layer: int
    n_head: int
    n_embd: int  # residual width C; must be divisible by n_head (head size D = n_embd // n_head)
    n_positions: int  # size of the learned positional table = the longest sequence accepted
    dropout: float = 0.0  # on embeddings, attention weights and both residual branches (nanoGPT)
    # "softmax": softmax(q k^T / sqrt(D)) (Vaswani et al. 2017).  "linear": no softmax,
    # pattern = (q k^T ⊙ M) / (number of attended positions), see :class:`Attention`.
    attention: Literal["softmax", "linear"] = "softmax"
    layernorm: bool = True  # False replaces every LayerNorm (ln_1, ln_2, ln_f) by nn.Identity
    # "causal": query t sees keys s <= t.  "sliding": t sees t - window < s <= t (causal and local,
    # Beltagy et al. 2020 Longformer; Jiang et al. 2023 Mistral).  "none": every query sees every key (bidirectional).
    mask: Literal["causal", "sliding", "none"] = "causal"
    window: int | None = None  # number of keys a query sees under mask="sliding", itself included
    mlp_ratio: int = 4  # MLP hidden width = mlp_ratio * n_embd (4 in GPT-2)
    bias: bool = True  # biases in Linear layers and LayerNorms (GPT-2: True)

    def __post_init__(self) -> None:
        for name in ("n_layer", "n_head", "n_embd", "n_positions", "mlp_ratio"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} = {value!r}: must be an integer >= 1")
        if self.n_embd % self.n_head != 0:
            raise ValueError(
                f"n_embd = {self.n_embd}: must be divisible by n_head = {self.n_head} "
                f"(head size = n_embd // n_head)"
            )
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout = {self.dropout!r}: must be in [0, 1)")
        if self.attention not in _ATTENTIONS:
            raise ValueError(f"attention = {self.attention!r}: must be one of {_ATTENTIONS}")
        if self.mask not in _MASKS:
            raise ValueError(f"mask = {self.mask!r}: must be one of {_MASKS}")
        if self.mask == "sliding":
            w = self.window
            if w is None or isinstance(w, bool) or not isinstance(w, int) or w < 1:
                raise ValueError(f"window = {w!r}: mask='sliding' needs an integer window >= 1")
        elif self.window is not None:
            raise ValueError(
                f"window = {self.window!r}: only used with mask='sliding' (mask = {self.mask!r}); "
                f"leave it None"
            )

    @property
    def head_size(self) -> int:
        return self.n_embd // self.n_head


def attention_mask(
    config: GPTConfig, T: int, *, device: torch.device | None = None
) -> torch.Tensor:
    """Boolean mask ``(T, T)``: entry [t, s] is True when query t may attend to key s."""
    idx = torch.arange(T, device=device)
    diff = idx[:, None] - idx[None, :]  # t - s
    if config.mask == "none":
        return torch.ones(T, T, dtype=torch.bool, device=device)
    if config.mask == "causal":
        return diff >= 0
    return (diff >= 0) & (diff < config.window)  # sliding


def _layernorm(config: GPTConfig) -> nn.Module:
    # Pre-LN placement (GPT-2, Radford et al. 2019 §2.3; Xiong et al. 2020 "On Layer Normalization in
    # the Transformer Architecture").  layernorm=False: identity, for rank-collapse / LN ablations.
    return nn.LayerNorm(config.n_embd, bias=config.bias) if config.layernorm else nn.Identity()


class Attention(nn.Module):
    """Multi-head self-attention, softmax or linear.

    softmax: pattern = softmax(q kᵀ / sqrt(D) + log M) (Vaswani et al. 2017, eq. 1), run by
    ``F.scaled_dot_product_attention`` unless ``hook_pattern`` is hooked, in which case the same
    pattern is computed explicitly so that the hook can see it.

    linear: pattern[t, s] = M[t, s] · <q_t, k_s> / n_t with n_t = Σ_s M[t, s] the number of keys query
    t attends to (t + 1 under the causal mask), i.e. out = ((Q Kᵀ) ⊙ M) V / n.  No softmax and no
    1/sqrt(D): this is the linear self-attention (LSA) of the in-context-learning theory papers
    (von Oswald et al. 2023, "Transformers learn in-context by gradient descent", §2; Zhang, Frei &
    Bartlett 2024, "Trained transformers learn linear models in-context", §2, where the product is
    divided by the prompt length).  Rows of the pattern need not sum to one and may be negative.
    """

    def __init__(self, config: GPTConfig):
        super().__init__()
        C = config.n_embd
        self.config = config
        self.n_head, self.head_size = config.n_head, config.head_size
        self.c_attn = nn.Linear(C, 3 * C, bias=config.bias)  # q, k, v for all heads at once
        self.c_proj = nn.Linear(C, C, bias=config.bias)  # output projection (a residual projection)
        self.attn_dropout = nn.Dropout(config.dropout)
        self.resid_dropout = nn.Dropout(config.dropout)
        # mask[t, s]: query t may see key s; not saved in checkpoints (persistent=False).
        self.register_buffer("mask", attention_mask(config, config.n_positions), persistent=False)
        self.hook_q, self.hook_k, self.hook_v = HookPoint(), HookPoint(), HookPoint()
        self.hook_pattern = HookPoint()
        self.hook_z = HookPoint()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, T, C = x.shape
        q, k, v = self.c_attn(x).split(C, dim=2)  # each (B, T, C)
        q = self.hook_q(q.view(B, T, self.n_head, self.head_size).transpose(1, 2))  # (B, H, T, D)
        k = self.hook_k(k.view(B, T, self.n_head, self.head_size).transpose(1, 2))  # (B, H, T, D)
        v = self.hook_v(v.view(B, T, self.n_head, self.head_size).transpose(1, 2))  # (B, H, T, D)
        mask = self.mask[:T, :T]  # (T, T)

        if self.config.attention == "linear":
            n_attended = mask.sum(dim=-1, keepdim=True).to(q.dtype)  # (T, 1)
            scores = (q @ k.transpose(-2, -1)).masked_fill(~mask, 0.0)  # (B, H, T, T)
            pattern = self.hook_pattern(scores / n_attended)  # (B, H, T, T)
            z = self.attn_dropout(pattern) @ v  # (B, H, T, D)
        elif self.hook_pattern.has_hooks:
            # Explicit path, only when a hook asks for the pattern (SDPA does not return it).
            scores = (q @ k.transpose(-2, -1)) / math.sqrt(self.head_size)  # (B, H, T, T)
            scores = scores.masked_fill(~mask, float("-inf"))
            pattern = self.hook_pattern(F.softmax(scores, dim=-1))  # (B, H, T, T)
            z = self.attn_dropout(pattern) @ v  # (B, H, T, D)
        else:
            # Fast path: fused kernel; is_causal=True lets it skip the masked half.
            z = F.scaled_dot_product_attention(
                q,
                k,
                v,
                attn_mask=mask if self.config.mask == "sliding" else None,
                dropout_p=self.config.dropout if self.training else 0.0,
                is_causal=self.config.mask == "causal",
            )  # (B, H, T, D)
        z = self.hook_z(z)
        y = z.transpose(1, 2).contiguous().view(B, T, C)  # heads side by side, (B, T, C)
        return self.resid_dropout(self.c_proj(y))  # (B, T, C)


class MLP(nn.Module):
    """Position-wise MLP: Linear(C, r·C) -> GELU -> Linear(r·C, C) (GPT-2; Hendrycks & Gimpel 2016)."""

    def __init__(self, config: GPTConfig):
        super().__init__()
        hidden = config.mlp_ratio * config.n_embd
        self.c_fc = nn.Linear(config.n_embd, hidden, bias=config.bias)
        self.gelu = nn.GELU()
        self.c_proj = nn.Linear(hidden, config.n_embd, bias=config.bias)  # residual projection
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.c_proj(self.gelu(self.c_fc(x))))  # (B, T, C)


class Block(nn.Module):
    """Pre-LN block: x + attn(ln_1(x)), then x + mlp(ln_2(x)) (GPT-2, Radford et al. 2019 §2.3)."""

    def __init__(self, config: GPTConfig):
        super().__init__()
        self.ln_1 = _layernorm(config)
        self.attn = Attention(config)
        self.ln_2 = _layernorm(config)
        self.mlp = MLP(config)
        self.hook_resid_pre = HookPoint()
        self.hook_attn_out = HookPoint()
        self.hook_resid_mid = HookPoint()
        self.hook_mlp_out = HookPoint()
        self.hook_resid_post = HookPoint()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.hook_resid_pre(x)  # (B, T, C)
        x = self.hook_resid_mid(x + self.hook_attn_out(self.attn(self.ln_1(x))))
        x = x + self.hook_mlp_out(self.mlp(self.ln_2(x)))
        return self.hook_resid_post(x)  # (B, T, C)


def init_gpt_weights(module: nn.Module, *, n_layer: int, std: float = 0.02) -> None:
    """GPT-2 initialisation, in place: every Linear and Embedding weight ~ N(0, std²), biases 0, and
    the residual projections (``c_proj`` of attention and MLP) ~ N(0, (std / sqrt(2·n_layer))²),
    since each block adds two branches to the residual stream (Radford et al. 2019 §2.3: "scale the
    weights of residual layers at initialization by a factor of 1/√N"; nanoGPT ``_init_weights``).
    LayerNorms keep weight 1, bias 0.
    """
    for name, m in module.named_modules():
        if isinstance(m, nn.Linear):
            scale = 1.0 / math.sqrt(2 * n_layer) if name.endswith("c_proj") else 1.0
            nn.init.normal_(m.weight, mean=0.0, std=std * scale)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Embedding):
            nn.init.normal_(m.weight, mean=0.0, std=std)


class GPT(nn.Module):
    """The backbone: ``forward(embeds: (B, T, n_embd)) -> (B, T, n_embd)``, with T <= n_positions.

    embeds + learned positions -> dropout -> n_layer pre-LN blocks -> final LayerNorm.  No token
    embedding and no head: those belong to the readers (:mod:`fmtheory.models.icl`).
    """

    def __init__(self, config: GPTConfig):
        super().__init__()
        if not isinstance(config, GPTConfig):
            raise ValueError(f"config = {config!r}: must be a GPTConfig")
        self.config = config
        self.wpe = nn.Embedding(config.n_positions, config.n_embd)  # learned positions (GPT-2)
        self.drop = nn.Dropout(config.dropout)
        self.blocks = nn.ModuleList(Block(config) for _ in range(config.n_layer))
        self.ln_f = _layernorm(config)  # final LayerNorm (GPT-2 §2.3)
        self.hook_embed = HookPoint()
        self.hook_pos_embed = HookPoint()
        self.hook_final = HookPoint()
        init_gpt_weights(self, n_layer=config.n_layer)

    def forward(self, embeds: torch.Tensor) -> torch.Tensor:
        if embeds.ndim != 3 or embeds.shape[-1] != self.config.n_embd:
            raise ValueError(
                f"embeds.shape = {tuple(embeds.shape)}: must be (batch, T, n_embd={self.config.n_embd})"
            )
        B, T, C = embeds.shape
        if self.config.n_positions < T:
            raise ValueError(
                f"sequence length T = {T}: must be <= n_positions = {self.config.n_positions}"
            )
        pos = self.position_embeddings(B, T, embeds.device)  # (B, T, C)
        x = self.hook_embed(embeds)  # (B, T, C)
        x = self.drop(x + self.hook_pos_embed(pos))  # (B, T, C)
        for block in self.blocks:
            x = block(x)  # (B, T, C)
        return self.hook_final(self.ln_f(x))  # (B, T, C)

    def position_embeddings(self, batch: int, length: int, device: torch.device) -> torch.Tensor:
        """The learned positions 0..length−1, ``(batch, length, C)``: one ``(length,)`` lookup in
        ``wpe`` expanded over the batch."""
        pos = self.wpe(torch.arange(length, device=device))  # (T, C)
        return pos.expand(batch, length, pos.shape[-1])

    def num_params(self) -> int:
        """Number of parameters (positional table included)."""
        return sum(p.numel() for p in self.parameters())
