"""Band presets, mapping flags, Landsat names and finding a scene's files."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import pytest
import rasterio

from kelpseg.errors import KelpsegError
from kelpseg.scenes.bands import (
    PRESETS,
    acquisition_date,
    locate_scene,
    parse_band_mapping,
    read_mtl,
)
from kelpseg.scenes.synth import SyntheticScene


def test_presets_follow_the_landsat_band_table() -> None:
    # docs: Blue B1/B2, Green B2/B3, Red B3/B4, NIR B4/B5, SWIR1 B5/B6.
    for name in ("SWIR1", "NIR", "R", "G", "B"):
        assert PRESETS["landsat89"][name] == PRESETS["landsat57"][name] + 1
    assert PRESETS["landsat57"]["B"] == 1 and PRESETS["landsat89"]["SWIR1"] == 6


def test_band_mapping_is_parsed_with_aliases() -> None:
    got = parse_band_mapping("SWIR1=6, nir=5,Red=4,G=3,blue=2,QA_PIXEL=8")
    assert got == {"SWIR1": 6, "NIR": 5, "R": 4, "G": 3, "B": 2, "QA_PIXEL": 8}


@pytest.mark.parametrize("text", ["NIR", "NIR=x", "TIR=10", "NIR=0", "NIR=-1"])
def test_bad_band_mapping_is_one_line_error(text: str) -> None:
    with pytest.raises(KelpsegError, match="NAME=NUMBER") as err:
        parse_band_mapping(text)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize(
    ("name", "date"),
    [
        ("LC08_L2SP_217096_20231012_20231020_02_T1_SR_B5.TIF", dt.date(2023, 10, 12)),
        ("LT05_L2SP_217096_19990105_20200908_02_T1_kelp.tif", dt.date(1999, 1, 5)),
        ("falklands_2004-kelp_20040230_20040311.tif", dt.date(2004, 3, 11)),  # 30 Feb skipped
        ("kelp.tif", None),
    ],
)
def test_acquisition_date_from_names(name: str, date: dt.date | None) -> None:
    assert acquisition_date(name) == date


def test_mtl_keys_keep_their_group(scene89: SyntheticScene) -> None:
    assert scene89.band_prefix is not None
    mtl = read_mtl(f"{scene89.band_prefix}_MTL.txt")
    assert mtl["IMAGE_ATTRIBUTES.SPACECRAFT_ID"] == "LANDSAT_8"
    assert float(mtl["LEVEL2_SURFACE_REFLECTANCE_PARAMETERS.REFLECTANCE_MULT_BAND_5"]) == 2.75e-5
    assert float(mtl["LEVEL1_RADIOMETRIC_RESCALING.REFLECTANCE_MULT_BAND_5"]) == 2.0e-5


def test_folder_prefix_and_band_file_find_the_same_scene(scene: SyntheticScene) -> None:
    prefix = scene.band_prefix
    assert prefix is not None
    found = [locate_scene(p) for p in (prefix, prefix.parent, Path(f"{prefix}_SR_B3.TIF"))]
    assert {f.name for f in found} == {scene.product_id}
    files = found[0]
    assert files.preset == scene.preset  # detected from the MTL / product id
    for name, number in PRESETS[scene.preset].items():
        assert files.spectral[name].path.name == f"{scene.product_id}_SR_B{number}.TIF"
    assert files.qa_pixel is not None and files.qa_pixel.path.name.endswith("_QA_PIXEL.TIF")
    assert files.qa_radsat is not None and files.mtl is not None


def test_stack_bands_are_found_by_description(scene: SyntheticScene) -> None:
    assert scene.stack_path is not None
    files = locate_scene(scene.stack_path)
    with rasterio.open(scene.stack_path) as src:
        names = src.descriptions
    for name, number in PRESETS[scene.preset].items():
        assert names[files.spectral[name].index - 1] == f"SR_B{number}"
    assert files.qa_pixel is not None and names[files.qa_pixel.index - 1] == "QA_PIXEL"


def _undescribed_stack(src_path: Path, out: Path) -> Path:
    with rasterio.open(src_path) as src:
        data, profile = src.read(), src.profile
    with rasterio.open(out, "w", **profile) as dst:
        dst.write(data)
    return out


def test_stack_without_descriptions_needs_explicit_bands(
    scene57: SyntheticScene, tmp_path: Path
) -> None:
    # Landsat 5 stack SR_B1..B5, SR_B7, QA_PIXEL: band index 6 is SR_B7, QA is band 7.
    assert scene57.stack_path is not None
    plain = _undescribed_stack(scene57.stack_path, tmp_path / "my_stack.tif")
    with pytest.raises(KelpsegError, match="--preset"):
        locate_scene(plain)  # no product id, no MTL: nothing to detect
    files = locate_scene(plain, preset="landsat57", bands={"QA_PIXEL": 7})
    assert [files.spectral[b].index for b in ("SWIR1", "NIR", "R", "G", "B")] == [5, 4, 3, 2, 1]
    assert files.qa_pixel is not None and files.qa_pixel.index == 7
    explicit = locate_scene(plain, bands=parse_band_mapping("SWIR1=5,NIR=4,R=3,G=2,B=1"))
    assert explicit.qa_pixel is None and explicit.spectral["SWIR1"].index == 5
    with pytest.raises(KelpsegError, match="stack has 7"):
        locate_scene(plain, preset="landsat57", bands={"NIR": 9})


def test_explicit_band_overrides_the_preset(scene89: SyntheticScene) -> None:
    assert scene89.band_prefix is not None
    files = locate_scene(scene89.band_prefix, bands={"NIR": 7})
    assert files.spectral["NIR"].path.name.endswith("_SR_B7.TIF")
    assert files.spectral["R"].path.name.endswith("_SR_B4.TIF")


def test_two_scenes_in_one_folder_need_a_prefix(scene89: SyntheticScene, tmp_path: Path) -> None:
    assert scene89.band_prefix is not None
    for file in scene89.band_prefix.parent.glob(f"{scene89.product_id}*"):
        shutil.copy(file, tmp_path / file.name)
        other = file.name.replace("20230115_20230115", "20230131_20230131")
        shutil.copy(file, tmp_path / other)
    with pytest.raises(KelpsegError, match="2 scenes"):
        locate_scene(tmp_path)
    prefix = tmp_path / scene89.product_id.replace("20230115_20230115", "20230131_20230131")
    assert locate_scene(prefix).name == prefix.name


def test_missing_band_file_is_named(scene89: SyntheticScene, tmp_path: Path) -> None:
    assert scene89.band_prefix is not None
    for file in scene89.band_prefix.parent.glob(f"{scene89.product_id}_SR_B*"):
        if not file.name.endswith("_SR_B4.TIF"):
            shutil.copy(file, tmp_path / file.name)
    with pytest.raises(KelpsegError, match=r"SR_B4\.TIF for R"):
        locate_scene(tmp_path)
    with pytest.raises(KelpsegError, match="not found"):
        locate_scene(tmp_path / "nowhere" / "x.tif")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(KelpsegError, match="no \\*_SR_B"):
        locate_scene(empty)
