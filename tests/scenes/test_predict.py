"""Scene prediction equals tile-wise prediction, writes georeferenced COGs, stays bounded."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio
from rasterio.windows import Window

from kelpseg.errors import KelpsegError
from kelpseg.io.tiles import MISSING
from kelpseg.scenes.cog import MASK_NODATA
from kelpseg.scenes.predict import TilePredictor, predict_scene
from kelpseg.scenes.reader import LandsatScene, open_scene
from kelpseg.scenes.synth import SyntheticScene
from tests.scenes.conftest import ConstantPredictor, PixelPredictor


def _read(path: Path) -> tuple[np.ndarray, dict]:
    with rasterio.open(path) as src:
        return src.read(1), {
            **src.profile,
            "tags": src.tags(),
            "layout": src.tags(ns="IMAGE_STRUCTURE"),
        }


def test_predictor_protocol_is_satisfied_by_crafted_predictors() -> None:
    assert isinstance(PixelPredictor(), TilePredictor)
    assert isinstance(ConstantPredictor(0.3), TilePredictor)


@pytest.mark.parametrize("source", ["band_files", "stack"])
def test_scene_equals_tilewise_prediction_for_both_presets(
    scene: SyntheticScene, source: str, tmp_path: Path
) -> None:
    predictor = PixelPredictor(tile_size=48)
    path = scene.band_prefix if source == "band_files" else scene.stack_path
    with open_scene(path, dem=scene.dem_path) as opened:
        result = predict_scene(
            opened,
            predictor,
            tmp_path / "kelp.tif",
            overlap=12,
            write_prob=True,
            show_progress=False,
        )
    # Tile-wise: the model on the original AOI tiles the scene was built from.
    size = scene.raw.shape[1] // 2
    expected = np.zeros(scene.raw.shape[1:], np.float32)
    for r in range(0, scene.raw.shape[1], size):
        for c in range(0, scene.raw.shape[2], size):
            tile = scene.raw[None, :, r : r + size, c : c + size]
            expected[r : r + size, c : c + size] = predictor.predict_batch(tile)[0]
    prob, _ = _read(tmp_path / "kelp_prob.tif")
    fill = (scene.raw[:5] == MISSING).all(axis=0)
    assert fill.any() and np.isnan(prob[fill]).all()
    assert np.array_equal(prob[~fill], expected[~fill])  # exact, edges included
    mask, _ = _read(tmp_path / "kelp.tif")
    seen = ~fill & (scene.raw[5] == 0)
    assert np.array_equal(mask[seen], (expected[seen] >= 0.5).astype(np.uint8))
    assert (mask[~seen] == MASK_NODATA).all()
    assert result.kelp_pixels == int((mask == 1).sum()) > 0
    assert result.observed_pixels == int(seen.sum())
    # The crafted model finds some of the generator's visible kelp.
    assert (mask[scene.truth] == 1).mean() > 0.3


def test_outputs_keep_crs_transform_and_nodata_as_cogs(
    scene89: SyntheticScene, tmp_path: Path
) -> None:
    with open_scene(scene89.band_prefix, dem=scene89.dem_path) as opened:
        predict_scene(
            opened,
            PixelPredictor(),
            tmp_path / "out" / "kelp.tif",
            write_prob=True,
            show_progress=False,
        )
    for name, dtype, nodata in (
        ("kelp.tif", "uint8", MASK_NODATA),
        ("kelp_prob.tif", "float32", None),
    ):
        data, profile = _read(tmp_path / "out" / name)
        assert profile["crs"] == scene89.crs and profile["crs"].to_epsg() == 32721
        assert profile["transform"] == scene89.transform
        assert data.shape == scene89.raw.shape[1:] and profile["dtype"] == dtype
        assert profile["nodata"] == nodata if nodata is not None else np.isnan(profile["nodata"])
        assert profile["layout"]["LAYOUT"] == "COG" and profile["tiled"]
        assert profile["tags"]["ACQUISITION_DATE"] == scene89.date.isoformat()
        assert profile["tags"]["SCENE"] == scene89.product_id
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["kelp.tif", "kelp_prob.tif"]


@pytest.mark.parametrize("blend", ["cosine", "linear", "none"])
def test_constant_prediction_stays_constant(
    scene89: SyntheticScene, tmp_path: Path, blend: str
) -> None:
    with open_scene(scene89.band_prefix, dem=scene89.dem_path) as opened:
        predict_scene(
            opened,
            ConstantPredictor(0.37, tile_size=40),
            tmp_path / "k.tif",
            overlap=15,
            blend=blend,
            write_prob=True,
            show_progress=False,
        )
    prob, _ = _read(tmp_path / "k_prob.tif")
    fill = (scene89.raw[:5] == MISSING).all(axis=0)
    land_only = _pixels_only_in_land_windows(scene89, 40, 15)
    values = prob[~fill & ~land_only]
    assert values.size > 0.5 * prob.size
    np.testing.assert_allclose(values, np.float32(0.37), rtol=0, atol=1e-7)
    assert (prob[land_only & ~fill] == 0).all()  # skipped windows contribute nothing


def _pixels_only_in_land_windows(scene: SyntheticScene, tile: int, overlap: int) -> np.ndarray:
    from kelpseg.scenes.windows import WindowGrid, skip_reason

    grid = WindowGrid(*scene.raw.shape[1:], tile, overlap)
    covered = np.zeros(scene.raw.shape[1:], bool)
    for _, _, row, col in grid.windows():
        cells = np.s_[row : row + tile, col : col + tile]
        if skip_reason(scene.raw[(slice(None), *cells)]) is None:
            covered[cells] = True
    return ~covered


def test_spatial_model_agrees_with_whole_image_prediction_in_the_interior(
    scene89: SyntheticScene, tmp_path: Path
) -> None:
    torch = pytest.importorskip("torch")

    class MeanFilter(PixelPredictor):
        """A 5 x 5 mean filter of the pixel model, zero-padded at window edges like a CNN."""

        def predict_batch(self, raw: np.ndarray) -> np.ndarray:
            prob = torch.from_numpy(super().predict_batch(raw))[:, None]
            return torch.nn.functional.avg_pool2d(prob, 5, 1, 2, count_include_pad=True)[
                :, 0
            ].numpy()

    model = MeanFilter(tile_size=48)
    whole = model.predict_batch(scene89.raw[None])[0]
    interior = np.zeros(whole.shape, bool)
    interior[2:-2, 2:-2] = True  # away from the scene edge, where padding differs anyway
    interior &= ~(scene89.raw[:5] == MISSING).all(axis=0)
    results = {}
    for blend, overlap in (("none", 16), ("cosine", 24), ("cosine", 0)):
        with open_scene(scene89.band_prefix, dem=scene89.dem_path) as opened:
            out = tmp_path / f"{blend}{overlap}.tif"
            predict_scene(
                opened,
                model,
                out,
                overlap=overlap,
                blend=blend,
                write_prob=True,
                show_progress=False,
            )
        results[blend, overlap] = _read(tmp_path / f"{blend}{overlap}_prob.tif")[0][interior]
    # A hard cut in the middle of >= 16-px overlaps keeps >= 8 px from window edges: exact.
    np.testing.assert_allclose(results["none", 16], whole[interior], atol=1e-6)
    # Cosine ramps spanning the whole overlap give window-edge pixels small weights: close.
    blended = np.abs(results["cosine", 24] - whole[interior])
    assert np.median(blended) < 1e-6 and blended.max() < 0.01
    # Without overlap, the zero padding at every window edge shows as seams.
    seams = np.abs(results["cosine", 0] - whole[interior])
    assert seams.max() > 0.1 and seams.max() > 10 * blended.max()


def test_reads_stay_within_one_strip_of_windows(scene89: SyntheticScene, tmp_path: Path) -> None:
    heights = []
    with open_scene(scene89.band_prefix, dem=scene89.dem_path) as opened:
        original = opened.read

        def spy(window: Window) -> np.ndarray:
            heights.append(int(window.height))
            return original(window)

        opened.read = spy  # type: ignore[method-assign]
        predictor = PixelPredictor(tile_size=48)
        result = predict_scene(
            opened, predictor, tmp_path / "k.tif", overlap=8, batch_size=3, show_progress=False
        )
    assert max(heights) == 48 and len(heights) == len(set(range(len(heights))))
    assert all(shape[0] <= 3 and shape[1:] == (7, 48, 48) for shape in predictor.calls)
    predicted = sum(shape[0] for shape in predictor.calls)
    assert predicted + sum(result.skipped.values()) == result.windows


def test_all_land_and_all_nodata_windows_are_skipped(
    tmp_path: Path, scene89: SyntheticScene
) -> None:
    with open_scene(scene89.band_prefix, dem=scene89.dem_path) as opened:
        predictor = PixelPredictor(tile_size=16)
        result = predict_scene(
            opened, predictor, tmp_path / "k.tif", overlap=0, show_progress=False
        )
    assert result.skipped["nodata"] > 0  # the footprint's empty corners
    assert result.skipped["land"] > 0  # the generated scene holds land-only AOI cells
    assert sum(shape[0] for shape in predictor.calls) == result.windows - sum(
        result.skipped.values()
    )


def test_model_needing_dem_without_dem_is_refused(scene89: SyntheticScene, tmp_path: Path) -> None:
    with (
        open_scene(scene89.band_prefix) as opened,
        pytest.raises(KelpsegError, match="--dem") as err,
    ):
        predict_scene(
            opened, PixelPredictor(needs_dem=True), tmp_path / "k.tif", show_progress=False
        )
    assert "\n" not in str(err.value)
    assert not (tmp_path / "k.tif").exists()


def test_model_without_dem_runs_without_dem(scene89: SyntheticScene, tmp_path: Path) -> None:
    with open_scene(scene89.band_prefix) as opened:
        assert not opened.has_dem
        result = predict_scene(opened, PixelPredictor(), tmp_path / "k.tif", show_progress=False)
    assert result.skipped["land"] == 0  # without a DEM no window is known to be land
    assert (tmp_path / "k.tif").exists()


def test_a_scene_smaller_than_a_tile_is_padded(scene89: SyntheticScene, tmp_path: Path) -> None:
    predictor = PixelPredictor(tile_size=350)
    with open_scene(scene89.band_prefix, dem=scene89.dem_path) as opened:
        predict_scene(opened, predictor, tmp_path / "k.tif", write_prob=True, show_progress=False)
    prob, _ = _read(tmp_path / "k_prob.tif")
    expected = predictor.predict_batch(scene89.raw[None])[0]
    fill = (scene89.raw[:5] == MISSING).all(axis=0)
    assert predictor.calls[0][2:] == (350, 350)
    assert np.array_equal(prob[~fill], expected[~fill])


class BrokenPredictor(PixelPredictor):
    def __init__(self, fault: str) -> None:
        super().__init__()
        self.fault = fault

    def predict_batch(self, raw: np.ndarray) -> np.ndarray:
        prob = super().predict_batch(raw)
        if len(self.calls) < 3:
            return prob  # fail part-way, after strips were written
        if self.fault == "shape":
            return prob[:, :-1]
        return prob * 10 - 5 if self.fault == "logits" else prob * np.nan


@pytest.mark.parametrize(
    ("fault", "message"),
    [("shape", "returned shape"), ("logits", "outside \\[0, 1\\]"), ("nan", "NaN")],
)
def test_a_failed_run_leaves_no_output(
    scene89: SyntheticScene, tmp_path: Path, fault: str, message: str
) -> None:
    with (
        open_scene(scene89.band_prefix, dem=scene89.dem_path) as opened,
        pytest.raises(KelpsegError, match=message),
    ):
        predict_scene(
            opened,
            BrokenPredictor(fault),
            tmp_path / "k.tif",
            overlap=8,
            batch_size=2,
            write_prob=True,
            show_progress=False,
        )
    assert list(tmp_path.iterdir()) == []


def test_threshold_and_qa_nodata_options(scene89: SyntheticScene, tmp_path: Path) -> None:
    with open_scene(scene89.band_prefix, dem=scene89.dem_path) as opened:
        assert isinstance(opened, LandsatScene)
        low = predict_scene(
            opened,
            PixelPredictor(),
            tmp_path / "low.tif",
            threshold=0.2,
            nodata_on_qa=False,
            show_progress=False,
        )
        high = predict_scene(
            opened, PixelPredictor(), tmp_path / "high.tif", threshold=0.8, show_progress=False
        )
    assert low.kelp_pixels > high.kelp_pixels
    mask, _ = _read(tmp_path / "low.tif")
    fill = (scene89.raw[:5] == MISSING).all(axis=0)
    assert np.array_equal(mask == MASK_NODATA, fill)  # clouds stay 0/1 when asked
    assert low.observed_pixels > high.observed_pixels


def test_a_scene_in_another_encoding_than_the_models_is_refused_or_forced(
    scene89: SyntheticScene, tmp_path: Path
) -> None:
    predictor = PixelPredictor()
    predictor.input_encoding = "x10000"  # type: ignore[attr-defined]  # as a package records it
    with (
        open_scene(scene89.band_prefix, dem=scene89.dem_path) as opened,
        pytest.raises(
            KelpsegError, match="Landsat Collection 2 Level-2 .*--ignore-encoding"
        ) as err,
    ):
        predict_scene(opened, predictor, tmp_path / "k.tif", show_progress=False)
    assert "\n" not in str(err.value)
    assert list(tmp_path.iterdir()) == []
    with open_scene(scene89.band_prefix, dem=scene89.dem_path) as opened:
        predict_scene(
            opened, predictor, tmp_path / "k.tif", show_progress=False, ignore_encoding=True
        )
    assert (tmp_path / "k.tif").exists()
