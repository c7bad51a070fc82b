"""Real Landsat 8 spectra (spyndex's 120 labelled pixels) through the tile path."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import spyndex
import torch

from kelpseg.features import FeatureConfig, InputBuilder

# Landsat 8 surface-reflectance columns for the tile bands SWIR1, NIR, R, G, B.
COLUMNS = ["SR_B6", "SR_B5", "SR_B4", "SR_B3", "SR_B2"]


def reflectance_to_tile_integers(rho: np.ndarray) -> np.ndarray:
    """Landsat Collection 2 Level-2 scaling, as the tiles hold it: (rho + 0.2) / 2.75e-5."""
    return np.clip(np.rint((rho + 0.2) / 2.75e-5), 1, 32767).astype(np.int16)


@pytest.fixture(scope="module")
def spectra() -> tuple[pd.DataFrame, dict[str, np.ndarray]]:
    df = spyndex.datasets.open("spectral")
    dn = reflectance_to_tile_integers(df[COLUMNS].to_numpy())
    raw = np.zeros((1, 7, 1, len(df)), np.int16)  # QA clear, DEM 0: nothing masked
    raw[0, :5, 0] = dn.T
    config = FeatureConfig(
        channels=["NDVI", "NDWI", "NDVIWM", "NIR", "spyndex.NDWI", "kelpseg.NDVIWM"],
        normalization="per-sample-min-max",
    )
    values = InputBuilder(config).raw_channels(torch.from_numpy(raw))[0, :, 0].numpy()
    return df, dict(zip(config.channels, values, strict=True))


def test_tile_integers_fall_in_the_tiles_range(
    spectra: tuple[pd.DataFrame, dict[str, np.ndarray]],
) -> None:
    df, values = spectra
    water = (df["class"] == "Water").to_numpy()
    assert 7000 < np.median(values["NIR"][water]) < 9000  # where the tiles' sea sits
    assert np.median(values["NIR"][~water]) > 12000


def test_water_and_vegetation_separate_as_the_literature_says(
    spectra: tuple[pd.DataFrame, dict[str, np.ndarray]],
) -> None:
    df, values = spectra
    water = (df["class"] == "Water").to_numpy()
    vegetation = (df["class"] == "Vegetation").to_numpy()
    ndvi, ndwi = values["NDVI"], values["NDWI"]
    assert np.median(ndvi[water]) < 0 < 0.2 < ndvi[vegetation].min()
    assert ndvi[water].max() < ndvi[vegetation].min()
    # The seed's NDWI is (N - G) / (N + G): water below 0, vegetation above (the negated
    # McFeeters NDWI, which stays reachable as spyndex.NDWI).
    assert ndwi[water].max() < 0 < ndwi[vegetation].min()
    assert values["spyndex.NDWI"][water].min() > 0 > values["spyndex.NDWI"][vegetation].max()
    # The seed's NDVIWM is max(NDVI, 0): near 0 on water, NDVI itself on vegetation.
    assert np.median(values["NDVIWM"][water]) < 0.05
    np.testing.assert_allclose(values["NDVIWM"][vegetation], ndvi[vegetation])
    assert values["kelpseg.NDVIWM"][water].mean() > 0.6
    assert values["kelpseg.NDVIWM"][vegetation].sum() == 0
