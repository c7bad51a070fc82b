"""One streaming pass of band statistics over a dataset, on GPU or CPU, optionally over Dask.

Tiles are read in batches (the next batch is read while the current one is computed), turned
into masked channels by the same :class:`ChannelStack` the model input uses, and folded into
a :class:`StatsAccumulator` whose size depends on the channels only, never on the number of
tiles. With a Dask scheduler each partition of tiles gives a partial accumulator; partials
merge exactly (histogram counts add, moments merge with Chan's formula).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from kelpseg import __version__
from kelpseg.console import progress
from kelpseg.errors import KelpsegError, MissingExtraError
from kelpseg.features.channels import ChannelStack
from kelpseg.features.config import FeatureConfig
from kelpseg.features.sketch import StatsAccumulator, bucket_shift, error_bound
from kelpseg.features.stats import BandStats
from kelpseg.io.tiles import read_tile

DEFAULT_QUANTILES = (0.001, 0.01, 0.02, 0.05, 0.25, 0.5, 0.75, 0.95, 0.98, 0.99, 0.999)
TileSource = Sequence[str | os.PathLike[str]] | pd.DataFrame


def tile_paths(source: TileSource) -> list[Path]:
    """Satellite tile paths from a list of paths or a catalog table (column ``image_path``)."""
    if isinstance(source, pd.DataFrame):
        if "image_path" not in source.columns:
            raise KelpsegError("a tile table needs an 'image_path' column")
        return [Path(str(p)) for p in source["image_path"].tolist()]
    return [Path(p) for p in source]


def dataset_tiles(source: str | os.PathLike[str], split: str = "train") -> list[Path]:
    """Tile paths of a dataset folder or a catalog parquet, for ``split`` (train, test, all)."""
    from kelpseg.io.catalog import build_catalog, load_catalog

    source = Path(source)
    if split not in ("train", "test", "all"):
        raise KelpsegError(f"split must be train, test or all, not {split!r}")
    table = load_catalog(source) if source.is_file() else build_catalog(source).tiles
    if split != "all":
        table = table[table["split"] == split]
    if table.empty:
        raise KelpsegError(f"no {split} tiles found", source)
    return tile_paths(table)


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``"auto"``: the first CUDA device when there is one, else the CPU."""
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except RuntimeError as exc:
        raise KelpsegError(f"unknown device {device!r} (auto, cpu, cuda, cuda:1 ...)") from exc
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise KelpsegError(f"device {device!r} requested but no CUDA device is available")
    return dev


def compute_band_stats(
    tiles: TileSource,
    config: FeatureConfig,
    *,
    device: str = "auto",
    batch_size: int = 8,
    quantile_bins: int = 256,
    quantiles: Sequence[float] | None = None,
    scheduler: str | None = None,
    partition_size: int = 64,
    show_progress: bool = True,
) -> BandStats:
    """Per-channel statistics of ``config.channels`` over ``tiles`` in one streaming pass.

    Masked pixels are left out (``fill_value`` "min" / "nan": nan-adjusted) or counted as 0
    (``"zero"``: zero-adjusted), as the model input will see them. Masking follows
    ``config.stats_masked``; ``config.stats_method="author"`` computes the 2nd-place author's
    definitions instead (:func:`~kelpseg.features.author_stats.author_band_stats`).

    Args:
        tiles: satellite tile paths, or a catalog table (filter it to the split you want).
        config: channels and masking options.
        device: ``"auto"``, ``"cpu"``, ``"cuda"`` ...
        batch_size: tiles per batch (memory grows with it, not with the dataset).
        quantile_bins: histogram buckets per power of two; quantiles are within
            ``|q| / (2 * quantile_bins)`` of the exact value.
        quantiles: extra quantile levels (the config's and :data:`DEFAULT_QUANTILES` always).
        scheduler: a Dask scheduler address, or ``"local"`` for a local process cluster.
        partition_size: tiles per Dask task.
        show_progress: show a progress bar.
    """
    paths = tile_paths(tiles)
    if not paths:
        raise KelpsegError("no tiles to compute band statistics over")
    config = config.stats_config()
    if config.stats_method == "author":
        if scheduler is not None:
            raise KelpsegError("stats_method author runs in one process: leave out --scheduler")
        from kelpseg.features.author_stats import author_band_stats

        return author_band_stats(paths, config, device=str(resolve_device(device)))
    if batch_size < 1 or partition_size < 1:
        raise KelpsegError("batch_size and partition_size must be at least 1")
    bucket_shift(quantile_bins)  # refuse bad bins before any work
    levels = sorted({*DEFAULT_QUANTILES, *config.quantiles, *(quantiles or ())})
    if not all(0.0 <= q <= 1.0 for q in levels):
        raise KelpsegError(f"quantile levels must lie in [0, 1], got {quantiles}")
    dev = resolve_device(device)
    with progress(disable=not show_progress) as bar:
        task = bar.add_task("band statistics", total=len(paths))

        def advance(n: int) -> None:
            bar.advance(task, n)

        if scheduler is None:
            acc = partial_stats(
                paths,
                config,
                device=dev,
                batch_size=batch_size,
                quantile_bins=quantile_bins,
                on_batch=advance,
            )
        else:
            acc = _dask_stats(
                paths,
                config,
                scheduler,
                str(device),
                batch_size,
                quantile_bins,
                partition_size,
                advance,
            )
    extra = {"device": str(dev) if scheduler is None else str(device), "scheduler": scheduler}
    return to_band_stats(acc, config, levels, extra)


