"""Prediction folders: reading masks and probabilities, writing them, thresholding."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio

from kelpseg.errors import KelpsegError
from kelpseg.inference.rasters import (
    PredictionDir,
    as_source,
    binarize,
    read_prediction,
    write_predictions,
)
from kelpseg.io.tiles import write_mask, write_probability


def _write_raw(path: Path, array: np.ndarray) -> None:
    with rasterio.open(
        path,
        "w",
        driver="GTiff",
        count=1,
        height=array.shape[0],
        width=array.shape[1],
        dtype=array.dtype.name,
    ) as dst:
        dst.write(array[None])


def test_masks_and_probabilities_read_as_float(tmp_path: Path) -> None:
    mask = np.eye(4, dtype=np.uint8)
    prob = np.linspace(0, 1, 16, dtype=np.float32).reshape(4, 4)
    write_mask(tmp_path / "A_kelp.tif", mask)
    write_probability(tmp_path / "A_prob.tif", prob)
    np.testing.assert_array_equal(read_prediction(tmp_path / "A_kelp.tif"), mask)
    np.testing.assert_array_equal(read_prediction(tmp_path / "A_prob.tif"), prob)


def test_bad_rasters_are_kelpseg_errors(tmp_path: Path) -> None:
    _write_raw(tmp_path / "A_kelp.tif", np.full((3, 3), 2, np.uint8))
    _write_raw(tmp_path / "B_prob.tif", np.full((3, 3), 1.5, np.float32))
    (tmp_path / "C_kelp.tif").write_bytes(b"not a tiff")
    for name, message in (("A_kelp", "outside"), ("B_prob", "within"), ("C_kelp", "readable")):
        with pytest.raises(KelpsegError, match=message):
            read_prediction(tmp_path / f"{name}.tif")


def test_prediction_dir_prefers_probabilities_in_auto_mode(tmp_path: Path) -> None:
    write_mask(tmp_path / "A_kelp.tif", np.ones((2, 2), np.uint8))
    write_probability(tmp_path / "A_prob.tif", np.full((2, 2), 0.25, np.float32))
    write_mask(tmp_path / "B_kelp.tif", np.zeros((2, 2), np.uint8))
    auto = PredictionDir(tmp_path)
    assert list(auto) == ["A", "B"]
    assert auto["A"][0, 0] == pytest.approx(0.25)
    assert PredictionDir(tmp_path, "mask")["A"][0, 0] == 1.0
    assert list(PredictionDir(tmp_path, "prob")) == ["A"]
    assert isinstance(as_source(tmp_path), PredictionDir)
    with pytest.raises(KeyError):
        auto["Z"]
    with pytest.raises(KelpsegError, match="does not exist"):
        PredictionDir(tmp_path / "nope")


def test_binarize_compares_in_float64() -> None:
    edge = np.float32(0.45)  # 0.449999988... in float64: below the threshold 0.45
    assert not binarize(np.array([edge]), 0.45)[0]
    assert binarize(np.array([np.float32(0.5)]), 0.5)[0]


def test_write_predictions_skips_done_tiles(tmp_path: Path) -> None:
    source = {"A": np.full((3, 3), 0.7, np.float32), "B": np.full((3, 3), 0.2, np.float32)}
    assert write_predictions(source, tmp_path, soft=True, show_progress=False) == 2
    assert read_prediction(tmp_path / "A_kelp.tif").all()
    assert not read_prediction(tmp_path / "B_kelp.tif").any()
    assert read_prediction(tmp_path / "B_prob.tif")[0, 0] == pytest.approx(0.2)
    assert write_predictions(source, tmp_path, soft=True, show_progress=False) == 0
    assert (
        write_predictions(source, tmp_path, threshold=0.1, overwrite=True, show_progress=False) == 2
    )
    assert read_prediction(tmp_path / "B_kelp.tif").all()
    assert not list(tmp_path.glob(".*tmp"))
