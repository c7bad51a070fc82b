"""Data-path benchmark: prepared-store reads vs a raw memcpy floor, and vs GeoTIFF decoding.

Run: ``.venv/bin/python benchmarks/data.py [--n-aoi 20] [--workdir DIR] [--batch 32]``

Generates a demo dataset of 350 px tiles (or reuses ``--workdir``), packs it with
``prepare_store`` and prints, for whole tiles and for 128 px crops:

- GeoTIFF decode rate (tiles/s) through ``GeoTiffDataset``;
- prepared-store rate (tiles/s and batches/s) through ``StoreDataset`` + ``DataLoader``;
- a raw memcpy of the same bytes from RAM (the floor no loader beats), and the ratios.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader

from kelpseg.io.catalog import build_catalog
from kelpseg.nn.data import (
    GeoTiffDataset,
    StoreDataset,
    TileDataset,
    TileSampler,
    collate_tiles,
    open_store,
    prepare_store,
)
from kelpseg.synth import SynthConfig, generate_dataset


def _rate(work: Callable[[], int], min_seconds: float = 2.0) -> float:
    """Items per second of ``work`` (which returns its item count), repeated for min_seconds."""
    work()  # warm-up: page cache, allocator, lazy imports
    done, start = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - start) < min_seconds:
        done += work()
    return done / elapsed


def _loader_rate(dataset: TileDataset, batch: int, workers: int) -> tuple[float, float]:
    sampler = TileSampler(len(dataset), len(dataset), seed=0)
    loader = DataLoader(
        dataset, batch_size=batch, sampler=sampler, num_workers=workers, collate_fn=collate_tiles
    )

    def epoch() -> int:
        return sum(len(b["tile_id"]) for b in loader)

    tiles = _rate(epoch)
    return tiles, tiles / batch


def _memcpy_rate(nbytes_per_batch: int) -> float:
    """Batches/s of copying ``nbytes_per_batch`` from one RAM buffer into another."""
    src = np.random.default_rng(0).integers(0, 255, nbytes_per_batch * 4, dtype=np.uint8)
    dst = np.empty(nbytes_per_batch, dtype=np.uint8)
    chunks = [src[i * nbytes_per_batch : (i + 1) * nbytes_per_batch] for i in range(4)]

    def copy() -> int:
        for chunk in chunks:
            np.copyto(dst, chunk)
        return len(chunks)

    return _rate(copy)


def main() -> None:
    """Run the benchmark and print rates and ratios."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-aoi", type=int, default=20, help="AOIs of the generated dataset")
    parser.add_argument("--workdir", type=Path, default=None, help="reuse/keep data here")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--workers", type=int, default=0, help="DataLoader workers")
    args = parser.parse_args()

    work = args.workdir or Path(tempfile.mkdtemp(prefix="kelpseg-bench-data-"))
    data = work / "data"
    if not (data / "synth_config.yaml").exists():
        generate_dataset(data, SynthConfig(n_aoi=args.n_aoi, seed=0))
    catalog = build_catalog(data).tiles
    train = catalog[catalog["split"] == "train"]

    start = time.perf_counter()
    prepare_store(train, work / "store", splits=("train",), show_progress=False)
    prepare_s = time.perf_counter() - start
    split = open_store(work / "store").split("train")
    h, w = split.height, split.width
    print(f"tiles: {len(split)} train tiles of {h}x{w}; store packed in {prepare_s:.2f} s")
    print(f"torch threads: {torch.get_num_threads()}, loader workers: {args.workers}")

    for crop in (None, 128):
        kelp = 0.5 if crop else 0.0
        images, masks = list(train["image_path"]), list(train["mask_path"])
        tiff = GeoTiffDataset(images, masks, crop_size=crop, kelp_crop_prob=kelp)
        store = StoreDataset(split, crop_size=crop, kelp_crop_prob=kelp)
        tiff_tiles, _ = _loader_rate(tiff, args.batch, args.workers)
        store_tiles, store_batches = _loader_rate(store, args.batch, args.workers)
        side = crop or h
        batch_bytes = args.batch * side * side * (7 * 2 + 1)  # int16 image + uint8 mask
        floor = _memcpy_rate(batch_bytes)
        label = f"{crop} px crops" if crop else "whole tiles"
        print(f"\n[{label}] batch {args.batch} ({batch_bytes / 1e6:.1f} MB of raw pixels)")
        print(f"  GeoTIFF decode      : {tiff_tiles:10.1f} tiles/s")
        print(
            f"  prepared store      : {store_tiles:10.1f} tiles/s  {store_batches:8.1f} batches/s"
        )
        print(f"  raw memcpy floor    : {floor * args.batch:10.1f} tiles/s  {floor:8.1f} batches/s")
        print(f"  store / GeoTIFF     : {store_tiles / tiff_tiles:10.2f}x")
        print(f"  store / memcpy      : {store_batches / floor:10.3f} (share of the copy floor)")


if __name__ == "__main__":
    main()
