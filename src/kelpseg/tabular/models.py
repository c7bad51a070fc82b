"""The tree-model registry: one dict from the name a user types to how that library is driven.

Each :class:`ModelSpec` knows its library's defaults, how to fit with early stopping and class
weighting (:mod:`kelpseg.tabular.backends`), how to predict the kelp probability, and how to
save and load the model in the library's own format (XGBoost UBJSON, LightGBM text, CatBoost
``.cbm``, scikit-learn forests via skops, which loads without unpickling arbitrary code).
Adding a library means adding its functions to ``backends`` and one entry here.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np

from kelpseg.errors import KelpsegError
from kelpseg.tabular.backends import (
    FitData,
    FitOptions,
    attr_importances,
    cat_best,
    cat_fit,
    cat_load,
    forest_fit,
    lgb_best,
    lgb_fit,
    lgb_load,
    lgb_save,
    no_iteration,
    positive_column,
    skops_load,
    skops_save,
    xgb_best,
    xgb_fit,
    xgb_importances,
    xgb_load,
)


@dataclass(frozen=True)
class ModelSpec:
    """How one library is trained, used and stored.

    Attributes:
        name: the key users type.
        description: one line for docs and ``--help``.
        suffix: file suffix of the saved model (the library's own format).
        defaults: parameters used unless the config overrides them.
        early_stopping: whether the library stops on a validation set.
        fit: (params, data, options) -> the fitted model object.
        predict: (model, x) -> (n,) kelp probabilities.
        save: (model, path) -> None.
        load: path -> model.
        importances: model -> (C,) non-negative importances, in feature order.
        best_iteration: model -> the kept iteration count, or ``None``.
    """

    name: str
    description: str
    suffix: str
    defaults: Mapping[str, Any]
    early_stopping: bool
    fit: Callable[[dict[str, Any], FitData, FitOptions], Any]
    predict: Callable[[Any, np.ndarray], np.ndarray]
    save: Callable[[Any, Path], None]
    load: Callable[[Path], Any]
    importances: Callable[[Any], np.ndarray]
    best_iteration: Callable[[Any], int | None]

    def params(self, overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """The registry's defaults with ``overrides`` applied."""
        return {**self.defaults, **(overrides or {})}


_FOREST_DEFAULTS = MappingProxyType(
    {"n_estimators": 100, "max_depth": 16, "min_samples_leaf": 5, "max_features": "sqrt"}
)

MODELS: dict[str, ModelSpec] = {
    spec.name: spec
    for spec in (
        ModelSpec(
            name="xgboost",
            description="XGBoost gradient boosting (hist), early stopping on validation log loss",
            suffix=".ubj",
            defaults=MappingProxyType(
                {
                    "n_estimators": 500,
                    "learning_rate": 0.1,
                    "max_depth": 8,
                    "tree_method": "hist",
                    "subsample": 0.8,
                    "colsample_bytree": 0.8,
                }
            ),
            early_stopping=True,
            fit=xgb_fit,
            predict=positive_column,
            save=lambda model, path: model.save_model(path),
            load=xgb_load,
            importances=xgb_importances,
            best_iteration=xgb_best,
        ),
        ModelSpec(
            name="lightgbm",
            description="LightGBM gradient boosting, early stopping on validation log loss",
            suffix=".txt",
            defaults=MappingProxyType(
                {
                    "n_estimators": 500,
                    "learning_rate": 0.1,
                    "num_leaves": 63,
                    "subsample": 0.8,
                    "subsample_freq": 1,
                    "colsample_bytree": 0.8,
                }
            ),
            early_stopping=True,
            fit=lgb_fit,
            predict=lambda booster, x: np.asarray(booster.predict(x), dtype=np.float32),
            save=lgb_save,
            load=lgb_load,
            importances=lambda booster: np.asarray(
                booster.feature_importance(importance_type="gain"), dtype=np.float64
            ),
            best_iteration=lgb_best,
        ),
        ModelSpec(
            name="catboost",
            description="CatBoost gradient boosting, early stopping on validation log loss",
            suffix=".cbm",
            defaults=MappingProxyType({"iterations": 500, "learning_rate": 0.1, "depth": 8}),
            early_stopping=True,
            fit=cat_fit,
            predict=positive_column,
            save=lambda model, path: model.save_model(str(path)),
            load=cat_load,
            importances=lambda model: np.asarray(model.get_feature_importance(), np.float64),
            best_iteration=cat_best,
        ),
        ModelSpec(
            name="random_forest",
            description="scikit-learn RandomForestClassifier (no early stopping), saved with skops",
            suffix=".skops",
            defaults=_FOREST_DEFAULTS,
            early_stopping=False,
            fit=forest_fit("RandomForestClassifier"),
            predict=positive_column,
            save=skops_save,
            load=skops_load,
            importances=attr_importances,
            best_iteration=no_iteration,
        ),
        ModelSpec(
            name="extra_trees",
            description="scikit-learn ExtraTreesClassifier (no early stopping), saved with skops",
            suffix=".skops",
            defaults=_FOREST_DEFAULTS,
            early_stopping=False,
            fit=forest_fit("ExtraTreesClassifier"),
            predict=positive_column,
            save=skops_save,
            load=skops_load,
            importances=attr_importances,
            best_iteration=no_iteration,
        ),
    )
}


def get_model_spec(name: str) -> ModelSpec:
    """The registry entry ``name``; errors list the choices."""
    try:
        return MODELS[name]
    except KeyError:
        raise KelpsegError(f"unknown model {name!r}; one of {', '.join(MODELS)}") from None
