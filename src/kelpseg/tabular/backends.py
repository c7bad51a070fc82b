"""How each tree library is driven: fitting with early stopping and class weights, I/O.

Libraries are imported only when a model is fitted or loaded (:func:`require`), so the
registry in :mod:`kelpseg.tabular.models` costs nothing to import and a missing library is
a :class:`~kelpseg.errors.MissingExtraError` naming the extra to install.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from kelpseg.errors import KelpsegError, MissingExtraError

# Types a skops file of a scikit-learn forest may hold beyond skops' own safe defaults.
SKOPS_TRUSTED: frozenset[str] = frozenset({"sklearn.tree._tree.Tree"})


@dataclass(frozen=True)
class FitData:
    """Training pixels and (optionally) validation pixels, features as float32 with NaN.

    ``weight`` and ``weight_val`` are optional row weights (``None``: every row counts 1).
    """

    x: np.ndarray
    y: np.ndarray
    x_val: np.ndarray | None = None
    y_val: np.ndarray | None = None
    weight: np.ndarray | None = None
    weight_val: np.ndarray | None = None

    @property
    def has_validation(self) -> bool:
        """Whether validation pixels were given (early stopping needs them)."""
        return self.x_val is not None and self.y_val is not None and len(self.y_val) > 0


@dataclass(frozen=True)
class FitOptions:
    """Settings shared by every library: seed, threads, kelp weight, early stopping."""

    seed: int = 0
    threads: int | None = None
    pos_weight: float | None = None
    early_stopping_rounds: int = 0


def validation_weights(data: FitData, options: FitOptions) -> np.ndarray | None:
    """Validation pixel weights with the kelp class weight applied, as in training.

    Early stopping watches the validation log loss. Unweighted, that loss disagrees with the
    class-weighted training objective (whose probabilities are shifted upwards by design) and is
    lowest after a tree or two, so training stopped there; weighted alike, the two agree.
    """
    if not data.has_validation or not options.pos_weight:
        return data.weight_val
    assert data.y_val is not None  # has_validation
    base = np.ones(len(data.y_val)) if data.weight_val is None else np.asarray(data.weight_val)
    return np.where(np.asarray(data.y_val) == 1, base * options.pos_weight, base)


def require(module: str) -> Any:
    """Import ``module`` or raise :class:`MissingExtraError` for the tabular extra."""
    try:
        return __import__(module, fromlist=["_"])
    except ImportError as exc:
        raise MissingExtraError("tabular", module) from exc


def stopping_rounds(data: FitData, options: FitOptions) -> int | None:
    """Early-stopping rounds to pass, or ``None`` without validation data."""
    return (
        options.early_stopping_rounds
        if data.has_validation and options.early_stopping_rounds
        else None
    )


# --- XGBoost -------------------------------------------------------------------------------
def xgb_fit(params: dict[str, Any], data: FitData, options: FitOptions) -> Any:
    """Fit an ``XGBClassifier``; early stopping on the validation log loss."""
    xgb = require("xgboost")
    model = xgb.XGBClassifier(
        **params,
        random_state=options.seed,
        n_jobs=options.threads,
        scale_pos_weight=options.pos_weight or 1.0,
        early_stopping_rounds=stopping_rounds(data, options),
        eval_metric="logloss",
    )
    evals: dict[str, Any] = {}
    if data.has_validation:
        evals["eval_set"] = [(data.x_val, data.y_val)]
        weight_val = validation_weights(data, options)
        if weight_val is not None:
            evals["sample_weight_eval_set"] = [weight_val]
    model.fit(data.x, data.y, sample_weight=data.weight, verbose=False, **evals)
    return model


def xgb_load(path: Path) -> Any:
    """Load an ``XGBClassifier`` from its UBJSON file."""
    model = require("xgboost").XGBClassifier()
    model.load_model(path)
    return model


def xgb_importances(model: Any) -> np.ndarray:
    """Total gain per feature, in feature order."""
    # Total gain, like LightGBM's "gain": split counts would favour noisy continuous channels.
    score = model.get_booster().get_score(importance_type="total_gain")
    return np.array([score.get(f"f{i}", 0.0) for i in range(model.n_features_in_)])


def xgb_best(model: Any) -> int | None:
    """Trees kept by early stopping, or ``None``."""
    try:
        return int(model.best_iteration) + 1
    except AttributeError:  # trained without early stopping
        return None


# --- LightGBM ------------------------------------------------------------------------------
def lgb_fit(params: dict[str, Any], data: FitData, options: FitOptions) -> Any:
    """Fit an ``LGBMClassifier``; return its Booster."""
    lgb = require("lightgbm")
    model = lgb.LGBMClassifier(
        **params,
        random_state=options.seed,
        n_jobs=options.threads or -1,
        scale_pos_weight=options.pos_weight or 1.0,
        verbose=-1,
    )
    rounds = stopping_rounds(data, options)
    callbacks = [lgb.early_stopping(rounds, verbose=False)] if rounds else None
    evals: dict[str, Any] = {}
    if data.has_validation:
        # LightGBM 4.6 renamed eval_set to eval_X / eval_y; older 4.x only knows eval_set.
        if "eval_X" in inspect.signature(model.fit).parameters:
            evals = {"eval_X": data.x_val, "eval_y": data.y_val}
        else:
            evals = {"eval_set": [(data.x_val, data.y_val)]}
        weight_val = validation_weights(data, options)
        if weight_val is not None:
            evals["eval_sample_weight"] = [weight_val]
    model.fit(data.x, data.y, sample_weight=data.weight, callbacks=callbacks, **evals)
    # Keep the Booster: it is what a saved model loads back as, so both paths predict alike.
    return model.booster_


def lgb_save(booster: Any, path: Path) -> None:
    """Save a Booster as text, truncated to its best iteration."""
    best = booster.best_iteration
    booster.save_model(str(path), num_iteration=best if best > 0 else None)


def lgb_load(path: Path) -> Any:
    """Load a Booster from its text file."""
    return require("lightgbm").Booster(model_file=str(path))


def lgb_best(booster: Any) -> int | None:
    """Iterations kept by early stopping, or ``None``."""
    return int(booster.best_iteration) if booster.best_iteration > 0 else None


# --- CatBoost ------------------------------------------------------------------------------
def cat_fit(params: dict[str, Any], data: FitData, options: FitOptions) -> Any:
    """Fit a ``CatBoostClassifier``; keep the best validation iteration."""
    catboost = require("catboost")
    model = catboost.CatBoostClassifier(
        **params,
        random_seed=options.seed,
        thread_count=options.threads or -1,
        scale_pos_weight=options.pos_weight or 1.0,
        verbose=False,
        allow_writing_files=False,  # else it leaves catboost_info/ in the working directory
    )
    eval_set = None
    if data.has_validation:
        eval_set = catboost.Pool(data.x_val, data.y_val, weight=validation_weights(data, options))
    model.fit(
        data.x,
        data.y,
        sample_weight=data.weight,
        eval_set=eval_set,
        early_stopping_rounds=stopping_rounds(data, options),
        use_best_model=data.has_validation,
    )
    return model


def cat_load(path: Path) -> Any:
    """Load a ``CatBoostClassifier`` from its ``.cbm`` file."""
    model = require("catboost").CatBoostClassifier()
    model.load_model(str(path))
    return model


def cat_best(model: Any) -> int | None:
    """Trees kept by early stopping, or ``None``."""
    best = model.get_best_iteration()
    return None if best is None else int(best) + 1


# --- scikit-learn forests ------------------------------------------------------------------
def forest_fit(kind: str) -> Callable[[dict[str, Any], FitData, FitOptions], Any]:
    """A fit function for the scikit-learn ensemble class named ``kind``."""

    def fit(params: dict[str, Any], data: FitData, options: FitOptions) -> Any:
        ensemble = require("sklearn.ensemble")
        cls = getattr(ensemble, kind)
        weight = {0: 1.0, 1: float(options.pos_weight)} if options.pos_weight else None
        model = cls(
            **params,
            random_state=options.seed,
            n_jobs=options.threads or -1,
            class_weight=weight,
        )
        return model.fit(data.x, data.y, sample_weight=data.weight)

    return fit


def skops_save(model: Any, path: Path) -> None:
    """Save a scikit-learn model with skops."""
    require("skops.io").dump(model, path)


def skops_load(path: Path) -> Any:
    """Load a skops file, trusting only :data:`SKOPS_TRUSTED` beyond the defaults."""
    sio = require("skops.io")
    untrusted = set(sio.get_untrusted_types(file=path))
    unexpected = sorted(untrusted - SKOPS_TRUSTED)
    if unexpected:
        raise KelpsegError(f"refusing to load unexpected types {unexpected}", path)
    return sio.load(path, trusted=sorted(untrusted))


def positive_column(model: Any, x: np.ndarray) -> np.ndarray:
    """Kelp probability from ``predict_proba``."""
    return np.asarray(model.predict_proba(x)[:, 1], dtype=np.float32)


def attr_importances(model: Any) -> np.ndarray:
    """The model's ``feature_importances_``."""
    return np.asarray(model.feature_importances_, dtype=np.float64)


def no_iteration(model: Any) -> int | None:
    """Always ``None`` (no boosting rounds)."""
    return None
