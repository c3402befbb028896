"""Import every submodule of a package, so that registries fill themselves (no list to drift)."""

from __future__ import annotations

import importlib
import pkgutil


def import_submodules(package_name: str, skip: tuple[str, ...] = ()) -> None:
    """Import each direct submodule of ``package_name`` whose name does not start with '_'."""
    pkg = importlib.import_module(package_name)
    for info in pkgutil.iter_modules(pkg.__path__):
        if info.name.startswith("_") or info.name in skip:
            continue
        importlib.import_module(f"{package_name}.{info.name}")
