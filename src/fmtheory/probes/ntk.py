"""The empirical neural tangent kernel of any model, with ``torch.func`` (``jacrev`` + ``vmap``).

Θ(x, x') = Σ_p ∂f(x)/∂θ_p ∂f(x')/∂θ_pᵀ (Jacot, Gabriel & Hongler 2018, NeurIPS, Def. 1): the
Gram matrix of the parameter Jacobians.  The Jacobian of every example is computed in one
vectorised call (``vmap`` over the batch of ``jacrev`` of the single-example function), as in the
"neural tangent kernel" tutorial of ``torch.func``; nothing is patched, the model's parameters are
read through ``functional_call``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from torch.func import functional_call, jacrev, vmap

__all__ = ["parameter_jacobian", "empirical_ntk", "ntk_from_jacobians"]


def parameter_jacobian(
    model: nn.Module,
    *inputs: torch.Tensor,
    params: dict[str, torch.Tensor] | None = None,
    chunk: int | None = None,
) -> torch.Tensor:
    """∂f(x_i)/∂θ for every example i: (n, out, P), out = the per-example output size (trailing
    dims flattened; 1 for a scalar output), P = the number of parameters (``params`` or all of
    ``model``'s, in ``named_parameters`` order).

    inputs: batch-first tensors, (n, ...) each, passed to ``model`` as a batch of one per example.
    chunk: examples per vectorised call (None: all at once).
    """
    if params is None:
        params = {k: v.detach() for k, v in model.named_parameters()}

    def f(p: dict[str, torch.Tensor], *xs: torch.Tensor) -> torch.Tensor:
        out = functional_call(model, p, tuple(x.unsqueeze(0) for x in xs))
        return out.reshape(-1)

    jac = vmap(jacrev(f), in_dims=(None, *([0] * len(inputs))), chunk_size=chunk)(params, *inputs)
    n = inputs[0].shape[0]
    return torch.cat([j.reshape(n, j.shape[1], -1) for j in jac.values()], dim=-1)


def ntk_from_jacobians(j1: torch.Tensor, j2: torch.Tensor) -> torch.Tensor:
    """Θ[i, k, a, b] = ⟨J1[i, a], J2[k, b]⟩ for Jacobians (n1, out, P), (n2, out, P):
    (n1, n2, out, out)."""
    return torch.einsum("iap,kbp->ikab", j1, j2)


def empirical_ntk(
    model: nn.Module,
    x1: torch.Tensor | Sequence[torch.Tensor],
    x2: torch.Tensor | Sequence[torch.Tensor] | None = None,
    *,
    chunk: int | None = None,
) -> torch.Tensor:
    """The empirical NTK of ``model`` between two batches: (n1, n2) for a scalar output, else
    (n1, n2, out, out).  x1, x2: a batch-first tensor or a tuple of them (models with several
    inputs); x2 = None: the kernel of x1 with itself."""
    a = (x1,) if isinstance(x1, torch.Tensor) else tuple(x1)
    j1 = parameter_jacobian(model, *a, chunk=chunk)
    if x2 is None:
        j2 = j1
    else:
        b = (x2,) if isinstance(x2, torch.Tensor) else tuple(x2)
        j2 = parameter_jacobian(model, *b, chunk=chunk)
    k = ntk_from_jacobians(j1, j2)
    return k[..., 0, 0] if k.shape[-1] == 1 else k
