"""Fixtures of the model-half tests: band statistics of the tiny dataset and tiny run configs.

Import the fixtures you use into a test module (``from tests.nn.model_fixtures import ...``);
the dataset itself (``split_catalog_path``) comes from ``tests/nn/conftest.py``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from kelpseg.config import apply_overrides, validate_config
from kelpseg.features.compute_stats import compute_band_stats
from kelpseg.features.config import FeatureConfig
from kelpseg.nn.config import TrainConfig

MODEL_CHANNELS = ["R", "G", "B", "NIR", "SWIR1", "NDVI"]
# A 3-stage ResNet-10 U-Net with a narrow decoder: 0.4 M parameters, all used (DDP needs that).
TINY_MODEL: dict[str, Any] = {
    "arch": "Unet",
    "encoder": "tu-resnet10t",
    "encoder_weights": None,
    "arch_kwargs": {"encoder_depth": 3, "decoder_channels": [32, 16, 8]},
}


@pytest.fixture(scope="session")
def band_stats_path(split_catalog: pd.DataFrame, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Band statistics of ``MODEL_CHANNELS`` over the tiny dataset's training tiles."""
    features = FeatureConfig(channels=MODEL_CHANNELS)
    train = split_catalog[split_catalog["split"] == "train"]
    stats = compute_band_stats(train, features, device="cpu", show_progress=False)
    return stats.to_json(tmp_path_factory.mktemp("stats") / "stats.json")


def tiny_config_dict(catalog: Path, stats: Path | None, output_dir: Path) -> dict[str, Any]:
    """A run config small enough to train in seconds: 8 crops of 32 px per epoch, 1 epoch."""
    return {
        "data": {
            "catalog": str(catalog),
            "fold": 0,
            "batch_size": 4,
            "num_workers": 0,
            "crop_size": 32,
            "kelp_crop_prob": 0.5,
            "sampler": {"samples_per_epoch": 8},
        },
        "features": {"channels": MODEL_CHANNELS},
        "stats_path": None if stats is None else str(stats),
        "model": TINY_MODEL,
        "trainer": {
            "max_epochs": 1,
            "accelerator": "cpu",
            "devices": 1,
            "enable_progress_bar": False,
            "num_sanity_val_steps": 0,
            "log_every_n_steps": 1,
        },
        "tracking": {"enabled": False, "grid_tiles": 2},
        "seed": 3,
        "output_dir": str(output_dir),
    }


def tiny_config(
    catalog: Path, stats: Path | None, output_dir: Path, *overrides: str
) -> TrainConfig:
    """:func:`tiny_config_dict` with dotted ``key=value`` overrides, validated."""
    data = apply_overrides(tiny_config_dict(catalog, stats, output_dir), list(overrides))
    return validate_config(TrainConfig, data)