def partial_stats(
    paths: Sequence[str | os.PathLike[str]],
    config: FeatureConfig,
    *,
    device: str | torch.device = "cpu",
    batch_size: int = 8,
    quantile_bins: int = 256,
    on_batch: Callable[[int], None] | None = None,
) -> StatsAccumulator:
    """The accumulator of ``paths`` (one partition); see :func:`compute_band_stats`."""
    dev = resolve_device(device)
    stack = ChannelStack.from_config(config).to(dev)
    acc = StatsAccumulator.empty(config.channels, quantile_bins)
    with torch.inference_mode():
        for batch in _read_batches([Path(p) for p in paths], batch_size):
            for raw in _by_shape(batch):
                x = stack(torch.from_numpy(raw).to(dev, non_blocking=True))
                if config.fill_value == "zero":
                    x = torch.nan_to_num(x, nan=0.0, posinf=0.0, neginf=0.0)
                acc.update(x)
            if on_batch is not None:
                on_batch(len(batch))
    return acc


def _read(path: Path) -> np.ndarray:
    return read_tile(path, expected_size=None, allow_all_missing=True).data


def _read_batches(paths: list[Path], batch_size: int) -> Iterator[list[np.ndarray]]:
    chunks = [paths[i : i + batch_size] for i in range(0, len(paths), batch_size)]
    # rasterio releases the GIL while decoding: read the next batch during this one's compute,
    # and never more than one batch ahead, so memory stays bounded.
    with ThreadPoolExecutor(max_workers=2) as pool:
        ahead = [pool.submit(_read, p) for p in chunks[0]]
        for i in range(len(chunks)):
            current = ahead
            ahead = [pool.submit(_read, p) for p in chunks[i + 1]] if i + 1 < len(chunks) else []
            yield [f.result() for f in current]


def _by_shape(arrays: list[np.ndarray]) -> list[np.ndarray]:
    groups: dict[tuple[int, ...], list[np.ndarray]] = {}
    for a in arrays:
        groups.setdefault(a.shape, []).append(a)
    return [np.stack(g) for g in groups.values()]


def to_band_stats(
    acc: StatsAccumulator, config: FeatureConfig, levels: Sequence[float], extra: dict[str, Any]
) -> BandStats:
    """Finish an accumulator into :class:`BandStats` recording the options used."""
    rel, absolute = error_bound(acc.bins)
    q = acc.quantiles(levels)
    names = acc.channels

    def per_channel(values: np.ndarray) -> dict[str, float]:
        return {c: float(v) for c, v in zip(names, values, strict=True)}

    options = {
        "mask_using_qa": config.mask_using_qa,
        "mask_using_water_mask": config.mask_using_water_mask,
        "fill_value": config.fill_value,
        "adjustment": config.adjustment,
        "dem_clip_zero": config.dem_clip_zero,
        "missing_bands": config.missing_bands,
        "method": "kelpseg",
        "index_constants": dict(config.index_constants),
        "tiles": acc.tiles,
        "n_pixels": int(acc.count[0] + acc.nonfinite[0]) if names else 0,
        "masked_or_missing": {c: int(v) for c, v in zip(names, acc.nonfinite, strict=True)},
        "quantile_method": "float32 bit-pattern histogram, bucket midpoint, inverted_cdf rank",
        "quantile_bins": acc.bins,
        "quantile_relative_error": rel,
        "quantile_absolute_error": absolute,
        "quantile_error_bound": "|estimate - exact| <= relative_error * |exact| + absolute_error",
        **extra,
        "kelpseg_version": __version__,
    }
    return BandStats(
        channels=list(names),
        min=per_channel(acc.min),
        max=per_channel(acc.max),
        mean=per_channel(np.where(acc.count > 0, acc.mean, np.nan)),
        std=per_channel(acc.std),
        count={c: int(v) for c, v in zip(names, acc.count, strict=True)},
        quantiles={level: per_channel(values) for level, values in q.items()},
        options=options,
    )


def _partition_stats(
    paths: list[str],
    config: dict[str, Any],
    device: str,
    batch_size: int,
    bins: int,
    torch_threads: int | None,
) -> StatsAccumulator:
    if torch_threads:
        torch.set_num_threads(torch_threads)
    cfg = FeatureConfig.model_validate(config)
    return partial_stats(paths, cfg, device=device, batch_size=batch_size, quantile_bins=bins)


def _dask_stats(
    paths: list[Path],
    config: FeatureConfig,
    scheduler: str,
    device: str,
    batch_size: int,
    bins: int,
    partition_size: int,
    advance: Callable[[int], None],
) -> StatsAccumulator:
    try:
        from distributed import Client, LocalCluster, as_completed
    except ImportError as exc:  # pragma: no cover - the data extra is installed with train
        raise MissingExtraError("data", "distributed") from exc
    cluster = None
    try:
        if scheduler == "local":
            cluster = LocalCluster(processes=True, threads_per_worker=1, dashboard_address=":0")
            client = Client(cluster)
        else:
            client = Client(scheduler, timeout="20s")
    except (OSError, TimeoutError) as exc:
        raise KelpsegError(f"cannot reach the Dask scheduler ({exc})", scheduler) from exc
    threads = 1 if cluster is not None else None
    try:
        parts = [
            [str(p) for p in paths[i : i + partition_size]]
            for i in range(0, len(paths), partition_size)
        ]
        # Bind the settings first: Client.map has its own ``batch_size`` keyword.
        task = partial(
            _partition_stats,
            config=config.model_dump(mode="json"),
            device=device,
            batch_size=batch_size,
            bins=bins,
            torch_threads=threads,
        )
        futures = client.map(task, parts, pure=False)
        acc: StatsAccumulator | None = None
        for future in as_completed(futures):
            part: StatsAccumulator = future.result()
            future.release()
            acc = part if acc is None else acc.merge(part)
            advance(part.tiles)
        assert acc is not None
        return acc
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
