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

    Positions enter as ``wpe(index)`` with ``index: (B, T)`` (:meth:`position_embeddings`), which
    Opacus's embedding grad sampler sees as B examples of T lookups each.
    """

    def position_embeddings(self, batch: int, length: int, device: torch.device) -> torch.Tensor:
        """The learned positions, ``(batch, length, C)``, looked up with a ``(batch, length)`` index."""
        index = torch.arange(length, device=device).expand(batch, length)  # (B, T)
        return self.wpe(index)  # (B, T, C)


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
