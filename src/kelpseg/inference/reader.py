"""Which tiles to predict, and batches of them read without torch.

:func:`resolve_tiles` turns whatever names the tiles (folder, catalog, table, file list) into one
table; :func:`read_batches` reads it in order, in threads, as numpy batches: the tile reader of a
packaged (ONNX) model, which has no torch ``DataLoader`` on the light install.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from kelpseg.errors import KelpsegError
from kelpseg.io.catalog import build_catalog, load_catalog
from kelpseg.io.tiles import read_tile, tile_id_from_path

PathLike = str | os.PathLike[str]
TileSource = PathLike | pd.DataFrame | Sequence[PathLike]


def resolve_tiles(tiles: TileSource, split: str | None = None) -> pd.DataFrame:
    """The tiles to predict as a table with ``tile_id`` and ``image_path``.

    Args:
        tiles: a dataset folder (download layout or flat ``*_satellite.tif``), a catalog
            parquet, a DataFrame with ``image_path`` (and ``tile_id``), or a list of files.
        split: keep only this catalog split (``train`` or ``test``); None: every tile.

    Raises:
        KelpsegError: nothing to predict, an unknown source, or two tiles with one id.
    """
    source: PathLike | None = None
    if isinstance(tiles, pd.DataFrame):
        frame = tiles
    elif isinstance(tiles, str | os.PathLike):
        source = Path(tiles)
        frame = _table_of(source)
    else:
        files = [str(p) for p in tiles]
        frame = pd.DataFrame(
            {"tile_id": [tile_id_from_path(p) for p in files], "image_path": files}
        )
    if "image_path" not in frame.columns:
        raise KelpsegError("the tile table has no 'image_path' column", source)
    frame = frame.copy()
    if "tile_id" not in frame.columns:
        frame["tile_id"] = [tile_id_from_path(p) for p in frame["image_path"]]
    if split is not None:
        if "split" not in frame.columns:
            raise KelpsegError(f"cannot select split {split!r}: the tiles have no 'split'", source)
        frame = frame[frame["split"] == split]
    if frame.empty:
        where = f" of split {split!r}" if split is not None else ""
        raise KelpsegError(f"no tiles{where} to predict", source)
    repeated = frame["tile_id"][frame["tile_id"].duplicated()]
    if len(repeated):
        raise KelpsegError(f"tile id {repeated.iloc[0]} appears twice among the tiles", source)
    ids, images = frame["tile_id"].astype(str), frame["image_path"].astype(str)
    return pd.DataFrame({"tile_id": ids.to_numpy(), "image_path": images.to_numpy()})


def _table_of(source: Path) -> pd.DataFrame:
    if source.is_dir():
        return build_catalog(source).tiles
    if source.suffix == ".parquet":
        return load_catalog(source)
    if not source.exists():
        raise KelpsegError("tiles folder or catalog does not exist", source)
    raise KelpsegError("give a folder of *_satellite.tif or a catalog parquet", source)


def _read_batch(paths: list[str], ids: list[str]) -> dict[str, Any]:
    """One batch as ``{"image": (N, 7, H, W) int16, "tile_id": [...]}`` or ``{"error": ...}``."""
    try:
        tiles = [read_tile(p, expected_size=None, allow_all_missing=True).data for p in paths]
    except KelpsegError as exc:
        return {"error": (exc.message, exc.path)}
    first = tiles[0].shape
    for tile_id, tile in zip(ids, tiles, strict=True):
        if tile.shape != first:
            message = (
                f"tiles of different sizes in one batch ({tile_id}: {tile.shape[-2]}x"
                f"{tile.shape[-1]}, others {first[-2]}x{first[-1]}); use batch size 1"
            )
            return {"error": (message, None)}
    return {"image": np.stack(tiles), "tile_id": ids}


def read_batches(
    table: pd.DataFrame, batch_size: int, workers: int = 2
) -> Iterator[dict[str, Any]]:
    """Batches of raw tiles of ``table``, in order, read ahead by ``workers`` threads.

    GDAL releases the GIL while it decodes, so threads read tiles in parallel without the
    process start-up (and torch) that a ``DataLoader`` brings. A bad tile is yielded as
    ``{"error": (message, path)}``, as the torch loader does.

    Args:
        table: tiles with ``tile_id`` and ``image_path`` (:func:`resolve_tiles`).
        batch_size: tiles per batch.
        workers: reader threads (0: read in the calling thread).

    Yields:
        ``{"image": (N, 7, H, W) int16 array, "tile_id": list[str]}``.
    """
    paths, ids = list(table["image_path"]), list(table["tile_id"])
    chunks = [
        (paths[i : i + batch_size], ids[i : i + batch_size])
        for i in range(0, len(paths), batch_size)
    ]
    if workers <= 0:
        yield from (_read_batch(*chunk) for chunk in chunks)
        return
    with ThreadPoolExecutor(workers, thread_name_prefix="kelpseg-read") as pool:
        ahead: deque[Future[dict[str, Any]]] = deque()
        for chunk in chunks:
            ahead.append(pool.submit(_read_batch, *chunk))
            if len(ahead) > 2 * workers:  # bounded read-ahead: memory stays a few batches
                yield ahead.popleft().result()
        while ahead:
            yield ahead.popleft().result()
