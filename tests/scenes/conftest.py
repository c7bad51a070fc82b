"""Generated georeferenced scenes and crafted predictors for the scene tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from kelpseg.io.tiles import MISSING
from kelpseg.scenes.synth import SyntheticScene, write_synthetic_scene

# Small enough to be quick, large enough for many overlapping windows of 48 px.
GRID = (2, 3)
AOI_SIZE = 64


class PixelPredictor:
    """Kelp probability as a per-pixel function of NIR and R, zero on land and missing data.

    Per-pixel, so a scene predicted in overlapping windows must equal it exactly.
    """

    channels = ["NIR", "R"]
    device = "cpu"

    def __init__(self, tile_size: int = 48, needs_dem: bool = False, threshold: float = 0.5):
        self.tile_size = tile_size
        self.needs_dem = needs_dem
        self.threshold = threshold
        self.calls: list[tuple[int, ...]] = []

    def predict_batch(self, raw: np.ndarray) -> np.ndarray:
        self.calls.append(raw.shape)
        nir, red = raw[:, 1].astype(np.float32), raw[:, 2].astype(np.float32)
        prob = 1.0 / (1.0 + np.exp(np.clip((red - nir) / 400.0, -50, 50)))
        prob[(raw[:, 1] == MISSING) | (raw[:, 2] == MISSING) | (raw[:, 6] > 0)] = 0.0
        return prob.astype(np.float32)


class ConstantPredictor:
    """The same probability everywhere: blending must not change it."""

    channels: list[str] = []
    device = "cpu"
    needs_dem = False
    threshold = 0.5

    def __init__(self, value: float, tile_size: int = 40) -> None:
        self.value = value
        self.tile_size = tile_size

    def predict_batch(self, raw: np.ndarray) -> np.ndarray:
        return np.full((raw.shape[0], *raw.shape[2:]), self.value, dtype=np.float32)


def write_scene(root: Path, preset: str, **kwargs: object) -> SyntheticScene:
    return write_synthetic_scene(
        root / preset, preset=preset, grid=GRID, tile_size=AOI_SIZE, seed=7, **kwargs
    )


@pytest.fixture(scope="session")
def scene89(tmp_path_factory: pytest.TempPathFactory) -> SyntheticScene:
    """A Landsat 8 scene: band files, QA rasters, MTL, a stack and a DEM on the scene grid."""
    return write_scene(tmp_path_factory.mktemp("scenes"), "landsat89")


@pytest.fixture(scope="session")
def scene57(tmp_path_factory: pytest.TempPathFactory) -> SyntheticScene:
    """The same AOIs as a Landsat 5 scene (other band numbers)."""
    return write_scene(tmp_path_factory.mktemp("scenes"), "landsat57")


@pytest.fixture(params=["landsat89", "landsat57"])
def scene(request: pytest.FixtureRequest) -> SyntheticScene:
    """Each band preset in turn."""
    fixture: SyntheticScene = request.getfixturevalue(
        "scene89" if request.param == "landsat89" else "scene57"
    )
    return fixture


@pytest.fixture(scope="session")
def mask89(scene89: SyntheticScene, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The kelp mask COG that the pixel model gives on the Landsat 8 scene."""
    from kelpseg.scenes.predict import predict_scene
    from kelpseg.scenes.reader import open_scene

    out = tmp_path_factory.mktemp("masks") / f"{scene89.product_id}_kelp.tif"
    with open_scene(scene89.band_prefix, dem=scene89.dem_path) as opened:
        predict_scene(opened, PixelPredictor(), out, overlap=12, show_progress=False)
    return out
