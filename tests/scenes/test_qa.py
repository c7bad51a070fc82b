"""QA_PIXEL / QA_RADSAT bits -> the tiles' QA band, on crafted bit patterns."""

from __future__ import annotations

import numpy as np
import pytest
from pydantic import ValidationError
from rasterio.windows import Window

from kelpseg.scenes.qa import QA_PIXEL_BITS, QaConfig, bit_mask, qa_band, saturated
from kelpseg.scenes.reader import open_scene
from kelpseg.scenes.synth import SyntheticScene

# Real Collection 2 QA_PIXEL values (Landsat 8): clear land 21824, clear water 21952,
# high-confidence cloud 22280, cloud shadow 23888, cirrus 54596, fill 1; dilated cloud: bit 1.
CLEAR_LAND, CLEAR_WATER, CLOUD, SHADOW, CIRRUS, FILL = 21824, 21952, 22280, 23888, 54596, 1


def test_bits_of_known_values_decode_as_documented() -> None:
    def bits(v: int) -> set[str]:
        return {n for n, b in QA_PIXEL_BITS.items() if v >> b & 1}

    assert bits(CLEAR_LAND) == set() and bits(CLEAR_WATER) == set()
    assert bits(CLOUD) == {"cloud"}
    assert bits(SHADOW) == {"cloud_shadow"}
    assert bits(CIRRUS) == {"cirrus"}
    assert bits(FILL) == {"fill"}


def test_default_flags_mark_fill_cloud_shadow_cirrus_not_clear() -> None:
    dilated = CLEAR_LAND - (1 << 6) + (1 << 1)
    values = [CLEAR_LAND, CLEAR_WATER, CLOUD, SHADOW, CIRRUS, FILL, dilated, 1 << 5]
    qa_pixel = np.array([values], np.uint16)
    got = qa_band(np.zeros(qa_pixel.shape, bool), QaConfig(), qa_pixel=qa_pixel)
    assert got.dtype == np.int16
    assert got.tolist() == [[0, 0, 1, 1, 1, 1, 1, 0]]  # snow is not flagged by default


def test_each_flag_alone_marks_only_its_bit() -> None:
    missing = np.zeros((1, 1), bool)
    for name, bit in QA_PIXEL_BITS.items():
        for other, other_bit in QA_PIXEL_BITS.items():
            value = np.array([[1 << other_bit]], np.uint16)
            got = qa_band(missing, QaConfig(flags=[name]), qa_pixel=value)
            assert got[0, 0] == (bit == other_bit), (name, other)


def test_choosing_flags_changes_what_counts() -> None:
    qa_pixel = np.array([[SHADOW, CIRRUS, CLOUD]], np.uint16)
    missing = np.zeros(qa_pixel.shape, bool)
    assert qa_band(missing, QaConfig(flags=["cloud"]), qa_pixel=qa_pixel).tolist() == [[0, 0, 1]]
    assert qa_band(missing, QaConfig(flags=[]), qa_pixel=qa_pixel).sum() == 0
    assert bit_mask(["fill", "cloud", "cloud"]) == 0b1001
    with pytest.raises(ValidationError, match="unknown QA flags"):
        QaConfig(flags=["clouds"])


def test_saturation_counts_only_the_bands_the_model_reads() -> None:
    radsat = np.array([[0, 1 << 4, 1 << 6, 1 << 0]], np.uint16)  # none, B5, B7, B1
    landsat89 = [6, 5, 4, 3, 2]
    assert saturated(radsat, landsat89).tolist() == [[False, True, False, False]]
    missing = np.zeros(radsat.shape, bool)
    got = qa_band(missing, QaConfig(), qa_radsat=radsat, band_numbers=landsat89)
    assert got.tolist() == [[0, 1, 0, 0]]
    off = qa_band(missing, QaConfig(saturation=False), qa_radsat=radsat, band_numbers=landsat89)
    assert off.sum() == 0


def test_missing_spectral_data_is_flagged_without_any_qa_raster() -> None:
    missing = np.array([[False, True]])
    assert qa_band(missing, QaConfig()).tolist() == [[0, 1]]


def test_scene_qa_matches_the_generated_tiles(scene: SyntheticScene) -> None:
    assert scene.band_prefix is not None
    with open_scene(scene.band_prefix) as opened:
        raw = opened.read(Window(0, 0, opened.width, opened.height))
    assert np.array_equal(raw[5], scene.raw[5])
    assert raw[5].any() and not raw[5].all()
