"""The split stage end to end: tile table in, AOI groups and folds out, with reports.

Outputs under ``out_dir``:

- ``split.parquet``: the input table plus ``aoi_id``, ``dem_informative`` (False: the DEM
  holds no structure, so the tile is a group of its own), ``fold`` and ``subset`` (see
  :mod:`kelpseg.split.folds` for their meaning);
- ``fold_counts.parquet``: tiles, AOIs, kelp tiles and kelp pixels per fold;
- ``split_summary.json``: grouping, leak exposure, leakage check and fold summary;
- ``group_sizes.png``, ``sample_groups.png``; ``split_config.yaml``;
- ``embeddings_<embedder>.npy`` / ``.parquet``: the embedding cache.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from kelpseg.config import save_config
from kelpseg.errors import KelpsegError
from kelpseg.io.atomic import atomic_path
from kelpseg.io.catalog import load_catalog
from kelpseg.split.config import SplitConfig
from kelpseg.split.embeddings import compute_embeddings, grouping_threshold
from kelpseg.split.folds import FoldSummary, assign_folds
from kelpseg.split.grouping import Grouping, group_vectors
from kelpseg.split.report import (
    aois_spanning_folds,
    check_no_leakage,
    fold_counts,
    plot_group_sizes,
    plot_sample_groups,
)

SPLIT_FILE = "split.parquet"
FOLD_COUNTS_FILE = "fold_counts.parquet"
SUMMARY_FILE = "split_summary.json"
CONFIG_FILE = "split_config.yaml"
GROUP_SIZES_FILE = "group_sizes.png"
SAMPLE_GROUPS_FILE = "sample_groups.png"


@dataclass
class GroupSummary:
    """How tiles were grouped into AOIs, and the test set's leak exposure."""

    embedder: str
    threshold: float
    tiles: int
    informative_tiles: int
    groups: int
    singletons: int
    largest_group: int
    exploded_groups: int
    oversize_groups_left: int
    explode_rounds: int
    similar_pairs: int
    test_tiles: int
    test_tiles_sharing_aoi_with_train: int
    aois_shared_by_train_and_test: int
    embedding_seconds: float
    grouping_seconds: float


@dataclass
class SplitResult:
    """Outputs of :func:`split_tiles` (also written under ``out_dir``)."""

    out_dir: Path
    tiles: pd.DataFrame
    groups: GroupSummary
    folds: FoldSummary
    fold_counts: pd.DataFrame
    aois_spanning_folds: int


def load_tile_table(path: str | os.PathLike[str]) -> pd.DataFrame:
    """Read the EDA tile statistics (or a bare catalog) parquet; one row per tile id."""
    frame = load_catalog(path)
    if frame.empty:
        raise KelpsegError("the tile table has no rows", path)
    dup = frame["tile_id"][frame["tile_id"].duplicated()]
    if len(dup):
        raise KelpsegError(f"tile id {dup.iloc[0]!r} appears more than once", path)
    return frame


def aoi_frame(frame: pd.DataFrame, tile_ids: np.ndarray, grouping: Grouping) -> pd.DataFrame:
    """``frame`` with an ``aoi_id`` column taken from a grouping of ``tile_ids``."""
    lookup = pd.Series(grouping.labels, index=pd.Index([str(t) for t in tile_ids]))
    ids = frame["tile_id"].astype(str)
    missing = ~ids.isin(lookup.index)
    if missing.any():
        raise KelpsegError(f"tile {ids[missing].iloc[0]!r} has no embedding")
    out = frame.copy()
    out["aoi_id"] = lookup.reindex(ids.to_list()).to_numpy().astype(np.int64)
    return out


def leak_exposure(frame: pd.DataFrame) -> dict[str, int]:
    """How many test tiles share an AOI with training tiles (columns ``split``, ``aoi_id``)."""
    train_aois = set(frame.loc[frame["split"] == "train", "aoi_id"].tolist())
    test = frame[frame["split"] == "test"]
    shared = test["aoi_id"].isin(train_aois)
    return {
        "test_tiles": len(test),
        "test_tiles_sharing_aoi_with_train": int(shared.sum()),
        "aois_shared_by_train_and_test": int(test.loc[shared, "aoi_id"].nunique()),
    }


