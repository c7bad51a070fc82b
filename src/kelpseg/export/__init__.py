"""Exporting trained models as model packages: ONNX graph, manifest, optional int8 graph.

This is the half of the portable models that needs the training stack (``pip install
'kelpseg[train]'``): it loads checkpoints through :mod:`kelpseg.inference` and traces them with
torch, so it sits above inference. What runs a package (manifest, registry, the torch-free
runtime) lives below, in :mod:`kelpseg.portable`, and serves the light install.
The names are imported on first use, so a light install gets one clear line, not a traceback.
"""

from __future__ import annotations

import importlib
from typing import Any

#: name -> module, imported on first use (they need torch).
_LAZY = {"export_model": "package", "export_ensemble": "spec", "crafted_tiles": "verify"}

__all__ = ["crafted_tiles", "export_ensemble", "export_model"]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        from kelpseg.errors import MissingExtraError

        try:
            module = importlib.import_module(f"kelpseg.export.{_LAZY[name]}")
        except ImportError as exc:  # torch, smp or onnx missing: the light install
            raise MissingExtraError("train", exc.name or "torch") from exc
        return getattr(module, name)
    raise AttributeError(f"module 'kelpseg.export' has no attribute {name!r}")
