"""The torch-free tile reader of model packages: order, batching, bad tiles as messages."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from kelpseg.errors import KelpsegError
from kelpseg.inference.reader import read_batches, resolve_tiles
from kelpseg.io.tiles import write_tile
from tests.conftest import make_tile_array


def _tiles(folder: Path, sizes: list[int]) -> list[Path]:
    return [
        write_tile(folder / f"R{i}_satellite.tif", make_tile_array(size, seed=i))
        for i, size in enumerate(sizes)
    ]


@pytest.mark.parametrize("workers", [0, 2])
def test_batches_keep_the_table_order_and_the_raw_pixels(tmp_path: Path, workers: int) -> None:
    paths = _tiles(tmp_path, [24] * 5)
    table = resolve_tiles(paths)
    batches = list(read_batches(table, batch_size=2, workers=workers))
    assert [b["tile_id"] for b in batches] == [["R0", "R1"], ["R2", "R3"], ["R4"]]
    assert batches[0]["image"].dtype == np.int16 and batches[0]["image"].shape == (2, 7, 24, 24)
    np.testing.assert_array_equal(batches[2]["image"][0], make_tile_array(24, seed=4))


def test_tiles_of_two_sizes_in_one_batch_come_back_as_an_error(tmp_path: Path) -> None:
    table = resolve_tiles(_tiles(tmp_path, [24, 32]))
    (batch,) = read_batches(table, batch_size=2, workers=1)
    message, _ = batch["error"]
    assert "tiles of different sizes in one batch (R1: 32x32" in message
    singles = list(read_batches(table, batch_size=1, workers=1))
    assert [b["image"].shape[-1] for b in singles] == [24, 32]


def test_an_unreadable_tile_comes_back_as_an_error_naming_it(tmp_path: Path) -> None:
    paths = _tiles(tmp_path, [24, 24])
    paths[1].write_bytes(b"not a tiff")
    first, second = read_batches(resolve_tiles(paths), batch_size=1, workers=2)
    assert "image" in first
    assert second["error"][1] == str(paths[1])


def test_resolve_tiles_refuses_a_missing_source(tmp_path: Path) -> None:
    with pytest.raises(KelpsegError, match="does not exist"):
        resolve_tiles(tmp_path / "nope")
