"""The demo data generator: layout, determinism, realism statistics and recorded corruption."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from scipy import ndimage

from kelpseg.cli.app import main
from kelpseg.config import load_config
from kelpseg.errors import KelpsegError
from kelpseg.io.tiles import MISSING, read_label, read_tile
from kelpseg.synth import SynthConfig, SynthResult, generate_dataset
from kelpseg.synth.generator import CONFIG_NAME, METADATA_NAME, TRUTH_NAME
from kelpseg.synth.plan import make_plan
from kelpseg.synth.preview import plot_preview
from kelpseg.synth.scene import dn_to_reflectance

SMALL = SynthConfig(n_aoi=5, seed=11, tile_size=96, tiles_per_aoi=(2, 4), misaligned_share=0.2)
# Big enough for statistics; full-size tiles so kelp and coast scales are the real ones.
MEDIUM = SynthConfig(
    n_aoi=30,
    seed=3,
    tiles_per_aoi=(2, 3),
    misaligned_share=0.1,
    wrong_tile_rate=0.06,
    false_blob_rate=0.1,
    write_train_truth=True,
)


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> SynthResult:
    return generate_dataset(tmp_path_factory.mktemp("small"), SMALL, workers=1, show_progress=False)


@pytest.fixture(scope="module")
def medium(tmp_path_factory: pytest.TempPathFactory) -> SynthResult:
    return generate_dataset(
        tmp_path_factory.mktemp("medium"), MEDIUM, workers=2, show_progress=False
    )


def _files(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


def _image(result: SynthResult, row: Any) -> np.ndarray:
    path = result.out_dir / f"{row.split}_satellite" / f"{row.tile_id}_satellite.tif"
    return read_tile(path, expected_size=None).data


def _truth_mask(result: SynthResult, row: Any) -> np.ndarray:
    folder = "test_labels" if row.split == "test" else "train_labels_true"
    return read_label(result.out_dir / folder / f"{row.tile_id}_kelp.tif").astype(bool)


def test_same_seed_gives_identical_files_whatever_the_workers(
    small: SynthResult, tmp_path: Path
) -> None:
    again = generate_dataset(tmp_path / "again", SMALL, workers=2, show_progress=False)
    assert _files(again.out_dir) == _files(small.out_dir)


def test_different_seed_gives_different_tiles(small: SynthResult, tmp_path: Path) -> None:
    other = generate_dataset(
        tmp_path / "other", SMALL.model_copy(update={"seed": 12}), workers=1, show_progress=False
    )
    assert set(other.truth.tile_id) != set(small.truth.tile_id)
    a = _image(small, small.truth.iloc[0])
    b = _image(other, other.truth.iloc[0])
    assert not np.array_equal(a, b)


def test_layout_and_metadata_match_the_kelp_wanted_download(small: SynthResult) -> None:
    root = small.out_dir
    meta = pd.read_csv(root / METADATA_NAME)
    assert list(meta.columns) == ["filename", "type", "in_train", "tile_id"]
    assert set(meta.type) == {"satellite", "kelp"}
    truth = small.truth.set_index("tile_id")
    split_of = truth.split.to_dict()
    for filename, kind, in_train, tile_id in meta.itertuples(index=False):
        split = split_of[tile_id]
        assert in_train == (split == "train")
        folder = {"satellite": f"{split}_satellite", "kelp": "train_kelp"}[kind]
        assert (root / folder / str(filename)).is_file()
    on_disk = {
        p.name
        for d in ("train_satellite", "train_kelp", "test_satellite")
        for p in (root / d).iterdir()
    }
    assert on_disk == set(meta.filename)
    kelp_ids = set(meta[meta.type == "kelp"].tile_id)
    assert kelp_ids == set(truth.index[truth.split == "train"])
    test_ids = {p.name.removesuffix("_kelp.tif") for p in (root / "test_labels").iterdir()}
    assert test_ids == set(truth.index[truth.split == "test"])
    assert (root / TRUTH_NAME).is_file()
    assert all(re.fullmatch(r"[A-Z]{2}\d{3}", t) for t in truth.index)
    assert truth.index.is_unique


def test_tiles_and_labels_have_the_documented_shapes_and_values(small: SynthResult) -> None:
    size = SMALL.tile_size
    for row in small.truth.itertuples():
        data = _image(small, row)
        assert data.shape == (7, size, size) and data.dtype == np.int16
        assert set(np.unique(data[5])) <= {0, 1}
        spectral = data[:5]
        valid = spectral[spectral != MISSING]
        assert valid.min() > 0 and valid.max() <= 32767
        folder = "train_kelp" if row.split == "train" else "test_labels"
        label = read_label(small.out_dir / folder / f"{row.tile_id}_kelp.tif")
        assert label.shape == (size, size) and label.dtype == np.uint8


def test_saved_config_reloads_to_the_same_settings(small: SynthResult) -> None:
    assert load_config(SynthConfig, small.out_dir / CONFIG_NAME) == SMALL


def test_truth_table_records_every_tile(small: SynthResult) -> None:
    columns = {
        "tile_id", "split", "aoi", "date", "platform", "slc_off", "cloud_fraction",
        "kelp_pixels_true", "label_corruption", "mislabelled", "dem_shift_row", "dem_shift_col",
    }  # fmt: skip
    truth = pd.read_parquet(small.out_dir / TRUTH_NAME)
    assert columns <= set(truth.columns)
    assert len(truth) == sum(len(a.tiles) for a in make_plan(SMALL))
    assert set(truth.platform) <= {"L5", "L7", "L8", "L9"}
    assert (truth[truth.slc_off].platform == "L7").all()
    assert (truth[truth.slc_off].date > "2003-05-31").all()


def test_refuses_a_non_empty_folder_unless_overwrite(small: SynthResult, tmp_path: Path) -> None:
    out = tmp_path / "busy"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    with pytest.raises(KelpsegError, match="not empty"):
        generate_dataset(out, SMALL, workers=1, show_progress=False)
    generate_dataset(out, SMALL, workers=1, show_progress=False, overwrite=True)
    assert (out / "notes.txt").read_text() == "mine"
    assert (out / METADATA_NAME).is_file()


def test_bad_settings_are_rejected() -> None:
    with pytest.raises(ValueError, match="tiles_per_aoi"):
        SynthConfig(tiles_per_aoi=(5, 2))
    with pytest.raises(ValueError):
        SynthConfig(cloud_free_share=1.5)


def test_test_split_holds_whole_aois_and_aois_shared_with_train(medium: SynthResult) -> None:
    stats = medium.stats()
    assert 0.15 <= stats["test_tiles"] / stats["tiles"] <= 0.25
    assert stats["test_only_aois"] >= 1
    assert stats["test_tiles_in_shared_aois"] >= 1
    assert stats["tiles_per_aoi"] >= 2


def test_kelp_statistics_are_like_the_real_data(medium: SynthResult) -> None:
    stats = medium.stats()
    assert 0.004 <= stats["kelp_pixel_share"] <= 0.025
    assert stats["no_kelp_tile_share"] > 1 / 3
    assert stats["no_kelp_tile_share"] < 0.75


def test_clouds_stripes_and_dem_gaps_occur(medium: SynthResult) -> None:
    truth = medium.truth
    assert (truth.cloud_fraction > 0).mean() > 0.2
    striped = truth[truth.slc_off]
    assert len(striped) > 0
    for row in striped.itertuples():
        missing = (_image(medium, row)[:5] == MISSING).all(axis=0)
        assert 0.02 < missing.mean() < 0.6
        # Diagonal: the gaps move sideways from one row to the next, never whole rows.
        assert not missing.all(axis=1).any()
        first_gap = [int(np.argmax(r)) for r in missing if r.any()]
        assert len(set(first_gap)) > 5
    dems = [_image(medium, row)[6] for row in truth.head(40).itertuples()]
    assert any((d == MISSING).any() for d in dems)
    assert any((d > 0).any() for d in dems) and any((d == 0).any() for d in dems)


def test_dem_is_shared_by_an_aoi_except_recorded_shifts(medium: SynthResult) -> None:
    truth = medium.truth
    shifted = (truth.dem_shift_row != 0) | (truth.dem_shift_col != 0)
    assert shifted.sum() == round(MEDIUM.misaligned_share * len(truth))
    assert (np.maximum(truth.dem_shift_row.abs(), truth.dem_shift_col.abs())[shifted] >= 2).all()
    for _, group in truth.groupby("aoi"):
        aligned = group[~shifted.loc[group.index]]
        if aligned.empty:
            continue
        reference = _image(medium, aligned.iloc[0])[6]
        for _, row in group.iterrows():
            dem = _image(medium, row)[6]
            dy, dx = int(row.dem_shift_row), int(row.dem_shift_col)
            expected = np.roll(reference, (dy, dx), axis=(0, 1))
            m = 5  # np.roll wraps around; compare away from the edges
            assert np.array_equal(dem[m:-m, m:-m], expected[m:-m, m:-m])


def test_kelp_raises_ndvi_above_nearby_water(medium: SynthResult) -> None:
    kelp_ndvi, water_ndvi, red_drop = [], [], []
    for _, row in medium.truth[medium.truth.kelp_pixels_true > 50].iterrows():
        data = _image(medium, row)
        rho = dn_to_reflectance(data[:5])
        ndvi = (rho[1] - rho[2]) / (rho[1] + rho[2])
        kelp = _truth_mask(medium, row)
        clear = (data[5] == 0) & (data[6] <= 0)
        near = clear & ~kelp & ndimage.binary_dilation(kelp, iterations=10)
        kelp_ndvi.append(np.nanmean(ndvi[kelp & clear]))
        water_ndvi.append(np.nanmean(ndvi[near]))
        red_drop.append(np.nanmean(rho[2][near]) - np.nanmean(rho[2][kelp & clear]))
    assert len(kelp_ndvi) >= 10
    assert np.nanmean(kelp_ndvi) > np.nanmean(water_ndvi) + 0.2
    assert np.mean(np.array(kelp_ndvi) > np.array(water_ndvi)) > 0.9
    assert np.median(red_drop) > 0


def test_label_noise_is_recorded_and_only_in_train_labels(medium: SynthResult) -> None:
    truth = medium.truth
    assert (truth[truth.split == "test"].label_corruption == "none").all()
    train = truth[truth.split == "train"]
    assert {"missed", "wrong_tile"} <= {k for c in train.label_corruption for k in c.split("+")}
    assert train.mislabelled.any()
    for _, row in truth.iterrows():
        clean = _truth_mask(medium, row)
        assert clean.sum() == row.kelp_pixels_true
        if row.split == "test":
            continue
        label = read_label(medium.out_dir / "train_kelp" / f"{row.tile_id}_kelp.tif").astype(bool)
        assert label.sum() == row.label_kelp_pixels
        kinds = set(row.label_corruption.split("+"))
        if kinds == {"none"}:
            assert np.array_equal(label, clean)
        if kinds == {"missed"}:
            assert (label & ~clean).sum() == 0 and label.sum() < clean.sum()
        if kinds == {"false_blob"}:
            assert (clean & ~label).sum() == 0
    assert (train[train.label_corruption == "wrong_tile"].mislabelled).all()


def test_cli_writes_a_dataset_summary_and_preview(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    args = ["synth", "--out", str(out), "--n-aoi", "2", "--size", "64", "--workers", "1"]
    assert (
        main([*args, "--tiles-per-aoi", "2", "3", "--set", "slc_off_share=0.5", "--preview"]) == 0
    )
    assert (out / "preview.png").stat().st_size > 10_000
    assert load_config(SynthConfig, out / CONFIG_NAME).slc_off_share == 0.5
    assert main(args) == 2  # not empty
    assert main([*args, "--overwrite", "--set", "no_such_knob=1"]) == 2


def test_plot_preview_draws_the_requested_tiles(small: SynthResult, tmp_path: Path) -> None:
    png = plot_preview(small.out_dir, tmp_path / "p.png", n=4)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(KelpsegError):
        plot_preview(tmp_path, tmp_path / "none.png")


def test_plan_keeps_a_training_image_in_every_shared_aoi() -> None:
    plans = make_plan(SynthConfig(n_aoi=200, seed=5, tiles_per_aoi=(1, 6)))
    splits = [[t.split for t in aoi.tiles] for aoi in plans]
    n_tiles = sum(len(s) for s in splits)
    n_test = sum(s.count("test") for s in splits)
    assert abs(n_test - 0.2 * n_tiles) <= 1
    assert all("train" in s or set(s) == {"test"} for s in splits)
    assert any(set(s) == {"test"} for s in splits)
    assert any(set(s) == {"train", "test"} for s in splits)
    ids = [t.tile_id for aoi in plans for t in aoi.tiles]
    assert len(set(ids)) == len(ids)


def test_edge_settings_still_produce_a_dataset(tmp_path: Path) -> None:
    config = SynthConfig(
        n_aoi=2, tile_size=48, tiles_per_aoi=(1, 1), test_fraction=0.0, misaligned_shift_px=(1, 2)
    )
    result = generate_dataset(tmp_path / "edge", config, workers=1, show_progress=False)
    assert (result.truth.split == "train").all()
    assert len(pd.read_csv(tmp_path / "edge" / METADATA_NAME)) == 4
