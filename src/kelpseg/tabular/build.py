"""``kelpseg tabular build``: sample training pixels of every tile into a parquet dataset.

Per tile: every kelp pixel, a ring of ``buffer_px`` pixels around kelp (where the hard
negatives are) and ``non_kelp_per_tile`` random pixels from the rest. Tiles are processed in
chunks on Dask; each worker reads one tile at a time and writes its pixels straight to
``pixels/fold=<K>/<tile_id>.parquet`` with an atomic rename, so memory stays bounded by one
tile and a re-run (even after a SIGKILL) skips the tiles already written. Sampling is seeded
by the config's seed and the tile id, so the dataset does not depend on workers or order.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.dataset as pads
import pyarrow.parquet as pq

from kelpseg.config import load_config, save_config
from kelpseg.console import progress
from kelpseg.eda.cluster import completed, dask_client
from kelpseg.errors import KelpsegError
from kelpseg.features import BandStats
from kelpseg.io.atomic import atomic_path, remove_stale_temporaries
from kelpseg.io.catalog import Catalog, load_catalog
from kelpseg.tabular.config import TabularConfig
from kelpseg.tabular.dataset import (
    CONFIG_FILE,
    FAILURES_FILE,
    PIXELS_DIR,
    STATS_FILE,
    TILE_COLUMNS,
    TILES_FILE,
    PixelDataset,
    tile_file,
)
from kelpseg.tabular.inputs import make_builder
from kelpseg.tabular.sampling import TileJob, tile_pixels

PathLike = str | os.PathLike[str]
CatalogSource = Catalog | pd.DataFrame | PathLike
SYNC = "sync"  # scheduler value: run in this process, without Dask
Outcome = tuple[str, int, str]  # tile_id, rows written, error ("" when fine)


@dataclass(frozen=True)
class BuildResult:
    """What a build did.

    Attributes:
        dataset: the dataset folder, opened.
        written: tiles written by this run.
        skipped: tiles already present from an earlier run.
        failures: tiles that could not be read (tile_id, error).
        pixels: rows in the whole dataset; ``kelp_pixels`` of them labelled kelp.
        seconds: wall-clock time of this run.
    """

    dataset: PixelDataset
    written: int
    skipped: int
    failures: pd.DataFrame
    pixels: int
    kelp_pixels: int
    seconds: float


def training_tiles(catalog: CatalogSource) -> pd.DataFrame:
    """Labelled tiles with a fold, as ``TILE_COLUMNS`` (fold as int), sorted by tile id.

    Raises:
        KelpsegError: no ``fold`` column (run the split stage first) or no labelled tile.
    """
    if isinstance(catalog, Catalog):
        frame = catalog.tiles
    elif isinstance(catalog, pd.DataFrame):
        frame = catalog
    else:
        frame = load_catalog(catalog)
    where = None if isinstance(catalog, Catalog | pd.DataFrame) else catalog
    if "fold" not in frame.columns:
        message = "the catalog has no 'fold' column; assign folds (kelpseg split) first"
        raise KelpsegError(message, where)
    mask = frame["mask_path"].fillna("").astype(str)
    folds = pd.to_numeric(frame["fold"], errors="coerce")
    keep = (mask != "") & folds.notna() & (folds >= 0)
    tiles = pd.DataFrame(
        {
            "tile_id": frame.loc[keep, "tile_id"].astype(str),
            "image_path": frame.loc[keep, "image_path"].astype(str),
            "mask_path": mask[keep],
            "fold": folds[keep].astype(np.int64),
        }
    )
    if tiles.empty:
        raise KelpsegError("the catalog holds no labelled tile with a fold", where)
    if tiles["tile_id"].duplicated().any():
        raise KelpsegError(
            f"tile id {tiles['tile_id'][tiles['tile_id'].duplicated()].iloc[0]} is listed twice"
        )
    return tiles.sort_values("tile_id", ignore_index=True)[list(TILE_COLUMNS)]


def build_chunk(jobs: list[TileJob], config: TabularConfig, root: str) -> list[Outcome]:
    """Sample and write the tiles of one chunk (a Dask task); never raises for one tile."""
    stats_path = Path(root) / STATS_FILE
    stats = BandStats.from_json(stats_path) if stats_path.is_file() else None
    builder = make_builder(config.features, stats)
    outcomes: list[Outcome] = []
    for job in jobs:
        try:
            table = tile_pixels(job, config, builder)
            with atomic_path(tile_file(root, job[3], job[0])) as tmp:
                pq.write_table(table, tmp, compression="zstd")
        except KelpsegError as exc:
            outcomes.append((job[0], 0, str(exc)))
        except Exception as exc:  # an odd file must not stop the other tiles
            outcomes.append((job[0], 0, f"{job[1]}: {type(exc).__name__}: {exc}"))
        else:
            outcomes.append((job[0], table.num_rows, ""))
    return outcomes


def _prepare_root(root: Path, config: TabularConfig, tiles: pd.DataFrame, overwrite: bool) -> None:
    if overwrite:
        shutil.rmtree(root / PIXELS_DIR, ignore_errors=True)
        for name in (CONFIG_FILE, TILES_FILE, STATS_FILE, FAILURES_FILE):
            (root / name).unlink(missing_ok=True)
    if (root / CONFIG_FILE).is_file():
        before = load_config(TabularConfig, root / CONFIG_FILE)
        if before.build_fingerprint() != config.build_fingerprint():
            raise KelpsegError(
                "this folder holds pixels built with other settings; use a new folder or overwrite",
                root,
            )
        old = pd.read_parquet(root / TILES_FILE) if (root / TILES_FILE).is_file() else None
        if old is not None and _tile_folds(old) != _tile_folds(tiles):
            raise KelpsegError(
                "this folder holds pixels of other tiles or folds; use a new folder or overwrite",
                root,
            )
    save_config(config, root / CONFIG_FILE)
    with atomic_path(root / TILES_FILE) as tmp:
        tiles.to_parquet(tmp, index=False)
    if config.stats_path is not None:
        BandStats.from_json(config.stats_path).to_json(root / STATS_FILE)
    for folder in (root / PIXELS_DIR).glob("fold=*"):  # writes killed mid-way leave these
        remove_stale_temporaries(folder)


def _tile_folds(tiles: pd.DataFrame) -> set[tuple[str, int]]:
    return {(str(t), int(f)) for t, f in zip(tiles["tile_id"], tiles["fold"], strict=True)}


def _run_chunks(
    chunks: list[list[TileJob]],
    config: TabularConfig,
    root: Path,
    scheduler: str | None,
    workers: int | None,
) -> Iterator[list[Outcome]]:
    if scheduler == SYNC:
        for chunk in chunks:
            yield build_chunk(chunk, config, str(root))
        return
    with dask_client(scheduler, workers, config.dask) as client:
        futures = [client.submit(build_chunk, c, config, str(root), pure=False) for c in chunks]
        for future in completed(client, futures):
            try:
                yield future.result()
            except Exception as exc:  # a worker died (memory, signal): report, keep what is done
                raise KelpsegError(
                    f"a Dask task failed ({type(exc).__name__}: {exc}); re-run to resume"
                ) from exc


def build_pixel_dataset(
    catalog: CatalogSource,
    config: TabularConfig,
    out_dir: PathLike,
    *,
    scheduler: str | None = None,
    workers: int | None = None,
    overwrite: bool = False,
    show_progress: bool = True,
) -> BuildResult:
    """Write the pixel dataset of a catalog's labelled tiles (see :mod:`kelpseg.tabular.dataset`).

    Args:
        catalog: catalog (object, DataFrame or parquet) with a ``fold`` column; unlabelled
            tiles and tiles without a fold are left out.
        config: sampling, channels and Dask settings.
        out_dir: the dataset folder; a re-run with the same settings resumes.
        scheduler: a Dask scheduler address, ``"sync"`` to run in this process, or ``None``
            for a local cluster. Workers of a remote scheduler must see ``out_dir``.
        workers: local worker processes (default: CPU count).
        overwrite: delete an earlier build in ``out_dir`` first.
        show_progress: draw a progress bar.

    Raises:
        KelpsegError: no fold column, settings differ from an earlier build in ``out_dir``, or a
            Dask task failed (tiles already written are kept).
    """
    start = time.perf_counter()
    root = Path(out_dir)
    tiles = training_tiles(catalog)
    _prepare_root(root, config, tiles, overwrite)
    jobs: list[TileJob] = [
        (str(t), str(i), str(m), int(f))
        for t, i, m, f in zip(
            tiles["tile_id"], tiles["image_path"], tiles["mask_path"], tiles["fold"], strict=True
        )
    ]
    todo = [j for j in jobs if not tile_file(root, j[3], j[0]).is_file()]
    chunks = [todo[i : i + config.chunk_size] for i in range(0, len(todo), config.chunk_size)]
    failures: list[tuple[str, str]] = []
    written = 0
    with progress(disable=not show_progress) as bar:
        task = bar.add_task("sampling pixels", total=len(jobs), completed=len(jobs) - len(todo))
        for outcomes in _run_chunks(chunks, config, root, scheduler, workers):
            written += sum(1 for _, _, err in outcomes if not err)
            failures += [(tile_id, err) for tile_id, _, err in outcomes if err]
            bar.advance(task, len(outcomes))
    failed = pd.DataFrame(failures, columns=["tile_id", "error"])
    if failures:
        with atomic_path(root / FAILURES_FILE) as tmp:
            failed.to_csv(tmp, index=False)
    else:
        (root / FAILURES_FILE).unlink(missing_ok=True)
    pixels, kelp = _count_rows(root)
    return BuildResult(
        dataset=PixelDataset.open(root),
        written=written,
        skipped=len(jobs) - len(todo),
        failures=failed,
        pixels=pixels,
        kelp_pixels=kelp,
        seconds=time.perf_counter() - start,
    )


def _count_rows(root: Path) -> tuple[int, int]:
    if not (root / PIXELS_DIR).is_dir():
        return 0, 0
    data = pads.dataset(root / PIXELS_DIR, format="parquet", partitioning="hive")
    return int(data.count_rows()), int(data.count_rows(filter=pads.field("label") == 1))
