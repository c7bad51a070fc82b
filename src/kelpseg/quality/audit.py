"""Label audit: rank training tiles by how much out-of-fold predictions disagree with labels.

A model that never saw a tile (its fold was held out) predicts what the image shows; where
the label says something else, either the model or the label is wrong. Wrong labels stand
out because the disagreement covers the whole tile, not a rim of pixels: the default score,
``dice_area``, is one minus the Dice of the predicted mask (``p >= threshold``) and the label
(scale-free, so a wrongly empty label on a small bed counts like one on a large bed), weighted
by ``S / (S + a)`` where ``S`` is label plus predicted kelp in pixels and ``a = area_scale`` (so
a tile whose whole disagreement is a handful of pixels, too few to tell a wrong label from a
blurry prediction, cannot reach the top). The mask, not the probabilities: a faint probability
floor spread over a tile (0.005 on 122,500 pixels is 600 "pixels" of kelp) makes the soft Dice
of every empty label zero. docs/data-quality.md compares the scores of :data:`SCORES`.

A tile's Dice hides a wrong bed drawn beside real ones (a compact 3,000-pixel region labelled
kelp that the model leaves empty, on a tile whose real beds it finds: Dice 0.4-0.6), and ranks
it below tiles whose thin real beds the model misses. So the audit also scores each connected
region (8-neighbours) of the label and of the predicted mask: a region's *unmatched interior* is
the number of its pixels at least ``core_depth`` pixels inside it (thin fringes have none) that
the other mask does not hold, times the share of the region the other mask misses. The tile's
``region`` score is ``v / (v + region_scale)`` for the largest such ``v``; ``dice_area_region``
is the mean of that and ``dice_area`` (their maximum let the tile score of every tile with a
large disagreement drown the region term: precision@n 0.33-0.42 against 0.67-0.75 on hard-mode
data, docs/data-quality.md).

Several out-of-fold predictions (a committee: say a network and a per-pixel tree model) can be
audited together. Each member scores every tile; ``combine: min`` ranks a tile by its smallest
score, so it reaches the top only when every member disagrees with its label: the consensus
filter of Brodley and Friedl (1999, "Identifying mislabeled training data", JAIR 11). Models of
different families make different mistakes (a tree's speckle over open water, a network's
blob on a cloud edge), while a wrong label disagrees with all of them.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import ndimage

from kelpseg.console import progress
from kelpseg.errors import KelpsegError
from kelpseg.evaluation.labels import LabelSet, LabelSource, resolve_labels
from kelpseg.inference.rasters import PredictionSource, as_source, binarize
from kelpseg.io.catalog import load_catalog
from kelpseg.quality.config import AuditConfig

PathLike = str | os.PathLike[str]
TileScore = Callable[[pd.DataFrame, AuditConfig], pd.Series]


@dataclass(frozen=True)
class TileAgreement:
    """Pixel counts of one tile's label ``y``, predicted mask ``m = p >= t`` and probability ``p``.

    Attributes:
        label_pixels: ``sum(y)``.
        pred_pixels: ``sum(m)``.
        overlap_pixels: ``sum(m y)``.
        pred_mass: ``sum(p)``.
        soft_overlap: ``sum(p y)``.
        missed_region: the largest unmatched interior (pixels) of a label region that the mask
            misses (see the module docstring).
        extra_region: the same for a predicted region that the label misses.
    """

    label_pixels: int
    pred_pixels: int
    overlap_pixels: int
    pred_mass: float
    soft_overlap: float
    missed_region: float = 0.0
    extra_region: float = 0.0

    @property
    def dice(self) -> float:
        """Dice of mask and label; 1.0 when both are empty."""
        total = self.pred_pixels + self.label_pixels
        return 1.0 if total == 0 else 2.0 * self.overlap_pixels / total

    @property
    def soft_dice(self) -> float:
        """``2 sum(p y) / (sum(p) + sum(y))``; 1.0 when both are empty."""
        total = self.pred_mass + self.label_pixels
        return 1.0 if total < 1e-6 else 2.0 * self.soft_overlap / total

    @property
    def missed_pixels(self) -> int:
        """Label kelp the mask does not hold."""
        return self.label_pixels - self.overlap_pixels

    @property
    def extra_pixels(self) -> int:
        """Predicted kelp the label does not hold."""
        return self.pred_pixels - self.overlap_pixels


def drop_small_blobs(mask: np.ndarray, min_pixels: int) -> np.ndarray:
    """``mask`` without its connected components (8-neighbours) of fewer than ``min_pixels``."""
    if min_pixels <= 1 or not mask.any():
        return mask
    labels, _ = ndimage.label(mask, structure=np.ones((3, 3)))
    keep = np.bincount(labels.ravel()) >= min_pixels
    keep[0] = False
    return np.asarray(keep[labels])


def unmatched_region(mask: np.ndarray, other: np.ndarray, core_depth: float) -> float:
    """The largest unmatched interior of a region of ``mask`` (8-connected) that ``other`` misses.

    For each region: its pixels at least ``core_depth`` pixels from its edge (Euclidean distance
    to the nearest pixel outside ``mask``) that ``other`` does not hold, times the share of the
    region's pixels that ``other`` does not hold. 0.0 when ``mask`` is empty.
    """
    if not mask.any():
        return 0.0
    regions, n = ndimage.label(mask, structure=np.ones((3, 3)))
    depth = ndimage.distance_transform_edt(mask)
    flat = regions.ravel()
    size = np.bincount(flat, minlength=n + 1)[1:]
    missed = np.bincount(flat, weights=(~other).ravel(), minlength=n + 1)[1:]
    core = np.bincount(flat, weights=((depth >= core_depth) & ~other).ravel(), minlength=n + 1)
    return float(np.max(core[1:] * missed / size))


def tile_agreement(
    prob: np.ndarray,
    label: np.ndarray,
    threshold: float,
    min_blob_pixels: int = 0,
    core_depth: float = 3.0,
) -> TileAgreement:
    """Agreement of one tile's probability raster with its 0/1 label.

    Predicted blobs smaller than ``min_blob_pixels`` are dropped (from the mask, and their
    probabilities from the soft sums) before comparing. ``core_depth`` sets which pixels are a
    region's interior (:func:`unmatched_region`).
    """
    if prob.shape != label.shape:
        raise KelpsegError(f"prediction {prob.shape} and label {label.shape} differ in size")
    p = np.asarray(prob, dtype=np.float64)
    y = np.asarray(label).astype(bool)
    mask = binarize(p, threshold)
    if min_blob_pixels > 1:
        kept = drop_small_blobs(mask, min_blob_pixels)
        p = np.where(mask & ~kept, 0.0, p)
        mask = kept
    return TileAgreement(
        int(y.sum()),
        int(mask.sum()),
        int((mask & y).sum()),
        float(p.sum()),
        float(p[y].sum()),
        unmatched_region(y, mask, core_depth),
        unmatched_region(mask, y, core_depth),
    )


def _weight(kelp: pd.Series, config: AuditConfig) -> pd.Series:
    return kelp / (kelp + config.area_scale)


def _dice_area_score(table: pd.DataFrame, config: AuditConfig) -> pd.Series:
    kelp = table["label_pixels"] + table["pred_pixels"]
    return (1.0 - table["dice"]) * _weight(kelp, config)


def _soft_dice_area_score(table: pd.DataFrame, config: AuditConfig) -> pd.Series:
    kelp = table["label_pixels"] + table["pred_mass"]
    return (1.0 - table["soft_dice"]) * _weight(kelp, config)


def _region_score(table: pd.DataFrame, config: AuditConfig) -> pd.Series:
    worst = table[["missed_region", "extra_region"]].max(axis=1).astype("float64")
    return worst / (worst + config.region_scale)


def _dice_area_region_score(table: pd.DataFrame, config: AuditConfig) -> pd.Series:
    return 0.5 * (_dice_area_score(table, config) + _region_score(table, config))


def _dice_score(table: pd.DataFrame, config: AuditConfig) -> pd.Series:
    return 1.0 - table["dice"]


def _area_score(table: pd.DataFrame, config: AuditConfig) -> pd.Series:
    return (table["missed_pixels"] + table["extra_pixels"]).astype("float64")


#: Disagreement scores by the name users give in ``AuditConfig.score``; higher = worse label.
SCORES: dict[str, TileScore] = {
    "dice_area": _dice_area_score,
    "soft_dice_area": _soft_dice_area_score,
    "region": _region_score,
    "dice_area_region": _dice_area_region_score,
    "dice": _dice_score,
    "area": _area_score,
}

RANKING_COLUMNS = (
    "rank",
    "tile_id",
    "fold",
    "score",
    "flagged",
    "dice",
    "soft_dice",
    "label_pixels",
    "pred_pixels",
    "missed_pixels",
    "extra_pixels",
    "pred_mass",
    "missed_region",
    "extra_region",
)

#: How a committee's scores become one per tile (``AuditConfig.combine``).
COMBINE_RULES = ("min", "mean", "mean_prob")


@dataclass
class AuditResult:
    """The ranking of audited tiles (worst first) and what could not be audited.

    Attributes:
        ranking: one row per tile, columns ``RANKING_COLUMNS`` (and a committee's
            ``score_0, score_1, ...``), worst label first.
        config: the settings used.
        labels: where labels and tiles were found (for the gallery).
        unpredicted: labelled tiles in scope without a prediction.
    """

    ranking: pd.DataFrame
    config: AuditConfig
    labels: LabelSet
    unpredicted: list[str]

    @property
    def flagged(self) -> list[str]:
        """Ids of the flagged tiles, worst first (the exclusion list)."""
        return [str(t) for t in self.ranking.loc[self.ranking["flagged"], "tile_id"]]


def rank_tiles(table: pd.DataFrame, config: AuditConfig) -> pd.DataFrame:
    """Score, sort (worst first, ties by tile id) and flag a table of :class:`TileAgreement` rows.

    Raises:
        KelpsegError: unknown ``config.score``.
    """
    if "score" not in table.columns:
        table = table.assign(score=score_table(table, config))
    table = table.sort_values(["score", "tile_id"], ascending=[False, True], ignore_index=True)
    table["rank"] = np.arange(1, len(table) + 1, dtype=np.int64)
    table["flagged"] = (table["rank"] <= config.top) & (table["score"] >= config.min_score)
    if "fold" not in table.columns:
        table["fold"] = pd.Series(pd.NA, index=table.index, dtype="Int64")
    members = sorted(c for c in table.columns if c.startswith("score_"))
    return table[[*RANKING_COLUMNS, *members]]


def score_table(table: pd.DataFrame, config: AuditConfig) -> pd.Series:
    """``config.score`` of every row of a table of :class:`TileAgreement` columns.

    Raises:
        KelpsegError: unknown ``config.score``.
    """
    if config.score not in SCORES:
        raise KelpsegError(f"unknown score {config.score!r}; known: {', '.join(SCORES)}", "score")
    return SCORES[config.score](table, config).astype("float64")


class MeanPredictions(Mapping[str, np.ndarray]):
    """The per-pixel mean of several prediction sources, over the tiles they all hold."""

    def __init__(self, sources: Sequence[PredictionSource]) -> None:
        self.sources = list(sources)
        keys = set(self.sources[0]).intersection(*self.sources[1:])
        self._ids = sorted(str(k) for k in keys)
        self._known = set(self._ids)

    def members(self, tile_id: str) -> list[np.ndarray]:
        """Each source's prediction of one tile, as float64.

        Raises:
            KeyError: a tile not held by every source.
            KelpsegError: the sources' predictions differ in size.
        """
        if tile_id not in self._known:
            raise KeyError(tile_id)
        arrays = [np.asarray(s[tile_id], dtype=np.float64) for s in self.sources]
        if len({a.shape for a in arrays}) > 1:
            raise KelpsegError(f"committee predictions of tile {tile_id} differ in size")
        return arrays

    def __getitem__(self, tile_id: str) -> np.ndarray:
        return np.mean(self.members(tile_id), axis=0)

    def __iter__(self) -> Iterator[str]:
        return iter(self._ids)

    def __len__(self) -> int:
        return len(self._ids)

    def __contains__(self, tile_id: object) -> bool:
        return tile_id in self._known


def as_committee(
    predictions: PredictionSource | PathLike | Sequence[PredictionSource | PathLike],
) -> list[PredictionSource]:
    """One prediction source per committee member (a single source is a committee of one)."""
    if isinstance(predictions, Mapping | str | os.PathLike):
        return [as_source(predictions)]
    members = [as_source(p) for p in predictions]
    if not members:
        raise KelpsegError("give at least one prediction folder")
    return members


def consensus_source(members: Sequence[PredictionSource]) -> PredictionSource:
    """What a committee shows in the gallery: its one member, or the members' mean."""
    return members[0] if len(members) == 1 else MeanPredictions(members)


