"""``kelpseg prepare``: pack tiles and labels once into a memory-mapped store.

Decoding thousands of deflate GeoTIFFs every epoch wastes CPU; the store holds, per split,

- ``<split>_images.int16.npy``: (N, 7, H, W) raw pixels, band order SWIR1, NIR, R, G, B, QA, DEM;
- ``<split>_masks.uint8.npy``: (N, H, W) labels 0/1 (labelled splits only);
- ``<split>_index.parquet``: the tile ids, in row order;
- ``manifest.json``: shapes, the index checksum, rows completed and per-chunk digests.

Arrays are filled chunk by chunk in hidden ``.partial`` files; after every chunk the arrays are
flushed and the manifest rewritten (atomically) with the rows done, so a run killed at any point
resumes where it stopped and finishes byte-identical to an uninterrupted one. A finished split's
files are renamed into place and marked complete; readers refuse anything else.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from kelpseg.console import progress
from kelpseg.errors import KelpsegError
from kelpseg.io.atomic import atomic_path
from kelpseg.io.catalog import build_catalog, load_catalog
from kelpseg.io.tiles import BAND_NAMES, raster_header, read_label, read_tile
from kelpseg.nn.data.store_format import (
    PreparedStore,
    new_manifest,
    open_store,
    read_manifest,
    split_files,
    tile_ids_digest,
    tiles_digest,
    write_manifest,
)

PathLike = str | os.PathLike[str]
# Test hook: seconds to sleep in the middle of every chunk, so a test can SIGKILL a run mid-write.
DELAY_ENV = "KELPSEG_PREPARE_TEST_DELAY"


@dataclass(frozen=True)
class _Plan:
    """The tiles of one split, in store row order (sorted by tile id)."""

    split: str
    tile_ids: list[str]
    images: list[str]
    masks: list[str] | None


def prepare_store(
    catalog: pd.DataFrame | PathLike,
    out_dir: PathLike,
    *,
    splits: Sequence[str] = ("train", "test"),
    chunk_size: int = 64,
    workers: int = 0,
    show_progress: bool = True,
) -> PreparedStore:
    """Pack the tiles of a catalog into a memory-mapped store (resumable, idempotent).

    Args:
        catalog: a catalog DataFrame, a catalog parquet, or a dataset folder (catalogued here).
        out_dir: the store folder (created). A re-run finishes an interrupted store and leaves a
            complete one untouched; a store of other tiles is rebuilt.
        splits: catalog splits to pack; splits without tiles are skipped.
        chunk_size: tiles written between checkpoints of the manifest.
        workers: threads decoding GeoTIFFs (0 = all cores).
        show_progress: draw a progress bar.

    Returns:
        The opened, validated store.

    Raises:
        KelpsegError: bad catalog, unreadable tile, tiles of different sizes, a split mixing
            labelled and unlabelled tiles, or too little disk space.
    """
    if chunk_size < 1:
        raise KelpsegError(f"chunk_size must be >= 1, got {chunk_size}")
    frame, source = _catalog_frame(catalog)
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise KelpsegError(f"cannot create the store folder ({exc.strerror})", out) from exc
    manifest = read_manifest(out, strict=False) or new_manifest()
    plans = [plan for name in splits if (plan := _plan(frame, name, source)) is not None]
    if not plans:
        raise KelpsegError(f"no tiles in split(s) {', '.join(splits)}", source)
    threads = workers or os.cpu_count() or 1
    with progress(disable=not show_progress) as bar, ThreadPoolExecutor(threads) as pool:
        for plan in plans:
            _prepare_split(plan, out, manifest, chunk_size, pool, bar)
    return open_store(out)


def _catalog_frame(catalog: pd.DataFrame | PathLike) -> tuple[pd.DataFrame, str | None]:
    if isinstance(catalog, pd.DataFrame):
        return catalog, None
    path = Path(catalog)
    if path.is_dir():
        return build_catalog(path).tiles, str(path)
    return load_catalog(path), str(path)


def _plan(frame: pd.DataFrame, split: str, source: str | None) -> _Plan | None:
    rows = frame[frame["split"] == split].sort_values("tile_id")
    if rows.empty:
        return None
    tile_ids = [str(t) for t in rows["tile_id"]]
    if len(set(tile_ids)) != len(tile_ids):
        dup = rows["tile_id"][rows["tile_id"].duplicated()].iloc[0]
        raise KelpsegError(f"tile id {dup} appears twice in split {split!r}", source)
    masks = [str(m) if pd.notna(m) else "" for m in rows["mask_path"]]
    labelled = [bool(m) for m in masks]
    if any(labelled) and not all(labelled):
        missing = tile_ids[labelled.index(False)]
        raise KelpsegError(
            f"split {split!r} mixes labelled and unlabelled tiles (e.g. {missing} has no label)",
            source,
        )
    images = [str(p) for p in rows["image_path"]]
    return _Plan(split, tile_ids, images, masks if all(labelled) else None)


def _prepare_split(
    plan: _Plan,
    out: Path,
    manifest: dict[str, Any],
    chunk_size: int,
    pool: ThreadPoolExecutor,
    bar: Any,
) -> None:
    entry = manifest["splits"].get(plan.split)
    digest = tile_ids_digest(plan.tile_ids)
    resumable = (
        entry is not None
        and entry["tile_ids_sha256"] == digest
        and entry["labelled"] == (plan.masks is not None)
    )
    if resumable and entry["complete"]:
        try:
            open_store(out, splits=[plan.split])
            return  # already complete: leave every byte as it is
        except KelpsegError:
            resumable = False  # damaged: rebuild the split
    arrays = _open_partial(out, entry) if resumable and entry and _index_ok(out, entry) else None
    if arrays is None or entry is None:
        _check_headers(plan, pool)  # before _start_split replaces an earlier store's files
        entry = _start_split(plan, out, manifest, chunk_size)
        arrays = _open_partial(out, entry)
        assert arrays is not None  # just created
    images, masks = arrays
    task = bar.add_task(
        f"packing {plan.split}", total=len(plan.tile_ids), completed=entry["completed"]
    )
    step = int(entry["chunk_size"])
    for start in range(int(entry["completed"]), len(plan.tile_ids), step):
        stop = min(start + step, len(plan.tile_ids))
        chunk = list(pool.map(_read_pair, _chunk_args(plan, start, stop, entry)))
        _write_chunk(chunk, images, masks, start)
        entry["chunk_digests"].append(_chunk_digest(chunk))
        entry["completed"] = stop
        write_manifest(out, manifest)
        bar.update(task, completed=stop)
    del images, masks  # close the memmaps before renaming their files
    _finish_split(out, manifest, entry)


def _check_headers(plan: _Plan, pool: ThreadPoolExecutor) -> None:
    """Refuse missing files, wrong band counts, pixel types or sizes without reading pixels."""
    images = list(pool.map(raster_header, plan.images))
    size = images[0][2:]
    for path, (bands, dtype, *hw) in zip(plan.images, images, strict=True):
        if bands != len(BAND_NAMES):
            raise KelpsegError(f"expected {len(BAND_NAMES)} bands, found {bands}", path)
        if dtype != np.int16:
            raise KelpsegError(f"expected int16 pixels, found {dtype}", path)
        if tuple(hw) != size:
            raise KelpsegError(f"expected {size[0]}x{size[1]} pixels, found {hw[0]}x{hw[1]}", path)
    masks = plan.masks or []
    for path, (bands, dtype, *hw) in zip(masks, pool.map(raster_header, masks), strict=True):
        if bands != 1 or not np.issubdtype(dtype, np.integer) or tuple(hw) != size:
            found = f"{bands} band(s) of {dtype}, {hw[0]}x{hw[1]}"
            raise KelpsegError(
                f"expected a 1-band integer label of {size[0]}x{size[1]}, found {found}", path
            )


def _start_split(
    plan: _Plan, out: Path, manifest: dict[str, Any], chunk_size: int
) -> dict[str, Any]:
    """Fresh split: manifest entry, index and zero-filled partial arrays (stale files removed)."""
    height, width = read_tile(plan.images[0], expected_size=None, allow_all_missing=True).shape
    files = split_files(plan.split, labelled=plan.masks is not None)
    for name in files.values():
        if name:
            for stale in (out / name, _partial(out / name)):
                stale.unlink(missing_ok=True)
    n = len(plan.tile_ids)
    image_bytes = n * len(BAND_NAMES) * height * width * 2
    _check_space(out, image_bytes + (n * height * width if plan.masks is not None else 0))
    entry: dict[str, Any] = {
        "tiles": n,
        "bands": len(BAND_NAMES),
        "height": height,
        "width": width,
        "labelled": plan.masks is not None,
        "tile_ids_sha256": tile_ids_digest(plan.tile_ids),
        "chunk_size": chunk_size,
        "completed": 0,
        "complete": False,
        "chunk_digests": [],
        **files,
    }
    manifest["splits"][plan.split] = entry
    write_manifest(out, manifest)
    with atomic_path(out / str(files["index"])) as tmp:
        pd.DataFrame({"tile_id": pd.Series(plan.tile_ids, dtype="string")}).to_parquet(
            tmp, index=False
        )
    shape = (n, len(BAND_NAMES), height, width)
    np.lib.format.open_memmap(_partial(out / str(files["images"])), "w+", np.int16, shape).flush()
    if files["masks"] is not None:
        mask_file = _partial(out / files["masks"])
        np.lib.format.open_memmap(mask_file, "w+", np.uint8, (n, height, width)).flush()
    return entry


def _open_partial(out: Path, entry: dict[str, Any]) -> tuple[np.ndarray, np.ndarray | None] | None:
    """Memmaps of an unfinished split for writing, or None if they are missing or do not fit."""
    n, h, w = entry["tiles"], entry["height"], entry["width"]
    try:
        images = np.lib.format.open_memmap(_partial(out / entry["images"]), "r+")
        masks = None
        if entry["masks"]:
            masks = np.lib.format.open_memmap(_partial(out / entry["masks"]), "r+")
    except (OSError, ValueError):
        return None
    if images.shape != (n, entry["bands"], h, w) or images.dtype != np.int16:
        return None
    if masks is not None and (masks.shape != (n, h, w) or masks.dtype != np.uint8):
        return None
    return images, masks


def _index_ok(out: Path, entry: dict[str, Any]) -> bool:
    try:
        ids = pd.read_parquet(out / entry["index"])["tile_id"].astype(str).tolist()
    except Exception:  # missing or unreadable index: the split restarts
        return False
    return tile_ids_digest(ids) == entry["tile_ids_sha256"]


def _chunk_args(
    plan: _Plan, start: int, stop: int, entry: dict[str, Any]
) -> list[tuple[str, str, tuple[int, int]]]:
    size = (int(entry["height"]), int(entry["width"]))
    masks = plan.masks or [""] * len(plan.images)
    return [(plan.images[i], masks[i], size) for i in range(start, stop)]


def _read_pair(args: tuple[str, str, tuple[int, int]]) -> tuple[np.ndarray, np.ndarray | None]:
    image, mask, size = args
    tile = read_tile(image, expected_size=size, allow_all_missing=True)
    return tile.data, read_label(mask, expected_size=size) if mask else None


def _write_chunk(
    chunk: list[tuple[np.ndarray, np.ndarray | None]],
    images: np.ndarray,
    masks: np.ndarray | None,
    start: int,
) -> None:
    stop = start + len(chunk)
    images[start:stop] = np.stack([c[0] for c in chunk])
    delay = float(os.environ.get(DELAY_ENV, "0") or 0)
    if delay:
        time.sleep(delay)  # test hook: images written, masks and manifest not yet
    if masks is not None:
        masks[start:stop] = np.stack([c[1] for c in chunk if c[1] is not None])
        _flush(masks)
    _flush(images)


def _flush(array: np.ndarray) -> None:
    if isinstance(array, np.memmap):
        array.flush()


def _chunk_digest(chunk: list[tuple[np.ndarray, np.ndarray | None]]) -> str:
    masks = [c[1] for c in chunk if c[1] is not None]
    return tiles_digest([c[0] for c in chunk], masks if len(masks) == len(chunk) else None)


def _finish_split(out: Path, manifest: dict[str, Any], entry: dict[str, Any]) -> None:
    for key in ("images", "masks"):
        if entry[key]:
            final = out / entry[key]
            partial = _partial(final)
            if partial.exists():  # absent when a previous run died after renaming
                partial.replace(final)
    entry["complete"] = True
    write_manifest(out, manifest)


def _partial(path: Path) -> Path:
    return path.with_name(f".{path.name}.partial")


def _check_space(out: Path, needed: int) -> None:
    # Writing past a full disk through a memmap kills the process with SIGBUS: check first.
    free = shutil.disk_usage(out).free
    if free < needed:
        raise KelpsegError(
            f"not enough disk space for the store: need {needed / 1e9:.2f} GB, "
            f"{free / 1e9:.2f} GB free",
            out,
        )
