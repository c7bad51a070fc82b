"""Tabular fixtures: crafted tiles with bright-NIR kelp, catalogs with folds, built datasets."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from kelpseg.io.tiles import write_label, write_tile
from kelpseg.tabular import TabularConfig, build_pixel_dataset
from tests.conftest import make_tile_array

SIZE = 32
N_TILES = 12
N_FOLDS = 3
# Few channels, so fitting stays fast; NIR-based (NIR, NDVI) and not (R, G, B, SWIR1, KIVU).
CHANNELS = ["R", "G", "B", "SWIR1", "NIR", "QA", "DEM", "KIVU", "NDVI"]


def crafted_tile(index: int) -> tuple[np.ndarray, np.ndarray]:
    """A 32x32 tile with land on the left and, for most tiles, a kelp bed of bright NIR.

    Kelp pixels: NIR ~16,000 and SWIR1 ~9,000 over water of ~8,000 / ~7,600, like canopy in
    the tiles' scaled integers. Every fourth tile has no kelp. A few pixels are flagged by QA.
    """
    rng = np.random.default_rng(index)
    data = make_tile_array(SIZE, seed=index, land_cols=4)
    label = np.zeros((SIZE, SIZE), np.uint8)
    if index % 4 != 3:
        r0, c0 = 4 + index % 7, 8 + index % 9
        label[r0 : r0 + 5, c0 : c0 + 7] = 1
        kelp = label.astype(bool)
        data[1][kelp] = 16000 + rng.integers(-600, 600, int(kelp.sum()))
        data[0][kelp] = 9000 + rng.integers(-300, 300, int(kelp.sum()))
    data[5, -2:, 10:14] = 1
    return data, label


def write_crafted(root: Path, n_tiles: int = N_TILES, n_test: int = 2) -> pd.DataFrame:
    """Write crafted tiles in the download layout; return a catalog with a ``fold`` column."""
    rows = []
    for i in range(n_tiles):
        data, label = crafted_tile(i)
        tile_id = f"TR{i:03d}"
        image = write_tile(root / "train_satellite" / f"{tile_id}_satellite.tif", data)
        mask = write_label(root / "train_kelp" / f"{tile_id}_kelp.tif", label)
        rows.append((tile_id, "train", str(image), str(mask), i % N_FOLDS))
    for i in range(n_test):
        data, _ = crafted_tile(100 + i)
        tile_id = f"TE{i:03d}"
        image = write_tile(root / "test_satellite" / f"{tile_id}_satellite.tif", data)
        rows.append((tile_id, "test", str(image), "", -1))
    frame = pd.DataFrame(rows, columns=["tile_id", "split", "image_path", "mask_path", "fold"])
    return frame.astype(dict.fromkeys(("tile_id", "split", "image_path", "mask_path"), "string"))


def small_config(**update: object) -> TabularConfig:
    """Config for crafted data: few channels and background pixels, tiny models, 1 thread."""
    base = {
        "features": {
            "channels": CHANNELS,
            "fill_value": "nan",
            "normalization": "per-sample-min-max",
        },
        "non_kelp_per_tile": 60,
        "threads": 1,
        "chunk_size": 3,
        "params": {
            "xgboost": {"n_estimators": 20, "max_depth": 3},
            "lightgbm": {"n_estimators": 20, "num_leaves": 7, "min_child_samples": 5},
            "catboost": {"iterations": 20, "depth": 3},
            "random_forest": {"n_estimators": 10, "max_depth": 6},
            "extra_trees": {"n_estimators": 10, "max_depth": 6},
        },
        "early_stopping_rounds": 5,
    }
    base.update(update)
    return TabularConfig.model_validate(base)


@pytest.fixture(scope="module")
def crafted_catalog(tmp_path_factory: pytest.TempPathFactory) -> pd.DataFrame:
    """A written crafted dataset's catalog (12 train tiles in 3 folds, 2 test tiles)."""
    return write_crafted(tmp_path_factory.mktemp("crafted"))


@pytest.fixture(scope="module")
def crafted_pixels(tmp_path_factory: pytest.TempPathFactory, crafted_catalog: pd.DataFrame) -> Path:
    """The pixel dataset of the crafted catalog, built in-process."""
    out = tmp_path_factory.mktemp("pixels")
    build_pixel_dataset(crafted_catalog, small_config(), out, scheduler="sync", show_progress=False)
    return out


@pytest.fixture(scope="module")
def dask_cluster() -> Iterator[object]:
    """A real LocalCluster: 2 worker processes on loopback, small memory; closed afterwards.

    2 GiB each: a worker holds ~0.8 GiB once torch is imported, and Dask pauses a worker at
    80% of its limit (a 1 GiB worker would stall forever with tasks queued).
    """
    distributed = pytest.importorskip("distributed")
    cluster = distributed.LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        dashboard_address=None,
        silence_logs=logging.ERROR,
        memory_limit="4GiB",  # workers import torch; Dask pauses a worker at 80% of its limit
    )
    try:
        yield cluster
    finally:
        cluster.close()
