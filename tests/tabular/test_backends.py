"""Early stopping watches the same class-weighted loss the trees train on."""

from __future__ import annotations

import numpy as np
import pytest

from kelpseg.tabular.backends import FitData, FitOptions, validation_weights
from kelpseg.tabular.models import get_model_spec


def _noisy_pixels(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A rare positive class (3%) that overlaps the negatives: many trees help, none is perfect."""
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.03).astype(np.int32)
    x = rng.normal(size=(n, 4)).astype(np.float32)
    x[:, 0] += 1.5 * y
    x[:, 1] += 0.8 * y * x[:, 2]
    return x, y


def test_validation_weights_apply_the_kelp_weight_to_kelp_rows_only() -> None:
    y_val = np.array([0, 1, 1, 0])
    data = FitData(np.zeros((4, 1)), y_val, np.zeros((4, 1)), y_val, weight_val=np.full(4, 2.0))
    np.testing.assert_array_equal(
        validation_weights(data, FitOptions(pos_weight=10.0)), [2.0, 20.0, 20.0, 2.0]
    )
    assert validation_weights(data, FitOptions()) is data.weight_val  # no class weight: as given
    no_val = FitData(np.zeros((4, 1)), y_val)
    assert validation_weights(no_val, FitOptions(pos_weight=10.0)) is None


@pytest.mark.parametrize("name", ["xgboost", "lightgbm", "catboost"])
def test_a_class_weighted_model_does_not_stop_after_its_first_trees(name: str) -> None:
    x, y = _noisy_pixels(6000, 0)
    x_val, y_val = _noisy_pixels(3000, 1)
    spec = get_model_spec(name)
    params = {"xgboost": {"n_estimators": 60, "max_depth": 3, "learning_rate": 0.1},
              "lightgbm": {"n_estimators": 60, "num_leaves": 7, "learning_rate": 0.1},
              "catboost": {"iterations": 60, "depth": 3, "learning_rate": 0.1}}[name]  # fmt: skip
    options = FitOptions(seed=0, threads=1, pos_weight=float((y == 0).sum() / y.sum()),
                         early_stopping_rounds=5)  # fmt: skip
    model = spec.fit(params, FitData(x, y, x_val, y_val), options)
    kept = spec.best_iteration(model)
    # Unweighted validation log loss made XGBoost keep a single tree on the demo data.
    assert kept is not None and kept > 10
