"""The single-index threshold baseline: kelp where one channel (NDVI) passes a cut.

The cut is chosen on the training folds' sampled pixels, weighted by how many tile pixels
each row stands for (see :mod:`kelpseg.tabular.dataset`), so it maximises an estimate of
whole-tile Dice rather than Dice on the kelp-rich sample. It is then scored on the validation
fold's whole tiles exactly like the tree models.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from kelpseg.errors import KelpsegError
from kelpseg.evaluation.result import EvaluationResult
from kelpseg.features import FeatureConfig, InputBuilder
from kelpseg.io.tiles import read_label
from kelpseg.tabular.config import TabularConfig
from kelpseg.tabular.dataset import PixelDataset
from kelpseg.tabular.inputs import make_builder
from kelpseg.tabular.predict import read_batches
from kelpseg.tabular.scoring import score_tiles

PathLike = str | os.PathLike[str]


@dataclass
class IndexThresholdModel:
    """Kelp where ``sign * value >= sign * cut`` for one channel; masked pixels are not kelp.

    Behaves like a tree model for :func:`kelpseg.tabular.predict_tiles` (its probabilities
    are 0 or 1).
    """

    channel: str
    cut: float
    sign: float
    features: FeatureConfig
    threshold: float = 0.5
    _builder: InputBuilder | None = field(default=None, init=False, repr=False)

    @property
    def builder(self) -> InputBuilder:
        """The channel builder for raw tiles."""
        if self._builder is None:
            self._builder = make_builder(self.features)
        return self._builder

    def predict_pixels(self, x: np.ndarray, batch_pixels: int = 0) -> np.ndarray:
        """1.0 where the channel passes the cut, else 0.0 (also where it is NaN)."""
        value = np.asarray(x, dtype=np.float64)[:, 0]
        with np.errstate(invalid="ignore"):
            return (self.sign * value >= self.sign * self.cut).astype(np.float32)


def fit_index_threshold(
    value: np.ndarray, label: np.ndarray, weight: np.ndarray | None = None
) -> tuple[float, float, float]:
    """The cut and direction of highest (weighted) Dice for one channel.

    Returns:
        (cut, sign, dice): kelp is ``sign * value >= sign * cut``.
    """
    value = np.asarray(value, dtype=np.float64)
    y = np.asarray(label, dtype=np.float64)
    w = np.ones_like(value) if weight is None else np.asarray(weight, dtype=np.float64)
    # Kelp rows with a masked (NaN) value are never predicted: they still count as missed.
    positives = float((w * y).sum())
    ok = np.isfinite(value)
    value, y, w = value[ok], y[ok], w[ok]
    if value.size == 0 or positives == 0:
        raise KelpsegError("cannot fit a threshold: no finite values or no kelp pixels")
    best = (np.nan, 1.0, -1.0)
    for sign in (1.0, -1.0):
        s = sign * value
        order = np.argsort(-s, kind="stable")
        s_sorted = s[order]
        tp = np.cumsum((w * y)[order])
        predicted = np.cumsum(w[order])
        dice = 2 * tp / (predicted + positives)
        # Only the last row of a run of equal values is a cut a threshold can make.
        valid = np.append(s_sorted[:-1] != s_sorted[1:], True)
        i = int(np.argmax(np.where(valid, dice, -1.0)))
        if dice[i] > best[2]:
            best = (float(sign * s_sorted[i]), sign, float(dice[i]))
    return best


@dataclass(frozen=True)
class BaselineResult:
    """The fitted baseline and its whole-tile score on the validation fold."""

    model: IndexThresholdModel
    train_dice: float
    evaluation: EvaluationResult
    oracle_cut: float
    oracle_dice: float


def tile_values(
    model: IndexThresholdModel, tiles: pd.DataFrame, batch_tiles: int = 8
) -> tuple[np.ndarray, np.ndarray]:
    """The channel's value and the label of every pixel of ``tiles`` (NaN where masked)."""
    values, labels = [], []
    masks = dict(zip(tiles["tile_id"].astype(str), tiles["mask_path"].astype(str), strict=True))
    for ids, raw in read_batches(tiles, batch_tiles):
        with torch.no_grad():
            channel = model.builder.raw_channels(torch.from_numpy(raw))[:, 0].numpy()
        for tile_id, value in zip(ids, channel, strict=True):
            values.append(value.ravel())
            labels.append(read_label(masks[tile_id], expected_size=value.shape).ravel())
    return np.concatenate(values), np.concatenate(labels)


def index_baseline(
    dataset_dir: PathLike,
    fold: int,
    config: TabularConfig | None = None,
    channel: str = "NDVI",
) -> BaselineResult:
    """Fit a one-channel threshold on the folds other than ``fold``; score ``fold``'s tiles.

    Also finds the *oracle* cut: the best possible single threshold on every pixel of the
    validation tiles (an upper bound of the baseline, tuned on the fold it reports, like a
    model's best-threshold Dice).

    Raises:
        KelpsegError: the channel is not in the dataset, or the fold is absent.
    """
    dataset = PixelDataset.open(dataset_dir)
    config = config or dataset.config
    if channel not in dataset.channels:
        raise KelpsegError(f"channel {channel!r} is not in the pixel dataset", Path(dataset_dir))
    if fold not in dataset.folds:
        raise KelpsegError(f"fold {fold} is not in the pixel dataset (folds {dataset.folds})")
    train = dataset.arrays([f for f in dataset.folds if f != fold], [channel])
    cut, sign, train_dice = fit_index_threshold(train.x[:, 0], train.y, train.weight)
    features = dataset.config.features.model_copy(update={"channels": [channel]})
    model = IndexThresholdModel(channel=channel, cut=cut, sign=sign, features=features)
    val_tiles = dataset.tiles_of([fold])
    evaluation = score_tiles(model, val_tiles, config)
    oracle_cut, _, oracle_dice = fit_index_threshold(*tile_values(model, val_tiles))
    return BaselineResult(model, train_dice, evaluation, oracle_cut, oracle_dice)
