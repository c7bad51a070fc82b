"""Folds over training tiles: stratified group k-fold by AOI, a random split, or a hold-out.

Output columns added to the tile table:

- ``fold`` (int): ``kfold`` / ``random``: 0..k-1, the fold in which a training tile is validated.
  ``holdout``: 0 = validation, 1 = training. -1 for every tile that is neither trained nor
  validated on: tiles of the test split, excluded training tiles, and the held-out test part.
- ``subset`` (str): ``train``, ``val`` (holdout only), ``holdout``, ``test`` or ``excluded``;
  it tells the -1 tiles apart.

A trainer for fold ``f`` trains on ``fold >= 0 & fold != f`` and validates on ``fold == f``;
with a hold-out split ``f = 0`` does the same (this is how ``kelpseg train`` reads it: training
tiles with fold -1 are its hold-out set).
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from kelpseg.errors import KelpsegError
from kelpseg.split._extras import sklearn
from kelpseg.split.config import SplitConfig

FOLD_UNUSED = -1  # never trained or validated on: test split, excluded, held-out test
HOLDOUT_PARTS = 20  # hold-out fractions are rounded to multiples of 1/20
_MAX_LEVELS = 10  # numeric columns with more distinct values are binned


@dataclass
class FoldSummary:
    """What :func:`assign_folds` did.

    Attributes:
        mode: kfold, random or holdout.
        assigned: training tiles given a fold.
        excluded: training tiles dropped by the exclusion list or ``exclude_kelp_above``.
        unknown_excluded: ids in the exclusion list that are not in the table.
        strata: training tiles per stratification label.
        excluded_high_kelp: of ``excluded``, tiles above ``exclude_kelp_above``.
    """

    mode: str
    assigned: int
    excluded: int
    unknown_excluded: list[str] = field(default_factory=list)
    strata: dict[str, int] = field(default_factory=dict)
    excluded_high_kelp: int = 0


def read_exclusion_list(path: str | os.PathLike[str]) -> list[str]:
    """Tile ids to exclude: a CSV with a ``tile_id`` column, or one id per line.

    Blank lines and lines starting with ``#`` are ignored; on a plain line, only the first
    comma- or space-separated field counts (so ``AA001, mislabelled`` works).
    """
    path = Path(path)
    if not path.is_file():
        raise KelpsegError("exclusion list does not exist", path)
    try:
        lines = path.read_text().splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise KelpsegError(f"cannot read exclusion list ({exc})", path) from exc
    lines = [ln.strip() for ln in lines if ln.strip() and not ln.lstrip().startswith("#")]
    if lines and "tile_id" in [c.strip() for c in lines[0].split(",")]:
        try:
            table = pd.read_csv(path, dtype=str, comment="#", keep_default_na=False)
        except (ValueError, pd.errors.ParserError) as exc:
            raise KelpsegError(f"cannot parse exclusion CSV ({exc})", path) from exc
        table.columns = [c.strip() for c in table.columns]
        ids = [t.strip() for t in table["tile_id"].tolist()]
    else:
        ids = [ln.replace(",", " ").split()[0] for ln in lines]
    return [t for t in dict.fromkeys(ids) if t]


def _column_levels(values: pd.Series, name: str, bins: int) -> pd.Series:
    """One stratification column as string levels; many-valued numbers become quantile bins."""
    if pd.api.types.is_bool_dtype(values):
        levels = values.astype("Int64").astype("string")
    elif pd.api.types.is_numeric_dtype(values) and values.nunique(dropna=True) > _MAX_LEVELS:
        levels = pd.qcut(values.astype(float), bins, labels=False, duplicates="drop")
        levels = levels.astype("Int64").astype("string")
    else:
        levels = values.astype("string")
    return (name + "=" + levels.fillna("na")).astype(str)


def stratification_labels(
    frame: pd.DataFrame, columns: list[str], bins: int = 4, min_count: int = 1
) -> np.ndarray:
    """One label per row combining ``columns``; labels rarer than ``min_count`` merge as 'rare'.

    Raises:
        KelpsegError: a column is missing from ``frame``.
    """
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise KelpsegError(
            f"config key 'stratify': column {missing[0]!r} is not in the tile table "
            "(run kelpseg eda stats, or change split.stratify)"
        )
    if not columns:
        return np.full(len(frame), "all", dtype=object)
    parts = [_column_levels(frame[c], c, bins) for c in columns]
    labels = parts[0]
    for part in parts[1:]:
        labels = labels + "|" + part
    counts = labels.value_counts()
    rare = labels.map(counts).to_numpy() < min_count
    out = labels.to_numpy(dtype=object)
    out[rare] = "rare"
    return out


def _kfold(y: np.ndarray, groups: np.ndarray | None, k: int, seed: int) -> np.ndarray:
    """Fold index per row, from scikit-learn's stratified (group) k-fold."""
    folds = np.full(len(y), -1, dtype=np.int64)
    selection = sklearn("sklearn.model_selection")
    if groups is None:
        splitter = selection.StratifiedKFold(n_splits=k, shuffle=True, random_state=seed)
        parts = splitter.split(np.zeros(len(y)), y)
    else:
        splitter = selection.StratifiedGroupKFold(n_splits=k, shuffle=True, random_state=seed)
        parts = splitter.split(np.zeros(len(y)), y, groups)
    with warnings.catch_warnings():
        # "The least populated class has only n members": expected with rare label mixes.
        warnings.simplefilter("ignore", UserWarning)
        for fold, (_, val) in enumerate(parts):
            folds[val] = fold
    return folds


