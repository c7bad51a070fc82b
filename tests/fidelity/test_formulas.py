"""The 2nd-place author's formulas pinned to values worked out by hand.

Hand values are literals: each was worked out from the author's definitions (his repository's
``kelp/core/indices.py``, ``_calculate_image_weights`` and ``calculate_band_stats``) on the
crafted inputs below, never by calling the code under test.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import rasterio
import torch

from kelpseg.features import ChannelStack, FeatureConfig
from kelpseg.features.author_stats import author_band_stats
from kelpseg.metrics import scores
from kelpseg.nn.data.config import SamplerConfig
from kelpseg.nn.data.sampler import build_sampler, sample_weights
from kelpseg.nn.metrics import MacroDice

# -- spectral indices ----------------------------------------------------------------------
# One clear sea pixel: SWIR1 6000, NIR 9000, R 7000, G 8000, B 7500, QA 0, DEM 0.
PIXEL = {"SWIR1": 6000, "NIR": 9000, "R": 7000, "G": 8000, "B": 7500, "QA": 0, "DEM": 0}
# The author's value of each of the seed's names on PIXEL (his +1e-10 is below the
# float32 resolution of every value here).
SEED_VALUES: list[tuple[str, float]] = [
    ("AFRI1600", 8999.694444444445),  # 9000 - 0.66 * 6000 / (9000 + 3960)
    ("ARVI", -0.03375),  # -0.18 + 1.17 * 2000 / 16000
    ("ATSAVI", 0.031210140668855687),  # 1.22 * (9000 - 8540 - 0.03) / (10980 + 7000 - ...)
    ("AVI", 11000.0),  # 2 * 9000 - 7000
    ("BWDRVI", -0.7857142857142857),  # (900 - 7500) / (900 + 7500)
    ("CDOM", 18.86723209775168),  # 537 * exp(-2.93 * 8000 / 7000)
    ("CHLA", 5.454733513695396),  # 4.23 * (8000 / 7500) ** 3.94
    ("CI", -0.07142857142857142),  # (7000 - 7500) / 7000
    ("ClGreen", 0.125),  # 9000 / 8000 - 1
    ("CYA", 0.0056863715653007706),  # (8000 * 7000 / 7500 / 65535) ** 2.38
    ("DOC", 33.39564787150549),  # 432 * exp(-2.24 * 8000 / 7000)
    ("EVI", -0.9525623928367308),  # 2.5 * 2000 / (9000 + 42000 - 56250 + 1)
    ("EVI22", 0.19379093833572342),  # 2.5 * 2000 / (9000 + 16800 + 1)
    ("GARI", 3.0),  # (9000 - (8000 - 500)) / (9000 - (8000 + 500))
    ("GBNDVI", -0.2653061224489796),  # (9000 - 15500) / 24500
    ("GDVI", 1000.0),  # 9000 - 8000
    ("GVMI", 0.20000373330346688),  # (9000.1 - 6000.02) / (9000.1 + 6000.02)
    ("I", 737.7049180327868),  # 22500 / 30.5
    ("IPVI", 2250.2410714285716),  # (9000 / 16000 / 2) * ((-1000 / 7000 + 8000) + 1)
    ("Kab1", 0.48633028197611594),  # 1.67 - 3.94 ln 7500 + 3.78 ln 8000
    ("KIVU", 0.0625),  # (7500 - 7000) / 8000
    ("LogR", 0.25131442828090617),  # ln(9000 / 7000)
    ("MCARI", 2314.2857142857147),  # (2000 - 0.2 * 1000) * 9000 / 7000
    ("mCRIG", 0.07500000000000004),  # (1 / 7500 - 1 / 8000) * 9000
    ("MSAVI", 0.22221262032326194),  # (18001 - sqrt(18001 ** 2 - 16000)) / 2
    ("MVI", 1.5),  # 9000 / 6000
    ("NDAVI", 0.09090909090909091),  # 1500 / 16500
    ("NDVI", 0.125),  # 2000 / 16000
    ("NDVIWM", 0.125),  # max(NDVI, 0)
    ("NDWI", 0.058823529411764705),  # (9000 - 8000) / 17000
    ("NDWIWM", 0.058823529411764705),  # max(NDWI, 0)
    ("NLI", 0.9998271754292839),  # (9000 ** 2 - 7000) / (9000 ** 2 + 7000)
    ("NormNIR", 0.375),  # 9000 / 24000
    ("NormR", 0.2916666666666667),  # 7000 / 24000
    ("PNDVI", -0.42857142857142855),  # (9000 - 22500) / 31500
    ("RBNDVI", -0.23404255319148937),  # (9000 - 14500) / 23500
    ("SABI", 0.12903225806451613),  # 2000 / 15500
    ("SRGR", 1.1428571428571428),  # 8000 / 7000
    ("SRNIRR", 1.2857142857142858),  # 9000 / 7000
    ("SRNIRSWIR", 1.5),  # 9000 / 6000
    ("TURB", 3.1353333333333344),  # 8.93 * 8000 / 7500 - 6.39
    ("TVI", 0.6582805886043833),  # sqrt(-1000 / 15000 + 0.5)
    ("WATERCOLOR", 143.1684797019173),  # 25366 * exp(-4.53 * 8000 / 7000)
    ("WAVI", 0.13635950425744675),  # 1.5 * 1500 / 16500.5
    ("WDRVI", -0.7721518987341772),  # (900 - 7000) / 7900
    ("DEMWM", 0.0),  # max(DEM, 0) at sea level
]
# The 13 other names of the author's lookup (his later runs used them).
MORE_AUTHOR_VALUES: list[tuple[str, float]] = [
    ("CVI", 0.984375),  # 9000 * 7000 / 8000 ** 2
    ("DVIMSS", 14600.0),  # 2.4 * 9000 - 7000
    ("EVI2", 0.29998125117180174),  # 2.4 * 2000 / 16001
    ("GNDVI", 0.058823529411764705),  # 1000 / 17000
    ("GRNDVI", -0.25),  # (9000 - 15000) / 24000
    ("H", -1.5707556601282524),  # arctan((-1500 / 30.5) * 500)
    ("MSRNirRed", 0.18898223650461368),  # (9/7 - 1) / sqrt(9/7 + 1)
    ("NormG", 0.3333333333333333),  # 8000 / 24000
    ("SQRTNIRR", 1.1338934190276817),  # sqrt(9000 / 7000)
    ("SRNIRG", 1.125),  # 9000 / 8000
    ("SRSWIRNIR", 0.6666666666666666),  # 6000 / 9000
    ("TNDVI", 0.7905694150420949),  # sqrt(0.125 + 0.5)
    ("VARIGreen", 0.13333333333333333),  # 1000 / (15000 - 7500)
]
# float32 cancellation: MSAVI subtracts two numbers near 18001, Kab1 two near 35.
TOLERANCE = {"MSAVI": 2e-3, "Kab1": 1e-4}


def _raw(**bands: list[int]) -> torch.Tensor:
    order = ("SWIR1", "NIR", "R", "G", "B", "QA", "DEM")
    values = {**{k: [v] for k, v in PIXEL.items()}, **bands}
    n = len(next(iter(bands.values()))) if bands else 1
    rows = [values[b] * (n // len(values[b])) for b in order]
    return torch.tensor(rows, dtype=torch.int16)[None, :, None, :]


def test_the_table_covers_every_name_of_the_authors_lookup() -> None:
    from kelpseg.features.seed_indices import AUTHOR_INDEX_NAMES

    names = [n for n, _ in SEED_VALUES + MORE_AUTHOR_VALUES]
    assert sorted(names) == sorted(AUTHOR_INDEX_NAMES)
    assert len(SEED_VALUES) == 46 and len(names) == 59


@pytest.mark.parametrize(("name", "expected"), SEED_VALUES + MORE_AUTHOR_VALUES)
def test_seed_index_is_the_authors_value(name: str, expected: float) -> None:
    stack = ChannelStack([name], mask_using_qa=False, mask_using_water_mask=False)
    value = float(stack(_raw())[0, 0, 0, 0])
    atol = TOLERANCE.get(name, 1e-6)
    assert value == pytest.approx(expected, rel=1e-5, abs=atol)


def test_water_masks_are_clipped_values_and_a_missing_dem_masks_indices() -> None:
    # DEM: missing, below sea level, sea level, land. NIR 7000 < R 8000 at the first pixel.
    raw = _raw(DEM=[-32768, -3, 0, 5], NIR=[7000, 9000, 9000, 9000], R=[8000, 7000, 7000, 7000])
    kept = ChannelStack(["DEMWM", "NDVIWM", "NDVI"], dem_clip_zero=False)(raw)[0, :, 0]
    assert math.isnan(kept[0, 0]) and kept[0, 1:].tolist() == [0.0, 0.0, 5.0]
    assert kept[1, 0] == 0.0  # max(-1000 / 15000, 0); water masks are never masked
    # The author kept an index where max(DEM, 0) == 0: missing DEM and land are masked.
    assert math.isnan(kept[2, 0]) and math.isnan(kept[2, 3])
    assert kept[2, 1] == pytest.approx(0.125) and kept[2, 2] == pytest.approx(0.125)
    # QA: anything but 0 masks.
    cloudy = ChannelStack(["NDVI"])(_raw(QA=[0, 1]))[0, 0, 0]
    assert cloudy[0] == pytest.approx(0.125) and math.isnan(cloudy[1])


def test_zero_filled_bands_feed_the_indices_zeros() -> None:
    # The author's fill_value=0.0 runs: a missing red pixel is 0 before the indices, so his
    # NDVI there is (9000 - 0) / (9000 + 0 + 1e-10) = 1.0.
    raw = _raw(R=[7000, -32768])
    zero = ChannelStack(["R", "NDVI"], missing_bands="zero", mask_using_qa=False)(raw)[0, :, 0]
    assert zero[0].tolist() == [7000.0, 0.0] and zero[1, 1] == pytest.approx(1.0)
    nan = ChannelStack(["R", "NDVI"], mask_using_qa=False)(raw)[0, :, 0]
    assert math.isnan(nan[0, 1]) and math.isnan(nan[1, 1])


# -- weighted sampler ----------------------------------------------------------------------
TILES = pd.DataFrame(
    {
        "has_kelp": [True, False, False],
        "kelp_pixels_pct": [0.1, 0.0, 0.0],
        "qa_ok": [True, True, False],
        "qa_corrupted_pixels_pct": [0.0, 0.0, 0.5],
        "water_pixels_pct": [0.6, 1.0, 0.5],
        "almost_all_water": [False, True, False],
        "dem_nan_pixels_pct": [0.2, 1.0, 0.0],
        "dem_zero_pixels_pct": [0.3, 0.0, 0.5],
    }
)


def test_author_sampler_weights_by_hand() -> None:
    # Factors (3.0, 0.2, 0.0, -1.0, 0.5, 0.25, -1.0):
    # coastal kelp tile: 3 + 0.2 * 0.9 - 1 * 1.0 + 0.5 * 0.4 + 0.25 * 0.8 - 1 * 0.7 = 1.88
    # open water:        0 + 0.2 * 1.0 - 1 * 1.0 + 0.5 * 0.0 + 0.25 * 0.0 - 1 * 1.0 = -1.8
    # cloudy coast:      0 + 0.2 * 1.0 - 1 * 0.5 + 0.5 * 0.5 + 0.25 * 1.0 - 1 * 0.5 = -0.3
    # min-max over [-1.8, 1.88]: 1, 0 and 1.5 / 3.68.
    got = sample_weights(TILES)
    np.testing.assert_allclose(got, [1.0, 0.0, 0.40760869565217395], atol=1e-9)
    # The open-water tile has weight 0: it is never drawn.
    sampler = build_sampler(TILES, SamplerConfig(samples_per_epoch=500), seed=0)
    assert 1 not in {i for i, _ in sampler}


def test_kelpseg_sampler_weights_by_hand() -> None:
    # 1 + 3 + 0.2 * 0.1 + 0.25 * 0.2 - 0.3 = 3.77; 1 + 0.5 + 0.25 = 1.75; 1 - 0.5 - 0.5 = 0
    # clipped to 0.01.
    got = sample_weights(TILES, formula="kelpseg")
    np.testing.assert_allclose(got, [3.77, 1.75, 0.01])


# -- band statistics -----------------------------------------------------------------------
def _write_tile(path: str, nir: list[int], dem: list[int]) -> None:
    data = np.zeros((7, 2, 2), np.int16)
    data[0], data[2], data[3], data[4] = 6000, 7000, 8000, 7500
    data[1] = np.array(nir).reshape(2, 2)
    data[6] = np.array(dem).reshape(2, 2)
    profile = {"driver": "GTiff", "width": 2, "height": 2, "count": 7, "dtype": "int16"}
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(data)


def test_author_statistics_on_crafted_tiles(tmp_path: pytest.TempPathFactory) -> None:
    one, two = str(tmp_path / "a_satellite.tif"), str(tmp_path / "b_satellite.tif")
    _write_tile(one, [8000, 9000, 10000, 11000], [0, 0, 0, 0])
    _write_tile(two, [8000, 8000, -32768, 9000], [0, 0, 0, 5])  # missing NIR, one land pixel
    config = FeatureConfig(
        channels=["NIR", "QA", "DEMWM", "NDVI"], stats_method="author", dem_clip_zero=False
    )
    stats = author_band_stats([one, two], config)
    # NIR: tile b has a missing pixel, so min and max come from tile a alone; the mean divides
    # the valid sum 63000 by all 8 pixels; std = sqrt(575e6 / 8 - 7875 ** 2).
    assert (stats.min["NIR"], stats.max["NIR"]) == (8000.0, 11000.0)
    assert stats.mean["NIR"] == pytest.approx(7875.0)
    assert stats.std["NIR"] == pytest.approx(3139.9641717701174, rel=1e-9)
    # Per-tile linear quantiles: a (8030, 10970), b over [8000, 8000, 9000] (8000, 8980).
    assert stats.quantile(0.01, ["NIR"])[0] == pytest.approx(8015.0)
    assert stats.quantile(0.99, ["NIR"])[0] == pytest.approx(9975.0)
    # NDVI: a = 1/15, 1/8, 3/17, 2/9; b = 1/15, 1/15 (missing NIR and land masked).
    assert stats.min["NDVI"] == pytest.approx(1 / 15) and stats.max["NDVI"] == pytest.approx(2 / 9)
    assert stats.mean["NDVI"] == pytest.approx(0.09046160130718954, rel=1e-6)
    assert stats.std["NDVI"] == pytest.approx(0.0741758951802567, rel=1e-5)
    assert stats.quantile(0.01, ["NDVI"])[0] == pytest.approx(0.06754166666666667, rel=1e-6)
    assert stats.quantile(0.99, ["NDVI"])[0] == pytest.approx(0.14375816993464052, rel=1e-6)
    # QA and water masks are forced to [0, 1].
    for name in ("QA", "DEMWM"):
        assert (stats.min[name], stats.max[name], stats.mean[name], stats.std[name]) == (
            0.0,
            1.0,
            0.0,
            1.0,
        )
        assert stats.quantile(0.01, [name])[0] == 0.0 and stats.quantile(0.99, [name])[0] == 1.0
    stats.check_compatible(config)


def test_unmasked_statistics_serve_a_masked_training_config(
    tmp_path: pytest.TempPathFactory,
) -> None:
    """The log's 2023-12-31 run: statistics without masking, training with water-mask masking."""
    from kelpseg.errors import KelpsegError
    from kelpseg.features.compute_stats import compute_band_stats

    one = str(tmp_path / "a_satellite.tif")
    _write_tile(one, [8000, 9000, 10000, 11000], [0, 0, 0, 5])
    train = FeatureConfig(
        channels=["NIR", "NDVI"], mask_using_qa=False, stats_masked=False, fill_value="zero"
    )
    stats = compute_band_stats([one], train, show_progress=False)
    assert stats.options["mask_using_water_mask"] is False
    assert stats.max["NDVI"] == pytest.approx(4000 / 18000, rel=1e-6)  # land pixel counted
    stats.check_compatible(train)
    with pytest.raises(KelpsegError, match="mask_using_water_mask"):
        stats.check_compatible(train.model_copy(update={"stats_masked": True}))


