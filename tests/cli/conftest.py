"""Fixtures shared by the CLI tests: one small generated dataset for the whole session."""

from __future__ import annotations

from pathlib import Path

import pytest

from kelpseg.synth import SynthConfig, generate_dataset


@pytest.fixture(scope="session")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 3-AOI generated dataset in the download layout, with test labels."""
    root = tmp_path_factory.mktemp("cli") / "data"
    generate_dataset(
        root, SynthConfig(n_aoi=3, seed=5, tiles_per_aoi=(2, 3)), workers=1, show_progress=False
    )
    assert any((root / "test_labels").glob("*_kelp.tif")), "the generator made no test tiles"
    return root


def copy_labels_as_predictions(src: Path, dst: Path) -> Path:
    """Copy every ``*_kelp.tif`` of ``src`` into ``dst``: perfect predictions."""
    dst.mkdir(parents=True, exist_ok=True)
    for path in src.glob("*_kelp.tif"):
        (dst / path.name).write_bytes(path.read_bytes())
    return dst
