"""Data suite: prepared-store batches and GeoTIFF decoding against a memcpy of the same bytes.

A training batch read from the prepared store is a copy out of memory maps; nothing can be
faster than copying those bytes from one RAM buffer into another, so that memcpy is the floor.
GeoTIFF decoding (what training without a store does) is measured against the same floor.
Reads run in this process (no DataLoader workers), like the single-threaded memcpy.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from torch.utils.data import DataLoader

from kelpseg.bench.config import BenchConfig
from kelpseg.bench.fixtures import demo_data
from kelpseg.bench.measure import Figure, SuiteResult, median_rate, time_repeats
from kelpseg.nn.data import (
    GeoTiffDataset,
    StoreDataset,
    TileDataset,
    TileSampler,
    collate_tiles,
    open_store,
)

PIXEL_BYTES = 7 * 2 + 1  # int16 image bands + a uint8 mask


@dataclass(frozen=True)
class DataSettings:
    """Sizes of the data suite."""

    n_aoi: int = 12
    tile_size: int = 350
    batch: int = 32
    crops: tuple[int | None, ...] = (None, 128)

    @classmethod
    def for_run(cls, config: BenchConfig) -> DataSettings:
        """The full sizes, or tiny ones with ``quick``."""
        return cls(n_aoi=2, tile_size=64, batch=4, crops=(None,)) if config.quick else cls()


def epoch_seconds(dataset: TileDataset, batch: int, config: BenchConfig) -> list[float]:
    """Seconds of each timed pass over ``dataset`` in batches (in-process reads)."""
    sampler = TileSampler(len(dataset), len(dataset), seed=0)
    loader = DataLoader(
        dataset, batch_size=batch, sampler=sampler, num_workers=0, collate_fn=collate_tiles
    )

    def epoch() -> None:
        for _ in loader:
            pass

    return time_repeats(epoch, repeats=config.repeats, warmup=config.warmup)


def memcpy_batches_per_s(batch_bytes: int, config: BenchConfig, buffers: int = 4) -> float:
    """Batches/s of copying ``batch_bytes`` from RAM buffers into one destination."""
    rng = np.random.default_rng(0)
    sources = [rng.integers(0, 255, batch_bytes, dtype=np.uint8) for _ in range(buffers)]
    target = np.empty(batch_bytes, dtype=np.uint8)

    def copy() -> None:
        for source in sources:  # several sources, so the copy is not served from cache
            np.copyto(target, source)

    seconds = time_repeats(copy, repeats=config.repeats, warmup=config.warmup)
    return median_rate(buffers, seconds)


def run_data(config: BenchConfig, work: Path, settings: DataSettings | None = None) -> SuiteResult:
    """Store batches/s and GeoTIFF tiles/s, each against the memcpy floor."""
    settings = settings or DataSettings.for_run(config)
    data = demo_data(work, settings.n_aoi, settings.tile_size)
    catalog = data.catalog
    split = open_store(data.store).split("train")
    tiles, batch = len(split), settings.batch
    figures = []
    for crop in settings.crops:
        kelp = 0.5 if crop else 0.0
        label = f"crop{crop}" if crop else "whole"
        store = StoreDataset(split, crop_size=crop, kelp_crop_prob=kelp)
        tiff = GeoTiffDataset(
            list(catalog["image_path"]),
            list(catalog["mask_path"]),
            crop_size=crop,
            kelp_crop_prob=kelp,
        )
        side = crop or settings.tile_size
        batch_bytes = batch * side * side * PIXEL_BYTES
        floor = memcpy_batches_per_s(batch_bytes, config)
        store_s = epoch_seconds(store, batch, config)
        tiff_s = epoch_seconds(tiff, batch, config)
        store_rate, tiff_rate = median_rate(tiles, store_s), median_rate(tiles, tiff_s)
        common = {"batch": batch, "side_px": side, "batch_mb": batch_bytes / 1e6, "tiles": tiles}
        figures.append(
            Figure(
                f"data.store_{label}",
                store_rate / batch,
                "batches/s",
                floor,
                "raw memcpy of the same bytes",
                "share of the copy floor",
                extra={**common, "epoch_seconds": store_s},
            )
        )
        figures.append(
            Figure(
                f"data.geotiff_{label}",
                tiff_rate,
                "tiles/s",
                floor * batch,
                "raw memcpy of the same bytes",
                "share of the copy floor",
                extra={**common, "epoch_seconds": tiff_s, "store_speedup": store_rate / tiff_rate},
            )
        )
    return SuiteResult("data", figures, asdict(settings) | {"workers": 0})