def majority_labels(labels: np.ndarray, groups: np.ndarray) -> pd.Series:
    """Each group's most common label (ties: the label seen first), indexed by group."""
    frame = pd.DataFrame({"group": groups, "label": labels})
    counts = frame.groupby(["group", "label"], sort=False).size().reset_index(name="n")
    counts = counts.sort_values(["group", "n"], ascending=[True, False], kind="stable")
    return counts.drop_duplicates("group").set_index("group")["label"]


def _majority_kfold(labels: np.ndarray, groups: np.ndarray, k: int, seed: int) -> np.ndarray:
    """The seed's folds: stratified k-fold over AOIs, each labelled by its majority label."""
    per_group = majority_labels(labels, groups)
    # scikit-learn refuses when no label has k groups; labels held by fewer than k groups merge
    # as 'rare' first (the seed's data never needed it: its 5,635 tiles form hundreds of AOIs).
    counts = per_group.map(per_group.value_counts())
    if (counts < k).all():
        per_group = per_group.where(counts >= k, "rare")
    group_folds = _kfold(per_group.to_numpy(), None, k, seed)
    lookup = pd.Series(group_folds, index=per_group.index)
    return lookup.reindex(groups).to_numpy().astype(np.int64)


def high_kelp_tiles(frame: pd.DataFrame, limit: float | None) -> np.ndarray:
    """Rows whose ``kelp_pixels_pct`` is above ``limit`` (none when ``limit`` is None).

    Raises:
        KelpsegError: ``limit`` is set and the table has no ``kelp_pixels_pct`` column.
    """
    if limit is None:
        return np.zeros(len(frame), dtype=bool)
    if "kelp_pixels_pct" not in frame.columns:
        raise KelpsegError(
            "config key 'exclude_kelp_above': column 'kelp_pixels_pct' is not in the tile "
            "table (run kelpseg eda stats)"
        )
    share = pd.to_numeric(frame["kelp_pixels_pct"], errors="coerce").astype(float)
    return (share > limit).fillna(False).to_numpy(dtype=bool)


