"""The single-index baseline and out-of-fold routing for stacking."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from kelpseg.errors import KelpsegError
from kelpseg.tabular import (
    OutOfFoldPredictor,
    PixelDataset,
    TabularModel,
    fit_index_threshold,
    index_baseline,
    load_model,
    predict_tiles,
    train_tabular,
)
from kelpseg.tabular.predict import read_batches
from tests.tabular.conftest import N_FOLDS, crafted_tile, small_config


def test_threshold_fit_finds_a_clean_cut_in_either_direction() -> None:
    value = np.array([0.1, 0.2, 0.3, 0.7, 0.8, np.nan])
    label = np.array([0, 0, 0, 1, 1, 1])
    cut, sign, dice = fit_index_threshold(value, label)
    assert (sign, dice) == (1.0, pytest.approx(2 * 2 / (2 + 3)))
    assert 0.3 < cut <= 0.7
    cut, sign, dice = fit_index_threshold(-value[:5], label[:5])
    assert sign == -1.0 and dice == 1.0 and -0.7 <= cut < -0.3


def test_threshold_fit_uses_row_weights() -> None:
    # A heavy false positive at 0.6 makes the stricter cut the better one.
    value = np.array([0.5, 0.6, 0.9])
    label = np.array([1, 0, 1])
    assert fit_index_threshold(value, label)[0] == 0.5
    assert fit_index_threshold(value, label, np.array([1.0, 50.0, 1.0]))[0] == 0.9


def test_threshold_fit_needs_kelp() -> None:
    with pytest.raises(KelpsegError, match="no kelp"):
        fit_index_threshold(np.array([0.1, 0.2]), np.array([0, 0]))


def test_index_baseline_scores_the_validation_fold(crafted_pixels: Path) -> None:
    result = index_baseline(crafted_pixels, 0, channel="NIR")
    assert result.model.sign == 1.0 and 8100 < result.model.cut < 15500
    assert result.evaluation.metrics["tiles"] == len(
        PixelDataset.open(crafted_pixels).tiles_of([0])
    )
    assert result.evaluation.metrics["dice"] > 0.9
    # The oracle cut sees the validation pixels: never worse than the cut from other folds.
    assert result.evaluation.metrics["dice"] <= result.oracle_dice + 1e-12
    with pytest.raises(KelpsegError, match="not in the pixel dataset"):
        index_baseline(crafted_pixels, 0, channel="EVI22")


@pytest.fixture(scope="module")
def fold_models(crafted_pixels: Path, tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    root = tmp_path_factory.mktemp("oof")
    for fold in [*range(N_FOLDS), None]:
        train_tabular(
            crafted_pixels,
            small_config(),
            fold,
            root / f"f{fold}",
            track=False,
            show_progress=False,
        )
    return [root / f"f{fold}" for fold in [*range(N_FOLDS), None]]


def test_no_training_tile_gets_a_probability_from_a_model_that_saw_it(
    crafted_pixels: Path, fold_models: list[Path]
) -> None:
    dataset = PixelDataset.open(crafted_pixels)
    predictor = OutOfFoldPredictor(fold_models)
    for fold in dataset.folds:
        model = predictor.model_for(fold)
        trained_on = set(dataset.arrays(model.train_folds).tile_id)
        assert not trained_on & set(dataset.tiles_of([fold])["tile_id"])
    for ids, raw in read_batches(dataset.tiles, 5):
        folds = dataset.tiles.set_index("tile_id").loc[ids, "fold"].tolist()
        out = predictor(raw, folds)
        for i, fold in enumerate(folds):
            expected = predict_tiles(load_model(fold_models[fold]), raw[i : i + 1])[0]
            np.testing.assert_array_equal(out[i], expected)


def test_test_tiles_use_the_all_folds_model(fold_models: list[Path]) -> None:
    predictor = OutOfFoldPredictor(fold_models)
    raw = torch.from_numpy(np.stack([crafted_tile(100)[0], crafted_tile(1)[0]]))
    out = predictor(raw, [None, 1])
    assert isinstance(out, torch.Tensor)
    full = predict_tiles(load_model(fold_models[-1]), raw[:1])
    torch.testing.assert_close(out[:1], full)
    without_full = OutOfFoldPredictor(fold_models[:-1])
    with pytest.raises(KelpsegError, match="trained on every fold"):
        without_full(raw, [None, 1])


def test_leaky_or_duplicate_models_are_refused(fold_models: list[Path]) -> None:
    leaky = load_model(fold_models[0])
    leaky.train_folds = [*leaky.train_folds, leaky.holdout_fold or 0]
    with pytest.raises(KelpsegError, match="saw its holdout fold"):
        OutOfFoldPredictor([leaky])
    with pytest.raises(KelpsegError, match="two models hold out fold 1"):
        OutOfFoldPredictor([fold_models[1], fold_models[1]])
    odd = load_model(fold_models[2])
    other = TabularModel(
        odd.name,
        odd.estimator,
        odd.features.model_copy(update={"channels": ["NIR"]}),
        holdout_fold=0,
    )
    with pytest.raises(KelpsegError, match="same channels"):
        OutOfFoldPredictor([odd, other])
