"""Helpers of the slow tests: tiny random-init networks of three architectures, checkpoints.

The session-scoped packages exported from them live in ``conftest.py`` (each export takes tens
of seconds on a loaded two-core machine, so they are shared).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from kelpseg.config import validate_config
from kelpseg.features.stats import BandStats
from kelpseg.nn.config import TrainConfig
from kelpseg.nn.module import KelpSegModule

UNET_CHANNELS = ["R", "G", "B", "NIR", "SWIR1", "NDVI"]
UNETPP_CHANNELS = ["SWIR1", "NIR", "G", "DEM", "DEMWM", "NDVI"]
SEGFORMER_CHANNELS = ["NIR", "R", "QA"]
SMALL = {"encoder_depth": 3, "decoder_channels": [32, 16, 8]}
ARCHS: dict[str, dict[str, Any]] = {
    "Unet": {"arch": "Unet", "arch_kwargs": SMALL},
    "UnetPlusPlus": {"arch": "UnetPlusPlus", "arch_kwargs": SMALL},
    "Segformer": {"arch": "Segformer", "arch_kwargs": {"encoder_depth": 3}},
}


def tiny_module(
    arch: str, features: dict[str, Any], stats: BandStats | None = None, seed: int = 0
) -> KelpSegModule:
    """A random-init network over ``tu-resnet10t``: ``arch`` one of :data:`ARCHS`."""
    model = {"encoder": "tu-resnet10t", "encoder_weights": None, **ARCHS[arch]}
    torch.manual_seed(seed)
    config = validate_config(TrainConfig, {"features": features, "model": model})
    return KelpSegModule(config, stats, pretrained=False).eval()


def save_checkpoint(module: KelpSegModule, path: Path) -> Path:
    """Write a checkpoint as training does (weights plus kelpseg config and statistics)."""
    ckpt: dict[str, Any] = {"state_dict": module.state_dict()}
    module.on_save_checkpoint(ckpt)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(ckpt, path)
    return path


def with_missing(raw: np.ndarray) -> np.ndarray:
    """More of what trips preprocessing: a fully missing row block and an all-cloud tile."""
    raw = raw.copy()
    raw[0, :5, :6] = -32768
    raw[-1, 5] = 1
    return raw
