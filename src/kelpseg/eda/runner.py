"""Per-tile statistics over a whole catalog, on a Dask cluster, resumable chunk by chunk.

The catalog is cut into chunks of ``EdaConfig.dask.chunk_size`` tiles; each chunk is one Dask
task. A tile that cannot be read is recorded as a failure with its error, the rest go on. With
``partial_dir``, each finished chunk is saved there at once, so a re-run after a crash (even a
SIGKILL) skips the chunks already done and loses at most the chunks in flight.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from kelpseg.config import save_config
from kelpseg.console import progress
from kelpseg.eda.cluster import completed, dask_client
from kelpseg.eda.config import EdaConfig
from kelpseg.eda.plots import describe_stats, plot_distributions
from kelpseg.eda.tile_stats import (
    StatValues,
    TileInput,
    select_stats,
    stat_columns,
    stats_frame,
    tile_stats_row,
)
from kelpseg.errors import KelpsegError
from kelpseg.io.atomic import atomic_path
from kelpseg.io.catalog import CATALOG_COLUMNS, build_catalog
from kelpseg.io.tiles import read_label, read_tile

FAILURE_COLUMNS = (*CATALOG_COLUMNS, "error_type", "error")
STATS_FILE = "tile_stats.parquet"
FAILURES_FILE = "failures.csv"
DESCRIBE_FILE = "describe.parquet"
CONFIG_FILE = "eda_config.yaml"
PLOTS_DIR = "plots"
PARTIAL_DIR = ".partial"
TileRow = tuple[int, str, str, str]  # catalog position, tile_id, image_path, mask_path
Frames = tuple[pd.DataFrame, pd.DataFrame]  # stats and failures, keyed by "_position"


@dataclass
class ChunkResult:
    """What one chunk produced: stat rows by catalog position, and failed positions."""

    positions: list[int] = field(default_factory=list)
    rows: list[StatValues] = field(default_factory=list)
    failures: list[tuple[int, str, str]] = field(default_factory=list)  # position, type, message


def load_tile_input(image_path: str, mask_path: str, config: EdaConfig) -> TileInput:
    """Read a tile and (when ``mask_path`` is set) its label, checking sizes."""
    expected = (config.tile_size, config.tile_size) if config.tile_size else None
    # An all-missing tile is a finding of the EDA (counted as missing pixels), not a failure.
    tile = read_tile(image_path, expected_size=expected, allow_all_missing=True)
    label = read_label(mask_path, expected_size=tile.shape) if mask_path else None
    return TileInput(tile, label)


def process_chunk(rows: list[TileRow], config: EdaConfig) -> ChunkResult:
    """Statistics of one chunk of tiles (runs on a Dask worker); never raises for a tile."""
    stats = select_stats(config)
    result = ChunkResult()
    for position, _tile_id, image_path, mask_path in rows:
        try:
            row = tile_stats_row(load_tile_input(image_path, mask_path, config), config, stats)
        except KelpsegError as exc:
            result.failures.append((position, "KelpsegError", str(exc)))
        except Exception as exc:  # a bug or odd file must not stop the other tiles
            result.failures.append((position, type(exc).__name__, f"{image_path}: {exc}"))
        else:
            result.positions.append(position)
            result.rows.append(row)
    return result


def _chunks(catalog: pd.DataFrame, size: int) -> list[list[TileRow]]:
    masks = catalog["mask_path"].fillna("").astype(str)
    rows = [
        (pos, str(tid), str(img), mask)
        for pos, (tid, img, mask) in enumerate(
            zip(catalog["tile_id"], catalog["image_path"], masks, strict=True)
        )
    ]
    return [rows[i : i + size] for i in range(0, len(rows), size)]


def _chunk_key(chunk: list[TileRow], config: EdaConfig) -> str:
    # Anything that changes the chunk's numbers changes its key, so stale partials are ignored.
    digest = hashlib.sha1(
        config.model_dump_json(include={"tile_size", "stats", "thresholds"}).encode()
    )
    for row in chunk:
        digest.update(repr(row).encode())
    return f"{chunk[0][0]:07d}-{digest.hexdigest()[:16]}"


def _result_frames(result: ChunkResult, columns: dict[str, str]) -> Frames:
    stats = stats_frame(result.rows, columns)
    stats.insert(0, "_position", pd.Series(result.positions, dtype="int64"))
    failures = pd.DataFrame(result.failures, columns=["_position", "error_type", "error"])
    failures = failures.astype({"_position": "int64", "error_type": "string", "error": "string"})
    return stats, failures


def _save_partial(directory: Path, key: str, frames: Frames) -> None:
    stats, failures = frames
    with atomic_path(directory / f"chunk-{key}.failures.parquet") as tmp:
        failures.to_parquet(tmp, index=False)
    # Written last: its presence marks the chunk done.
    with atomic_path(directory / f"chunk-{key}.stats.parquet") as tmp:
        stats.to_parquet(tmp, index=False)


def _load_partial(directory: Path, key: str) -> Frames | None:
    stats_path = directory / f"chunk-{key}.stats.parquet"
    failures_path = directory / f"chunk-{key}.failures.parquet"
    if not (stats_path.is_file() and failures_path.is_file()):
        return None
    try:
        return pd.read_parquet(stats_path), pd.read_parquet(failures_path)
    except Exception:  # a damaged partial is recomputed, not trusted
        return None


def _failed_chunk(chunk: list[TileRow], exc: BaseException) -> ChunkResult:
    message = f"chunk failed on the cluster: {type(exc).__name__}: {str(exc)[:200]}"
    return ChunkResult(failures=[(pos, type(exc).__name__, message) for pos, *_ in chunk])


def _check_catalog(catalog: pd.DataFrame) -> None:
    missing = [c for c in CATALOG_COLUMNS if c not in catalog.columns]
    if missing:
        raise KelpsegError(f"catalog lacks columns {missing}")
    if catalog["tile_id"].duplicated().any():
        dup = catalog["tile_id"][catalog["tile_id"].duplicated()].iloc[0]
        raise KelpsegError(f"catalog lists tile id {dup!r} more than once")


def compute_tile_stats(
    catalog: pd.DataFrame,
    config: EdaConfig,
    *,
    scheduler: str | None = None,
    workers: int | None = None,
    show_progress: bool = True,
    partial_dir: str | os.PathLike[str] | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per-tile statistics of every catalog tile, computed on Dask.

    Args:
        catalog: one row per tile with at least ``tile_id, split, image_path, mask_path``
            (an empty ``mask_path`` means unlabelled: label statistics are NA).
        config: thresholds, statistic groups and Dask settings.
        scheduler: address of an existing Dask scheduler; ``None`` starts a local cluster.
        workers: local worker processes (default: CPU count).
        show_progress: show a rich progress bar.
        partial_dir: folder for per-chunk results; chunks found there are not recomputed.

    Returns:
        ``(stats, failures)``: the catalog columns plus one column per statistic for every tile
        that was read, and the catalog columns plus ``error_type, error`` for every tile that
        was not, both in catalog order.
    """
    _check_catalog(catalog)
    catalog = catalog.reset_index(drop=True)
    columns = stat_columns(select_stats(config))
    chunks = _chunks(catalog, config.dask.chunk_size)
    keys = [_chunk_key(chunk, config) for chunk in chunks]
    partial = Path(partial_dir) if partial_dir is not None else None
    parts: dict[int, Frames] = {}
    if partial is not None:
        for i, key in enumerate(keys):
            if (found := _load_partial(partial, key)) is not None:
                parts[i] = found
    todo = [i for i in range(len(chunks)) if i not in parts]
    with progress(disable=not show_progress) as bar:
        done = sum(len(chunks[i]) for i in parts)
        task = bar.add_task("tile statistics", total=len(catalog), completed=done)
        if todo:
            with dask_client(scheduler, workers, config.dask) as client:
                futures = {
                    client.submit(process_chunk, chunks[i], config, pure=False): i for i in todo
                }
                for future in completed(client, futures):
                    i = futures.pop(future)
                    try:
                        frames = _result_frames(future.result(), columns)
                    except Exception as exc:  # a lost worker fails its chunk, not the run
                        frames = _result_frames(_failed_chunk(chunks[i], exc), columns)
                    else:
                        if partial is not None:
                            _save_partial(partial, keys[i], frames)
                    parts[i] = frames
                    bar.advance(task, len(chunks[i]))
    return _assemble(catalog, [parts[i] for i in range(len(chunks))], columns)


