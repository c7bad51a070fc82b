"""Fixtures of the reliability tests: one tiny dataset, its split catalog, stats and a model."""

from __future__ import annotations

from pathlib import Path

import pytest

from kelpseg.synth import SynthConfig, generate_dataset
from tests.nn.conftest import split_catalog_frame

TILE = 64


@pytest.fixture(scope="session")
def rel_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2-AOI generated dataset of 64 px tiles in the download layout (treat as read-only)."""
    root = tmp_path_factory.mktemp("reliability") / "data"
    config = SynthConfig(n_aoi=2, seed=11, tile_size=TILE, tiles_per_aoi=(3, 4))
    generate_dataset(root, config, workers=1, show_progress=False)
    return root


@pytest.fixture(scope="session")
def rel_split(rel_data: Path) -> Path:
    """The split catalog of ``rel_data`` (catalog + EDA sampler columns + ``fold``)."""
    path = rel_data.parent / "split.parquet"
    split_catalog_frame(rel_data).to_parquet(path, index=False)
    return path
