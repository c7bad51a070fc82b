"""Band statistics against numpy over the full data, the quantile bound, JSON, compatibility."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from kelpseg.errors import KelpsegError
from kelpseg.features import BandStats, ChannelStack, FeatureConfig, compute_band_stats
from kelpseg.features.sketch import StatsAccumulator, error_bound
from kelpseg.io.tiles import read_tile

CHANNELS = ["NIR", "QA", "DEM", "DEMWM", "NDVI", "CYA", "LogR"]
LEVELS = (0.0, 0.001, 0.01, 0.25, 0.5, 0.99, 1.0)


def _reference(paths: list[Path], config: FeatureConfig) -> np.ndarray:
    raw = torch.from_numpy(np.stack([read_tile(p, expected_size=None).data for p in paths]))
    x = ChannelStack.from_config(config)(raw).numpy().astype(np.float64)
    if config.fill_value == "zero":
        x = np.nan_to_num(x, nan=0.0, posinf=0.0, neginf=0.0)
    return x.transpose(1, 0, 2, 3).reshape(len(config.channels), -1)


def _assert_quantiles_within_bound(
    values: np.ndarray, estimates: dict[float, float], bins: int
) -> None:
    rel, absolute = error_bound(bins)
    for q, est in estimates.items():
        exact = np.quantile(values, q, method="inverted_cdf")
        assert abs(est - exact) <= rel * abs(exact) + absolute, (q, est, exact)


@pytest.mark.parametrize("fill", ["min", "zero"])
def test_stats_match_numpy_over_all_pixels(stats_tiles: list[Path], fill: str) -> None:
    config = FeatureConfig(channels=CHANNELS, fill_value=fill)
    stats = compute_band_stats(
        stats_tiles, config, device="cpu", batch_size=4, quantiles=LEVELS, show_progress=False
    )
    ref = _reference(stats_tiles, config)
    assert stats.options["adjustment"] == ("zero-adjusted" if fill == "zero" else "nan-adjusted")
    assert stats.options["tiles"] == 6 and stats.options["n_pixels"] == ref.shape[1]
    for i, c in enumerate(CHANNELS):
        v = ref[i][np.isfinite(ref[i])]
        assert stats.count[c] == v.size
        assert (stats.min[c], stats.max[c]) == (v.min(), v.max())
        np.testing.assert_allclose(stats.mean[c], v.mean(), rtol=1e-10)
        np.testing.assert_allclose(stats.std[c], v.std(), rtol=1e-7)
        _assert_quantiles_within_bound(v, {q: stats.quantiles[q][c] for q in LEVELS}, 256)
    if fill == "min":  # masked pixels are left out: the cloud-only tile adds no NDVI
        assert stats.count["NDVI"] < stats.count["NIR"] < stats.options["n_pixels"]


@pytest.mark.parametrize("bins", [4, 64, 1024])
def test_quantile_error_bound_holds_on_hard_data(bins: int) -> None:
    rng = np.random.default_rng(bins)
    values = np.concatenate(
        [
            rng.lognormal(0, 8, 3000) * rng.choice([-1, 1], 3000),
            np.zeros(500),
            rng.normal(0, 1e-40, 50),
            rng.integers(-32768, 32767, 2000),
            np.full(300, 8000.0),
        ]
    ).astype(np.float32)
    acc = StatsAccumulator.empty(["v"], bins)
    for chunk in np.array_split(rng.permutation(values), 7):
        acc.update(torch.from_numpy(chunk).view(1, 1, 1, -1))
    levels = [0.0, 0.0001, 0.01, 0.1, 0.3, 0.5, 0.7, 0.9, 0.99, 0.9999, 1.0]
    est = acc.quantiles(levels)
    _assert_quantiles_within_bound(values.astype(np.float64), {q: est[q][0] for q in levels}, bins)


def test_partials_merge_exactly_and_survive_pickling() -> None:
    rng = np.random.default_rng(1)
    x = torch.from_numpy(rng.normal(100, 20, (6, 2, 10, 10)).astype(np.float32))
    whole = StatsAccumulator.empty(["a", "b"])
    whole.update(x)
    left, right = StatsAccumulator.empty(["a", "b"]), StatsAccumulator.empty(["a", "b"])
    left.update(x[:2])
    right.update(x[2:])
    merged = pickle.loads(pickle.dumps(left)).merge(pickle.loads(pickle.dumps(right)))
    np.testing.assert_array_equal(merged.hist, whole.hist)
    np.testing.assert_array_equal(merged.count, whole.count)
    np.testing.assert_allclose(merged.mean, whole.mean, rtol=1e-12)
    np.testing.assert_allclose(merged.std, whole.std, rtol=1e-10)
    assert merged.tiles == 6
    assert len(pickle.dumps(whole)) < whole.hist.nbytes / 100  # sparse on the wire


def test_memory_does_not_grow_with_tiles() -> None:
    acc = StatsAccumulator.empty(["a"])
    size = acc.hist.nbytes
    for _ in range(5):
        acc.update(torch.randn(4, 1, 16, 16))
    assert acc.hist.nbytes == size and acc.tiles == 20


def test_batch_size_and_table_input_do_not_change_results(stats_tiles: list[Path]) -> None:
    config = FeatureConfig(channels=["NDVI", "NIR"])
    one = compute_band_stats(stats_tiles, config, device="cpu", batch_size=1, show_progress=False)
    table = pd.DataFrame({"image_path": [str(p) for p in stats_tiles]})
    many = compute_band_stats(table, config, device="cpu", batch_size=5, show_progress=False)
    assert one.quantiles == many.quantiles and one.count == many.count and one.min == many.min
    np.testing.assert_allclose(one.vector("mean", ["NDVI"]), many.vector("mean", ["NDVI"]))


def test_json_round_trip_and_bad_files(tmp_path: Path, stats_tiles: list[Path]) -> None:
    config = FeatureConfig(channels=["NDVI", "DEMWM"])
    stats = compute_band_stats(stats_tiles[:2], config, device="cpu", show_progress=False)
    path = stats.to_json(tmp_path / "stats.json")
    back = BandStats.from_json(path)
    assert back == stats
    back.check_compatible(config)
    assert not list(tmp_path.glob(".*.tmp"))
    with pytest.raises(KelpsegError, match="does not exist"):
        BandStats.from_json(tmp_path / "nope.json")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(KelpsegError, match=r"bad\.json: not a readable JSON"):
        BandStats.from_json(tmp_path / "bad.json")
    (tmp_path / "other.json").write_text(json.dumps({"format": "x"}))
    with pytest.raises(KelpsegError, match="not a kelpseg band statistics"):
        BandStats.from_json(tmp_path / "other.json")
    doc = json.loads(path.read_text())
    del doc["stats"]["NDVI"]["mean"]
    (tmp_path / "cut.json").write_text(json.dumps(doc))
    with pytest.raises(KelpsegError, match="malformed"):
        BandStats.from_json(tmp_path / "cut.json")


def test_stats_refuse_other_masking(stats_tiles: list[Path]) -> None:
    config = FeatureConfig(channels=["NDVI"], mask_using_water_mask=False)
    stats = compute_band_stats(stats_tiles[:1], config, device="cpu", show_progress=False)
    with pytest.raises(KelpsegError, match="mask_using_water_mask=False"):
        stats.check_compatible(FeatureConfig(channels=["NDVI"]))
    with pytest.raises(KelpsegError, match="lack channel"):
        stats.check_compatible(
            FeatureConfig(channels=["NDVI", "NDWI"], mask_using_water_mask=False)
        )


def test_bad_arguments_are_user_errors(stats_tiles: list[Path]) -> None:
    with pytest.raises(KelpsegError, match="no tiles"):
        compute_band_stats([], FeatureConfig(), show_progress=False)
    with pytest.raises(KelpsegError, match="power of two"):
        compute_band_stats(stats_tiles, FeatureConfig(), quantile_bins=100, show_progress=False)
    with pytest.raises(KelpsegError, match=r"lie in \[0, 1\]"):
        compute_band_stats(stats_tiles, FeatureConfig(), quantiles=[1.5], show_progress=False)
    with pytest.raises(KelpsegError, match="unknown device"):
        compute_band_stats(stats_tiles, FeatureConfig(), device="gpu9", show_progress=False)
    if not torch.cuda.is_available():
        with pytest.raises(KelpsegError, match="no CUDA"):
            compute_band_stats(["x.tif"], FeatureConfig(), device="cuda", show_progress=False)
