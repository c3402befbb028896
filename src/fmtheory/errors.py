"""Errors shared by every layer (a leaf module: imports nothing of fmtheory, nothing heavy)."""

from __future__ import annotations

from typing import Any

__all__ = ["ConfigError"]


class ConfigError(ValueError):
    """Bad input: names the field, the value and what is allowed (the CLI exits with code 2)."""

    def __init__(self, field: str, value: Any, allowed: str):
        self.field, self.value, self.allowed = field, value, allowed
        super().__init__(f"{field} = {value!r}: {allowed}")
