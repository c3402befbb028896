"""Closed forms, rates and bounds (pure numpy/scipy). Importing this package registers them all."""

import importlib as _importlib
import pkgutil as _pkgutil

from fmtheory.theory.registry import (
    Formula,
    Param,
    TheoryValue,
    evaluate,
    get_formula,
    list_formulas,
    register_formula,
)

# Every module of this package registers its formulas on import: a new file is all a formula needs.
# (Inlined rather than imported: theory imports nothing else of fmtheory.)
for _info in _pkgutil.iter_modules(__path__):
    if not _info.name.startswith("_") and _info.name != "registry":
        _importlib.import_module(f"{__name__}.{_info.name}")

__all__ = [
    "Formula",
    "Param",
    "TheoryValue",
    "evaluate",
    "get_formula",
    "list_formulas",
    "register_formula",
]
