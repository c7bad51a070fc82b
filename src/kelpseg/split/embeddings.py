"""Tile embeddings for AOI grouping: a registry of embedders over the DEM layer, with a cache.

The DEM is the steadiest layer of a tile (no clouds, stripes or saturation), so tiles of the
same area have near-identical DEM embeddings. Embedders map a batch of DEMs (n, H, W) int16 to
vectors (n, d); :func:`compute_embeddings` L2-normalises them, zeroes tiles whose DEM holds no
structure, and caches the result under the output folder so that re-grouping with another
threshold does not read a tile again.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from kelpseg.console import progress
from kelpseg.errors import KelpsegError
from kelpseg.io.atomic import atomic_path
from kelpseg.io.tiles import BAND_NAMES, read_tile
from kelpseg.split.config import SplitConfig
from kelpseg.split.dem_embedder import DemEmbedder, dem_structure

# Bump when an embedder's output changes, so old caches are not reused.
EMBEDDING_VERSION = 1
_CACHE_KEY = b"kelpseg_cache_key"
_DEM = BAND_NAMES.index("DEM")


class Embedder(Protocol):
    """Maps a batch of DEM layers (n, H, W) int16 to feature vectors (n, d) float32.

    ``batch_size`` is how many tiles it wants per call (it bounds memory).
    """

    batch_size: int

    def __call__(self, dems: np.ndarray) -> np.ndarray: ...


@dataclass(frozen=True)
class EmbedderSpec:
    """One registry entry: how to build the embedder and its calibrated default threshold.

    Attributes:
        build: ``build(model_name, config)``; ``model_name`` is the part after ``:`` ('' if none).
        default_threshold: cosine threshold used when ``SplitConfig.threshold`` is ``None``.
        options: the config section that changes the vectors (part of the cache key).
        needs_model: the name takes a model after a colon (``timm:resnet18``).
    """

    build: Callable[[str, SplitConfig], Embedder]
    default_threshold: float
    options: Callable[[SplitConfig], dict[str, Any]]
    needs_model: bool = False


@dataclass(frozen=True)
class Embeddings:
    """Embeddings of a set of tiles.

    Attributes:
        tile_ids: tile ids, in the order of the rows of ``vectors``.
        vectors: (n, d) float32, L2-normalised rows; all-zero rows for uninformative tiles.
        informative: (n,) bool, False where the DEM holds no structure to group on.
        embedder: the embedder name that produced them.
    """

    tile_ids: np.ndarray
    vectors: np.ndarray
    informative: np.ndarray
    embedder: str


def _dem_options(config: SplitConfig) -> dict[str, Any]:
    return config.dem.model_dump(mode="json")


def _timm_options(config: SplitConfig) -> dict[str, Any]:
    opts = config.timm.model_dump(mode="json", exclude={"batch_size", "device"})
    if config.timm.checkpoint is not None and config.timm.checkpoint.is_file():
        opts["checkpoint_mtime"] = config.timm.checkpoint.stat().st_mtime_ns
    return opts


def _build_dem(model_name: str, config: SplitConfig) -> Embedder:
    return DemEmbedder(config.dem)


def _build_timm(model_name: str, config: SplitConfig) -> Embedder:
    # Imported here: torch and timm are the optional 'train' extra.
    from kelpseg.split.timm_embedder import TimmEmbedder

    return TimmEmbedder(model_name, config.timm)


EMBEDDERS: dict[str, EmbedderSpec] = {
    "dem": EmbedderSpec(_build_dem, 0.90, _dem_options),
    # 0.97 is the seed's threshold on ImageNet CNN features of the DEM.
    "timm": EmbedderSpec(_build_timm, 0.97, _timm_options, needs_model=True),
}


def resolve_embedder(name: str) -> tuple[EmbedderSpec, str]:
    """Registry entry and model name of ``'dem'`` or ``'timm:<model_name>'``."""
    key, _, model = name.partition(":")
    spec = EMBEDDERS.get(key)
    if spec is None or spec.needs_model != bool(model):
        known = ", ".join(
            f"'{k}:<model_name>'" if s.needs_model else f"'{k}'" for k, s in EMBEDDERS.items()
        )
        raise KelpsegError(f"config key 'embedder': unknown embedder {name!r}; use {known}")
    return spec, model


def grouping_threshold(config: SplitConfig) -> float:
    """The configured threshold, or the embedder's calibrated default."""
    if config.threshold is not None:
        return config.threshold
    return resolve_embedder(config.embedder)[0].default_threshold


def read_dem(path: str | os.PathLike[str]) -> np.ndarray:
    """The DEM layer of a satellite tile, (H, W) int16."""
    tile = read_tile(path, expected_size=None, allow_all_missing=True)
    return np.ascontiguousarray(tile.data[_DEM])


def cache_paths(cache_dir: str | os.PathLike[str], embedder: str) -> tuple[Path, Path]:
    """``embeddings_<name>.npy`` and ``embeddings_<name>.parquet`` for an embedder name."""
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "-", embedder)
    base = Path(cache_dir)
    return base / f"embeddings_{safe}.npy", base / f"embeddings_{safe}.parquet"


