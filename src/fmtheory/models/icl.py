"""Readers around the :class:`~fmtheory.models.gpt.GPT` backbone: a read-in that turns a prompt into
embeddings, and a read-out that turns the backbone's output into predictions.

* :class:`RegressionTransformer` — in-context regression: ``(x: (B, n, d), y: (B, n)) -> (B, n)``.
* :class:`TokenTransformer` — token ids ``(B, T)`` -> next-token logits ``(B, T, vocab)``.

The backbone sits at the attribute ``backbone``, so its hook points are named
``backbone.blocks.{i}.attn.hook_pattern`` etc. (see :mod:`fmtheory.models.gpt`).  Devices follow the
module and the inputs: nothing here calls ``.cuda()``.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn

from fmtheory.models.gpt import GPT, GPTConfig, init_gpt_weights
from fmtheory.models.hooks import HookPoint

__all__ = ["RegressionTransformer", "TokenTransformer", "LAYOUTS", "build_regression_transformer"]

#: Prompt layouts of :class:`RegressionTransformer`.
LAYOUTS = ("carry", "pairs", "interleaved")


def _positive_int(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} = {value!r}: must be an integer >= 1")
    return value


class RegressionTransformer(nn.Module):
    """In-context regression: output k predicts ``y[:, k]`` from the pairs before k and ``x[:, k]``.

    Layouts (``n`` = number of pairs in the prompt, ``d`` = ``dim``):

    * ``"interleaved"`` (Garg et al. 2022, "What can transformers learn in-context?", §2 and their
      ``models.py::_combine``): tokens x_1, y_1, x_2, y_2, ... (2n tokens of width d), each y embedded as
      (y, 0, ..., 0); the prediction of y_k is read at the token of x_k.  Needs ``n_positions >= 2n``.
    * ``"carry"``: one token per pair, shifted by one and carrying the next query:
      token k = [x_{k-1}, y_{k-1}, 1{k>0}, x_k] (width 2d + 2, pair 0 is zeros).  Each token holds a
      complete (x, y) pair, so a single attention layer can form Σ_{i<k} y_i x_i and meet the query x_k
      in the same token: no previous-token circuit is needed to bind y_i to x_i, which removes the long
      loss plateau the other layouts show before in-context learning emerges (measured in
      ``docs/icl-training.md``).  n tokens; needs ``n_positions >= n``.
    * ``"pairs"``: one token per pair with y shifted by one, token k = [x_k, y_{k-1}, 1{k>0}] (width
      d + 2, y_{-1} = 0), so the sequence is half as long; the prediction of y_k is read at token k.
      Needs ``n_positions >= n``.

    Under the causal (or sliding) mask, output k depends on x_0..x_k and y_0..y_{k-1} only.  Read-in
    and read-out are linear (to ``n_embd`` and to a scalar), initialised like the backbone (N(0, 0.02²)).
    ``n_points`` is the longest prompt accepted; shorter prompts work too (curricula).
    """

    def __init__(
        self,
        dim: int,
        n_points: int,
        config: GPTConfig,
        layout: Literal["carry", "pairs", "interleaved"] = "pairs",
    ):
        super().__init__()
        self.dim = _positive_int("dim", dim)
        self.n_points = _positive_int("n_points", n_points)
        if layout not in LAYOUTS:
            raise ValueError(f"layout = {layout!r}: must be one of {LAYOUTS}")
        if not isinstance(config, GPTConfig):
            raise ValueError(f"config = {config!r}: must be a GPTConfig")
        self.layout = layout
        self.config = config
        need = self.sequence_length(n_points)
        if config.n_positions < need:
            raise ValueError(
                f"config.n_positions = {config.n_positions}: layout {layout!r} with n_points = "
                f"{n_points} needs n_positions >= {need}"
            )
        token_width = {"carry": 2 * dim + 2, "pairs": dim + 2, "interleaved": dim}[layout]
        self.read_in = nn.Linear(token_width, config.n_embd)
        self.backbone = GPT(config)
        self.read_out = nn.Linear(config.n_embd, 1)
        self.hook_tokens = HookPoint()  # (B, T, token_width): the prompt as the read-in sees it
        init_gpt_weights(self.read_in, n_layer=config.n_layer)
        init_gpt_weights(self.read_out, n_layer=config.n_layer)

    def sequence_length(self, n: int) -> int:
        """Number of tokens for a prompt of ``n`` pairs (2n for "interleaved", else n)."""
        return 2 * n if self.layout == "interleaved" else n

    def tokens(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """The token sequence: (B, n, 2d + 2) "carry", (B, n, d + 2) "pairs", (B, 2n, d) "interleaved"."""
        B, n, d = x.shape
        if self.layout == "carry":
            prev = torch.zeros(B, n, d + 2, dtype=x.dtype, device=x.device)  # (x_{k-1}, y_{k-1}, 1)
            prev[:, 1:, :d] = x[:, :-1]
            prev[:, 1:, d] = y[:, :-1]
            prev[:, 1:, d + 1] = 1.0
            return torch.cat([prev, x], dim=2)  # (B, n, 2d + 2)
        if self.layout == "pairs":
            y_prev = torch.zeros(B, n, 1, dtype=x.dtype, device=x.device)  # (B, n, 1)
            y_prev[:, 1:, 0] = y[:, :-1]
            has_prev = torch.ones(B, n, 1, dtype=x.dtype, device=x.device)  # 1{k > 0}
            has_prev[:, 0] = 0.0
            return torch.cat([x, y_prev, has_prev], dim=2)  # (B, n, d + 2)
        y_wide = torch.zeros(B, n, d, dtype=x.dtype, device=x.device)  # (y, 0, ..., 0)
        y_wide[:, :, 0] = y
        return torch.stack([x, y_wide], dim=2).reshape(B, 2 * n, d)  # x_1, y_1, x_2, ... (B, 2n, d)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """``x: (batch, n, dim)``, ``y: (batch, n)`` -> predictions ``(batch, n)``, n <= n_points."""
        if x.ndim != 3 or x.shape[-1] != self.dim:
            raise ValueError(
                f"x.shape = {tuple(x.shape)}: must be (batch, n_points, dim={self.dim})"
            )
        if y.shape != x.shape[:2]:
            raise ValueError(
                f"y.shape = {tuple(y.shape)}: must be (batch, n_points) = {tuple(x.shape[:2])}"
            )
        if x.shape[1] > self.n_points:
            raise ValueError(f"n_points of x = {x.shape[1]}: must be <= n_points = {self.n_points}")
        tokens = self.hook_tokens(self.tokens(x, y.to(x.dtype)))  # (B, T, token_width)
        h = self.backbone(self.read_in(tokens))  # (B, T, C)
        if self.layout == "interleaved":
            h = h[:, ::2]  # the x tokens, (B, n, C)
        return self.read_out(h).squeeze(-1)  # (B, n)


class TokenTransformer(nn.Module):
    """Token model: ids ``(batch, T)`` (int64 in [0, vocab_size)) -> logits ``(batch, T, vocab_size)``.

    Logit t scores token t + 1 under the causal mask.  Token embedding -> backbone -> linear head
    without bias; ``tie_weights=True`` shares the head with the token embedding (Press & Wolf 2017,
    "Using the output embedding to improve language models"; GPT-2).  ``n_positions`` is the longest
    sequence accepted and must be <= ``config.n_positions``.
    """

    def __init__(
        self,
        vocab_size: int,
        n_positions: int,
        config: GPTConfig,
        *,
        tie_weights: bool = False,
    ):
        super().__init__()
        self.vocab_size = _positive_int("vocab_size", vocab_size)
        self.n_positions = _positive_int("n_positions", n_positions)
        if not isinstance(config, GPTConfig):
            raise ValueError(f"config = {config!r}: must be a GPTConfig")
        if n_positions > config.n_positions:
            raise ValueError(
                f"n_positions = {n_positions}: must be <= config.n_positions = {config.n_positions}"
            )
        self.config = config
        self.tie_weights = bool(tie_weights)
        self.wte = nn.Embedding(vocab_size, config.n_embd)
        self.backbone = GPT(config)
        self.lm_head = nn.Linear(config.n_embd, vocab_size, bias=False)
        init_gpt_weights(self.wte, n_layer=config.n_layer)
        init_gpt_weights(self.lm_head, n_layer=config.n_layer)
        if self.tie_weights:
            self.lm_head.weight = self.wte.weight  # one (vocab, C) matrix

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        """``ids: (batch, T)`` -> logits ``(batch, T, vocab_size)``."""
        if ids.ndim != 2 or ids.dtype not in (torch.int64, torch.int32):
            raise ValueError(
                f"ids: shape {tuple(ids.shape)}, dtype {ids.dtype}: must be (batch, T) of int64"
            )
        if ids.shape[1] > self.n_positions:
            raise ValueError(f"T = {ids.shape[1]}: must be <= n_positions = {self.n_positions}")
        if ids.numel() and (int(ids.min()) < 0 or int(ids.max()) >= self.vocab_size):
            raise ValueError(
                f"ids in [{int(ids.min())}, {int(ids.max())}]: must be in [0, {self.vocab_size})"
            )
        h = self.backbone(self.wte(ids))  # (B, T, C)
        return self.lm_head(h)  # (B, T, vocab_size)


def build_regression_transformer(
    section: object, *, dim: int, n_points: int
) -> RegressionTransformer:
    """The :class:`RegressionTransformer` described by a config section with the fields of
    ``fmtheory.sections.GPTSection`` (n_layer, n_head, n_embd, attention, layernorm, mask, window,
    layout), for prompts of up to ``n_points`` pairs of dimension ``dim``."""
    s = section
    gpt = GPTConfig(
        n_layer=s.n_layer,
        n_head=s.n_head,
        n_embd=s.n_embd,
        n_positions=2 * n_points if s.layout == "interleaved" else n_points,
        attention=s.attention,
        layernorm=s.layernorm,
        mask=s.mask,
        window=s.window,
    )
    return RegressionTransformer(dim, n_points, gpt, layout=s.layout)
