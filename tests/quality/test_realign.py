"""Misaligned-tile lists and the re-aligned dataset copy."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from kelpseg.cli.app import main
from kelpseg.errors import KelpsegError
from kelpseg.io.catalog import build_catalog
from kelpseg.io.tiles import read_label, read_tile, write_label, write_tile
from kelpseg.quality.alignment import estimate_dem_shift
from kelpseg.quality.realign import misaligned_tiles, realign_dataset, unmeasured_note
from kelpseg.split.folds import read_exclusion_list
from tests.quality.conftest import SIZE, crafted_tile

SHIFTS = {"A1": (0, 0), "A2": (3, -2), "A3": (0, 0), "B1": (-2, 2)}
SPLITS = {"A1": "train", "A2": "train", "A3": "train", "B1": "test"}


@pytest.fixture
def dataset(tmp_path: Path) -> tuple[Path, pd.DataFrame]:
    """Four crafted tiles (two with a shifted DEM, one of them a test tile) and their stats."""
    root = tmp_path / "data"
    rows = []
    for i, (tile_id, shift) in enumerate(SHIFTS.items()):
        split = SPLITS[tile_id]
        data = crafted_tile(shift, seed=10 + i)
        image = write_tile(root / f"{split}_satellite" / f"{tile_id}_satellite.tif", data)
        mask = ""
        if split == "train":
            label = np.zeros((SIZE, SIZE), np.uint8)
            label[:4, :4] = 1
            mask = str(write_label(root / "train_kelp" / f"{tile_id}_kelp.tif", label))
        found = estimate_dem_shift(data)
        rows.append((tile_id, split, str(image), mask, found.row, found.col, found.px, found.score))
    columns = ["tile_id", "split", "image_path", "mask_path"]
    columns += ["dem_shift_row", "dem_shift_col", "dem_shift_px", "dem_shift_score"]
    stats = pd.DataFrame(rows, columns=columns)
    stats.loc[stats["tile_id"] == "A3", ["dem_shift_row", "dem_shift_col", "dem_shift_px"]] = np.nan
    return root, stats


def test_misaligned_tiles_lists_shifts_above_the_limit(dataset: tuple[Path, pd.DataFrame]) -> None:
    _, stats = dataset
    assert list(misaligned_tiles(stats)["tile_id"]) == ["A2", "B1"]  # largest shift first
    assert list(misaligned_tiles(stats, split="test")["tile_id"]) == ["B1"]
    assert list(misaligned_tiles(stats, min_px=3.0)["tile_id"]) == ["A2"]
    with pytest.raises(KelpsegError, match="dem_shift"):
        misaligned_tiles(stats.drop(columns="dem_shift_px"))


def test_realigned_copy_moves_only_flagged_training_dems(
    dataset: tuple[Path, pd.DataFrame], tmp_path: Path
) -> None:
    root, stats = dataset
    out = tmp_path / "realigned"
    result = realign_dataset(stats, out, show_progress=False)
    assert list(result.realigned["tile_id"]) == ["A2"] and result.linked == 3
    moved = read_tile(out / "train_satellite" / "A2_satellite.tif", expected_size=None).data
    remeasured = estimate_dem_shift(moved)
    assert abs(remeasured.row) <= 0.5 and abs(remeasured.col) <= 0.5
    source = read_tile(root / "train_satellite" / "A2_satellite.tif", expected_size=None).data
    assert np.array_equal(moved[:6], source[:6])
    untouched = read_tile(out / "test_satellite" / "B1_satellite.tif", expected_size=None).data
    assert np.array_equal(
        untouched, read_tile(root / "test_satellite" / "B1_satellite.tif", expected_size=None).data
    )
    assert read_label(out / "train_kelp" / "A1_kelp.tif").sum() == 16
    catalog = build_catalog(out)
    assert not catalog.problems
    assert sorted(catalog.tiles["tile_id"]) == sorted(SHIFTS)
    both = realign_dataset(stats, tmp_path / "both", splits=("train", "test"), show_progress=False)
    assert sorted(both.realigned["tile_id"]) == ["A2", "B1"]


def test_realign_refuses_to_write_over_the_source(dataset: tuple[Path, pd.DataFrame]) -> None:
    root, stats = dataset
    with pytest.raises(KelpsegError, match="new folder"):
        realign_dataset(stats, root, show_progress=False)


def test_cli_lists_and_realigns(dataset: tuple[Path, pd.DataFrame], tmp_path: Path) -> None:
    _, stats = dataset
    path = tmp_path / "eda" / "tile_stats.parquet"
    path.parent.mkdir()
    stats.to_parquet(path, index=False)
    listed = tmp_path / "misaligned.txt"
    assert main(["labels", "misaligned", str(path.parent), "--out", str(listed)]) == 0
    assert read_exclusion_list(listed) == ["A2", "B1"]
    out = tmp_path / "copy"
    assert main(["labels", "realign", str(path), "--out", str(out), "--quiet"]) == 0
    assert (out / "realigned.csv").read_text().splitlines()[1].startswith("A2,train,")
    assert main(["labels", "misaligned", str(tmp_path / "nope.parquet")]) == 2


def test_data_the_check_cannot_measure_is_said_so_not_listed_as_aligned(
    dataset: tuple[Path, pd.DataFrame], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, stats = dataset
    assert unmeasured_note(stats) is None
    blind = stats.assign(dem_shift_px=np.nan, dem_shift_row=np.nan, dem_shift_col=np.nan)
    note = unmeasured_note(blind)
    assert note is not None and f"any of {len(stats)} tiles" in note
    path = tmp_path / "tile_stats.parquet"
    blind.to_parquet(path, index=False)
    capsys.readouterr()
    assert main(["labels", "misaligned", str(path)]) == 1
    out = capsys.readouterr().out
    assert "not measurable" in out and "tiles with a DEM shifted" not in out
