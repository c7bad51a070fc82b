"""The ONNX Runtime predictor: probabilities, the predictor protocol, and bad input."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from kelpseg.errors import KelpsegError
from kelpseg.portable import OnnxPredictor, load_onnx_predictor
from kelpseg.portable.manifest import MANIFEST_NAME, read_manifest, write_manifest
from kelpseg.portable.runtime import execution_providers
from kelpseg.scenes.predict import TilePredictor
from tests.conftest import make_tile_array
from tests.portable.conftest import light_probability, make_light_package


def tiles(n: int = 2, size: int = 40) -> np.ndarray:
    batch = np.stack([make_tile_array(size, seed=i) for i in range(n)])
    batch[:, 1, :5] = 12000  # bright NIR rows: probability near 1
    return batch


def test_probabilities_are_what_the_graph_computes(light_package: Path) -> None:
    predictor = OnnxPredictor(light_package, device="cpu", threads=1, quiet=True)
    raw = tiles()
    probs = predictor.predict_batch(raw)
    assert probs.shape == (2, 40, 40) and probs.dtype == np.float32
    np.testing.assert_allclose(probs, light_probability(raw), atol=1e-6)
    np.testing.assert_array_equal(predictor.launch(raw).result(), probs)


def test_it_is_a_tile_predictor_for_scenes_and_reports_its_device(
    light_package: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    predictor = OnnxPredictor(light_package, device="auto", threads=2)
    assert isinstance(predictor, TilePredictor)
    assert predictor.device.type == "cpu" and predictor.device.provider == "CPUExecutionProvider"
    assert "CPUExecutionProvider" in capsys.readouterr().out
    assert predictor.channels == ["NIR"] and predictor.threshold == 0.5
    assert predictor.session.get_session_options().intra_op_num_threads == 2


def test_threshold_can_be_overridden(light_package: Path) -> None:
    predictor = OnnxPredictor(light_package, threshold=0.3, quiet=True)
    assert (predictor.threshold, predictor.threshold_source) == (0.3, "given")
    with pytest.raises(KelpsegError, match="outside"):
        OnnxPredictor(light_package, threshold=1.5, quiet=True)


def test_a_tile_of_the_wrong_band_count_is_one_clear_line(light_package: Path) -> None:
    predictor = OnnxPredictor(light_package, quiet=True)
    with pytest.raises(KelpsegError, match=r"\(N, 7, H, W\).*got shape \(2, 6, 40, 40\)"):
        predictor.predict_batch(tiles()[:, :6])
    with pytest.raises(KelpsegError, match="int16"):
        predictor.predict_batch(tiles().astype(np.float32))


def test_tile_size_limits_of_the_manifest_are_enforced(tmp_path: Path) -> None:
    fixed = make_light_package(tmp_path / "fixed", dynamic_hw=False, tile_size=40)
    predictor = OnnxPredictor(fixed, quiet=True)
    assert predictor.predict_batch(tiles(1, 40)).shape == (1, 40, 40)
    with pytest.raises(KelpsegError, match="40x40 px tiles only"):
        predictor.predict_batch(tiles(1, 48))
    small = make_light_package(tmp_path / "small", min_tile_size=32)
    with pytest.raises(KelpsegError, match="at least 32"):
        OnnxPredictor(small, quiet=True).predict_batch(tiles(1, 20))


def test_checksum_mismatch_is_refused_on_load(light_package: Path) -> None:
    with (light_package / "model.onnx").open("ab") as fh:
        fh.write(b"\0")
    with pytest.raises(KelpsegError, match="checksum"):
        load_onnx_predictor(light_package, quiet=True)


def test_a_graph_for_other_channels_is_refused(tmp_path: Path) -> None:
    package = make_light_package(tmp_path / "six", bands=6)
    with pytest.raises(KelpsegError, match="other channels") as info:
        OnnxPredictor(package, quiet=True)
    assert "\n" not in str(info.value)


def test_a_model_for_other_bands_or_channels_is_refused(light_package: Path) -> None:
    with pytest.raises(KelpsegError, match="is for channels NIR, not R, G"):
        OnnxPredictor(light_package, channels=["R", "G"], quiet=True)
    manifest = read_manifest(light_package)
    manifest.band_order = ["B", "G", "R", "NIR", "SWIR1", "QA", "DEM"]
    write_manifest(manifest, light_package)
    with pytest.raises(KelpsegError, match="expects bands B, G, R"):
        OnnxPredictor(light_package, quiet=True)


def test_a_newer_package_format_asks_for_an_upgrade(light_package: Path) -> None:
    path = light_package / MANIFEST_NAME
    data = json.loads(path.read_text())
    data["format_version"] = 99
    path.write_text(json.dumps(data))
    with pytest.raises(KelpsegError, match="upgrade kelpseg"):
        OnnxPredictor(light_package, quiet=True)


def test_devices_map_to_providers() -> None:
    assert execution_providers("cpu") == ["CPUExecutionProvider"]
    assert execution_providers("auto")[-1] == "CPUExecutionProvider"
    with pytest.raises(KelpsegError, match="unknown device"):
        execution_providers("tpu")


def test_predict_tiles_takes_the_onnx_predictor(light_package: Path, tmp_path: Path) -> None:
    from kelpseg.inference.predict import predict_tiles
    from kelpseg.io.tiles import read_label, write_tile

    raws = {f"T{i}": tiles(3, 40)[i] for i in range(3)}
    paths = [write_tile(tmp_path / "in" / f"{k}_satellite.tif", v) for k, v in raws.items()]
    predictor = OnnxPredictor(light_package, quiet=True)
    summary = predict_tiles(
        predictor, paths, tmp_path / "out", batch_size=2, num_workers=0, show_progress=False
    )
    assert summary.written == 3 and summary.threshold == 0.5
    for tile_id, raw in raws.items():
        expected = light_probability(raw[None])[0] >= 0.5
        np.testing.assert_array_equal(
            read_label(tmp_path / "out" / f"{tile_id}_kelp.tif"), expected
        )
