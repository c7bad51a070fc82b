"""``kelpseg tabular train``: fit a tree model on all folds but one, validate on that fold.

The validation fold is scored twice: on its sampled pixels (quick, but biased towards kelp and
its surroundings) and on its whole tiles, every pixel predicted and Dice computed over all of
them together as the competition does (the honest number). The saved decision threshold is the
whole-tile sweep's best; the Dice at 0.5 is untouched by any tuning. ``fold=None`` trains on
every fold (the model for test tiles) and validates nothing.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from kelpseg.config import save_config
from kelpseg.errors import KelpsegError
from kelpseg.evaluation.result import EvaluationResult
from kelpseg.io.atomic import atomic_path
from kelpseg.tabular.artifact import SIDECAR, TabularModel
from kelpseg.tabular.config import TabularConfig
from kelpseg.tabular.dataset import PixelDataset
from kelpseg.tabular.models import FitData, FitOptions, get_model_spec
from kelpseg.tabular.plots import plot_confusion, plot_importances, plot_pr_curves
from kelpseg.tabular.scoring import score_pixels, score_tiles
from kelpseg.tabular.tracking import default_tracking_uri, log_run

PathLike = str | os.PathLike[str]
CONFIG_FILE = "tabular_config.yaml"
METRICS_FILE = "metrics.json"
IMPORTANCE_FILE = "importances.csv"
PLOTS_DIR = "plots"


@dataclass
class TabularResult:
    """What :func:`train_tabular` produced.

    Attributes:
        model_dir: the saved model folder.
        model: the trained model (threshold set from validation when there was one).
        metrics: everything logged as a metric (see docs/tabular.md for the names).
        importances: normalised feature importances, highest first.
        tiles: whole-tile scoring of the validation fold (``None`` without one).
        sampled: scoring of the validation fold's sampled pixels (``None`` without one).
        run_id: the MLflow run, when tracked.
        seconds: wall-clock time of the whole call.
    """

    model_dir: Path
    model: TabularModel
    metrics: dict[str, float]
    importances: pd.Series
    tiles: EvaluationResult | None
    sampled: EvaluationResult | None
    run_id: str | None
    seconds: float


def positive_weight(
    class_weight: str | float, y: np.ndarray, weight: np.ndarray | None = None
) -> float | None:
    """The kelp-class weight: ``None`` for "none", negatives / positives for "balanced".

    With row ``weight`` the classes are weighed by the rows' weights, not counted.
    """
    if class_weight == "none":
        return None
    if class_weight == "balanced":
        w = np.ones(len(y)) if weight is None else np.asarray(weight, dtype=np.float64)
        positives = float(w[np.asarray(y) > 0].sum())
        return (float(w.sum()) - positives) / positives if positives > 0 else 1.0
    return float(class_weight)


def _check_folds(dataset: PixelDataset, fold: int | None) -> list[int]:
    if fold is not None and fold not in dataset.folds:
        raise KelpsegError(
            f"fold {fold} is not in the pixel dataset (folds {dataset.folds})", dataset.root
        )
    train_folds = [f for f in dataset.folds if f != fold]
    if not train_folds:
        raise KelpsegError("no fold left to train on: the dataset has a single fold", dataset.root)
    return train_folds


def _fit(
    config: TabularConfig, dataset: PixelDataset, fold: int | None, train_folds: list[int]
) -> tuple[TabularModel, dict[str, float], Any]:
    channels = config.features.channels
    train = dataset.arrays(train_folds, channels)
    val = dataset.arrays([fold], channels) if fold is not None else None
    if len(np.unique(train.y)) < 2:
        raise KelpsegError(
            "the training folds' pixels hold a single class (no kelp?)", dataset.root
        )
    spec = get_model_spec(config.model)
    params = spec.params(config.params.get(config.model))
    row_weight = train.weight if config.row_weights == "tile" else None
    pos_weight = positive_weight(config.class_weight, train.y, row_weight)
    data = FitData(train.x, train.y, None if val is None else val.x, None if val is None else val.y)
    if config.row_weights == "tile":
        data = replace(data, weight=train.weight, weight_val=None if val is None else val.weight)
    options = FitOptions(config.seed, config.threads, pos_weight, config.early_stopping_rounds)
    start = time.perf_counter()
    estimator = spec.fit(params, data, options)
    fit_seconds = time.perf_counter() - start
    model = TabularModel(
        name=spec.name,
        estimator=estimator,
        features=config.features,
        holdout_fold=fold,
        train_folds=train_folds,
        params=params,
        best_iteration=spec.best_iteration(estimator),
        stats=dataset.stats(),
    )
    metrics = {
        "train_pixels": float(len(train)),
        "train_kelp_pixels": float(np.count_nonzero(train.y)),
        "fit_seconds": fit_seconds,
        "pos_weight": pos_weight or 1.0,
    }
    if model.best_iteration is not None:
        metrics["best_iteration"] = float(model.best_iteration)
    return model, metrics, val


def _validation_metrics(
    sampled: EvaluationResult, tiles: EvaluationResult, val_pixels: int
) -> dict[str, float]:
    return {
        "val_pixels": float(val_pixels),
        "val_sampled_dice_at_0.5": sampled.metrics["dice"],
        "val_sampled_dice_best": sampled.best_dice,
        "val_sampled_threshold_best": sampled.best_threshold,
        "val_sampled_aucpr": sampled.average_precision,
        "val_tiles": float(tiles.metrics["tiles"]),
        "val_tiles_dice_at_0.5": tiles.metrics["dice"],
        "val_tiles_precision_at_0.5": tiles.metrics["precision"],
        "val_tiles_recall_at_0.5": tiles.metrics["recall"],
        "val_tiles_dice_best": tiles.best_dice,
        "val_tiles_threshold_best": tiles.best_threshold,
        "val_tiles_aucpr": tiles.average_precision,
    }


def train_tabular(
    dataset_dir: PathLike,
    config: TabularConfig,
    fold: int | None,
    out_dir: PathLike,
    tracking_uri: str | None = None,
    *,
    track: bool = True,
    show_progress: bool = True,
) -> TabularResult:
    """Train ``config.model`` on the folds other than ``fold``; validate and save it.

    Args:
        dataset_dir: a pixel dataset from :func:`kelpseg.tabular.build_pixel_dataset`.
        config: model, parameters, class weighting, early stopping, channels (a subset of
            the dataset's, with the same masking options).
        fold: the validation fold, never seen in training; ``None`` trains on every fold.
        out_dir: where the model folder, plots, metrics and resolved config go.
        tracking_uri: MLflow store (default ``sqlite:///<out_dir>/mlflow.db``).
        track: log the run to MLflow.
        show_progress: draw a progress bar while scoring whole tiles.

    Raises:
        KelpsegError: unknown fold, a single fold, one class only, channels the dataset lacks.
    """
    start = time.perf_counter()
    dataset = PixelDataset.open(dataset_dir)
    dataset.check_channels(config)
    train_folds = _check_folds(dataset, fold)
    model, metrics, val = _fit(config, dataset, fold, train_folds)
    out = Path(out_dir)
    tiles = sampled = None
    if val is not None and fold is not None:
        sampled = score_pixels(
            model.predict_pixels(val.x, config.predict_batch_pixels), val.y, config
        )
        tiles = score_tiles(model, dataset.tiles_of([fold]), config, show_progress=show_progress)
        model.threshold = tiles.best_threshold
        metrics.update(_validation_metrics(sampled, tiles, len(val)))
    model.save(out)
    save_config(config, out / CONFIG_FILE)
    importances = model.importances()
    files = _write_reports(out, model, importances, metrics, tiles, sampled)
    run_id = None
    if track:
        run_id = log_run(
            tracking_uri or default_tracking_uri(out),
            config.experiment,
            _params(config, dataset, model, fold),
            metrics,
            files,
            artifact_root=out / "mlartifacts",
            tags={"kelpseg.stage": "tabular", "model_dir": str(out.resolve())},
        )
    return TabularResult(
        out, model, metrics, importances, tiles, sampled, run_id, time.perf_counter() - start
    )


def _write_reports(
    out: Path,
    model: TabularModel,
    importances: pd.Series,
    metrics: dict[str, float],
    tiles: EvaluationResult | None,
    sampled: EvaluationResult | None,
) -> list[Path]:
    files = [out / SIDECAR, out / CONFIG_FILE]
    with atomic_path(out / IMPORTANCE_FILE) as tmp:
        importances.to_csv(tmp)
    with atomic_path(out / METRICS_FILE) as tmp:
        tmp.write_text(json.dumps(metrics, indent=1))
    files += [out / IMPORTANCE_FILE, out / METRICS_FILE]
    plots = out / PLOTS_DIR
    files.append(
        plot_importances(
            importances, plots / "feature_importance.png", title=f"{model.name} feature importance"
        )
    )
    if tiles is not None and sampled is not None:
        files.append(
            plot_confusion(
                tiles,
                plots / "confusion_matrix.png",
                title=f"whole validation tiles, threshold {tiles.threshold:g}",
            )
        )
        files.append(
            plot_pr_curves(
                {"whole tiles": tiles, "sampled pixels": sampled}, plots / "pr_curve.png"
            )
        )
        tiles.to_json(out / "val_tiles_evaluation.json")
        files.append(out / "val_tiles_evaluation.json")
    return files


def _params(
    config: TabularConfig, dataset: PixelDataset, model: TabularModel, fold: int | None
) -> dict[str, Any]:
    built = dataset.config
    params: dict[str, Any] = {
        "model": model.name,
        "fold": "all" if fold is None else fold,
        "train_folds": ",".join(str(f) for f in model.train_folds),
        "channels": ",".join(model.channels),
        "class_weight": config.class_weight,
        "row_weights": config.row_weights,
        "early_stopping_rounds": config.early_stopping_rounds,
        "seed": config.seed,
        "buffer_px": built.buffer_px,
        "non_kelp_per_tile": built.non_kelp_per_tile,
        "fill_value": config.features.fill_value,
        "mask_using_qa": config.features.mask_using_qa,
        "mask_using_water_mask": config.features.mask_using_water_mask,
        "dataset": str(dataset.root.resolve()),
    }
    params.update({f"{model.name}.{k}": v for k, v in model.params.items()})
    return params
