"""The code version a result was made by: package version, a hash of the package's source, and the
git commit with a dirty flag when the package runs from a checkout.

Two results are made by the same code exactly when their ``source_hash`` values are equal; the run
store uses that to tell a current result from a stale one.  Torch-free and cached per process.
"""

from __future__ import annotations

import functools
import hashlib
import subprocess
from pathlib import Path
from typing import Any

from fmtheory import __version__

__all__ = ["code_version", "source_hash", "is_current"]

_PKG = Path(__file__).resolve().parent
_SUFFIXES = (".py", ".yaml")


@functools.cache
def source_hash() -> str:
    """SHA-256 (first 16 hex digits) over every ``.py`` and ``.yaml`` file of the installed package,
    by relative path and content."""
    h = hashlib.sha256()
    for p in sorted(_PKG.rglob("*")):
        if p.suffix in _SUFFIXES and p.is_file() and "__pycache__" not in p.parts:
            h.update(p.relative_to(_PKG).as_posix().encode())
            h.update(b"\0")
            h.update(p.read_bytes())
            h.update(b"\0")
    return h.hexdigest()[:16]


def _git(*args: str) -> str | None:
    try:
        out = subprocess.run(
            ["git", *args], cwd=_PKG, capture_output=True, text=True, timeout=5, check=True
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip()


@functools.cache
def code_version() -> dict[str, Any]:
    """``{"fmtheory": version, "source_hash": ..., "commit": sha | None, "dirty": bool | None}``."""
    commit = _git("rev-parse", "HEAD")
    dirty = None
    if commit:
        status = _git("status", "--porcelain", "--", str(_PKG))
        dirty = bool(status) if status is not None else None
    return {"fmtheory": __version__, "source_hash": source_hash(), "commit": commit, "dirty": dirty}


def is_current(recorded: dict[str, Any] | None) -> bool:
    """Whether a result whose manifest recorded ``recorded`` (its ``code`` entry) was made by the
    code installed now."""
    return bool(recorded) and recorded.get("source_hash") == source_hash()
