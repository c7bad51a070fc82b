"""Whole-tile prediction: numpy and torch batches, prediction folders, the evaluate stage."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from kelpseg.errors import KelpsegError
from kelpseg.evaluation.evaluate import evaluate_predictions
from kelpseg.features import InputBuilder
from kelpseg.inference import PredictionDir
from kelpseg.io.tiles import read_tile
from kelpseg.tabular import TabularResult, load_model, predict_dataset, predict_tiles, train_tabular
from tests.tabular.conftest import crafted_tile, small_config


@pytest.fixture(scope="module")
def trained(crafted_pixels: Path, tmp_path_factory: pytest.TempPathFactory) -> TabularResult:
    out = tmp_path_factory.mktemp("model")
    return train_tabular(crafted_pixels, small_config(), 0, out, track=False, show_progress=False)


def test_predict_tiles_matches_rows_from_the_feature_builder(trained: TabularResult) -> None:
    raw = np.stack([crafted_tile(i)[0] for i in (0, 1, 3)])
    prob = predict_tiles(trained.model, raw, batch_pixels=1000)
    assert prob.shape == (3, 32, 32) and prob.dtype == np.float32
    # Independent path: the feature stage's builder, rows in (tile, row, col) order.
    features = trained.model.features
    channels = InputBuilder(features).raw_channels(torch.from_numpy(raw)).numpy()
    rows = channels.transpose(0, 2, 3, 1).reshape(-1, len(features.channels))
    np.testing.assert_allclose(prob.ravel(), trained.model.predict_pixels(rows), atol=1e-6)
    kelp = crafted_tile(0)[1].astype(bool)
    assert prob[0][kelp].mean() > 0.5 > prob[0][~kelp].mean()


def test_predict_tiles_returns_a_tensor_for_a_tensor(trained: TabularResult) -> None:
    raw = np.stack([crafted_tile(i)[0] for i in (2, 5)])
    out = predict_tiles(trained.model, torch.from_numpy(raw))
    assert isinstance(out, torch.Tensor) and out.dtype == torch.float32
    np.testing.assert_array_equal(out.numpy(), predict_tiles(trained.model, raw))


def test_predict_tiles_refuses_a_wrong_shape(trained: TabularResult) -> None:
    with pytest.raises(KelpsegError, match="batch of raw tiles"):
        predict_tiles(trained.model, np.zeros((2, 5, 8, 8), np.int16))


def test_prediction_folder_is_read_by_inference_and_scored_by_evaluate(
    trained: TabularResult, crafted_catalog: pd.DataFrame, tmp_path: Path
) -> None:
    out = tmp_path / "preds"
    written = predict_dataset(
        trained.model_dir, crafted_catalog, out, threshold=0.5, split="train", fold=0,
        show_progress=False,
    )  # fmt: skip
    fold0 = crafted_catalog[crafted_catalog["fold"] == 0]
    assert written == len(fold0)
    folder = PredictionDir(out, kind="prob")
    assert sorted(folder) == sorted(fold0["tile_id"])
    masks = PredictionDir(out, kind="mask")
    model = load_model(trained.model_dir)
    for tile_id, image in zip(fold0["tile_id"], fold0["image_path"], strict=True):
        prob = predict_tiles(model, read_tile(image, expected_size=None).data[None])[0]
        np.testing.assert_allclose(folder[tile_id], prob, atol=1e-6)
        np.testing.assert_array_equal(masks[tile_id], (prob >= 0.5).astype(np.float32))
    result = evaluate_predictions(out, fold0, show_progress=False)
    assert result.metrics["dice"] == pytest.approx(trained.metrics["val_tiles_dice_at_0.5"])
    again = predict_dataset(trained.model_dir, crafted_catalog, out, split="train", fold=0)
    assert again == 0, "existing outputs are skipped"


def test_test_split_uses_the_saved_threshold(
    trained: TabularResult, crafted_catalog: pd.DataFrame, tmp_path: Path
) -> None:
    written = predict_dataset(trained.model_dir, crafted_catalog, tmp_path, soft=False)
    assert written == 2
    assert not list(tmp_path.glob("*_prob.tif"))
    info = (tmp_path / "tabular_predict.yaml").read_text()
    assert f"threshold: {trained.model.threshold}" in info


def test_selection_errors(
    trained: TabularResult, crafted_catalog: pd.DataFrame, tmp_path: Path
) -> None:
    with pytest.raises(KelpsegError, match="no tiles selected"):
        predict_dataset(trained.model_dir, crafted_catalog, tmp_path, split="train", fold=9)
    with pytest.raises(KelpsegError, match="threshold"):
        predict_dataset(trained.model_dir, crafted_catalog, tmp_path, threshold=1.5)
