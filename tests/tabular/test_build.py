"""Pixel sampling and the parquet pixel dataset: contents, resuming, errors, Dask."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.dataset as pads
import pytest
from scipy import ndimage

from kelpseg.errors import KelpsegError
from kelpseg.io.tiles import read_label, read_tile
from kelpseg.tabular import PixelDataset, build_pixel_dataset, sample_pixels, training_tiles
from kelpseg.tabular.dataset import KIND_BACKGROUND, KIND_KELP, KIND_RING, tile_file
from kelpseg.tabular.sampling import tile_rng
from tests.tabular.conftest import CHANNELS, N_FOLDS, N_TILES, small_config, write_crafted


def _read_all(root: Path) -> pd.DataFrame:
    data = pads.dataset(root / "pixels", format="parquet", partitioning="hive")
    frame = data.to_table().to_pandas()
    return frame.sort_values(["tile_id", "row", "col"], ignore_index=True)


def _label_with_blob() -> np.ndarray:
    label = np.zeros((20, 20), np.uint8)
    label[8:11, 5:9] = 1
    label[0, 19] = 1  # a corner pixel: its ring is clipped by the border
    return label


def test_sample_keeps_all_kelp_and_exactly_the_ring() -> None:
    label = _label_with_blob()
    idx, kind, _ = sample_pixels(label, 2, 50, np.random.default_rng(0))
    flat = label.ravel().astype(bool)
    # Independent ring: chessboard distance to kelp between 1 and 2.
    distance = ndimage.distance_transform_cdt(~label.astype(bool), metric="chessboard")
    ring = (distance >= 1) & (distance <= 2)
    assert set(idx[kind == KIND_KELP]) == set(np.flatnonzero(flat))
    assert set(idx[kind == KIND_RING]) == set(np.flatnonzero(ring.ravel()))
    background = idx[kind == KIND_BACKGROUND]
    assert len(background) == 50
    assert not (flat[background] | ring.ravel()[background]).any()
    assert np.all(np.diff(idx) > 0), "indices are sorted and unique"


def test_sample_weights_add_up_to_the_whole_tile() -> None:
    label = _label_with_blob()
    _, kind, weight = sample_pixels(label, 1, 37, np.random.default_rng(1))
    assert weight.sum() == pytest.approx(label.size)
    assert np.all(weight[kind != KIND_BACKGROUND] == 1.0)


def test_sample_without_kelp_and_with_too_few_background_pixels() -> None:
    empty = np.zeros((6, 6), np.uint8)
    idx, kind, _ = sample_pixels(empty, 3, 10, np.random.default_rng(0))
    assert len(idx) == 10 and np.all(kind == KIND_BACKGROUND)
    idx, kind, weight = sample_pixels(empty, 3, 1000, np.random.default_rng(0))
    assert len(idx) == 36 and np.all(weight == 1.0)


def test_sampling_is_fixed_by_seed_and_tile_id() -> None:
    label = _label_with_blob()
    first = sample_pixels(label, 1, 30, tile_rng(5, "AB001"))[0]
    again = sample_pixels(label, 1, 30, tile_rng(5, "AB001"))[0]
    other = sample_pixels(label, 1, 30, tile_rng(5, "AB002"))[0]
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)


def test_dataset_rows_match_the_tiles_on_disk(
    crafted_catalog: pd.DataFrame, crafted_pixels: Path
) -> None:
    frame = _read_all(crafted_pixels)
    assert list(frame.columns[:6]) == ["tile_id", "row", "col", "label", "kind", "weight"]
    assert set(CHANNELS) <= set(frame.columns)
    train = crafted_catalog[crafted_catalog["split"] == "train"]
    assert set(frame["tile_id"]) == set(train["tile_id"]), "test tiles are left out"
    for rec in train.itertuples(index=False):
        rows = frame[frame["tile_id"] == rec.tile_id]
        assert set(rows["fold"]) == {rec.fold}
        tile = read_tile(rec.image_path, expected_size=None)
        label = read_label(rec.mask_path)
        r, c = rows["row"].to_numpy(), rows["col"].to_numpy()
        np.testing.assert_array_equal(rows["label"].to_numpy(), label[r, c])
        assert int(rows["label"].sum()) == int(label.sum()), "every kelp pixel is kept"
        np.testing.assert_array_equal(rows["NIR"].to_numpy(), tile.data[1, r, c].astype(np.float32))
        # Indices are masked on land (DEM > 0) and where QA flags a pixel: NaN there.
        masked = (tile.data[6, r, c] > 0) | (tile.data[5, r, c] > 0)
        assert masked.any() and (~masked).any()
        assert np.isnan(rows["NDVI"].to_numpy()[masked]).all()
        nir, red = tile.data[1, r, c].astype(np.float64), tile.data[2, r, c].astype(np.float64)
        np.testing.assert_allclose(
            rows["NDVI"].to_numpy()[~masked], ((nir - red) / (nir + red))[~masked], rtol=1e-5
        )


def test_dataset_reads_back_by_fold(crafted_pixels: Path) -> None:
    dataset = PixelDataset.open(crafted_pixels)
    assert dataset.folds == list(range(N_FOLDS))
    fold1 = dataset.arrays([1])
    assert set(fold1.fold) == {1}
    assert fold1.x.shape == (len(fold1), len(CHANNELS))
    assert len(dataset.arrays(None)) == sum(len(dataset.arrays([f])) for f in dataset.folds)


def test_rerun_skips_written_tiles_and_rewrites_missing_ones(
    tmp_path: Path, crafted_catalog: pd.DataFrame, crafted_pixels: Path
) -> None:
    out = tmp_path / "pixels"
    cfg = small_config()
    first = build_pixel_dataset(crafted_catalog, cfg, out, scheduler="sync", show_progress=False)
    assert (first.written, first.skipped) == (N_TILES, 0)
    victim = tile_file(out, 2, "TR002")
    victim.unlink()
    (victim.parent / ".TR005.parquet.deadbeef.tmp").write_bytes(b"half a file")
    second = build_pixel_dataset(crafted_catalog, cfg, out, scheduler="sync", show_progress=False)
    assert (second.written, second.skipped) == (1, N_TILES - 1)
    assert not list(victim.parent.glob(".*")), "stale temporary files are cleaned up"
    pd.testing.assert_frame_equal(_read_all(out), _read_all(crafted_pixels))


def test_rerun_with_other_settings_is_refused(
    tmp_path: Path, crafted_catalog: pd.DataFrame
) -> None:
    small = crafted_catalog.head(4)
    build_pixel_dataset(small, small_config(), tmp_path, scheduler="sync", show_progress=False)
    with pytest.raises(KelpsegError, match="other settings"):
        build_pixel_dataset(
            small, small_config(buffer_px=3), tmp_path, scheduler="sync", show_progress=False
        )
    moved = small.assign(fold=(small["fold"] + 1) % N_FOLDS)
    with pytest.raises(KelpsegError, match="other tiles or folds"):
        build_pixel_dataset(moved, small_config(), tmp_path, scheduler="sync", show_progress=False)
    again = build_pixel_dataset(
        moved, small_config(buffer_px=3), tmp_path, overwrite=True, scheduler="sync",
        show_progress=False,
    )  # fmt: skip
    assert again.written == 4


def test_catalog_without_folds_or_labels_is_refused(crafted_catalog: pd.DataFrame) -> None:
    with pytest.raises(KelpsegError, match="no 'fold' column"):
        training_tiles(crafted_catalog.drop(columns="fold"))
    with pytest.raises(KelpsegError, match="no labelled tile"):
        training_tiles(crafted_catalog[crafted_catalog["split"] == "test"])


def test_unreadable_tile_is_reported_and_the_rest_written(tmp_path: Path) -> None:
    catalog = write_crafted(tmp_path / "data", n_tiles=4, n_test=0)
    Path(catalog.loc[1, "image_path"]).write_bytes(b"II*\x00garbage" * 9)
    result = build_pixel_dataset(
        catalog, small_config(), tmp_path / "px", scheduler="sync", show_progress=False
    )
    assert result.written == 3
    assert list(result.failures["tile_id"]) == ["TR001"]
    assert (tmp_path / "px" / "failures.csv").is_file()


@pytest.mark.slow
def test_dask_cluster_build_equals_in_process_build(
    tmp_path: Path, dask_cluster, crafted_catalog: pd.DataFrame, crafted_pixels: Path
) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "dask"
    result = build_pixel_dataset(
        crafted_catalog,
        small_config(),
        out,
        scheduler=dask_cluster.scheduler_address,
        show_progress=False,
    )
    assert result.written == N_TILES
    pd.testing.assert_frame_equal(_read_all(out), _read_all(crafted_pixels))


_KILL_SCRIPT = """
import sys, time, pandas as pd
import kelpseg.tabular.build as build
from kelpseg.tabular import build_pixel_dataset
from tests.tabular.conftest import small_config

