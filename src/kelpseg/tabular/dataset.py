"""The pixel dataset on disk: layout, the tiles it came from, and reading pixels by fold.

Layout of a dataset folder::

    tabular_build.yaml        # the TabularConfig it was built with
    tiles.parquet             # tile_id, image_path, mask_path, fold of every tile included
    band_stats.json           # copy of the statistics, when the config names some
    failures.csv              # tiles that could not be read (retried by a re-run)
    pixels/fold=<K>/<tile_id>.parquet   # one file per tile, hive-partitioned by fold

Each pixel file holds ``tile_id, row, col, label, kind, weight`` and one float32 column per
channel (NaN where masked or missing). ``kind`` is 2 for kelp, 1 for the buffer ring and 0
for the random background sample; ``weight`` is the number of tile pixels a row stands for
(1 for kelp and ring, ``background pixels / sampled`` for the sample), so weighted sums over
the rows estimate sums over whole tiles.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.dataset as pads

from kelpseg.config import load_config
from kelpseg.errors import KelpsegError
from kelpseg.features import BandStats
from kelpseg.tabular.config import VALUE_OPTIONS, TabularConfig

PIXELS_DIR = "pixels"
TILES_FILE = "tiles.parquet"
CONFIG_FILE = "tabular_build.yaml"
STATS_FILE = "band_stats.json"
FAILURES_FILE = "failures.csv"
META_COLUMNS: tuple[str, ...] = ("tile_id", "row", "col", "label", "kind", "weight")
TILE_COLUMNS: tuple[str, ...] = ("tile_id", "image_path", "mask_path", "fold")
KIND_BACKGROUND, KIND_RING, KIND_KELP = 0, 1, 2
PathLike = str | os.PathLike[str]


def pixel_schema(channels: Sequence[str]) -> pa.Schema:
    """The schema of every pixel file (the fold lives in the folder name)."""
    fields = [
        pa.field("tile_id", pa.string()),
        pa.field("row", pa.int32()),
        pa.field("col", pa.int32()),
        pa.field("label", pa.uint8()),
        pa.field("kind", pa.uint8()),
        pa.field("weight", pa.float32()),
    ]
    fields += [pa.field(name, pa.float32()) for name in channels]
    return pa.schema(fields)


def tile_file(root: PathLike, fold: int, tile_id: str) -> Path:
    """Where the pixels of one tile are stored."""
    return Path(root) / PIXELS_DIR / f"fold={int(fold)}" / f"{tile_id}.parquet"


@dataclass(frozen=True)
class PixelArrays:
    """Pixels as arrays: features (n, C) float32, labels, weights, folds and tile ids."""

    x: np.ndarray
    y: np.ndarray
    weight: np.ndarray
    fold: np.ndarray
    tile_id: np.ndarray

    def __len__(self) -> int:
        return len(self.y)


@dataclass(frozen=True)
class PixelDataset:
    """A built pixel dataset folder.

    Attributes:
        root: the folder.
        config: the config it was built with.
        tiles: the tiles it covers (``TILE_COLUMNS``; ``fold`` as int).
    """

    root: Path
    config: TabularConfig
    tiles: pd.DataFrame

    @classmethod
    def open(cls, root: PathLike) -> PixelDataset:
        """Open a folder written by :func:`kelpseg.tabular.build_pixel_dataset`."""
        root = Path(root)
        for name in (CONFIG_FILE, TILES_FILE):
            if not (root / name).is_file():
                raise KelpsegError(
                    f"not a pixel dataset (no {name}); run `kelpseg tabular build`", root
                )
        config = load_config(TabularConfig, root / CONFIG_FILE)
        tiles = pd.read_parquet(root / TILES_FILE)
        return cls(root=root, config=config, tiles=tiles)

    @property
    def channels(self) -> list[str]:
        """The channel columns stored."""
        return list(self.config.features.channels)

    @property
    def folds(self) -> list[int]:
        """The folds present, ascending."""
        return sorted(int(f) for f in self.tiles["fold"].unique())

    def stats(self) -> BandStats | None:
        """The band statistics the pixels were filled with, if any."""
        path = self.root / STATS_FILE
        return BandStats.from_json(path) if path.is_file() else None

    def check_channels(self, config: TabularConfig) -> None:
        """Refuse a training config whose features this dataset cannot provide.

        Raises:
            KelpsegError: a channel was not built, or masking/fill options differ.
        """
        missing = [c for c in config.features.channels if c not in self.channels]
        if missing:
            raise KelpsegError(
                f"channel(s) {', '.join(missing)} are not in the pixel dataset "
                "(rebuild it with them)",
                self.root,
            )
        built = self.config.features
        diffs = [
            f"{key}={getattr(built, key)!r} (config wants {getattr(config.features, key)!r})"
            for key in VALUE_OPTIONS
            if getattr(built, key) != getattr(config.features, key)
        ]
        if diffs:
            raise KelpsegError(
                "pixel dataset was built with other feature options: " + "; ".join(diffs), self.root
            )

    def arrays(
        self, folds: Iterable[int] | None, channels: Sequence[str] | None = None
    ) -> PixelArrays:
        """Read the pixels of ``folds`` (``None``: all) as arrays, in a stable order."""
        channels = list(channels or self.channels)
        pixels = self.root / PIXELS_DIR
        if not pixels.is_dir():
            raise KelpsegError("pixel dataset holds no pixels", self.root)
        data = pads.dataset(pixels, format="parquet", partitioning="hive")
        wanted = None if folds is None else sorted({int(f) for f in folds})
        filt = None if wanted is None else pads.field("fold").isin(wanted)
        columns = [*channels, "label", "weight", "fold", "tile_id", "row", "col"]
        table = data.to_table(columns=columns, filter=filt)
        table = table.sort_by([(k, "ascending") for k in ("fold", "tile_id", "row", "col")])
        x = np.empty((table.num_rows, len(channels)), dtype=np.float32)
        for i, name in enumerate(channels):
            x[:, i] = table.column(name).to_numpy(zero_copy_only=False)
        return PixelArrays(
            x=x,
            y=table.column("label").to_numpy(zero_copy_only=False).astype(np.uint8),
            weight=table.column("weight").to_numpy(zero_copy_only=False).astype(np.float32),
            fold=table.column("fold").to_numpy(zero_copy_only=False).astype(np.int64),
            tile_id=np.asarray(table.column("tile_id").to_pylist(), dtype=object),
        )

    def tiles_of(self, folds: Iterable[int]) -> pd.DataFrame:
        """The tile rows of ``folds``."""
        wanted = {int(f) for f in folds}
        return self.tiles[self.tiles["fold"].isin(wanted)].reset_index(drop=True)
