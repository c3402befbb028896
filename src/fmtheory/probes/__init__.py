"""Measurements on any model; they read a cache of activations and never patch a module."""

from fmtheory.probes.attention import attention_entropy, rank_collapse_residual

__all__ = ["attention_entropy", "rank_collapse_residual"]