slow = build.tile_pixels
def tile_pixels(*args, **kwargs):  # slowed down so the kill lands mid-build
    time.sleep(0.4)
    return slow(*args, **kwargs)
build.tile_pixels = tile_pixels
catalog = pd.read_parquet(sys.argv[1])
build_pixel_dataset(catalog, small_config(chunk_size=1), sys.argv[2], scheduler="sync",
                    show_progress=False)
"""


@pytest.mark.slow
def test_sigkill_mid_build_then_rerun_gives_the_same_dataset(
    tmp_path: Path, crafted_catalog: pd.DataFrame, crafted_pixels: Path
) -> None:
    catalog_path = tmp_path / "catalog.parquet"
    crafted_catalog.to_parquet(catalog_path)
    out = tmp_path / "killed"
    repo = Path(__file__).resolve().parents[2]
    proc = subprocess.Popen(
        [sys.executable, "-c", _KILL_SCRIPT, str(catalog_path), str(out)],
        cwd=repo,
        env={**os.environ, "PYTHONPATH": str(repo)},
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if any((out / "pixels").glob("fold=*/*.parquet")):
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done = len(list((out / "pixels").glob("fold=*/*.parquet")))
    assert 0 < done < N_TILES, "the kill landed mid-build"
    result = build_pixel_dataset(
        crafted_catalog, small_config(chunk_size=1), out, scheduler="sync", show_progress=False
    )
    assert result.skipped == done and result.written == N_TILES - done
    pd.testing.assert_frame_equal(_read_all(out), _read_all(crafted_pixels))
