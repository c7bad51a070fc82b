"""predict-scene with the real model loader (``kelpseg.inference.predict``) and a tiny U-Net."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import rasterio
import typer

import kelpseg.cli.app as app_module
from kelpseg.cli import scenes as scenes_cmds
from kelpseg.io.tiles import MISSING
from kelpseg.scenes.predict import TilePredictor
from kelpseg.scenes.synth import SyntheticScene

torch = pytest.importorskip("torch")
predict = pytest.importorskip("kelpseg.inference.predict")

pytestmark = pytest.mark.slow

# A 3-stage ResNet-10 U-Net with random weights, as the inference tests use.
TINY_MODEL: dict[str, Any] = {
    "arch": "Unet",
    "encoder": "tu-resnet10t",
    "encoder_weights": None,
    "arch_kwargs": {"encoder_depth": 3, "decoder_channels": [32, 16, 8]},
}


def _checkpoint(path: Path, channels: list[str]) -> Path:
    from kelpseg.config import validate_config
    from kelpseg.nn.config import TrainConfig
    from kelpseg.nn.module import KelpSegModule

    config = {
        "features": {"channels": channels, "normalization": "per-sample-min-max"},
        "model": TINY_MODEL,
    }
    torch.manual_seed(0)
    module = KelpSegModule(validate_config(TrainConfig, config), None).eval()
    ckpt: dict[str, Any] = {"state_dict": module.state_dict()}
    module.on_save_checkpoint(ckpt)
    torch.save(ckpt, path)
    return path


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("models")
    return {
        "dem": _checkpoint(folder / "dem.ckpt", ["SWIR1", "NIR", "R", "G", "B", "DEM"]),
        "plain": _checkpoint(folder / "plain.ckpt", ["SWIR1", "NIR", "R", "G", "B"]),
    }


@pytest.fixture
def kelpseg(monkeypatch: pytest.MonkeyPatch) -> Any:
    root = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
    root.callback()(lambda: None)
    root.command("predict-scene")(scenes_cmds.predict_scene)
    monkeypatch.setattr(app_module, "app", root)
    return app_module.main


def test_the_real_predictor_is_a_tile_predictor(models: dict[str, Path]) -> None:
    dem_model = predict.load_predictor([models["dem"]], device="cpu")
    plain = predict.load_predictor([models["plain"]], device="cpu")
    assert isinstance(dem_model, TilePredictor) and isinstance(plain, TilePredictor)
    assert dem_model.needs_dem and not plain.needs_dem


def test_predict_scene_with_a_real_checkpoint(
    kelpseg: Any,
    models: dict[str, Path],
    scene89: SyntheticScene,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    base = ["predict-scene", str(scene89.band_prefix), "--device", "cpu", "--quiet", "--prob"]
    assert kelpseg([*base, "--model", str(models["dem"]), "--out", str(tmp_path / "x.tif")]) == 2
    assert "--dem" in capsys.readouterr().err
    out = tmp_path / "kelp.tif"
    argv = [*base, "--model", str(models["dem"]), "--dem", str(scene89.dem_path), "--out", str(out)]
    assert kelpseg(argv) == 0
    with rasterio.open(out.with_name("kelp_prob.tif")) as src:
        prob = src.read(1)
    # The scene is smaller than the model's 350 px tile: one window, padded with missing data.
    predictor = predict.load_predictor([models["dem"]], device="cpu")
    padded = np.full((1, 7, 350, 350), MISSING, np.int16)
    h, w = scene89.raw.shape[1:]
    padded[0, :, :h, :w] = scene89.raw
    expected = predictor.predict_batch(padded)[0, :h, :w]
    fill = (scene89.raw[:5] == MISSING).all(axis=0)
    np.testing.assert_allclose(prob[~fill], expected[~fill], rtol=0, atol=1e-6)
    plain = [*base, "--model", str(models["plain"]), "--out", str(tmp_path / "plain.tif")]
    assert kelpseg(plain) == 0  # no DEM needed, none given
