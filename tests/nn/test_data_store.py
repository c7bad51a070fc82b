"""The prepared store: round trip, resumption after SIGKILL, idempotence and damaged stores."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from kelpseg.errors import KelpsegError
from kelpseg.io.tiles import read_label, read_tile, write_label
from kelpseg.nn.data import store as store_module
from kelpseg.nn.data.datasets import GeoTiffDataset, StoreDataset
from kelpseg.nn.data.store import DELAY_ENV, prepare_store
from kelpseg.nn.data.store_format import MANIFEST_NAME, open_store, verify_store
from tests.conftest import make_tile_array


def _files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


def _copy(store_dir: Path, tmp_path: Path) -> Path:
    target = tmp_path / "store"
    shutil.copytree(store_dir, target)
    return target


def test_store_round_trip_equals_geotiff_reading(store_dir: Path, split_catalog: pd.DataFrame):
    store = open_store(store_dir)
    assert set(store.splits) == {"train", "test"}
    for name, part in store.splits.items():
        rows = split_catalog[split_catalog["split"] == name].sort_values("tile_id")
        assert part.tile_ids == list(rows["tile_id"])
        assert part.labelled == (name == "train")
        for i, row in enumerate(rows.itertuples(index=False)):
            np.testing.assert_array_equal(
                part.images[i], read_tile(row.image_path, expected_size=None).data
            )
            if part.labelled:
                np.testing.assert_array_equal(part.masks[i], read_label(row.mask_path))


def test_store_dataset_items_equal_geotiff_dataset_items(
    store_dir: Path, split_catalog: pd.DataFrame
):
    rows = split_catalog[split_catalog["split"] == "train"].iloc[::-1]  # not store order
    ids = list(rows["tile_id"])
    kwargs = {"crop_size": 24, "kelp_crop_prob": 0.5}
    from_store = StoreDataset(open_store(store_dir).split("train"), ids, **kwargs)
    from_tiff = GeoTiffDataset(list(rows["image_path"]), list(rows["mask_path"]), ids, **kwargs)
    for index in range(len(ids)):
        key = (index, 1000 + index)
        a, b = from_store[key], from_tiff[key]
        assert a["tile_id"] == b["tile_id"] == ids[index]
        assert a["image"].dtype == torch.int16 and a["mask"].dtype == torch.float32
        assert torch.equal(a["image"], b["image"]) and torch.equal(a["mask"], b["mask"])


def test_rerun_on_a_complete_store_changes_nothing(store_dir: Path, split_catalog_path: Path):
    before = {p.name: p.stat().st_mtime_ns for p in store_dir.iterdir()}
    prepare_store(split_catalog_path, store_dir, chunk_size=8, show_progress=False)
    after = {p.name: p.stat().st_mtime_ns for p in store_dir.iterdir()}
    assert after == before


def _completed(out: Path, split: str) -> int:
    try:
        return int(json.loads((out / MANIFEST_NAME).read_text())["splits"][split]["completed"])
    except (OSError, ValueError, KeyError):
        return 0


@pytest.mark.slow
def test_resume_after_sigkill_is_byte_identical(
    split_catalog_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    reference = tmp_path / "reference"
    prepare_store(split_catalog_path, reference, chunk_size=4, show_progress=False)

    out = tmp_path / "killed"
    code = (
        "from kelpseg.nn.data.store import prepare_store; "
        f"prepare_store({str(split_catalog_path)!r}, {str(out)!r}, chunk_size=4, "
        "show_progress=False)"
    )
    # The hook sleeps after a chunk's images are written, before its masks and manifest.
    env = {**os.environ, DELAY_ENV: "0.4"}
    proc = subprocess.Popen([sys.executable, "-c", code], env=env)
    deadline = time.monotonic() + 120
    while _completed(out, "train") < 8 and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done = _completed(out, "train")
    total = len(open_store(reference).split("train"))
    assert 8 <= done < total, "the run was not killed mid-way"
    with pytest.raises(KelpsegError, match="unfinished"):
        open_store(out)

    reads = []
    original = store_module._read_pair
    monkeypatch.setattr(store_module, "_read_pair", lambda a: reads.append(a) or original(a))
    prepare_store(split_catalog_path, out, chunk_size=4, show_progress=False)
    train_reads = [a for a in reads if "train_satellite" in a[0]]
    assert len(train_reads) == total - done  # resumed, not restarted
    assert _files(out) == _files(reference)
    verify_store(out)


def test_truncated_store_file_is_named(store_dir: Path, tmp_path: Path):
    store = _copy(store_dir, tmp_path)
    images = store / "train_images.int16.npy"
    with images.open("r+b") as fh:
        fh.truncate(images.stat().st_size - 100)
    with pytest.raises(KelpsegError, match="truncated") as err:
        open_store(store)
    assert err.value.path == str(images)


def test_store_built_for_other_tiles_is_refused(
    store_dir: Path, split_catalog: pd.DataFrame, tmp_path: Path
):
    store = open_store(store_dir)
    with pytest.raises(KelpsegError, match="other tiles") as err:
        StoreDataset(store.split("train"), ["ZZ999", *store.split("train").tile_ids[:2]])
    assert err.value.path.endswith("train_index.parquet")

    damaged = _copy(store_dir, tmp_path)
    index = damaged / "train_index.parquet"
    ids = pd.read_parquet(index)
    ids.loc[0, "tile_id"] = "ZZ999"
    ids.to_parquet(index, index=False)
    with pytest.raises(KelpsegError, match="checksum") as err:
        open_store(damaged)
    assert err.value.path == str(index)


def test_changed_bytes_are_found_by_verify(store_dir: Path, tmp_path: Path):
    store = _copy(store_dir, tmp_path)
    images = store / "train_images.int16.npy"
    with images.open("r+b") as fh:
        fh.seek(images.stat().st_size - 3)
        fh.write(b"\x7f")
    open_store(store)  # sizes and headers are still right
    with pytest.raises(KelpsegError, match="changed") as err:
        verify_store(store)
    assert err.value.path == str(images)


def test_not_a_store_and_missing_split_are_errors(store_dir: Path, tmp_path: Path):
    with pytest.raises(KelpsegError, match="not a prepared store"):
        open_store(tmp_path)
    with pytest.raises(KelpsegError, match="no split 'holdout'"):
        open_store(store_dir).split("holdout")
    store = _copy(store_dir, tmp_path)
    (store / "test_images.int16.npy").unlink()
    with pytest.raises(KelpsegError, match="missing") as err:
        open_store(store)
    assert err.value.path == str(store / "test_images.int16.npy")


def test_store_of_a_changed_catalog_is_rebuilt(
    store_dir: Path, split_catalog: pd.DataFrame, tmp_path: Path
):
    store = _copy(store_dir, tmp_path)
    fewer = split_catalog[split_catalog["split"] == "train"].iloc[:5]
    prepare_store(fewer, store, splits=("train",), chunk_size=2, show_progress=False)
    rebuilt = open_store(store).split("train")
    assert rebuilt.tile_ids == sorted(fewer["tile_id"])
    assert rebuilt.images.shape[0] == 5
    np.testing.assert_array_equal(
        rebuilt.images[0], read_tile(fewer.iloc[0].image_path, expected_size=None).data
    )


def test_bad_catalogs_are_user_errors(tile_factory, tmp_path: Path):
    small = tile_factory("AA001", data=make_tile_array(32), label=np.zeros((32, 32), np.uint8))
    big = tile_factory(
        "AA002", data=make_tile_array(48, seed=1), label=np.zeros((48, 48), np.uint8)
    )
    frame = pd.DataFrame(
        {
            "tile_id": ["AA001", "AA002"],
            "split": ["train", "train"],
            "image_path": [str(small), str(big)],
            "mask_path": [
                str(tmp_path / "train_kelp" / "AA001_kelp.tif"),
                str(tmp_path / "train_kelp" / "AA002_kelp.tif"),
            ],
        }
    )
    with pytest.raises(KelpsegError, match="expected 32x32") as err:
        prepare_store(frame, tmp_path / "s1", show_progress=False)
    assert err.value.path == str(big)

    mixed = frame.assign(mask_path=[frame["mask_path"][0], ""])
    with pytest.raises(KelpsegError, match="mixes labelled and unlabelled"):
        prepare_store(mixed, tmp_path / "s2", show_progress=False)
    with pytest.raises(KelpsegError, match="no tiles in split"):
        prepare_store(frame, tmp_path / "s3", splits=("test",), show_progress=False)


def test_unreadable_label_is_named(tile_factory, tmp_path: Path):
    image = tile_factory("AA001", data=make_tile_array(32), label=np.zeros((32, 32), np.uint8))
    label = tmp_path / "train_kelp" / "AA001_kelp.tif"
    write_label(label, np.zeros((16, 16), np.uint8))  # wrong size
    frame = pd.DataFrame(
        {
            "tile_id": ["AA001"],
            "split": ["train"],
            "image_path": [str(image)],
            "mask_path": [str(label)],
        }
    )
    with pytest.raises(KelpsegError) as err:
        prepare_store(frame, tmp_path / "store", show_progress=False)
    assert err.value.path == str(label)
