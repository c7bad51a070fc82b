"""Exported graphs vs torch: single models and ensembles, three architectures, channel sets."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
import torch

from kelpseg.errors import KelpsegError
from kelpseg.export.package import export_model
from kelpseg.export.verify import crafted_tiles
from kelpseg.inference.loading import load_torch_predictor
from kelpseg.nn.module import KelpSegModule
from kelpseg.portable import load_onnx_predictor, verify_package
from tests.portable.conftest import run_light
from tests.portable.exported import (
    SEGFORMER_CHANNELS,
    UNET_CHANNELS,
    UNETPP_CHANNELS,
    tiny_module,
    with_missing,
)

pytestmark = pytest.mark.slow
#: (height, width) of the parity batches: the tile size, odd sizes (asymmetric padding), small.
SIZES = [(350, 350), (97, 131), (64, 64), (33, 40)]


def mismatch(a: np.ndarray, b: np.ndarray, threshold: float) -> float:
    return float(((a >= threshold) != (b >= threshold)).mean())


@pytest.mark.parametrize(("height", "width"), SIZES)
def test_single_model_matches_torch(
    single_package: Path, members: dict[str, Path], height: int, width: int
) -> None:
    predictor = load_onnx_predictor(single_package, device="cpu", quiet=True)
    module = KelpSegModule.from_checkpoint(members["Unet"])
    raw = with_missing(crafted_tiles(3, height, width, seed=height))
    got = predictor.predict_batch(raw)
    with torch.no_grad():
        expected = module.predict_probabilities(torch.from_numpy(raw))[:, 0].numpy()
    assert got.shape == (3, height, width)
    assert np.abs(got - expected).max() < 1e-4
    assert mismatch(got, expected, predictor.threshold) < 1e-3


@pytest.mark.parametrize(("height", "width"), SIZES)
def test_ensemble_matches_the_torch_predictor(
    ensemble_package: Path, members: dict[str, Path], height: int, width: int
) -> None:
    order = [members["UnetPlusPlus"], members["Segformer"], members["Unet"]]
    reference = load_torch_predictor(order, [2.0, 1.0, 1.0], device="cpu")
    predictor = load_onnx_predictor(ensemble_package, device="cpu", quiet=True)
    raw = with_missing(crafted_tiles(2, height, width, seed=7 * height))
    got, expected = predictor.predict_batch(raw), reference.predict_batch(raw)
    assert np.abs(got - expected).max() < 1e-4
    assert mismatch(got, expected, predictor.threshold) < 1e-3


def test_manifest_records_what_the_package_holds(
    single_package: Path, ensemble_package: Path
) -> None:
    single = verify_package(single_package)
    assert (single.threshold, single.threshold_source) == (0.45, "given")
    assert single.channels == UNET_CHANNELS and single.dynamic_hw
    assert single.needs_dem  # land masking of NDVI reads the DEM
    assert single.verification is not None and single.verification.max_abs_diff < 1e-4
    member = single.members[0]
    config_text = (single_package / member.config_file).read_bytes()
    assert member.config_digest == hashlib.sha256(config_text).hexdigest()
    assert member.features["normalization"] == "quantile"
    assert {"torch", "onnxruntime", "onnx"} <= set(single.libraries)

    trio = verify_package(ensemble_package)
    assert [m.arch for m in trio.members] == ["UnetPlusPlus", "Segformer", "Unet"]
    assert [m.weight for m in trio.members] == pytest.approx([0.5, 0.25, 0.25])
    assert trio.channels == list(
        dict.fromkeys(UNETPP_CHANNELS + SEGFORMER_CHANNELS + UNET_CHANNELS)
    )
    assert trio.threshold == pytest.approx(0.5) and trio.threshold_source == "training config"
    assert trio.verification is not None and trio.verification.mask_mismatch_share < 1e-3


def test_tiles_below_the_reflection_limit_are_refused(single_package: Path) -> None:
    predictor = load_onnx_predictor(single_package, quiet=True)
    small = predictor.manifest.min_tile_size - 1
    with pytest.raises(KelpsegError, match=f"at least {small + 1}"):
        predictor.predict_batch(crafted_tiles(1, small, 40))


def test_export_refuses_an_existing_package_folder(
    single_package: Path, members: dict[str, Path]
) -> None:
    with pytest.raises(KelpsegError, match="not empty"):
        export_model([members["Unet"]], None, "unet", "1.0", single_package)
    with pytest.raises(KelpsegError, match="weights"):
        export_model([members["Unet"]], [1.0, 2.0], "unet", "1.0", single_package.parent / "new")


def test_exported_package_runs_without_torch(
    single_package: Path, members: dict[str, Path], tmp_path: Path
) -> None:
    raw = with_missing(crafted_tiles(2, 97, 131, seed=3))
    np.save(tmp_path / "raw.npy", raw)
    done = run_light(
        """
        import numpy as np
        from kelpseg.portable import load_onnx_predictor
        predictor = load_onnx_predictor(sys.argv[1], device="cpu")
        np.save(sys.argv[3], predictor.predict_batch(np.load(sys.argv[2])))
        """,
        str(single_package),
        str(tmp_path / "raw.npy"),
        str(tmp_path / "prob.npy"),
    )
    assert done.returncode == 0, done.stderr[-2000:]
    module = KelpSegModule.from_checkpoint(members["Unet"])
    with torch.no_grad():
        expected = module.predict_probabilities(torch.from_numpy(raw))[:, 0].numpy()
    assert np.abs(np.load(tmp_path / "prob.npy") - expected).max() < 1e-4


def test_size_bound_ops_fall_back_to_a_fixed_size_graph(tmp_path: Path) -> None:
    features = {"channels": ["NIR", "SWIR1", "NDVI"], "normalization": "per-sample-quantile"}
    module = tiny_module("Unet", features, seed=4)
    package = export_model([module], None, "fixed", "1", tmp_path / "fixed")
    predictor = load_onnx_predictor(package, quiet=True)
    assert not predictor.manifest.dynamic_hw and predictor.manifest.tile_size == 350
    raw = crafted_tiles(2, 350, 350, seed=9)
    with torch.no_grad():
        expected = module.predict_probabilities(torch.from_numpy(raw))[:, 0].numpy()
    assert np.abs(predictor.predict_batch(raw) - expected).max() < 1e-4
    with pytest.raises(KelpsegError, match="350x350 px tiles only"):
        predictor.predict_batch(crafted_tiles(1, 64, 64))
