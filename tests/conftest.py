"""Shared fixtures: crafted tiles and tiny generated datasets."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from kelpseg.io.tiles import MISSING, write_label, write_tile


def make_tile_array(size: int = 350, seed: int = 0, land_cols: int = 0) -> np.ndarray:
    """A plausible (7, size, size) int16 tile: water reflectance, QA clear, DEM 0 (land on the left)."""
    rng = np.random.default_rng(seed)
    data = np.empty((7, size, size), dtype=np.int16)
    for band, base in enumerate((7600, 8000, 8100, 8300, 8500)):
        data[band] = base + rng.integers(-50, 50, (size, size))
    data[5] = 0
    data[6] = 0
    if land_cols:
        data[6, :, :land_cols] = 20
    data[6, :, -5:] = MISSING
    return data


@pytest.fixture
def tile_factory(tmp_path: Path) -> Callable[..., Path]:
    """Write a crafted tile (and optional label) into ``tmp_path``; returns the image path."""

    def make(
        tile_id: str = "AA001",
        folder: str = "train_satellite",
        data: np.ndarray | None = None,
        label: np.ndarray | None = None,
        size: int = 350,
        root: Path | None = None,
    ) -> Path:
        base = root or tmp_path
        arr = make_tile_array(size) if data is None else data
        image = write_tile(base / folder / f"{tile_id}_satellite.tif", arr)
        if label is not None:
            label_folder = "train_kelp" if folder == "train_satellite" else folder
            write_label(base / label_folder / f"{tile_id}_kelp.tif", label)
        return image

    return make


# -- Scheduling: the long documents first, one half of them at the front of each worker's queue --
#
# `make test` runs pytest-xdist with --dist worksteal: each of the two workers first gets one
# contiguous half of the collected tests, and an idle worker steals from the end of the other's
# queue. The documents' tests take minutes each (tests/docs); collected in place they ran last,
# one worker finishing training.md alone for ten minutes. Here they are split into two groups of
# about equal expected time (longest first, each to the lighter group) and each group is put at
# the front of one half, so both workers start on them and the short tests fill in around.

#: Seconds each document's test took in CI-like runs (2 cores); unknown documents count 60 s.
DOC_SECONDS = {
    "training.md": 520, "data-quality.md": 150, "benchmarks.md": 150, "inference.md": 140,
    "scenes.md": 115, "models.md": 100, "README.md": 90, "tuning.md": 90, "reproduce.md": 70,
    "tabular.md": 70, "evaluation.md": 65, "eda.md": 55, "split.md": 30, "features.md": 20,
    "data.md": 15, "accuracy.md": 75, "architecture.md": 5,
}  # fmt: skip


def _doc_seconds(item: pytest.Item) -> float | None:
    """Expected seconds of a documented-commands test; None for every other test."""
    if "test_documented_commands_run[" not in item.nodeid:
        return None
    name = item.nodeid.rsplit("[", 1)[1].rstrip("]")
    return float(DOC_SECONDS.get(name, 60))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Put the two halves of the long document tests at the front of each worker's half."""
    docs = [(s, item) for item in items if (s := _doc_seconds(item)) is not None]
    if not docs:
        return
    rest = [item for item in items if _doc_seconds(item) is None]
    groups: tuple[list[pytest.Item], list[pytest.Item]] = ([], [])
    load = [0.0, 0.0]
    for seconds, item in sorted(docs, key=lambda pair: -pair[0]):
        lighter = 0 if load[0] <= load[1] else 1
        groups[lighter].append(item)
        load[lighter] += seconds
    half = len(items) // 2  # worksteal's first split: items[:half] and items[half:]
    first = groups[0] + rest[: half - len(groups[0])]
    items[:] = first + groups[1] + rest[half - len(groups[0]) :]
