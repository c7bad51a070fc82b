"""``kelpseg predict-scene``, ``area`` and ``synth-scene`` on a test-only root app (until app.py
registers them); model loading is faked here (test_integration.py loads real checkpoints)."""

from __future__ import annotations

import json
import sys
import types
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import rasterio
import typer

import kelpseg.cli.app as app_module
from kelpseg.cli import scenes as scenes_cmds
from kelpseg.config import load_config
from kelpseg.scenes.config import SceneConfig
from kelpseg.scenes.synth import SyntheticScene
from tests.scenes.conftest import PixelPredictor, write_scene


@pytest.fixture
def kelpseg(monkeypatch: pytest.MonkeyPatch) -> Any:
    """``main(argv)`` of the real entry point, the scene commands on a test-only app."""
    root = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
    root.callback()(lambda: None)
    root.command("predict-scene")(scenes_cmds.predict_scene)
    root.command("area")(scenes_cmds.area)
    root.command("synth-scene")(scenes_cmds.synth_scene)
    monkeypatch.setattr(app_module, "app", root)
    return app_module.main


@pytest.fixture
def loaded(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """A stand-in ``kelpseg.inference.predict``; model ``dem`` needs a DEM band."""
    calls: list[dict[str, Any]] = []

    def load_predictor(models: list[str], weights: Any = None, **kwargs: Any) -> PixelPredictor:
        calls.append({"models": models, "weights": weights, **kwargs})
        return PixelPredictor(
            tile_size=48, needs_dem="dem" in models, threshold=kwargs.get("threshold") or 0.5
        )

    module = types.ModuleType("kelpseg.inference.predict")
    module.load_predictor = load_predictor  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "kelpseg.inference.predict", module)
    return calls


def test_predict_scene_writes_every_output(
    kelpseg: Any,
    loaded: list[dict[str, Any]],
    scene89: SyntheticScene,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    regions = tmp_path / "regions.geojson"
    regions.write_text(
        json.dumps(
            {
                "type": "Polygon",
                "coordinates": [[[-60, -52], [-57, -52], [-57, -51], [-60, -51], [-60, -52]]],
            }
        )
    )
    out = tmp_path / "run" / "kelp.tif"
    argv = [
        "predict-scene",
        str(scene89.band_prefix),
        "--out",
        str(out),
        "--model",
        "dem",
        "--model",
        "b",
        "--weights",
        "2",
        "--weights",
        "1",
        "--dem",
        str(scene89.dem_path),
        "--prob",
        "--polygons",
        str(tmp_path / "run" / "beds.geojson"),
        "--overlap",
        "12",
        "--batch-size",
        "4",
        "--device",
        "cpu",
        "--regions",
        str(regions),
        "--quiet",
    ]
    assert kelpseg(argv) == 0
    assert loaded == [
        {"models": ["dem", "b"], "weights": [2.0, 1.0], "device": "cpu", "threshold": None}
    ]
    names = sorted(p.name for p in (tmp_path / "run").iterdir())
    assert names == [
        "beds.geojson",
        "kelp.tif",
        "kelp_area.csv",
        "kelp_config.yaml",
        "kelp_prob.tif",
        "kelp_summary.json",
    ]
    config = load_config(SceneConfig, tmp_path / "run" / "kelp_config.yaml")
    assert config.overlap == 12 and config.models == ["dem", "b"] and config.write_prob
    areas = pd.read_csv(tmp_path / "run" / "kelp_area.csv")
    assert areas["region"].tolist() == ["whole scene", "region_0"]
    assert areas["date"].iloc[0] == scene89.date.isoformat()
    with rasterio.open(out) as src:
        assert areas["kelp_pixels"].iloc[0] == (src.read(1) == 1).sum() > 0
    summary = json.loads((tmp_path / "run" / "kelp_summary.json").read_text())
    assert summary["scene"]["preset"] == "landsat89" and summary["result"]["windows"] > 0
    assert "kelp canopy area" in capsys.readouterr().out


def test_missing_dem_for_a_dem_model_is_exit_2_in_one_line(
    kelpseg: Any,
    loaded: list[dict[str, Any]],
    scene89: SyntheticScene,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    argv = [
        "predict-scene",
        str(scene89.stack_path),
        "--out",
        str(tmp_path / "k.tif"),
        "--model",
        "dem",
        "--quiet",
    ]
    assert kelpseg(argv) == 2
    err = capsys.readouterr().err.strip()
    assert "--dem" in err and "Traceback" not in err and len(err.splitlines()) == 1
    assert not (tmp_path / "k.tif").exists()


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ([], "no model given"),
        (["--model", "m", "--bands", "NIR=5,X=1"], "NAME=NUMBER"),
        (["--model", "m", "--blend", "gauss"], "blend"),
        (["--model", "m", "--set", "qa.flags=[clouds]"], "qa.flags"),
        (["--model", "m", "--preset", "landsat7"], "preset"),
        (["--model", "m", "--geojson-crs", "utm"], "geojson_crs"),
    ],
)
def test_bad_options_are_exit_2(
    kelpseg: Any,
    loaded: list[dict[str, Any]],
    scene89: SyntheticScene,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    extra: list[str],
    message: str,
) -> None:
    argv = ["predict-scene", str(scene89.stack_path), "--out", str(tmp_path / "k.tif"), *extra]
    assert kelpseg(argv) == 2
    assert message in capsys.readouterr().err


