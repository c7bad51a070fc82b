"""The decision threshold picked on the validation fold after training, and where it travels."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from mlflow import MlflowClient

from kelpseg.inference.loading import load_model, load_torch_predictor
from kelpseg.nn.metrics import ProbabilityHistogram
from kelpseg.nn.module import CHECKPOINT_KEY
from kelpseg.nn.threshold import (
    THRESHOLD_TAG,
    ThresholdChoice,
    pick_threshold,
    sweep_dice,
)
from kelpseg.nn.train import TrainResult, train
from tests.nn import model_fixtures
from tests.nn.model_fixtures import tiny_config

band_stats_path = model_fixtures.band_stats_path  # the fixture, visible to pytest here


def _histogram(prob: np.ndarray, truth: np.ndarray) -> np.ndarray:
    metric = ProbabilityHistogram()
    half = len(prob) // 2  # two batches: the states add up
    for part in (slice(0, half), slice(half, None)):
        metric.update(torch.from_numpy(prob[part]), torch.from_numpy(truth[part]))
    out = metric.compute()
    assert int(out["tiles"]) == len(prob)
    return out["histogram"].numpy()


def test_the_sweep_gives_the_dice_of_thresholding_every_pixel_at_each_grid_point() -> None:
    rng = np.random.default_rng(0)
    truth = (rng.random((6, 1, 20, 20)) < 0.2).astype(np.int64)
    prob = np.clip(truth * 0.35 + rng.random(truth.shape) * 0.6, 0, 1).astype(np.float32)
    thresholds, dice = sweep_dice(_histogram(prob, truth))
    for k in (0, 13, 35, 50, 61, 88, 100):
        mask = prob >= thresholds[k]
        tp, fp = (mask & (truth > 0)).sum(), (mask & (truth == 0)).sum()
        fn = ((~mask) & (truth > 0)).sum()
        expected = 2 * tp / (2 * tp + fp + fn) if (2 * tp + fp + fn) else 1.0
        assert dice[k] == pytest.approx(expected, abs=1e-12), thresholds[k]


def test_an_over_predicting_model_gets_a_higher_threshold_and_better_validation_dice() -> None:
    rng = np.random.default_rng(1)
    truth = (rng.random((4, 1, 30, 30)) < 0.1).astype(np.int64)
    # Kelp around 0.9, background spread up to 0.75: cutting at 0.5 over-predicts.
    prob = np.where(truth > 0, 0.85 + 0.1 * rng.random(truth.shape), 0.75 * rng.random(truth.shape))
    choice = pick_threshold(_histogram(prob.astype(np.float32), truth), 0.5, fold=3, tiles=4)
    assert 0.75 <= choice.threshold <= 0.85
    assert choice.val_dice == pytest.approx(1.0)
    assert choice.val_dice_default is not None and choice.val_dice_default < 0.7
    assert choice.source == "validation sweep on fold 3, 4 tiles"
    assert "val Dice 1.0000 at" in choice.summary() and "at 0.50" in choice.summary()


def test_without_a_validation_fold_the_config_threshold_stays_and_says_why() -> None:
    choice = pick_threshold(None, 0.45, fold=None, tiles=None)
    assert (choice.threshold, choice.val_dice) == (0.45, None)
    assert choice.source == "training config (full fit: no validation fold)"
    assert ThresholdChoice.from_dict(choice.as_dict()) == choice


def test_the_pick_stays_inside_the_sweep_range() -> None:
    easy = np.zeros((2, 101))
    easy[1, :30] = 1000  # background below 0.3, kelp above 0.99: every cut from 0.3 on is perfect
    easy[0, 100] = 500
    choice = pick_threshold(easy, 0.5, fold=0, tiles=2)
    assert 0.3 <= choice.threshold <= 0.95 and choice.val_dice == 1.0


@pytest.mark.slow
def test_training_stores_the_validation_threshold_where_every_consumer_reads_it(
    tmp_path: Path, split_catalog_path: Path, band_stats_path: Path
) -> None:
    out = tmp_path / "run"
    config = tiny_config(
        split_catalog_path, band_stats_path, out,
        "tracking.enabled=true", "trainer.max_epochs=2", "trainer.num_sanity_val_steps=1",
    )  # fmt: skip
    result = train(config)
    choice = result.threshold_choice
    assert choice is not None and choice.source.startswith("validation sweep on fold 0, ")
    assert choice.val_tiles is not None and choice.val_tiles > 0
    # The sweep at the kept epoch reproduces the tracked best val Dice at the config threshold.
    assert choice.val_dice_default == pytest.approx(result.best_dice, abs=2e-3)
    assert choice.val_dice is not None and choice.val_dice >= choice.val_dice_default - 1e-9
    assert TrainResult.load(out / "result.json").threshold == choice.as_dict()

    for ckpt in (out / "checkpoints" / "best.ckpt", out / "model" / "best.ckpt"):
        payload = torch.load(ckpt, map_location="cpu", weights_only=True)[CHECKPOINT_KEY]
        assert payload["threshold"] == choice.as_dict(), ckpt
        assert payload["input_encoding"] == "c2l2", ckpt  # measured on the training tiles
    loaded = load_model(out)
    assert (loaded.threshold, loaded.threshold_source) == (choice.threshold, choice.source)
    tags = MlflowClient(result.tracking_uri).get_run(result.run_id).data.tags
    assert float(tags[THRESHOLD_TAG]) == pytest.approx(choice.threshold)
    from_run = load_model(result.run_id, tracking_uri=result.tracking_uri)
    assert (from_run.threshold, from_run.threshold_source) == (choice.threshold, choice.source)
    predictor = load_torch_predictor([out], device="cpu")
    assert predictor.threshold == pytest.approx(choice.threshold)
    given = load_torch_predictor([out], device="cpu", threshold=0.3)
    assert (given.threshold, given.threshold_source) == (0.3, "given")


@pytest.mark.slow
def test_a_full_fit_and_a_switched_off_pick_keep_the_config_threshold(
    tmp_path: Path, split_catalog_path: Path, band_stats_path: Path
) -> None:
    full = train(
        tiny_config(split_catalog_path, band_stats_path, tmp_path / "full", "data.fold=null")
    )
    assert full.threshold_choice is not None
    assert full.threshold_choice.source == "training config (full fit: no validation fold)"
    loaded = load_model(tmp_path / "full")
    assert loaded.threshold_source == "training config (full fit: no validation fold)"
    off = train(
        tiny_config(
            split_catalog_path, band_stats_path, tmp_path / "off",
            "trainer.pick_threshold=false", "trainer.threshold=0.4",
        )
    )  # fmt: skip
    assert off.threshold_choice == ThresholdChoice(
        0.4, "training config (trainer.pick_threshold is off)", 0.4
    )


def test_a_validation_fold_without_kelp_picks_nothing() -> None:
    no_kelp = np.zeros((2, 101))
    no_kelp[1, :60] = 5000  # background only: every cut above 0.6 "scores" a Dice of 1
    choice = pick_threshold(no_kelp, 0.5, fold=2, tiles=3)
    assert (choice.threshold, choice.val_dice) == (0.5, None)
    assert choice.source == "training config (fold 2 has 0 kelp pixels, too few to pick on)"
