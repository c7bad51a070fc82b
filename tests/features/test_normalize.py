from __future__ import annotations

import numpy as np
import pytest
import torch

from kelpseg.features import NORMALIZERS, FeatureConfig
from tests.features.conftest import fake_stats

CHANNELS = ["NIR", "NDVI"]


@pytest.fixture
def x() -> torch.Tensor:
    rng = np.random.default_rng(0)
    return torch.from_numpy(rng.normal(0, 3, (2, 2, 9, 11)).astype(np.float32))


def _apply(name: str, x: torch.Tensor, **cfg: object) -> np.ndarray:
    config = FeatureConfig(channels=CHANNELS, normalization=name, **cfg)
    norm = NORMALIZERS[name]
    params = norm.prepare(fake_stats(CHANNELS), CHANNELS, config) if norm.needs_stats else {}
    params = {k: v.view(1, -1, 1, 1) for k, v in params.items()}
    return norm(x, params, config).numpy()


def test_global_strategies_use_dataset_statistics(x: torch.Tensor) -> None:
    s, xn = fake_stats(CHANNELS), x.numpy()
    col = lambda d: np.array([d[c] for c in CHANNELS])[None, :, None, None]  # noqa: E731
    np.testing.assert_allclose(_apply("z-score", x), (xn - col(s.mean)) / col(s.std), rtol=1e-6)
    np.testing.assert_allclose(
        _apply("min-max", x), (xn - col(s.min)) / (col(s.max) - col(s.min)), rtol=1e-5
    )
    q = np.clip((xn + 50) / 100, 0, 1)
    np.testing.assert_allclose(_apply("quantile", x), q, rtol=1e-5, atol=1e-7)


def test_per_sample_strategies_use_each_tile(x: torch.Tensor) -> None:
    xn = x.numpy()
    lo, hi = xn.min(axis=(2, 3), keepdims=True), xn.max(axis=(2, 3), keepdims=True)
    np.testing.assert_allclose(
        _apply("per-sample-min-max", x), (xn - lo) / (hi - lo), rtol=1e-5, atol=1e-6
    )
    flat = xn.reshape(2, 2, -1)
    qlo = np.quantile(flat, 0.1, axis=-1, method="nearest")[..., None, None]
    qhi = np.quantile(flat, 0.9, axis=-1, method="nearest")[..., None, None]
    expected = np.clip((xn - qlo) / (qhi - qlo), 0, 1)
    out = _apply("per-sample-quantile", x, quantiles=(0.1, 0.9))
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", sorted(NORMALIZERS))
def test_constant_channels_stay_finite(name: str) -> None:
    x = torch.full((1, 2, 4, 4), 5.0)
    assert np.isfinite(_apply(name, x)).all()
