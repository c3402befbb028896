"""An in-context-regression transformer whose per-example gradients Opacus computes correctly.

:class:`~fmtheory.models.gpt.GPT` looks its learned positions up as ``wpe(arange(T))``: an index of
shape ``(T,)`` with no batch axis.  Opacus's ``GradSampleModule`` (Yousefpour et al. 2021, "Opacus:
user-friendly differential privacy library in PyTorch") reads the first axis of a layer's input as
the batch, so the per-example gradient of ``wpe`` comes out with shape ``(T, T, C)`` instead of
``(B, n_positions, C)`` and DP-SGD would clip and noise the wrong thing.

:class:`BatchPositionGPT` is the same backbone with the positions expanded over the batch,
``wpe(arange(T).expand(B, T))``: an index of shape ``(B, T)``, so that the embedding's per-example
gradient is ``(B, n_positions, C)``.  Its forward pass is numerically identical to :class:`GPT`'s
(the same table rows are added to the same tokens) and so are its parameters and hook points.

:func:`build_dp_regression_transformer` returns a
:class:`~fmtheory.models.icl.RegressionTransformer` with this backbone and with exactly the weights
that :func:`~fmtheory.models.icl.build_regression_transformer` gives under the same global seed.
"""

from __future__ import annotations

import torch

from fmtheory.models.gpt import GPT
from fmtheory.models.icl import RegressionTransformer, build_regression_transformer

__all__ = ["BatchPositionGPT", "build_dp_regression_transformer"]


class BatchPositionGPT(GPT):
    """:class:`GPT` with batch-expanded position indices: ``(B, T, C) -> (B, T, C)``.

    Positions enter as ``wpe(index)`` with ``index: (B, T)``, which Opacus's embedding grad sampler
    sees as B examples of T lookups each.
    """

    def forward(self, embeds: torch.Tensor) -> torch.Tensor:
        if embeds.ndim != 3 or embeds.shape[-1] != self.config.n_embd:
            raise ValueError(
                f"embeds.shape = {tuple(embeds.shape)}: must be (batch, T, n_embd={self.config.n_embd})"
            )
        B, T, _ = embeds.shape
        if self.config.n_positions < T:
            raise ValueError(
                f"sequence length T = {T}: must be <= n_positions = {self.config.n_positions}"
            )
        index = torch.arange(T, device=embeds.device).expand(B, T)  # (B, T)
        pos = self.wpe(index)  # (B, T, C)
        x = self.hook_embed(embeds)  # (B, T, C)
        x = self.drop(x + self.hook_pos_embed(pos))  # (B, T, C)
        for block in self.blocks:
            x = block(x)  # (B, T, C)
        return self.hook_final(self.ln_f(x))  # (B, T, C)


def build_dp_regression_transformer(
    section: object, *, dim: int, n_points: int
) -> RegressionTransformer:
    """:func:`~fmtheory.models.icl.build_regression_transformer` with a :class:`BatchPositionGPT`
    backbone holding the same weights (same global seed -> same parameters, same predictions)."""
    net = build_regression_transformer(section, dim=dim, n_points=n_points)
    old = net.backbone
    with torch.random.fork_rng(devices=[]):  # the new table's random init is overwritten below
        new = BatchPositionGPT(old.config)
    new.load_state_dict(old.state_dict())
    net.backbone = new
    return net
