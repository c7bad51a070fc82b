"""Misaligned tiles from the EDA statistics, and a re-aligned copy of a dataset.

``kelpseg eda stats`` measures each tile's DEM shift (:mod:`kelpseg.quality.alignment`);
:func:`misaligned_tiles` lists those shifted by more than a pixel and :func:`realign_dataset`
writes a copy of the dataset, in the download layout, whose flagged tiles have their DEM moved
back. Every other file is hard-linked (copied across file systems), so the copy costs little
disk. Training on the copy gives the DEM channels (DEM, DEMWM) and DEM-based post-processing
the coastline the image shows.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from kelpseg.console import progress
from kelpseg.errors import KelpsegError
from kelpseg.io.atomic import atomic_path
from kelpseg.io.catalog import read_parquet
from kelpseg.io.tiles import read_tile, write_tile
from kelpseg.quality.alignment import realign_dem

PathLike = str | os.PathLike[str]
SHIFT_COLUMNS = ("dem_shift_row", "dem_shift_col", "dem_shift_px")
METADATA_FILE = "metadata_realigned.csv"
REALIGNED_FILE = "realigned.csv"


def load_stats(stats: pd.DataFrame | PathLike) -> pd.DataFrame:
    """The EDA tile statistics (a ``tile_stats.parquet``, its folder, or a frame), checked.

    Raises:
        KelpsegError: unreadable, or without the DEM shift columns (an older EDA run).
    """
    if isinstance(stats, pd.DataFrame):
        frame, where = stats, None
    else:
        where = Path(stats)
        path = where / "tile_stats.parquet" if where.is_dir() else where
        if not path.is_file():
            raise KelpsegError("EDA statistics file does not exist", path)
        frame = read_parquet(path, "parquet")
    missing = [c for c in ("tile_id", *SHIFT_COLUMNS) if c not in frame.columns]
    if missing:
        raise KelpsegError(f"statistics lack {missing} (re-run kelpseg eda stats)", where)
    return frame


def misaligned_tiles(
    stats: pd.DataFrame | PathLike, min_px: float = 1.0, split: str | None = None
) -> pd.DataFrame:
    """Tiles whose DEM is shifted by more than ``min_px`` pixels, largest shift first.

    Tiles whose shift could not be measured (NaN: no land or no water) are never listed.

    Args:
        stats: EDA tile statistics with the ``dem_shift_*`` columns.
        min_px: shift length above which a tile is listed.
        split: only tiles of this split (``train``, ``test``); ``None``: all.
    """
    frame = load_stats(stats)
    if split is not None:
        if "split" not in frame.columns:
            raise KelpsegError("statistics have no 'split' column", "split")
        frame = frame[frame["split"] == split]
    px = frame["dem_shift_px"].astype("float64")
    out = frame[px.notna() & (px > min_px)]
    keep = [c for c in ("tile_id", "split", *SHIFT_COLUMNS, "dem_shift_score") if c in out]
    return out.sort_values("dem_shift_px", ascending=False, ignore_index=True)[keep]


def unmeasured_note(stats: pd.DataFrame | PathLike, split: str | None = None) -> str | None:
    """One line saying the check could not measure the data, or ``None`` when it could.

    "0 misaligned tiles" means nothing when no tile's shift was measurable: every tile lacked
    land or water (in the image or in the DEM), clear pixels, or a two-moded SWIR1 band.
    """
    frame = load_stats(stats)
    if split is not None and "split" in frame.columns:
        frame = frame[frame["split"] == split]
    measured = int(frame["dem_shift_px"].astype("float64").notna().sum())
    if measured > 0:
        return None
    return (
        f"DEM shift not measurable on any of {len(frame)} tiles (none shows land and water "
        "in both the image and the DEM): the check cannot tell whether DEMs are misaligned"
    )


@dataclass
class RealignResult:
    """What :func:`realign_dataset` wrote: the new root and the tiles whose DEM moved."""

    out_dir: Path
    realigned: pd.DataFrame
    linked: int


def _text(value: Any) -> str:
    return "" if value is None or pd.isna(value) else str(value)


def _link(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    if dst.exists():
        dst.unlink()
    try:
        os.link(src, dst)
    except OSError:  # another file system, or links not allowed
        shutil.copy2(src, dst)


def _metadata(frame: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for row in frame.sort_values("tile_id").itertuples(index=False):
        train = str(row.split) == "train"
        rows.append((f"{row.tile_id}_satellite.tif", "satellite", train, str(row.tile_id)))
        if train and _text(row.mask_path):
            rows.append((f"{row.tile_id}_kelp.tif", "kelp", True, str(row.tile_id)))
    return pd.DataFrame(rows, columns=["filename", "type", "in_train", "tile_id"])


def realign_dataset(
    stats: pd.DataFrame | PathLike,
    out_dir: PathLike,
    *,
    min_px: float = 1.0,
    splits: tuple[str, ...] = ("train",),
    show_progress: bool = True,
) -> RealignResult:
    """Write a copy of a dataset whose misaligned tiles have their DEM shifted back.

    Args:
        stats: EDA statistics of the dataset (they name every tile's files and DEM shift).
        out_dir: new dataset root (download layout plus ``metadata_realigned.csv`` and
            ``realigned.csv``, the tiles moved and by how much); must not be the source.
        min_px: shift length above which a tile's DEM is moved back (by the rounded shift).
        splits: splits whose tiles are re-aligned; tiles of other splits are linked as is.
        show_progress: draw a progress bar.

    Raises:
        KelpsegError: statistics without paths or shifts, or ``out_dir`` holds a source file.
    """
    frame = load_stats(stats)
    for col in ("split", "image_path", "mask_path"):
        if col not in frame.columns:
            raise KelpsegError(f"statistics lack the catalog column {col!r}")
    out = Path(out_dir)
    sources = {Path(str(p)).resolve().parent for p in frame["image_path"]}
    if out.resolve() in sources or any(out.resolve() == s.parent for s in sources):
        raise KelpsegError("the re-aligned copy must go to a new folder", out)
    flagged = set(misaligned_tiles(frame, min_px)["tile_id"].astype(str))
    moved, linked = [], 0
    with progress(disable=not show_progress) as bar:
        task = bar.add_task("re-aligning", total=len(frame))
        for row in frame.itertuples(index=False):
            split, tile_id = str(row.split), str(row.tile_id)
            image = out / f"{split}_satellite" / f"{tile_id}_satellite.tif"
            if tile_id in flagged and split in splits:
                tile = read_tile(str(row.image_path), expected_size=None, allow_all_missing=True)
                shift = (float(row.dem_shift_row), float(row.dem_shift_col))  # type: ignore[arg-type]
                write_tile(image, realign_dem(tile.data, shift))
                moved.append((tile_id, split, round(shift[0]), round(shift[1])))
            else:
                _link(Path(str(row.image_path)), image)
                linked += 1
            if _text(row.mask_path):
                _link(Path(str(row.mask_path)), out / "train_kelp" / f"{tile_id}_kelp.tif")
            bar.advance(task)
    columns = ["tile_id", "split", "removed_shift_row", "removed_shift_col"]
    realigned = pd.DataFrame(moved, columns=columns)
    with atomic_path(out / REALIGNED_FILE) as tmp:
        realigned.to_csv(tmp, index=False)
    with atomic_path(out / METADATA_FILE) as tmp:
        _metadata(frame).to_csv(tmp, index=False)
    return RealignResult(out, realigned, linked)
