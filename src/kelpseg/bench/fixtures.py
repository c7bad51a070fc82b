"""Generated inputs of the suites: a demo dataset packed into a store, raw tiles, batches.

Everything is made with the project's own generator (:mod:`kelpseg.synth`) or from crafted
arrays shaped like the real data (sea, land, cloud, SLC-off stripes, missing DEM), and kept in
the work folder so that a second run reuses it.
"""

from __future__ import annotations

import hashlib
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from kelpseg.features.compute_stats import compute_band_stats
from kelpseg.features.config import FeatureConfig
from kelpseg.io.catalog import build_catalog
from kelpseg.io.tiles import MISSING, write_tile
from kelpseg.nn.data.store import prepare_store
from kelpseg.synth import SynthConfig, generate_dataset

VALIDATION_FOLD = 1  # every fifth training tile validates; the rest train


@dataclass(frozen=True)
class DemoData:
    """A generated dataset's training tiles, catalogued with folds and packed into a store."""

    folder: Path
    catalog_path: Path
    store: Path

    @property
    def catalog(self) -> pd.DataFrame:
        """The training tiles with a ``fold`` column (fold 1 validates)."""
        return pd.read_parquet(self.catalog_path)

    def stats(self, features: FeatureConfig) -> Path:
        """Band statistics of ``features`` over the training tiles (computed once)."""
        key = hashlib.sha1(features.model_dump_json().encode()).hexdigest()[:10]
        path = self.folder / f"stats-{key}.json"
        if not path.is_file():
            stats = compute_band_stats(self.catalog, features, device="cpu", show_progress=False)
            stats.to_json(path)
        return path


def demo_data(work: Path, n_aoi: int, tile_size: int = 350) -> DemoData:
    """Generate (or reuse) ``n_aoi`` areas of ``tile_size`` px tiles and pack the training split.

    Args:
        work: the benchmark's work folder.
        n_aoi: areas of the generated dataset (40 areas hold about 300 training tiles).
        tile_size: tile height and width.
    """
    folder = work / f"synth-{n_aoi}-{tile_size}"
    data = folder / "data"
    if not (data / "synth_truth.parquet").is_file():
        config = SynthConfig(n_aoi=n_aoi, seed=0, tile_size=tile_size)
        generate_dataset(data, config, overwrite=True, show_progress=False)
    catalog_path = folder / "catalog.parquet"
    if not catalog_path.is_file():
        tiles = build_catalog(data).tiles
        tiles = tiles[tiles["split"] == "train"].reset_index(drop=True)
        tiles["fold"] = np.where(tiles.index % 5 == 0, VALIDATION_FOLD, 0).astype("int64")
        tiles.to_parquet(catalog_path, index=False)
    store = folder / "store"
    prepare_store(catalog_path, store, splits=("train",), show_progress=False)
    return DemoData(folder, catalog_path, store)


def raw_tile(rng: np.random.Generator, size: int) -> np.ndarray:
    """A (7, size, size) int16 tile: noisy water, land with DEM, cloud, an SLC-off stripe."""
    data = np.empty((7, size, size), dtype=np.int16)
    for band, base in enumerate((7600, 8000, 8100, 8300, 8500)):
        data[band] = base + rng.integers(-300, 300, (size, size))
    land = int(rng.integers(0, size // 2))
    data[1, :, :land] += 6000  # vegetated land: bright NIR
    data[5] = (rng.random((size, size)) < 0.02).astype(np.int16)
    data[5, : size // 5, size // 2 :] = 1  # a cloud
    data[6] = 0
    data[6, :, :land] = rng.integers(1, 400, (size, land))
    data[6, :, -max(1, size // 16) :] = MISSING  # no DEM far out at sea
    data[:5, :, size // 3 : size // 3 + 3] = MISSING  # SLC-off stripe
    return data


def raw_batch(n: int, size: int, seed: int = 0) -> torch.Tensor:
    """``n`` raw tiles as one (n, 7, size, size) int16 tensor."""
    rng = np.random.default_rng(seed)
    return torch.from_numpy(np.stack([raw_tile(rng, size) for _ in range(n)]))


def tile_files(folder: Path, n: int, size: int, unique: int = 24) -> list[Path]:
    """``n`` satellite GeoTIFFs in ``folder``: ``unique`` distinct tiles, the rest file copies.

    Copies keep the disk small; every file is still read and decoded on its own.
    """
    folder.mkdir(parents=True, exist_ok=True)
    existing = sorted(folder.glob("T*_satellite.tif"))
    if len(existing) == n:
        return existing
    for path in existing:
        path.unlink()
    rng = np.random.default_rng(0)
    originals = [
        write_tile(folder / f"U{i:04d}_satellite.tif", raw_tile(rng, size))
        for i in range(min(unique, n))
    ]
    paths = []
    for i in range(n):
        path = folder / f"T{i:05d}_satellite.tif"
        shutil.copyfile(originals[i % len(originals)], path)
        paths.append(path)
    for path in originals:
        path.unlink()
    return paths
