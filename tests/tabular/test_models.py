"""The model registry: fitting, class weighting, early stopping, saving and loading."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from kelpseg.errors import KelpsegError
from kelpseg.features import FeatureConfig
from kelpseg.tabular import MODELS, TabularModel, get_model_spec, load_model
from kelpseg.tabular.backends import FitData, FitOptions

N_FEATURES = 4
FEATURES = FeatureConfig(
    channels=["NIR", "R", "G", "B"], fill_value="nan", normalization="per-sample-min-max"
)
TINY = {
    "xgboost": {"n_estimators": 30, "max_depth": 3},
    "lightgbm": {"n_estimators": 30, "num_leaves": 7, "min_child_samples": 5},
    "catboost": {"iterations": 30, "depth": 3},
    "random_forest": {"n_estimators": 10, "max_depth": 5},
    "extra_trees": {"n_estimators": 10, "max_depth": 5},
}


def _pixels(n: int, seed: int, signal: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Rows whose label depends on feature 0 only (when ``signal``), with 10% NaN."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, N_FEATURES)).astype(np.float32)
    y = (x[:, 0] + 0.3 * rng.normal(size=n) > 1.0) if signal else rng.random(n) < 0.2
    x[rng.random(x.shape) < 0.1] = np.nan
    return x, y.astype(np.uint8)


def _fit(name: str, pos_weight: float | None = None, rounds: int = 0) -> object:
    spec = get_model_spec(name)
    x, y = _pixels(3000, 0)
    xv, yv = _pixels(1000, 1)
    options = FitOptions(seed=0, threads=1, pos_weight=pos_weight, early_stopping_rounds=rounds)
    return spec.fit(spec.params(TINY[name]), FitData(x, y, xv, yv), options)


@pytest.mark.parametrize("name", list(MODELS))
def test_model_learns_and_round_trips_through_its_own_format(name: str, tmp_path: Path) -> None:
    spec = get_model_spec(name)
    model = TabularModel(
        name, _fit(name), FEATURES, threshold=0.37, holdout_fold=2, train_folds=[0, 1]
    )
    x, y = _pixels(2000, 7)
    prob = model.predict_pixels(x, batch_pixels=333)
    assert prob.dtype == np.float32 and prob.shape == (2000,)
    assert prob.min() >= 0.0 and prob.max() <= 1.0
    assert ((prob >= 0.5) == y.astype(bool)).mean() > 0.85
    assert model.importances().index[0] == "NIR", "the informative column ranks first"
    assert model.importances().sum() == pytest.approx(1.0)

    model.save(tmp_path / "m")
    assert (tmp_path / "m" / f"model{spec.suffix}").is_file()
    sidecar = json.loads((tmp_path / "m" / "model.json").read_text())
    assert sidecar["channels"] == FEATURES.channels and sidecar["threshold"] == 0.37
    loaded = load_model(tmp_path / "m")
    np.testing.assert_allclose(loaded.predict_pixels(x), prob, rtol=1e-6, atol=1e-7)
    assert (loaded.holdout_fold, loaded.train_folds, loaded.threshold) == (2, [0, 1], 0.37)
    assert not list((tmp_path / "m").glob(".*")), "no temporary files left"


@pytest.mark.parametrize("name", list(MODELS))
def test_kelp_class_weight_raises_probabilities(name: str) -> None:
    x, _ = _pixels(2000, 3)
    plain = TabularModel(name, _fit(name), FEATURES).predict_pixels(x)
    weighted = TabularModel(name, _fit(name, pos_weight=8.0), FEATURES).predict_pixels(x)
    assert weighted.mean() > plain.mean() + 0.02


@pytest.mark.parametrize("name", list(MODELS))
def test_row_weights_are_passed_to_the_library(name: str) -> None:
    spec = get_model_spec(name)
    x, y = _pixels(3000, 0)
    heavy_negatives = np.where(y == 0, 10.0, 1.0).astype(np.float32)
    options = FitOptions(seed=0, threads=1)
    plain = spec.fit(spec.params(TINY[name]), FitData(x, y), options)
    weighted = spec.fit(spec.params(TINY[name]), FitData(x, y, weight=heavy_negatives), options)
    probe, _ = _pixels(2000, 5)
    assert spec.predict(weighted, probe).mean() < spec.predict(plain, probe).mean() - 0.01


@pytest.mark.parametrize("name", [n for n, s in MODELS.items() if s.early_stopping])
def test_boosted_models_stop_early_on_noise(name: str) -> None:
    spec = get_model_spec(name)
    x, y = _pixels(2000, 0, signal=False)
    xv, yv = _pixels(1000, 1, signal=False)
    params = spec.params(
        {**TINY[name], "n_estimators" if name != "catboost" else "iterations": 400}
    )
    options = FitOptions(seed=0, threads=1, early_stopping_rounds=5)
    fitted = spec.fit(params, FitData(x, y, xv, yv), options)
    best = spec.best_iteration(fitted)
    assert best is not None and best < 100


def test_forest_loader_refuses_unexpected_types(tmp_path: Path) -> None:
    skops_io = pytest.importorskip("skops.io")
    path = tmp_path / "model.skops"
    skops_io.dump({"hook": np.random.default_rng}, path)
    with pytest.raises(KelpsegError, match="unexpected types"):
        get_model_spec("random_forest").load(path)


def test_load_model_errors_name_the_fault(tmp_path: Path) -> None:
    with pytest.raises(KelpsegError, match=r"no model\.json"):
        load_model(tmp_path)
    model = TabularModel("xgboost", _fit("xgboost"), FEATURES)
    model.save(tmp_path / "m")
    (tmp_path / "m" / "model.ubj").unlink()
    with pytest.raises(KelpsegError, match="model file is missing"):
        load_model(tmp_path / "m")
    doc = json.loads((tmp_path / "m" / "model.json").read_text())
    (tmp_path / "m" / "model.json").write_text(json.dumps({**doc, "model": "svm"}))
    with pytest.raises(KelpsegError, match="unknown model 'svm'"):
        load_model(tmp_path / "m")


def test_predict_pixels_checks_the_column_count() -> None:
    model = TabularModel("xgboost", _fit("xgboost"), FEATURES)
    with pytest.raises(KelpsegError, match="expects"):
        model.predict_pixels(np.zeros((5, 3), np.float32))