def test_synth_predict_area_chain_over_two_dates(
    kelpseg: Any, loaded: list[dict[str, Any]], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    masks = []
    for preset, date in (("landsat57", "2009-02-01"), ("landsat89", "2021-02-01")):
        folder = tmp_path / preset
        assert (
            kelpseg(
                [
                    "synth-scene",
                    "--out",
                    str(folder),
                    "--preset",
                    preset,
                    "--grid",
                    "2",
                    "2",
                    "--size",
                    "48",
                    "--date",
                    date,
                ]
            )
            == 0
        )
        mask = tmp_path / "masks" / f"{preset}.tif"  # no date in the name: read from the tag
        assert (
            kelpseg(
                [
                    "predict-scene",
                    str(folder),
                    "--out",
                    str(mask),
                    "--model",
                    "m",
                    "--dem",
                    str(folder / "dem.tif"),
                    "--quiet",
                ]
            )
            == 0
        )
        masks.append(str(mask))
    out = tmp_path / "areas.csv"
    assert kelpseg(["area", *masks[::-1], "--out", str(out), "--quiet"]) == 0
    table = pd.read_csv(out)
    assert table["date"].tolist() == ["2009-02-01", "2021-02-01"]
    assert (table["kelp_ha"] > 0).all()
    assert out.with_suffix(".png").read_bytes()[:4] == b"\x89PNG"
    assert "wrote" in capsys.readouterr().out


def test_geojson_crs_option_keeps_the_scene_crs(
    kelpseg: Any, loaded: list[dict[str, Any]], scene89: SyntheticScene, tmp_path: Path
) -> None:
    beds = {crs: tmp_path / f"beds_{crs}.geojson" for crs in ("default", "scene")}
    for crs, path in beds.items():
        extra = [] if crs == "default" else ["--geojson-crs", crs]
        argv = ["predict-scene", str(scene89.stack_path), "--out", str(tmp_path / f"{crs}.tif")]
        argv += ["--model", "m", "--polygons", str(path), "--quiet", *extra]
        assert kelpseg(argv) == 0
    assert "crs" not in json.loads(beds["default"].read_text())
    scene = json.loads(beds["scene"].read_text())
    assert scene["crs"]["properties"]["name"] == "urn:ogc:def:crs:EPSG::32721"
    saved = load_config(SceneConfig, tmp_path / "scene_config.yaml")
    assert saved.geojson_crs == "scene"


def test_geopackage_without_its_extra_is_exit_2_before_predicting(
    kelpseg: Any,
    loaded: list[dict[str, Any]],
    scene89: SyntheticScene,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from kelpseg.scenes import runner

    monkeypatch.setattr(runner, "has_fiona", lambda: False)
    argv = ["predict-scene", str(scene89.stack_path), "--out", str(tmp_path / "k.tif")]
    argv += ["--model", "m", "--polygons", str(tmp_path / "beds.gpkg"), "--quiet"]
    assert kelpseg(argv) == 2
    err = capsys.readouterr().err.strip()
    assert "kelpseg[scenes]" in err and len(err.splitlines()) == 1
    assert list(tmp_path.iterdir()) == []  # no mask, no GeoJSON in the GeoPackage's place


def test_the_old_polygon_crs_key_still_loads_with_a_warning() -> None:
    with pytest.warns(FutureWarning, match="geojson_crs"):
        config = SceneConfig.model_validate({"polygon_crs": "scene"})
    assert config.geojson_crs == "scene"
    assert SceneConfig().geojson_crs == "wgs84"


def test_several_scenes_one_model_load_one_output_each(
    kelpseg: Any, loaded: list[dict[str, Any]], tmp_path: Path
) -> None:
    root = tmp_path / "scenes"  # a folder of scene folders: landsat89/, landsat57/
    for preset in ("landsat89", "landsat57"):
        write_scene(root, preset)
    out = tmp_path / "maps"
    assert kelpseg(["predict-scene", str(root), "-o", str(out), "--model", "a", "--quiet"]) == 0
    assert len(loaded) == 1  # one model load for both scenes
    for preset in ("landsat89", "landsat57"):
        names = sorted(p.name for p in (out / preset).iterdir())
        assert names == ["kelp.tif", "kelp_area.csv", "kelp_config.yaml", "kelp_summary.json"]
    # The same scene alone gives the same mask.
    alone = tmp_path / "alone.tif"
    argv = ["predict-scene", str(root / "landsat57"), "--out", str(alone), "--model", "a"]
    assert kelpseg([*argv, "--quiet"]) == 0
    with rasterio.open(alone) as a, rasterio.open(out / "landsat57" / "kelp.tif") as b:
        assert (a.read(1) == b.read(1)).all() and (a.read(1) == 1).any()


def test_several_scene_paths_listed(
    kelpseg: Any, loaded: list[dict[str, Any]], scene89: SyntheticScene, tmp_path: Path
) -> None:
    scenes = [str(scene89.band_prefix), str(scene89.stack_path)]
    out = tmp_path / "maps"
    assert kelpseg(["predict-scene", *scenes, "-o", str(out), "--model", "a", "--quiet"]) == 0
    assert len(loaded) == 1
    assert (out / scene89.band_prefix.name / "kelp.tif").is_file()
    assert (out / scene89.stack_path.stem / "kelp.tif").is_file()


def test_folder_without_scenes_is_exit_2(
    kelpseg: Any,
    loaded: list[dict[str, Any]],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    (tmp_path / "empty").mkdir()
    argv = ["predict-scene", str(tmp_path / "empty"), "-o", str(tmp_path / "o"), "--model", "a"]
    assert kelpseg(argv) == 2
    assert "no scene found" in capsys.readouterr().err and loaded == []