def _assemble(
    catalog: pd.DataFrame, parts: list[Frames], columns: dict[str, str]
) -> tuple[pd.DataFrame, pd.DataFrame]:
    parts = parts or [_result_frames(ChunkResult(), columns)]
    stats = pd.concat([p[0] for p in parts], ignore_index=True)
    failures = pd.concat([p[1] for p in parts], ignore_index=True)
    stats = stats.astype(columns).sort_values("_position", ignore_index=True)
    failures = failures.sort_values("_position", ignore_index=True)
    out_stats = pd.concat(
        [catalog.iloc[stats["_position"]].reset_index(drop=True), stats.drop(columns="_position")],
        axis=1,
    )
    out_failures = pd.concat(
        [
            catalog.iloc[failures["_position"]][list(CATALOG_COLUMNS)].reset_index(drop=True),
            failures.drop(columns="_position"),
        ],
        axis=1,
    )
    return out_stats, out_failures


@dataclass
class StatsRun:
    """Outputs of :func:`run_stats` (also written under ``out_dir``)."""

    out_dir: Path
    stats: pd.DataFrame
    failures: pd.DataFrame
    describe: pd.DataFrame
    catalog_problems: int


def run_stats(
    data_dir: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    config: EdaConfig,
    *,
    scheduler: str | None = None,
    workers: int | None = None,
    metadata: str | os.PathLike[str] | None = None,
    plots: bool = True,
    show_progress: bool = True,
) -> StatsRun:
    """Catalog a dataset, compute its tile statistics and write them with summaries.

    Writes into ``out_dir``: ``tile_stats.parquet``, ``failures.csv``, ``describe.parquet``,
    ``eda_config.yaml`` and (with ``plots``) ``plots/dist_<statistic>.png`` and
    ``plots/correlation.png``. Interrupted runs resume from ``out_dir/.partial/``.
    """
    catalog = build_catalog(Path(data_dir).resolve(), metadata)
    out = Path(out_dir)
    partial = out / PARTIAL_DIR
    stats, failures = compute_tile_stats(
        catalog.tiles,
        config,
        scheduler=scheduler,
        workers=workers,
        show_progress=show_progress,
        partial_dir=partial,
    )
    describe = describe_stats(stats)
    with atomic_path(out / STATS_FILE) as tmp:
        stats.to_parquet(tmp, index=False)
    with atomic_path(out / FAILURES_FILE) as tmp:
        failures.to_csv(tmp, index=False)
    with atomic_path(out / DESCRIBE_FILE) as tmp:
        describe.to_parquet(tmp, index=False)
    save_config(config, out / CONFIG_FILE)
    if plots:
        plot_distributions(stats, out / PLOTS_DIR, config.plots.dpi)
    shutil.rmtree(partial, ignore_errors=True)
    return StatsRun(out, stats, failures, describe, len(catalog.problems))
