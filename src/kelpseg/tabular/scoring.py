"""Scoring tree models: on the sampled pixels (quick, biased) and on whole tiles (honest).

The sampled pixels over-represent kelp and its surroundings, so Dice on them is not the
competition's Dice. :func:`score_tiles` predicts every pixel of the validation tiles and counts
them with the evaluation stage's own accumulator, so its numbers are those ``kelpseg
evaluate`` gives for the same predictions.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from kelpseg.console import progress
from kelpseg.evaluation.result import EvaluationResult, MetricAccumulator
from kelpseg.io.tiles import read_label
from kelpseg.metrics import count_tile
from kelpseg.tabular.config import TabularConfig
from kelpseg.tabular.predict import PixelModel, predict_tiles, read_batches


def _thresholds(config: TabularConfig, threshold: float) -> np.ndarray:
    return np.unique(np.round(np.append(config.threshold_sweep.values(), threshold), 9))


def score_pixels(
    prob: np.ndarray, label: np.ndarray, config: TabularConfig, threshold: float = 0.5
) -> EvaluationResult:
    """Metrics of per-pixel probabilities against labels, all rows pooled as one 'tile'."""
    thresholds = _thresholds(config, threshold)
    accumulator = MetricAccumulator(thresholds, config.n_bins)
    accumulator.add(
        count_tile("sampled", np.asarray(prob), np.asarray(label), thresholds, config.n_bins)
    )
    return accumulator.result(threshold, config.threshold_sweep.values())


def score_tiles(
    model: PixelModel,
    tiles: pd.DataFrame,
    config: TabularConfig,
    *,
    threshold: float = 0.5,
    show_progress: bool = False,
) -> EvaluationResult:
    """Predict every pixel of labelled tiles and score them globally (the competition's Dice).

    Args:
        model: the model to score.
        tiles: rows with ``tile_id``, ``image_path`` and ``mask_path``.
        config: threshold sweep, histogram grid and batch sizes.
        threshold: the threshold of the headline metrics.
        show_progress: draw a progress bar.

    Returns:
        Global metrics at ``threshold``, the sweep's best threshold and Dice, the confusion
        matrix, the precision-recall curve and per-tile Dice.
    """
    thresholds = _thresholds(config, threshold)
    accumulator = MetricAccumulator(thresholds, config.n_bins)
    masks = dict(zip(tiles["tile_id"].astype(str), tiles["mask_path"].astype(str), strict=True))
    with progress(disable=not show_progress) as bar:
        task = bar.add_task("scoring whole tiles", total=len(tiles))
        for ids, raw in read_batches(tiles, config.predict_batch_tiles):
            probs = predict_tiles(model, raw, batch_pixels=config.predict_batch_pixels)
            for tile_id, prob in zip(ids, probs, strict=True):
                label = read_label(masks[tile_id], expected_size=prob.shape)
                accumulator.add(count_tile(tile_id, prob, label, thresholds, config.n_bins))
            bar.advance(task, len(ids))
    return accumulator.result(threshold, config.threshold_sweep.values())
