"""The tile catalog: one row per tile with its split and file paths, cross-checked.

Accepts the real download layout (``metadata_*.csv`` + ``train_satellite/``, ``train_kelp/``,
``test_satellite/``), a flat folder of ``*_satellite.tif`` with optional ``*_kelp.tif`` beside
them, and a metadata file that names the files (searched for beside it and in the usual folders).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from kelpseg.errors import KelpsegError
from kelpseg.io.atomic import atomic_path
from kelpseg.io.tiles import tile_id_from_path

PathLike = str | os.PathLike[str]
CATALOG_COLUMNS = ("tile_id", "split", "image_path", "mask_path")
_IMAGE_DIRS = ("train_satellite", "test_satellite", "satellite", ".")
_MASK_DIRS = ("train_kelp", "kelp", ".")


@dataclass
class Problem:
    """One thing wrong with a dataset: its kind, the file it concerns and a message."""

    kind: str
    path: str
    message: str


@dataclass
class Catalog:
    """Tiles of a dataset and the problems found while cataloguing it.

    Attributes:
        root: the dataset folder.
        tiles: DataFrame with columns ``CATALOG_COLUMNS`` (``mask_path`` empty for test tiles).
        problems: cross-check findings (missing files, extra files, duplicates, unlabelled train).
    """

    root: Path
    tiles: pd.DataFrame
    problems: list[Problem] = field(default_factory=list)

    @property
    def train(self) -> pd.DataFrame:
        """Rows of the training split."""
        return self.tiles[self.tiles["split"] == "train"]

    @property
    def test(self) -> pd.DataFrame:
        """Rows of the test split."""
        return self.tiles[self.tiles["split"] == "test"]

    def save(self, path: PathLike) -> Path:
        """Write the tile table as parquet, atomically."""
        with atomic_path(path) as tmp:
            self.tiles.to_parquet(tmp, index=False)
        return Path(path)


def find_metadata(root: Path) -> Path | None:
    """The metadata CSV of a dataset (``metadata*.csv``), or ``None``; errors if ambiguous."""
    found = sorted(root.glob("metadata*.csv"))
    if len(found) > 1:
        names = ", ".join(p.name for p in found)
        # Not every command that reads a dataset has --metadata: say which do.
        message = f"several metadata files ({names}); keep one, or name it with --metadata"
        raise KelpsegError(f"{message} (validate, catalog, eda)", root)
    return found[0] if found else None


def build_catalog(root: PathLike, metadata: PathLike | None = None) -> Catalog:
    """Catalog a dataset folder, from its metadata CSV when there is one, else by scanning.

    Args:
        root: the dataset folder.
        metadata: an explicit metadata CSV (default: ``root/metadata*.csv`` if present).

    Raises:
        KelpsegError: the folder does not exist or holds no tiles, or the metadata is unusable.
    """
    root = Path(root)
    if not root.is_dir():
        raise KelpsegError("dataset folder does not exist", root)
    meta = Path(metadata) if metadata is not None else find_metadata(root)
    catalog = _from_metadata(root, meta) if meta is not None else _from_scan(root)
    if catalog.tiles.empty:
        raise KelpsegError("no *_satellite.tif tiles found", root)
    return catalog


def _scan(root: Path, dirs: tuple[str, ...], suffix: str) -> dict[str, list[Path]]:
    found: dict[str, list[Path]] = {}
    for sub in dirs:
        folder = root / sub
        if not folder.is_dir():
            continue
        for path in sorted(folder.glob(f"*{suffix}")):
            found.setdefault(tile_id_from_path(path), []).append(path)
    return found


def _from_scan(root: Path) -> Catalog:
    images = _scan(root, _IMAGE_DIRS, "_satellite.tif")
    masks = _scan(root, _MASK_DIRS, "_kelp.tif")
    problems: list[Problem] = []
    rows = []
    for tile_id, paths in images.items():
        if len(paths) > 1:
            problems.append(
                Problem(
                    "duplicate_id", str(paths[1]), f"tile id {tile_id} appears {len(paths)} times"
                )
            )
        image = paths[0]
        in_test_dir = image.parent.name == "test_satellite"
        mask = masks.get(tile_id, [None])[0]
        split = "test" if in_test_dir or mask is None else "train"
        rows.append((tile_id, split, str(image), str(mask) if mask and split == "train" else ""))
    for tile_id, paths in masks.items():
        if tile_id not in images:
            problems.append(
                Problem("orphan_label", str(paths[0]), "label without a satellite tile")
            )
    return Catalog(root, _frame(rows), problems)


def _from_metadata(root: Path, meta: Path) -> Catalog:
    try:
        table = pd.read_csv(meta, dtype=str, keep_default_na=False)
    except (OSError, ValueError, pd.errors.ParserError) as exc:
        raise KelpsegError(f"cannot read metadata CSV ({exc})", meta) from exc
    missing_cols = {"filename", "type", "tile_id"} - set(table.columns)
    if missing_cols:
        raise KelpsegError(f"metadata lacks columns {sorted(missing_cols)}", meta)
    if "in_train" not in table.columns:
        table["in_train"] = ""
    on_disk = _scan(root, _IMAGE_DIRS, "_satellite.tif")
    masks_on_disk = _scan(root, _MASK_DIRS, "_kelp.tif")
    problems: list[Problem] = []
    images = table[table["type"].str.lower() == "satellite"]
    labels = table[table["type"].str.lower() == "kelp"]

    dup = images["tile_id"][images["tile_id"].duplicated()]
    for tile_id in dup.unique():
        problems.append(Problem("duplicate_id", str(meta), f"tile id {tile_id} listed twice"))
    images = images.drop_duplicates("tile_id")
    label_files = dict(zip(labels["tile_id"], labels["filename"], strict=True))

    rows = []
    for rec in images.itertuples(index=False):
        tile_id, fname = str(rec.tile_id), str(rec.filename)
        split = "train" if str(rec.in_train).strip().lower() in ("true", "1", "yes") else "test"
        image = _locate(root, fname, ("train_satellite", "test_satellite"))
        if image is None:
            problems.append(
                Problem("missing_file", str(root / fname), "listed in metadata, not on disk")
            )
            continue
        mask = ""
        if split == "train":
            label_name = label_files.get(tile_id, f"{tile_id}_kelp.tif")
            label = _locate(root, label_name, ("train_kelp",))
            if label is None:
                problems.append(Problem("missing_label", str(image), "train tile without a label"))
            else:
                mask = str(label)
        rows.append((tile_id, split, str(image), mask))

    listed = set(images["tile_id"])
    for tile_id, paths in on_disk.items():
        if tile_id not in listed:
            problems.append(Problem("unlisted_file", str(paths[0]), "on disk, not in metadata"))
    listed_labels = set(labels["tile_id"]) | listed
    for tile_id, paths in masks_on_disk.items():
        if tile_id not in listed_labels:
            problems.append(Problem("unlisted_file", str(paths[0]), "on disk, not in metadata"))
    return Catalog(root, _frame(rows), problems)


def _locate(root: Path, filename: str, dirs: tuple[str, ...]) -> Path | None:
    name = Path(filename)
    if name.is_absolute():
        return name if name.is_file() else None
    for sub in (*dirs, "."):
        candidate = root / sub / name
        if candidate.is_file():
            return candidate
    return None


def _frame(rows: list[tuple[str, str, str, str]]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=list(CATALOG_COLUMNS))
    for col in CATALOG_COLUMNS:
        frame[col] = frame[col].astype("string")
    return frame.sort_values(["split", "tile_id"], ignore_index=True)


def read_parquet(path: PathLike, what: str = "parquet file") -> pd.DataFrame:
    """Read a parquet file; an unreadable one is a one-line :class:`KelpsegError` naming it."""
    try:
        return pd.read_parquet(path)
    except Exception as exc:  # pyarrow raises several unrelated types for bad files
        raise KelpsegError(f"not a readable {what} ({exc})", path) from exc


def load_catalog(path: PathLike) -> pd.DataFrame:
    """Read a catalog parquet written by :meth:`Catalog.save` (or a later stage's extension)."""
    path = Path(path)
    if not path.is_file():
        raise KelpsegError("catalog file does not exist", path)
    frame = read_parquet(path, "parquet catalog")
    missing = set(CATALOG_COLUMNS) - set(frame.columns)
    if missing:
        raise KelpsegError(f"catalog lacks columns {sorted(missing)}", path)
    return frame
