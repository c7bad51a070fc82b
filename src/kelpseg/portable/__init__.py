"""Portable models: checksummed model packages, a registry and a torch-free runtime.

Importing this package loads no torch: the runtime, manifest and registry run on the light
install (``pip install kelpseg``). Writing packages (``export_model``, ``export_ensemble``,
``crafted_tiles``) needs the training stack and lives above inference, in
:mod:`kelpseg.export`.
"""

from __future__ import annotations

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

__all__ = [
    "Manifest",
    "MemberInfo",
    "ModelEntry",
    "OnnxPredictor",
    "RuntimeDevice",
    "add",
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
