"""Crafted datasets for the split stage: a few AOIs with distinct DEMs, repeated, some shifted."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import ndimage

from kelpseg.io import build_catalog
from kelpseg.io.tiles import MISSING, read_label, read_tile, write_label, write_tile
from tests.conftest import make_tile_array

SIZE = 96


def crafted_dem(seed: int, size: int = SIZE, shift: tuple[int, int] = (0, 0)) -> np.ndarray:
    """A DEM with smooth random land, sea at 0 near it and no DEM (MISSING) far from it."""
    rng = np.random.default_rng(seed)
    pad = 8
    n = size + 2 * pad
    field = ndimage.gaussian_filter(rng.standard_normal((n, n)), 8, mode="wrap")
    land = field > np.quantile(field, 0.65)
    depth = ndimage.distance_transform_edt(~land)
    height = ndimage.distance_transform_edt(land) * rng.uniform(2, 6)
    dem = np.where(land, np.maximum(height, 1), np.where(depth < 25, 0, MISSING))
    r0, c0 = pad - shift[0], pad - shift[1]
    return dem[r0 : r0 + size, c0 : c0 + size].astype(np.int16)


@dataclass(frozen=True)
class CraftedDataset:
    """A crafted dataset on disk and what it is made of."""

    root: Path
    stats: pd.DataFrame  # catalog + the EDA columns the split needs
    truth: pd.DataFrame  # tile_id, aoi (-1: the tile without DEM), shifted


def _kelp_label(rng: np.random.Generator, has_kelp: bool) -> np.ndarray:
    label = np.zeros((SIZE, SIZE), dtype=np.uint8)
    if has_kelp:
        r, c = rng.integers(5, SIZE - 15, 2)
        label[r : r + rng.integers(3, 10), c : c + rng.integers(3, 10)] = 1
    return label


def simple_stats(catalog: pd.DataFrame) -> pd.DataFrame:
    """The EDA columns the split uses, computed plainly (no kelpseg.eda)."""
    rows = []
    for tile in catalog.itertuples(index=False):
        data = read_tile(tile.image_path, expected_size=None, allow_all_missing=True).data
        kelp = int(read_label(tile.mask_path).sum()) if tile.mask_path else None
        rows.append(
            {
                "has_kelp": None if kelp is None else kelp > 0,
                "kelp_pixels": kelp,
                "qa_ok": bool((data[5] == 0).all()),
                "dem_has_nans": bool((data[6] == MISSING).any()),
                "high_corrupted_pixels_pct": bool((data[5] != 0).mean() > 0.4),
            }
        )
    extra = pd.DataFrame(rows).astype({"has_kelp": "boolean", "kelp_pixels": "Int64"})
    return pd.concat([catalog.reset_index(drop=True), extra], axis=1)


def build_crafted(root: Path, n_aoi: int = 8, per_aoi: int = 4, seed: int = 0) -> CraftedDataset:
    """``n_aoi`` areas x ``per_aoi`` dates; the last date of each AOI is a test tile, one
    training tile per AOI has its DEM shifted by 2-3 px, plus one tile with no DEM at all."""
    rng = np.random.default_rng(seed)
    truth = []
    for aoi in range(n_aoi):
        for k in range(per_aoi):
            tile_id = f"T{aoi:02d}{k:02d}"
            shift = (2, 3) if k == 1 else (0, 0)
            data = make_tile_array(SIZE, seed=aoi * 100 + k)
            data[6] = crafted_dem(1000 + aoi, shift=shift)
            data[5, : rng.integers(0, SIZE // 2)] = 1  # some cloud in the QA band
            test = k == per_aoi - 1
            folder = "test_satellite" if test else "train_satellite"
            write_tile(root / folder / f"{tile_id}_satellite.tif", data)
            if not test:
                label = _kelp_label(rng, bool(rng.random() < 0.6))
                write_label(root / "train_kelp" / f"{tile_id}_kelp.tif", label)
            truth.append((tile_id, aoi, shift != (0, 0)))
    data = make_tile_array(SIZE, seed=999)
    data[6] = MISSING
    write_tile(root / "train_satellite" / "ZZ999_satellite.tif", data)
    write_label(root / "train_kelp" / "ZZ999_kelp.tif", np.zeros((SIZE, SIZE), np.uint8))
    truth.append(("ZZ999", -1, False))
    catalog = build_catalog(root).tiles
    stats = simple_stats(catalog)
    return CraftedDataset(root, stats, pd.DataFrame(truth, columns=["tile_id", "aoi", "shifted"]))


@pytest.fixture(scope="session")
def crafted(tmp_path_factory: pytest.TempPathFactory) -> CraftedDataset:
    """8 AOIs x 4 dates (24 train, 8 test) plus one training tile without DEM."""
    return build_crafted(tmp_path_factory.mktemp("crafted_split"))