def group_tiles_by_aoi(
    frame: pd.DataFrame,
    config: SplitConfig,
    *,
    cache_dir: str | os.PathLike[str] | None = None,
    show_progress: bool = True,
) -> tuple[pd.DataFrame, GroupSummary]:
    """Add ``aoi_id`` to every tile (train and test), grouping by DEM embeddings.

    Args:
        frame: tiles with ``tile_id``, ``split``, ``image_path``.
        config: embedder, threshold, ``max_group_size``, ``explode_step``.
        cache_dir: where embeddings are cached (``None``: no cache).
        show_progress: show a progress bar while embedding.
    """
    start = time.perf_counter()
    emb = compute_embeddings(frame, config, cache_dir=cache_dir, show_progress=show_progress)
    embedded = time.perf_counter()
    threshold = grouping_threshold(config)
    grouping = group_vectors(
        emb.vectors,
        threshold,
        max_group_size=config.max_group_size,
        explode_step=config.explode_step,
        large_groups=config.large_groups,
    )
    out = aoi_frame(frame, emb.tile_ids, grouping)
    informative = dict(zip(emb.tile_ids.tolist(), emb.informative.tolist(), strict=True))
    out["dem_informative"] = out["tile_id"].astype(str).map(informative).astype(bool)
    sizes = grouping.sizes
    exposure = leak_exposure(out)
    summary = GroupSummary(
        embedder=config.embedder,
        threshold=threshold,
        tiles=len(out),
        informative_tiles=int(emb.informative.sum()),
        groups=len(sizes),
        singletons=int((sizes == 1).sum()),
        largest_group=int(sizes.max()) if len(sizes) else 0,
        exploded_groups=grouping.exploded,
        oversize_groups_left=grouping.oversize,
        explode_rounds=grouping.rounds,
        similar_pairs=grouping.pairs,
        embedding_seconds=round(embedded - start, 3),
        grouping_seconds=round(time.perf_counter() - embedded, 3),
        **exposure,
    )
    return out, summary


def _json_ready(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _json_ready(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_ready(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


def write_outputs(result: SplitResult, config: SplitConfig, sample_seed: int = 0) -> None:
    """Write the split table, fold counts, summary JSON, plots and config under ``out_dir``."""
    out = result.out_dir
    with atomic_path(out / SPLIT_FILE) as tmp:
        result.tiles.to_parquet(tmp, index=False)
    with atomic_path(out / FOLD_COUNTS_FILE) as tmp:
        result.fold_counts.to_parquet(tmp, index=False)
    summary = {
        "groups": asdict(result.groups),
        "folds": asdict(result.folds),
        "aois_spanning_folds": result.aois_spanning_folds,
        "leakage_check": "passed" if result.aois_spanning_folds == 0 else "leaky (random mode)",
    }
    with atomic_path(out / SUMMARY_FILE) as tmp:
        tmp.write_text(json.dumps(_json_ready(summary), indent=2))
    plot_group_sizes(result.tiles, out / GROUP_SIZES_FILE)
    plot_sample_groups(result.tiles, out / SAMPLE_GROUPS_FILE, config.sample_groups)
    save_config(config, out / CONFIG_FILE)


def split_tiles(
    tiles: pd.DataFrame | str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    config: SplitConfig | None = None,
    *,
    exclude: Iterable[str] = (),
    show_progress: bool = True,
) -> SplitResult:
    """Group tiles by AOI, assign folds, check leakage and write everything under ``out_dir``.

    Args:
        tiles: the EDA tile statistics (frame or parquet path): catalog columns plus the
            stratification columns (``qa_ok``, ``has_kelp`` ... by default).
        out_dir: output folder (also holds the embedding cache).
        config: split settings (default: :class:`SplitConfig` defaults).
        exclude: training tile ids kept out of every fold (see
            :func:`kelpseg.split.folds.read_exclusion_list`).
        show_progress: show a progress bar while embedding.

    Raises:
        KelpsegError: bad input, too few AOIs for the folds, or a failed leakage check.
    """
    config = config or SplitConfig()
    frame = tiles if isinstance(tiles, pd.DataFrame) else load_tile_table(tiles)
    out = Path(out_dir)
    grouped, groups = group_tiles_by_aoi(frame, config, cache_dir=out, show_progress=show_progress)
    folded, folds = assign_folds(grouped, config, exclude)
    if config.mode != "random":
        check_no_leakage(folded)
    spanning = len(aois_spanning_folds(folded))
    result = SplitResult(out, folded, groups, folds, fold_counts(folded), spanning)
    write_outputs(result, config)
    return result
