"""Post-processing steps on crafted masks, the config round trip, and invariants."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from scipy import ndimage

from kelpseg.config import load_config
from kelpseg.errors import KelpsegError
from kelpseg.inference.postprocess import (
    POSTPROCESSORS,
    PostprocessConfig,
    apply_postprocess,
    box_sum,
    land_mask,
)
from kelpseg.io.tiles import MISSING


def _tile(dem: np.ndarray) -> np.ndarray:
    tile = np.zeros((7, *dem.shape), np.int16)
    tile[:5] = 8000
    tile[6] = dem
    return tile


def _config(*steps: dict) -> PostprocessConfig:
    return PostprocessConfig(steps=list(steps))


def test_land_mask_removes_kelp_on_land_only() -> None:
    dem = np.zeros((5, 8), np.int16)
    dem[:, :3] = 12
    dem[:, -2:] = MISSING
    mask = np.ones((5, 8), np.uint8)
    out = apply_postprocess(mask, _tile(dem), _config({"name": "land_mask"}))
    assert out.dtype == np.uint8
    np.testing.assert_array_equal(out, (dem <= 0).astype(np.uint8))


def test_land_dilation_grows_land_by_a_box() -> None:
    dem = np.zeros((9, 9), np.int16)
    dem[4, 4] = 30
    mask = np.ones((9, 9), np.uint8)
    out = apply_postprocess(mask, _tile(dem), _config({"name": "land_mask", "dilation": 2}))
    expected = np.ones((9, 9), np.uint8)
    expected[2:7, 2:7] = 0
    np.testing.assert_array_equal(out, expected)
    strict = land_mask(_tile(dem), dilation=1, min_land_pixels=2)
    assert not strict.any()


@pytest.mark.parametrize("radius", [0, 1, 3])
def test_box_sum_matches_an_independent_filter(radius: int) -> None:
    values = np.random.default_rng(radius).integers(0, 5, (11, 7))
    size = 2 * radius + 1
    ref = ndimage.uniform_filter(values.astype(float), size=size, mode="constant") * size**2
    np.testing.assert_array_equal(box_sum(values, radius), np.rint(ref).astype(np.int64))


def test_far_from_water_keeps_kelp_near_the_shore() -> None:
    dem = np.zeros((3, 12), np.int16)
    dem[:, 4:] = 50  # water in columns 0-3, land from column 4
    mask = np.ones((3, 12), np.uint8)
    out = apply_postprocess(
        mask, _tile(dem), _config({"name": "far_from_water", "max_distance": 2})
    )
    np.testing.assert_array_equal(out[0], [1] * 6 + [0] * 6)
    all_land = _tile(np.full((3, 3), 5, np.int16))
    far = _config({"name": "far_from_water"})
    assert not apply_postprocess(np.ones((3, 3)), all_land, far).any()


def test_far_from_coast_removes_offshore_kelp_but_spares_open_water_tiles() -> None:
    dem = np.zeros((3, 100), np.int16)
    dem[:, :2] = 40
    mask = np.zeros((3, 100), np.uint8)
    mask[:, 10] = mask[:, 90] = 1
    step = {"name": "far_from_coast", "max_distance": 50}
    out = apply_postprocess(mask, _tile(dem), _config(step))
    assert out[:, 10].all() and not out[:, 90].any()
    open_water = _tile(np.full((3, 100), MISSING, np.int16))
    np.testing.assert_array_equal(apply_postprocess(mask, open_water, _config(step)), mask)


def test_small_components_are_removed_with_the_chosen_connectivity() -> None:
    mask = np.zeros((10, 10), np.uint8)
    mask[1, 1] = mask[2, 2] = mask[3, 3] = 1  # a diagonal chain of 3
    mask[6:9, 5:9] = 1  # a 12-pixel block
    eight = apply_postprocess(mask, None, _config({"name": "min_component", "min_pixels": 3}))
    np.testing.assert_array_equal(eight, mask)
    four = _config({"name": "min_component", "min_pixels": 3, "connectivity": 4})
    expected = mask.copy()
    expected[1:4, 1:4] = 0
    np.testing.assert_array_equal(apply_postprocess(mask, None, four), expected)
    big = _config({"name": "min_component", "min_pixels": 13})
    assert not apply_postprocess(mask, None, big).any()


def test_opening_removes_specks_and_keeps_beds_touching_the_border() -> None:
    mask = np.zeros((12, 12), np.uint8)
    mask[2, 8] = 1
    mask[0:4, 0:4] = 1
    out = apply_postprocess(mask, None, _config({"name": "opening", "shape": "square"}))
    expected = mask.copy()
    expected[2, 8] = 0
    np.testing.assert_array_equal(out, expected)


def test_closing_fills_narrow_gaps() -> None:
    mask = np.zeros((7, 11), np.uint8)
    mask[2:5, 0:5] = 1
    mask[2:5, 6:11] = 1
    out = apply_postprocess(mask, None, _config({"name": "closing", "shape": "square"}))
    assert out[2:5, 5].all()
    assert (out >= mask).all() and out.sum() == mask.sum() + 3


def test_steps_run_in_order_from_yaml(tmp_path: Path) -> None:
    path = tmp_path / "post.yaml"
    path.write_text("steps:\n  - {name: land_mask, dilation: 1}\n  - min_component\n")
    config = load_config(PostprocessConfig, path)
    assert [s.name for s in config.steps] == ["land_mask", "min_component"]
    assert config.needs_tile
    dumped = config.model_dump()
    assert dumped["steps"][0] == {"name": "land_mask", "dilation": 1, "min_land_pixels": 1}
    assert PostprocessConfig.model_validate(dumped) == config


def test_config_errors_name_the_key(tmp_path: Path) -> None:
    path = tmp_path / "post.yaml"
    path.write_text("steps:\n  - {name: sharpen}\n")
    with pytest.raises(KelpsegError, match="unknown step 'sharpen'"):
        load_config(PostprocessConfig, path)
    path.write_text("steps:\n  - {name: opening, radius: 0}\n")
    with pytest.raises(KelpsegError, match=r"step 0 \(Opening\) key 'radius'"):
        load_config(PostprocessConfig, path)


def test_steps_that_need_the_dem_say_so() -> None:
    with pytest.raises(KelpsegError, match="needs the satellite tile"):
        apply_postprocess(np.ones((4, 4)), None, _config({"name": "land_mask"}))
    with pytest.raises(KelpsegError, match="does not fit"):
        apply_postprocess(np.ones((4, 4)), _tile(np.zeros((5, 5), np.int16)), _config("land_mask"))


_REMOVERS = [name for name, step in POSTPROCESSORS.items() if step.removes_only]


@settings(max_examples=40, deadline=None)
@given(
    mask=arrays(np.uint8, (12, 14), elements=st.integers(0, 1)),
    dem=arrays(np.int16, (12, 14), elements=st.sampled_from([MISSING, -3, 0, 0, 1, 40])),
    name=st.sampled_from(_REMOVERS),
    size=st.integers(1, 3),
)
def test_removal_steps_never_add_kelp(
    mask: np.ndarray, dem: np.ndarray, name: str, size: int
) -> None:
    params = {
        "land_mask": {"dilation": size},
        "far_from_water": {"max_distance": size},
        "far_from_coast": {"max_distance": size},
        "min_component": {"min_pixels": size + 1},
        "opening": {"radius": size},
    }[name]
    out = apply_postprocess(mask, _tile(dem), _config({"name": name, **params}))
    assert out.shape == mask.shape
    assert not (out.astype(bool) & ~mask.astype(bool)).any()


@settings(max_examples=30, deadline=None)
@given(mask=arrays(np.uint8, (10, 9), elements=st.integers(0, 1)), radius=st.integers(1, 3))
def test_closing_never_removes_kelp(mask: np.ndarray, radius: int) -> None:
    out = apply_postprocess(mask, None, _config({"name": "closing", "radius": radius}))
    assert (out >= mask).all()
