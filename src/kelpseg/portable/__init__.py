"""Portable models: ONNX export, checksummed model packages, a registry and a torch-free runtime.

Importing this package loads no torch: the runtime, manifest and registry run on the light
install (``pip install kelpseg``). :func:`export_model` and :func:`crafted_tiles` need the
training stack (``pip install 'kelpseg[train]'``) and are imported on first use.
"""

from __future__ import annotations

import importlib
from typing import Any

from kelpseg.portable.manifest import Manifest, MemberInfo, read_manifest, verify_package
from kelpseg.portable.registry import (
    ModelEntry,
    add,
    is_portable_ref,
    list_models,
    models_dir,
    pack_package,
    remove,
    resolve,
    show,
)
from kelpseg.portable.runtime import OnnxPredictor, RuntimeDevice, load_onnx_predictor

#: name -> module, imported on first use (they need torch).
_LAZY = {"export_model": "export", "export_ensemble": "spec", "crafted_tiles": "verify"}

__all__ = [
    "Manifest",
    "MemberInfo",
    "ModelEntry",
    "OnnxPredictor",
    "RuntimeDevice",
    "add",
    "crafted_tiles",
    "export_ensemble",
    "export_model",
    "is_portable_ref",
    "list_models",
    "load_onnx_predictor",
    "models_dir",
    "pack_package",
    "read_manifest",
    "remove",
    "resolve",
    "show",
    "verify_package",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        from kelpseg.errors import MissingExtraError

        try:
            module = importlib.import_module(f"kelpseg.portable.{_LAZY[name]}")
        except ImportError as exc:  # torch, smp or onnx missing: the light install
            raise MissingExtraError("train", exc.name or "torch") from exc
        return getattr(module, name)
    raise AttributeError(f"module 'kelpseg.portable' has no attribute {name!r}")
