"""The optional ``nir`` package, imported on first use so that ``import snnrs`` never needs it."""

from __future__ import annotations

import importlib
from types import ModuleType


def require() -> ModuleType:
    """The ``nir`` module; an ImportError saying how to install it when it is missing."""
    try:
        return importlib.import_module("nir")
    except ImportError as e:
        raise ImportError("snnrs.nir needs the 'nir' package: pip install snnrs[nir] "
                          f"(or pip install nir); importing it failed: {e}") from e
