"""Training on all folds but one: outputs, honest whole-tile scoring, errors, MLflow."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from kelpseg.errors import KelpsegError
from kelpseg.io.tiles import read_label, read_tile
from kelpseg.tabular import PixelDataset, TabularResult, load_model, predict_tiles, train_tabular
from kelpseg.tabular.train import positive_weight
from tests.tabular.conftest import CHANNELS, N_FOLDS, small_config

FOLD = 1


@pytest.fixture(scope="module")
def trained(crafted_pixels: Path, tmp_path_factory: pytest.TempPathFactory) -> TabularResult:
    out = tmp_path_factory.mktemp("xgb")
    return train_tabular(
        crafted_pixels, small_config(), FOLD, out, track=False, show_progress=False
    )


def test_training_writes_model_reports_and_config(trained: TabularResult) -> None:
    out = trained.model_dir
    for name in (
        "model.ubj",
        "model.json",
        "tabular_config.yaml",
        "metrics.json",
        "importances.csv",
    ):
        assert (out / name).is_file(), name
    for plot in ("feature_importance.png", "confusion_matrix.png", "pr_curve.png"):
        assert (out / "plots" / plot).read_bytes()[:4] == b"\x89PNG"
    sidecar = json.loads((out / "model.json").read_text())
    assert sidecar["holdout_fold"] == FOLD
    assert sidecar["train_folds"] == [f for f in range(N_FOLDS) if f != FOLD]
    assert sidecar["channels"] == CHANNELS
    assert sidecar["threshold"] == trained.metrics["val_tiles_threshold_best"]
    assert json.loads((out / "metrics.json").read_text()) == pytest.approx(trained.metrics)


def test_whole_tile_dice_equals_an_independent_count(
    trained: TabularResult, crafted_pixels: Path
) -> None:
    tiles = PixelDataset.open(crafted_pixels).tiles_of([FOLD])
    model = load_model(trained.model_dir)
    inter = total = 0
    for rec in tiles.itertuples(index=False):
        raw = read_tile(rec.image_path, expected_size=None).data[None]
        pred = predict_tiles(model, raw)[0] >= 0.5
        label = read_label(rec.mask_path).astype(bool)
        inter += int((pred & label).sum())
        total += int(pred.sum() + label.sum())
    assert trained.metrics["val_tiles_dice_at_0.5"] == pytest.approx(2 * inter / total)
    assert trained.metrics["val_tiles"] == len(tiles)


def test_crafted_kelp_is_found_and_nir_channels_matter(trained: TabularResult) -> None:
    # Kelp in the crafted tiles differs from water by bright NIR (and SWIR1) only.
    assert trained.metrics["val_tiles_dice_best"] > 0.8
    assert set(trained.importances.index[:2]) & {"NIR", "NDVI", "SWIR1"}
    assert trained.sampled is not None and trained.tiles is not None
    assert trained.metrics["val_pixels"] < trained.tiles.metrics["pixels"], "pixels were sampled"


def test_training_on_every_fold_has_no_holdout(crafted_pixels: Path, tmp_path: Path) -> None:
    result = train_tabular(
        crafted_pixels,
        small_config(model="lightgbm"),
        None,
        tmp_path,
        track=False,
        show_progress=False,
    )
    model = load_model(tmp_path)
    assert model.holdout_fold is None and model.train_folds == list(range(N_FOLDS))
    assert result.tiles is None and "val_tiles_dice_at_0.5" not in result.metrics


def test_a_channel_subset_trains_and_unknown_channels_are_refused(
    crafted_pixels: Path, tmp_path: Path
) -> None:
    subset = small_config(features={"channels": ["NIR", "R"], "fill_value": "nan"})
    result = train_tabular(
        crafted_pixels, subset, 0, tmp_path / "a", track=False, show_progress=False
    )
    assert list(result.importances.index.sort_values()) == ["NIR", "R"]
    extra = small_config(features={"channels": ["NIR", "EVI22"], "fill_value": "nan"})
    with pytest.raises(KelpsegError, match="EVI22 are not in the pixel dataset"):
        train_tabular(crafted_pixels, extra, 0, tmp_path / "b", track=False)
    other = small_config(features={"channels": CHANNELS, "fill_value": "zero"})
    with pytest.raises(KelpsegError, match="fill_value"):
        train_tabular(crafted_pixels, other, 0, tmp_path / "c", track=False)


def test_unknown_fold_is_refused(crafted_pixels: Path, tmp_path: Path) -> None:
    with pytest.raises(KelpsegError, match="fold 7 is not in the pixel dataset"):
        train_tabular(crafted_pixels, small_config(), 7, tmp_path, track=False)


def test_positive_weight_options() -> None:
    y = np.array([0, 0, 0, 1], np.uint8)
    assert positive_weight("none", y) is None
    assert positive_weight("balanced", y) == 3.0
    assert positive_weight(2.5, y) == 2.5
    assert positive_weight("balanced", y, np.array([1.0, 1.0, 4.0, 2.0])) == 3.0


def test_tile_row_weights_calibrate_probabilities_for_whole_tiles(
    crafted_pixels: Path, trained: TabularResult, tmp_path: Path
) -> None:
    assert trained.model.params and small_config().row_weights == "tile", "the default"
    plain = train_tabular(
        crafted_pixels, small_config(row_weights="none"), FOLD, tmp_path, track=False,
        show_progress=False,
    )  # fmt: skip
    tiles = PixelDataset.open(crafted_pixels).tiles_of([FOLD])
    raw = np.stack([read_tile(p, expected_size=None).data for p in tiles["image_path"]])
    # Background rows stand for ~15x more pixels than kelp rows: fewer false alarms.
    assert predict_tiles(trained.model, raw).mean() < predict_tiles(plain.model, raw).mean()
    assert trained.metrics["val_tiles_dice_at_0.5"] > 0.8


@pytest.mark.slow
def test_run_is_logged_to_a_local_mlflow_store(crafted_pixels: Path, tmp_path: Path) -> None:
    from mlflow.tracking import MlflowClient

    result = train_tabular(
        crafted_pixels, small_config(model="catboost"), 2, tmp_path, show_progress=False
    )
    assert result.run_id is not None and (tmp_path / "mlflow.db").is_file()
    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}")
    run = client.get_run(result.run_id)
    assert run.data.params["model"] == "catboost" and run.data.params["fold"] == "2"
    assert run.data.params["catboost.iterations"] == "20"
    assert run.data.metrics["val_tiles_dice_at_0.5"] == pytest.approx(
        result.metrics["val_tiles_dice_at_0.5"]
    )
    logged = {a.path for a in client.list_artifacts(result.run_id)}
    assert {"feature_importance.png", "confusion_matrix.png", "pr_curve.png"} <= logged
    assert "model.json" in logged
    frame = pd.read_csv(tmp_path / "importances.csv")
    assert list(frame.columns) == ["channel", "importance"]
