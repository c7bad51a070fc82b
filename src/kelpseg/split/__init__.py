"""AOI grouping and leakage-free splits: tiles of the same area never straddle two folds.

Typical use from a notebook::

    from kelpseg.split import SplitConfig, split_tiles

    result = split_tiles("eda/tile_stats.parquet", "split", SplitConfig(k=10))
    result.tiles[["tile_id", "aoi_id", "fold"]]
"""

from kelpseg.split.config import DemEmbedderConfig, SplitConfig, TimmEmbedderConfig
from kelpseg.split.dem_embedder import DemEmbedder
from kelpseg.split.embeddings import (
    EMBEDDERS,
    Embeddings,
    compute_embeddings,
    grouping_threshold,
)
from kelpseg.split.folds import (
    FOLD_UNUSED,
    FoldSummary,
    assign_folds,
    read_exclusion_list,
    stratification_labels,
)
from kelpseg.split.grouping import (
    Grouping,
    Pairs,
    UnionFind,
    bruteforce_pairs,
    group_vectors,
    similar_pairs,
)
from kelpseg.split.pipeline import (
    GroupSummary,
    SplitResult,
    group_tiles_by_aoi,
    leak_exposure,
    load_tile_table,
    split_tiles,
)
from kelpseg.split.report import (
    aois_spanning_folds,
    check_no_leakage,
    fold_counts,
    grouping_scores,
)

__all__ = [
    "EMBEDDERS",
    "FOLD_UNUSED",
    "DemEmbedder",
    "DemEmbedderConfig",
    "Embeddings",
    "FoldSummary",
    "GroupSummary",
    "Grouping",
    "Pairs",
    "SplitConfig",
    "SplitResult",
    "TimmEmbedderConfig",
    "UnionFind",
    "aois_spanning_folds",
    "assign_folds",
    "bruteforce_pairs",
    "check_no_leakage",
    "compute_embeddings",
    "fold_counts",
    "group_tiles_by_aoi",
    "group_vectors",
    "grouping_scores",
    "grouping_threshold",
    "leak_exposure",
    "load_tile_table",
    "read_exclusion_list",
    "similar_pairs",
    "split_tiles",
    "stratification_labels",
]