def _holdout_parts(fractions: tuple[float, float, float], n_groups: int) -> tuple[int, int, int]:
    parts = min(HOLDOUT_PARTS, n_groups)
    val = max(1, round(fractions[1] * parts))
    test = max(1, round(fractions[2] * parts)) if fractions[2] > 0 else 0
    if parts - val - test < 1:
        raise KelpsegError(
            f"config key 'holdout': {n_groups} AOI groups are too few for fractions {fractions}"
        )
    return parts, val, test


def _holdout(y: np.ndarray, groups: np.ndarray, config: SplitConfig) -> np.ndarray:
    """Subset per row (train, val or holdout); whole groups stay together."""
    parts, n_val, n_test = _holdout_parts(config.holdout, len(np.unique(groups)))
    part = _kfold(y, groups, parts, config.seed)
    subset = np.full(len(y), "train", dtype=object)
    subset[part < n_val] = "val"
    subset[(part >= n_val) & (part < n_val + n_test)] = "holdout"
    return subset


def _check_counts(n_tiles: int, n_groups: int, config: SplitConfig) -> None:
    if config.mode == "random" and n_tiles < config.k:
        raise KelpsegError(f"config key 'k': {n_tiles} training tiles, fewer than k={config.k}")
    if config.mode == "kfold" and n_groups < config.k:
        raise KelpsegError(
            f"config key 'k': only {n_groups} AOI groups among training tiles, fewer than "
            f"k={config.k} folds; lower k"
        )
    if config.mode == "holdout" and n_groups < 2:
        raise KelpsegError("config key 'holdout': need at least 2 AOI groups of training tiles")


def assign_folds(
    frame: pd.DataFrame, config: SplitConfig, exclude: Iterable[str] = ()
) -> tuple[pd.DataFrame, FoldSummary]:
    """Add ``fold`` and ``subset`` to a tile table with ``tile_id``, ``split``, ``aoi_id``.

    Args:
        frame: one row per tile (train and test); stratification columns for training rows.
        config: ``mode``, ``k``, ``stratify``, ``stratify_bins``, ``holdout``, ``seed``.
        exclude: training tile ids kept out of every fold (e.g. known wrong labels).

    Returns:
        The table with the two columns, and a summary.
    """
    out = frame.copy()
    excluded = set(map(str, exclude))
    ids = out["tile_id"].astype(str)
    unknown = sorted(excluded - set(ids))
    is_train = (out["split"].astype(str) == "train").to_numpy()
    high_kelp = is_train & high_kelp_tiles(out, config.exclude_kelp_above)
    is_excluded = (is_train & ids.isin(excluded).to_numpy()) | high_kelp
    use = is_train & ~is_excluded
    train = out.loc[use]
    groups = train["aoi_id"].to_numpy()
    _check_counts(len(train), len(np.unique(groups)), config)
    majority = config.group_stratification == "majority" and config.mode == "kfold"
    # The seed merged no rare labels: its AOI-level stratified k-fold only warns about them.
    min_count = 1 if majority else config.k if config.mode != "holdout" else HOLDOUT_PARTS
    y = stratification_labels(train, config.stratify, config.stratify_bins, min_count)
    subset = np.where(is_train, "train", "test").astype(object)
    subset[is_excluded] = "excluded"
    fold = np.full(len(out), FOLD_UNUSED, dtype=np.int64)
    if config.mode == "holdout":
        parts = _holdout(y, groups, config)
        subset[use] = parts
        fold[use] = np.select([parts == "val", parts == "train"], [0, 1], FOLD_UNUSED)
    elif majority:
        fold[use] = _majority_kfold(y, groups, config.k, config.seed)
    else:
        fold[use] = _kfold(y, groups if config.mode == "kfold" else None, config.k, config.seed)
    out["fold"] = fold
    out["subset"] = pd.array(subset, dtype="string")
    strata = pd.Series(y).value_counts().sort_index()
    summary = FoldSummary(
        config.mode,
        int(use.sum()),
        int(is_excluded.sum()),
        unknown,
        {str(k): int(v) for k, v in strata.items()},
        int(high_kelp.sum()),
    )
    return out, summary
