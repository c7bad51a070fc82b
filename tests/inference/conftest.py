"""Fixtures of the inference tests: a tiny test set and a folder of its masks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from kelpseg.io.tiles import write_mask

SIZE = 16


def make_masks(folder: Path, tile_ids: list[str], size: int = SIZE, seed: int = 0) -> Path:
    """Write a random valid mask per tile into ``folder``."""
    rng = np.random.default_rng(seed)
    for tile_id in tile_ids:
        write_mask(folder / f"{tile_id}_kelp.tif", rng.integers(0, 2, (size, size), np.uint8))
    return folder


@pytest.fixture
def submission_catalog() -> pd.DataFrame:
    """A catalog table with three test tiles and one training tile."""
    return pd.DataFrame(
        {
            "tile_id": ["TR001", "TE001", "TE002", "TE003"],
            "split": ["train", "test", "test", "test"],
            "image_path": [""] * 4,
            "mask_path": ["x", "", "", ""],
        }
    )


@pytest.fixture
def pred_dir(tmp_path: Path) -> Path:
    """A valid prediction folder for ``test_catalog`` (masks of SIZE x SIZE)."""
    return make_masks(tmp_path / "preds", ["TE001", "TE002", "TE003"])