def _folds(data: LabelSource) -> dict[str, int] | None:
    frame = None
    if isinstance(data, pd.DataFrame):
        frame = data
    elif isinstance(data, str | os.PathLike) and Path(data).suffix == ".parquet":
        frame = load_catalog(data)
    if frame is None or "fold" not in frame.columns:
        return None
    folds = pd.to_numeric(frame["fold"], errors="coerce")
    return {str(t): int(f) for t, f in zip(frame["tile_id"], folds, strict=True) if pd.notna(f)}


def _scope(labels: LabelSet, folds: dict[str, int] | None, fold: int | None) -> list[str]:
    ids = labels.tile_ids
    if fold is None:
        return ids
    if folds is None:
        raise KelpsegError("auditing one fold needs a split catalog with a 'fold' column", "fold")
    return [t for t in ids if folds.get(t) == fold]


def audit_labels(
    predictions: PredictionSource | PathLike | Sequence[PredictionSource | PathLike],
    data: LabelSource,
    config: AuditConfig | None = None,
    *,
    show_progress: bool = True,
) -> AuditResult:
    """Rank labelled tiles by disagreement with out-of-fold predictions.

    Args:
        predictions: folder of ``<tile_id>_prob.tif`` (or ``_kelp.tif``) files, or a mapping
            ``tile_id -> (H, W)`` probabilities; or a list of them (a committee, combined by
            ``config.combine``; the ranking's agreement columns are then those of the
            members' mean and ``score_0, score_1, ...`` hold each member's score). Each must
            come from a model that did not train on the tile (out-of-fold), or the audit only
            finds what the model missed.
        data: the labels: split catalog parquet (its ``fold`` column enables ``config.fold``),
            dataset folder, label folder or mapping.
        config: score, gallery size, flagging and fold.
        show_progress: draw a progress bar.

    Raises:
        KelpsegError: no labelled tile in scope has a prediction.
    """
    config = config or AuditConfig()
    members = as_committee(predictions)
    committee = MeanPredictions(members) if len(members) > 1 else None
    source: PredictionSource = committee if committee is not None else members[0]
    labels = resolve_labels(data)
    folds = _folds(data)
    scope = _scope(labels, folds, config.fold)
    ids = [t for t in scope if t in source]
    if not ids:
        raise KelpsegError(f"none of {len(scope)} labelled tiles in scope has a prediction")
    n_rows = 1 + (len(members) if committee is not None else 0)  # the mean, then each member
    rows: list[list[dict[str, object]]] = [[] for _ in range(n_rows)]
    with progress(disable=not show_progress) as bar:
        task = bar.add_task("auditing labels", total=len(ids))
        for tile_id in ids:
            label = labels.label(tile_id)
            # A committee's members are read once; their mean is the agreement shown.
            probs = committee.members(tile_id) if committee is not None else []
            mean = np.mean(probs, axis=0) if probs else source[tile_id]
            for i, prob in enumerate([mean, *probs]):
                agreement = tile_agreement(
                    prob, label, config.threshold, config.min_blob_pixels, config.core_depth
                )
                rows[i].append(_row(tile_id, agreement, folds))
            bar.advance(task)
    tables = [pd.DataFrame(r).astype({"fold": "Int64", "tile_id": "string"}) for r in rows]
    table = _combine(tables[0], tables[1:], config)
    missing = [t for t in scope if t not in source]
    return AuditResult(rank_tiles(table, config), config, labels, missing)


