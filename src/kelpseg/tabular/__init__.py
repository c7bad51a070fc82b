"""Per-pixel tree models: pixel datasets, XGBoost / LightGBM / CatBoost / forests, prediction.

Typical use (see docs/tabular.md)::

    build_pixel_dataset(catalog_with_folds, TabularConfig(), "pixels/")
    result = train_tabular("pixels/", TabularConfig(model="lightgbm"), fold=0, out_dir="runs/lgb0")
    prob = predict_tiles(result.model, raw_batch)          # (N, H, W) float32
    predict_dataset("runs/lgb0", "data/", "preds/lgb0")    # <tile_id>_kelp.tif / _prob.tif
"""

from kelpseg.tabular.artifact import TabularModel, load_model
from kelpseg.tabular.baseline import (
    BaselineResult,
    IndexThresholdModel,
    fit_index_threshold,
    index_baseline,
)
from kelpseg.tabular.build import BuildResult, build_pixel_dataset, training_tiles
from kelpseg.tabular.config import TabularConfig, tree_features
from kelpseg.tabular.dataset import PixelArrays, PixelDataset
from kelpseg.tabular.models import MODELS, ModelSpec, get_model_spec
from kelpseg.tabular.oof import OutOfFoldPredictor
from kelpseg.tabular.predict import predict_dataset, predict_tiles, select_tiles
from kelpseg.tabular.sampling import sample_pixels
from kelpseg.tabular.scoring import score_pixels, score_tiles
from kelpseg.tabular.train import TabularResult, train_tabular

__all__ = [
    "MODELS",
    "BaselineResult",
    "BuildResult",
    "IndexThresholdModel",
    "ModelSpec",
    "OutOfFoldPredictor",
    "PixelArrays",
    "PixelDataset",
    "TabularConfig",
    "TabularModel",
    "TabularResult",
    "build_pixel_dataset",
    "fit_index_threshold",
    "get_model_spec",
    "index_baseline",
    "load_model",
    "predict_dataset",
    "predict_tiles",
    "sample_pixels",
    "score_pixels",
    "score_tiles",
    "select_tiles",
    "train_tabular",
    "training_tiles",
    "tree_features",
]
