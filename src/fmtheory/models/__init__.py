"""Small transformers and their variants, able to hand back their internals (hook points)."""

from fmtheory.models.gpt import GPT, GPTConfig, init_gpt_weights
from fmtheory.models.hooks import CacheResult, HookPoint, hook_points, run_with_cache
from fmtheory.models.icl import LAYOUTS, RegressionTransformer, TokenTransformer

__all__ = [
    "GPT",
    "GPTConfig",
    "init_gpt_weights",
    "HookPoint",
    "CacheResult",
    "hook_points",
    "run_with_cache",
    "LAYOUTS",
    "RegressionTransformer",
    "TokenTransformer",
]
