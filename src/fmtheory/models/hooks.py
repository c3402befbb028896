"""Named hook points and ``run_with_cache`` (the TransformerLens pattern, Nanda & Bloom 2022,
https://github.com/TransformerLensOrg/TransformerLens, ``hook_points.py``).

Every internal activation of a model in :mod:`fmtheory.models` passes through a :class:`HookPoint`, an
``nn.Identity`` whose name is its module path (``blocks.0.attn.hook_pattern``; inside a reader such as
``RegressionTransformer`` the path carries the reader's prefix, ``backbone.blocks.0.attn.hook_pattern``).
:func:`run_with_cache` registers forward hooks on the requested hook points only, runs the model once,
and always removes its hooks, also when the forward raises.  Probes read the returned cache; they never
patch a module.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

__all__ = ["HookPoint", "CacheResult", "hook_points", "run_with_cache"]


class HookPoint(nn.Identity):
    """An identity that marks a named activation; forward hooks on it observe that activation.

    A model may skip work that only a hook would see: e.g. softmax attention computes its explicit
    ``(B, H, T, T)`` pattern only when ``hook_pattern.has_hooks`` (otherwise the fused SDPA kernel runs).
    """

    @property
    def has_hooks(self) -> bool:
        """True when a forward or forward-pre hook is registered on this hook point."""
        return bool(self._forward_hooks) or bool(self._forward_pre_hooks)


def hook_points(model: nn.Module) -> dict[str, HookPoint]:
    """Every hook point of ``model`` by module path, in module order (``named_modules``)."""
    return {name: m for name, m in model.named_modules() if isinstance(m, HookPoint)}


@dataclass
class CacheResult:
    """What :func:`run_with_cache` hands back.

    ``output``: the model's return value, untouched (still attached to the autograd graph).
    ``cache``: hook-point name -> the activation seen there, detached (same device and dtype).
    """

    output: Any
    cache: dict[str, torch.Tensor]


def _select(
    points: dict[str, HookPoint], names: Iterable[str] | Callable[[str], bool] | None
) -> list[str]:
    if names is None:
        return list(points)
    if callable(names):
        return [n for n in points if names(n)]
    if isinstance(names, str):  # a single name, not an iterable of characters
        names = [names]
    wanted = list(dict.fromkeys(names))  # unique, order kept
    unknown = [n for n in wanted if n not in points]
    if unknown:
        raise ValueError(
            f"names = {unknown!r}: unknown hook point(s); valid names are {sorted(points)!r}"
        )
    return wanted


def run_with_cache(
    model: nn.Module,
    *args: Any,
    names: Iterable[str] | Callable[[str], bool] | None = None,
    **kwargs: Any,
) -> CacheResult:
    """Run ``model(*args, **kwargs)`` once and cache the activations at the requested hook points.

    ``names``: ``None`` = every hook point; an iterable of hook-point names (an unknown name raises
    ValueError listing the valid ones); or a predicate on the name (``lambda n: "pattern" in n``).
    Forward hooks are registered on the selected hook points only and removed in a ``finally``
    clause, so the model is left without hooks even when the forward raises.  A hook point reached
    twice in one forward raises RuntimeError (its cache entry would be ambiguous).  Gradients are
    not disabled: wrap the call in ``torch.no_grad()`` when none are needed.
    """
    points = hook_points(model)
    selected = _select(points, names)
    cache: dict[str, torch.Tensor] = {}

    def make_hook(name: str) -> Callable[[nn.Module, Any, torch.Tensor], None]:
        def hook(module: nn.Module, inputs: Any, output: torch.Tensor) -> None:
            if name in cache:
                raise RuntimeError(f"hook point {name!r} was reached twice in one forward")
            cache[name] = output.detach()

        return hook

    handles = []
    try:
        for name in selected:
            handles.append(points[name].register_forward_hook(make_hook(name)))
        output = model(*args, **kwargs)
    finally:
        for handle in handles:
            handle.remove()
    return CacheResult(output=output, cache=cache)
