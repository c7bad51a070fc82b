"""EDA fixtures: small crafted tiles with hand-countable pixels, datasets and a Dask cluster."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from kelpseg.io.tiles import MISSING, write_label, write_tile

SIZE = 10


def crafted_tile(seed: int = 0) -> np.ndarray:
    """A (7, 10, 10) int16 tile whose statistics are counted by hand in test_tile_stats.

    DEM: rows 0-1 missing (20 px), row 2 zero (10 px), row 3 at -3 m (10 px), rows 4-9 land.
    QA: 5 flagged pixels, two of which are missing in a spectral band (dropped, not cloud).
    Missing spectral pixels: NIR at (5, 0) and (5, 1); SWIR1 at (5, 1); B at (9, 9) (unflagged).
    """
    rng = np.random.default_rng(seed)
    data = np.empty((7, SIZE, SIZE), dtype=np.int16)
    data[:5] = rng.integers(7000, 9000, (5, SIZE, SIZE))
    data[6] = 25
    data[6, 0:2] = MISSING
    data[6, 2] = 0
    data[6, 3] = -3
    data[5] = 0
    data[5, 5, 0:5] = 1
    data[1, 5, 0] = MISSING
    data[1, 5, 1] = MISSING
    data[0, 5, 1] = MISSING
    data[4, 9, 9] = MISSING
    return data


def label_with(kelp_pixels: int) -> np.ndarray:
    """A 10x10 label with the first ``kelp_pixels`` pixels (row-major) set to kelp."""
    label = np.zeros(SIZE * SIZE, dtype=np.uint8)
    label[:kelp_pixels] = 1
    return label.reshape(SIZE, SIZE)


def write_dataset(
    root: Path,
    train: dict[str, int],
    test: list[str],
    corrupt: list[str] = (),  # type: ignore[assignment]
    labels: bool = True,
) -> Path:
    """Write a download-layout dataset of crafted tiles; ``train`` maps tile id -> kelp pixels.

    Corrupt tiles are train tiles whose satellite file holds garbage bytes.
    """
    rows = []
    for i, (tile_id, kelp) in enumerate(train.items()):
        write_tile(root / "train_satellite" / f"{tile_id}_satellite.tif", crafted_tile(i))
        if labels:
            write_label(root / "train_kelp" / f"{tile_id}_kelp.tif", label_with(kelp))
            rows.append((f"{tile_id}_kelp.tif", "kelp", True, tile_id))
        rows.append((f"{tile_id}_satellite.tif", "satellite", True, tile_id))
    for tile_id in corrupt:
        (root / "train_satellite").mkdir(parents=True, exist_ok=True)
        (root / "train_satellite" / f"{tile_id}_satellite.tif").write_bytes(b"II*\x00garbage" * 9)
        write_label(root / "train_kelp" / f"{tile_id}_kelp.tif", label_with(1))
        rows.append((f"{tile_id}_satellite.tif", "satellite", True, tile_id))
        rows.append((f"{tile_id}_kelp.tif", "kelp", True, tile_id))
    for i, tile_id in enumerate(test):
        write_tile(root / "test_satellite" / f"{tile_id}_satellite.tif", crafted_tile(100 + i))
        rows.append((f"{tile_id}_satellite.tif", "satellite", False, tile_id))
    meta = pd.DataFrame(rows, columns=["filename", "type", "in_train", "tile_id"])
    meta.to_csv(root / "metadata_fTq0l2T.csv", index=False)
    return root


@pytest.fixture(scope="module")
def dask_cluster() -> Iterator[object]:
    """A real LocalCluster: 2 worker processes on loopback, small memory; closed afterwards."""
    distributed = pytest.importorskip("distributed")
    cluster = distributed.LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        dashboard_address="127.0.0.1:0",  # a free loopback port (None still takes 8787)
        silence_logs=logging.ERROR,
        memory_limit="1GiB",
    )
    try:
        yield cluster
    finally:
        cluster.close()