# -- metric --------------------------------------------------------------------------------
def test_macro_dice_is_the_mean_of_background_and_kelp_dice() -> None:
    truth = torch.zeros(1, 1, 4, 4)
    truth[0, 0, 0, :3] = 1  # 3 kelp pixels
    prob = torch.zeros(1, 1, 4, 4)
    prob[0, 0, 0, 1:3] = 0.9  # 2 hits
    prob[0, 0, 3, 0:2] = 0.8  # 2 false alarms
    prob[0, 0, 2, 2] = 0.5  # exactly 0.5: the argmax of a tie is background
    # TP 2, FP 2, FN 1, TN 11: kelp Dice 4 / 7, background Dice 22 / 25, macro 0.72571428...
    metric = MacroDice()
    metric.update(prob, truth.int())
    assert float(metric.compute()) == pytest.approx((4 / 7 + 22 / 25) / 2)
    assert float(metric.compute()) == pytest.approx(0.7257142857142858)
    s = scores(2, 2, 1, 11)
    assert float(s["dice"]) == pytest.approx(0.5714285714285714)
    assert float(s["dice_macro"]) == pytest.approx(0.7257142857142858)
    sklearn_metrics = pytest.importorskip("sklearn.metrics")
    macro = sklearn_metrics.f1_score(
        truth.flatten().numpy(), (prob > 0.5).flatten().numpy(), average="macro"
    )
    assert macro == pytest.approx(0.7257142857142858)


def test_prefixed_names_work_in_yaml_and_set_overrides(tmp_path: pytest.TempPathFactory) -> None:
    from kelpseg.config import load_config
    from kelpseg.errors import KelpsegError

    path = tmp_path / "features.yaml"
    path.write_text("channels: [R, TVI, spyndex.TVI, kelpseg.DEMWM]\n")
    config = load_config(FeatureConfig, path, ["channels=[R,TVI,spyndex.TVI,DEMWM]"])
    assert config.channels == ["R", "TVI", "spyndex.TVI", "DEMWM"]
    # The seed's TVI is sqrt((R - G) / (R + G) + 0.5); the catalogue's sqrt(NDVI + 0.5).
    values = ChannelStack(config.channels[1:3], mask_using_qa=False)(_raw())[0, :, 0, 0]
    assert float(values[0]) == pytest.approx(0.6582805886043833, rel=1e-5)
    assert float(values[1]) == pytest.approx(math.sqrt(0.125 + 0.5), rel=1e-5)
    with pytest.raises(KelpsegError, match="spyndex.TVI"):
        load_config(FeatureConfig, None, ["channels=[R,spyndex.TV]"])
