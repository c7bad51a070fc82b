"""Lazy imports of the ``data`` extra, so that ``kelpseg --help`` works on a core install."""

from __future__ import annotations

import importlib
from types import ModuleType

from kelpseg.errors import MissingExtraError


def sklearn(module: str) -> ModuleType:
    """Import a scikit-learn module, or raise :class:`MissingExtraError` for the data extra."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingExtraError("data", "scikit-learn") from exc