def cache_key(frame: pd.DataFrame, config: SplitConfig) -> str:
    """Hash of everything the embeddings depend on: tiles (path, size, mtime) and options."""
    spec, _ = resolve_embedder(config.embedder)
    tiles = []
    for tile_id, image in zip(frame["tile_id"], frame["image_path"], strict=True):
        try:
            stat = Path(str(image)).stat()
            tiles.append((str(tile_id), str(image), stat.st_size, stat.st_mtime_ns))
        except OSError:
            tiles.append((str(tile_id), str(image), -1, -1))
    payload = {
        "version": EMBEDDING_VERSION,
        "embedder": config.embedder,
        "options": spec.options(config),
        "min_structure_pixels": config.min_structure_pixels,
        "tiles": tiles,
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def load_cached(cache_dir: str | os.PathLike[str], embedder: str, key: str) -> Embeddings | None:
    """Embeddings cached under ``cache_dir`` for ``key``, or ``None`` when absent or stale."""
    npy, table_path = cache_paths(cache_dir, embedder)
    if not (npy.is_file() and table_path.is_file()):
        return None
    try:
        table = pq.read_table(table_path)
        if (table.schema.metadata or {}).get(_CACHE_KEY) != key.encode():
            return None
        vectors = np.load(npy, allow_pickle=False)
    except (OSError, ValueError, pa.ArrowException):
        return None
    ids = np.asarray(table.column("tile_id").to_pylist(), dtype=object)
    if vectors.ndim != 2 or len(vectors) != len(ids):
        return None
    informative = np.asarray(table.column("informative").to_pylist(), dtype=bool)
    return Embeddings(ids, vectors, informative, embedder)


def save_cached(cache_dir: str | os.PathLike[str], emb: Embeddings, key: str) -> None:
    """Write embeddings with their key; the parquet (holding the key) is written last."""
    npy, table_path = cache_paths(cache_dir, emb.embedder)
    # Drop the old key first: a crash between the two writes then leaves no valid cache.
    table_path.unlink(missing_ok=True)
    with atomic_path(npy) as tmp, tmp.open("wb") as fh:
        np.save(fh, emb.vectors, allow_pickle=False)
    table = pa.table({"tile_id": list(emb.tile_ids), "informative": emb.informative.tolist()})
    table = table.replace_schema_metadata({_CACHE_KEY: key.encode()})
    with atomic_path(table_path) as tmp:
        pq.write_table(table, tmp)


def _dem_batches(paths: list[str], workers: int, batch: int) -> Iterator[list[np.ndarray]]:
    # Threads suffice: GDAL decodes with the GIL released.
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for start in range(0, len(paths), batch):
            yield list(pool.map(read_dem, paths[start : start + batch]))


def _embed_batch(embedder: Embedder, dems: list[np.ndarray], min_structure: int) -> np.ndarray:
    informative = np.array([dem_structure(d) >= min_structure for d in dems])
    shapes = {d.shape for d in dems}
    if len(shapes) == 1:
        vectors = np.asarray(embedder(np.stack(dems)), dtype=np.float32)
    else:  # tiles of several sizes: embed one by one
        vectors = np.concatenate([np.asarray(embedder(d[None]), np.float32) for d in dems])
    vectors[~informative] = 0.0
    return vectors


def normalise_rows(vectors: np.ndarray, eps: float = 1e-6) -> tuple[np.ndarray, np.ndarray]:
    """L2-normalised rows and a mask of rows whose norm exceeded ``eps`` (others set to 0)."""
    norms = np.linalg.norm(vectors, axis=1)
    ok = norms > eps
    out = np.zeros_like(vectors, dtype=np.float32)
    out[ok] = vectors[ok] / norms[ok, None]
    return out, ok


def compute_embeddings(
    frame: pd.DataFrame,
    config: SplitConfig,
    *,
    cache_dir: str | os.PathLike[str] | None = None,
    show_progress: bool = True,
) -> Embeddings:
    """Embed the DEM of every tile in ``frame`` (columns ``tile_id``, ``image_path``).

    Args:
        frame: one row per tile, train and test alike.
        config: embedder name and options, ``min_structure_pixels`` and ``workers``.
        cache_dir: folder of the cache; a cache whose key matches is loaded instead.
        show_progress: show a rich progress bar.

    Raises:
        KelpsegError: unknown embedder, or a tile that cannot be read (named).
    """
    spec, model = resolve_embedder(config.embedder)
    key = cache_key(frame, config) if cache_dir is not None else ""
    if cache_dir is not None and (hit := load_cached(cache_dir, config.embedder, key)):
        return hit
    embedder = spec.build(model, config)
    paths = [str(p) for p in frame["image_path"]]
    workers = config.workers or os.cpu_count() or 1
    parts = []
    with progress(disable=not show_progress) as bar:
        task = bar.add_task(f"embedding ({config.embedder})", total=len(paths))
        for dems in _dem_batches(paths, workers, embedder.batch_size):
            parts.append(_embed_batch(embedder, dems, config.min_structure_pixels))
            bar.advance(task, len(dems))
    raw = np.concatenate(parts) if parts else np.zeros((0, 1), np.float32)
    vectors, informative = normalise_rows(raw)
    ids = np.asarray([str(t) for t in frame["tile_id"]], dtype=object)
    emb = Embeddings(ids, vectors, informative, config.embedder)
    if cache_dir is not None:
        save_cached(cache_dir, emb, key)
    return emb
