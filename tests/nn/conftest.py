"""Fixtures of the training tests: a tiny generated dataset, its split catalog and its store.

The split catalog stands in for what ``kelpseg eda`` and ``kelpseg split`` write: catalog columns,
the EDA statistics the weighted sampler reads (computed here from the pixels) and a ``fold``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from kelpseg.io.catalog import build_catalog
from kelpseg.io.tiles import MISSING, read_label, read_tile
from kelpseg.synth import SynthConfig, generate_dataset

N_FOLDS = 3
TILE = 64


def eda_columns(image: np.ndarray, mask: np.ndarray | None) -> dict[str, object]:
    """The sampler statistics of one tile (both formulas), computed plainly from its pixels."""
    qa_bad = float((image[5] != 0).mean())
    dem = image[6]
    water = float(((dem <= 0) | (dem == MISSING)).mean())
    return {
        "has_kelp": None if mask is None else bool(mask.any()),
        "kelp_pixels_pct": None if mask is None else float(mask.mean()),
        "qa_ok": qa_bad == 0.0,
        "qa_corrupted_pixels_pct": qa_bad,
        "water_pixels_pct": water,
        "almost_all_water": water > 0.98,
        "dem_nan_pixels_pct": float((dem == MISSING).mean()),
        "dem_zero_pixels_pct": float((dem == 0).mean()),
    }


def split_catalog_frame(root: Path) -> pd.DataFrame:
    """Catalog of ``root`` + EDA statistics + ``fold`` (train tile i -> i % 3; last one -1)."""
    frame = build_catalog(root).tiles
    stats = []
    for row in frame.itertuples(index=False):
        image = read_tile(row.image_path, expected_size=None, allow_all_missing=True).data
        mask = read_label(row.mask_path) if row.mask_path else None
        stats.append(eda_columns(image, mask))
    stats_frame = pd.DataFrame(stats).astype({"has_kelp": "boolean", "kelp_pixels_pct": "Float64"})
    frame = pd.concat([frame, stats_frame], axis=1)
    fold = np.full(len(frame), -1, dtype=np.int64)
    train = np.flatnonzero((frame["split"] == "train").to_numpy())
    fold[train] = np.arange(len(train)) % N_FOLDS
    fold[train[-1]] = -1  # one hold-out tile, never trained on
    frame["fold"] = fold
    return frame


@pytest.fixture(scope="session")
def synth_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny generated dataset (about 40 tiles of 64 px) in the download layout."""
    root = tmp_path_factory.mktemp("nn-data") / "synth"
    generate_dataset(root, SynthConfig(n_aoi=5, seed=5, tile_size=TILE))
    return root


@pytest.fixture(scope="session")
def split_catalog(synth_root: Path) -> pd.DataFrame:
    """The split catalog of ``synth_root``."""
    return split_catalog_frame(synth_root)


@pytest.fixture(scope="session")
def split_catalog_path(split_catalog: pd.DataFrame, synth_root: Path) -> Path:
    """The split catalog saved as parquet."""
    path = synth_root.parent / "split_catalog.parquet"
    split_catalog.to_parquet(path, index=False)
    return path


@pytest.fixture(scope="session")
def store_dir(split_catalog_path: Path) -> Path:
    """A prepared store of the dataset (treat as read-only; copy it to damage it)."""
    from kelpseg.nn.data.store import prepare_store

    out = split_catalog_path.parent / "store"
    prepare_store(split_catalog_path, out, chunk_size=8, show_progress=False)
    return out
