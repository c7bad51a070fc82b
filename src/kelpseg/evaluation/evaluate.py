"""``evaluate_predictions``: score a prediction source against labels, tile by tile."""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial

import numpy as np

from kelpseg.console import progress
from kelpseg.errors import KelpsegError
from kelpseg.evaluation.config import EvaluateConfig
from kelpseg.evaluation.labels import ImageSource, LabelSet, LabelSource, resolve_labels
from kelpseg.evaluation.result import EvaluationResult, MetricAccumulator
from kelpseg.inference.postprocess import PostprocessConfig, apply_postprocess
from kelpseg.inference.rasters import PredictionSource, as_source
from kelpseg.metrics import TileCounts, count_tile

PathLike = str | os.PathLike[str]


def select_tiles(source: PredictionSource, labels: LabelSet, require_all: bool) -> list[str]:
    """Tiles to score: every predicted tile, each of which must have a label.

    Args:
        source: the predictions.
        labels: the labelled set.
        require_all: also demand a prediction for every labelled tile (a full evaluation
            rather than, say, one validation fold scored against the whole training set).
    """
    predicted = set(source)
    unlabelled = sorted(predicted - set(labels.labels))
    if unlabelled:
        raise KelpsegError(
            f"{len(unlabelled)} predicted tiles have no label (e.g. {unlabelled[0]})"
        )
    if require_all:
        missing = sorted(set(labels.labels) - predicted)
        if missing:
            raise KelpsegError(
                f"{len(missing)} labelled tiles have no prediction (e.g. {missing[0]})"
            )
    if not predicted:
        raise KelpsegError("no predictions to evaluate", getattr(source, "folder", None))
    return sorted(predicted)


def _tile_postprocess(
    labels: LabelSet, tile_id: str, config: PostprocessConfig
) -> Callable[[np.ndarray], np.ndarray] | None:
    if not config.steps:
        return None
    tile = labels.image(tile_id) if config.needs_tile else None
    return lambda mask: apply_postprocess(mask, tile, config)


def _count(
    tile_id: str, source: PredictionSource, labels: LabelSet, config: EvaluateConfig
) -> TileCounts:
    post = _tile_postprocess(labels, tile_id, config.postprocess)
    return count_tile(
        tile_id,
        source[tile_id],
        labels.label(tile_id),
        config.thresholds(),
        config.n_bins,
        post,
    )


def evaluate_predictions(
    predictions: PredictionSource | PathLike,
    labels: LabelSource | LabelSet,
    config: EvaluateConfig | None = None,
    *,
    images: ImageSource | None = None,
    show_progress: bool = True,
) -> EvaluationResult:
    """Score predictions against labels in one streaming pass over the tiles.

    Args:
        predictions: a prediction folder (masks and/or probabilities) or a mapping
            ``tile_id -> (H, W)`` probabilities or masks (e.g. an ``EnsembleSource``).
        labels: catalog, catalog parquet, dataset folder, label folder, mapping or LabelSet.
        config: thresholds, grid, post-processing (default: :class:`EvaluateConfig`).
        images: where the satellite tiles are, if post-processing needs the DEM and the
            label source does not say.
        show_progress: draw a progress bar.

    Returns:
        Global metrics at ``config.threshold``, the threshold sweep and its best threshold,
        the precision-recall curve and per-tile Dice.
    """
    config = config or EvaluateConfig()
    source = as_source(predictions, config.kind)
    label_set = labels if isinstance(labels, LabelSet) else resolve_labels(labels, images)
    tile_ids = select_tiles(source, label_set, config.require_all_labelled)
    if config.postprocess.needs_tile:
        missing = [t for t in tile_ids if not label_set.has_image(t)]
        if missing:
            raise KelpsegError(
                f"post-processing needs the satellite tiles; {len(missing)} not found "
                f"(e.g. {missing[0]}): pass images="
            )
    accumulator = MetricAccumulator(config.thresholds(), config.n_bins)
    work = partial(_count, source=source, labels=label_set, config=config)
    with (
        ThreadPoolExecutor(config.workers) as pool,
        progress(disable=not show_progress) as bar,
    ):
        task = bar.add_task("evaluating", total=len(tile_ids))
        # map keeps input order, so results do not depend on the number of workers.
        for counts in pool.map(work, tile_ids):
            accumulator.add(counts)
            bar.advance(task)
    names = [step.name for step in config.postprocess.steps]
    return accumulator.result(config.threshold, config.sweep.values(), names)