def _combine(mean: pd.DataFrame, members: list[pd.DataFrame], config: AuditConfig) -> pd.DataFrame:
    """The mean's agreement table with the committee's score (``config.combine``)."""
    if not members:
        return mean
    scores = pd.concat([score_table(m, config) for m in members], axis=1)
    scores.columns = [f"score_{i}" for i in range(len(members))]
    if config.combine == "min":
        combined = scores.min(axis=1)
    elif config.combine == "mean":
        combined = scores.mean(axis=1)
    else:
        combined = score_table(mean, config)
    return pd.concat([mean, scores], axis=1).assign(score=combined)


def _row(tile_id: str, a: TileAgreement, folds: Mapping[str, int] | None) -> dict[str, object]:
    return {
        "tile_id": tile_id,
        "fold": folds.get(tile_id) if folds else None,
        "dice": a.dice,
        "soft_dice": a.soft_dice,
        "label_pixels": a.label_pixels,
        "pred_pixels": a.pred_pixels,
        "missed_pixels": a.missed_pixels,
        "extra_pixels": a.extra_pixels,
        "pred_mass": a.pred_mass,
        "missed_region": a.missed_region,
        "extra_region": a.extra_region,
    }


def precision_at_k(ranking: pd.DataFrame, positives: Iterable[str], k: int) -> float:
    """Share of the ``k`` worst-ranked tiles that are in ``positives`` (NaN if ``k < 1``).

    With fewer than ``k`` tiles ranked, the share is over those there are.
    """
    top = [str(t) for t in ranking.sort_values("rank")["tile_id"].head(k)] if k > 0 else []
    if not top:
        return float("nan")
    wanted = {str(t) for t in positives}
    return sum(t in wanted for t in top) / len(top)


def mislabelled_ids(truth: pd.DataFrame | PathLike) -> list[str]:
    """Tile ids the generator recorded as mislabelled (``synth_truth.parquet``)."""
    if isinstance(truth, pd.DataFrame):
        frame = truth
    elif not Path(truth).is_file():
        raise KelpsegError("truth table does not exist", truth)
    else:
        frame = pd.read_parquet(truth)
    if not {"tile_id", "mislabelled"} <= set(frame.columns):
        raise KelpsegError("truth table needs 'tile_id' and 'mislabelled' columns")
    return [str(t) for t in frame.loc[frame["mislabelled"].astype(bool), "tile_id"]]
