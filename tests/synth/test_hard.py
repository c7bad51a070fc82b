"""Hard mode and integer encodings of the demo data generator."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
from scipy import ndimage

from kelpseg.io.tiles import read_label, read_tile
from kelpseg.synth import SynthConfig, SynthResult, generate_dataset
from kelpseg.synth.config import HARD_MODE
from kelpseg.synth.generator import CONFIG_NAME
from kelpseg.synth.kelp import hard_canopy, kelp_density, outline_error
from kelpseg.synth.scene import dn_to_reflectance
from kelpseg.synth.terrain import make_terrain

TINY = SynthConfig(
    n_aoi=4, seed=5, tile_size=64, tiles_per_aoi=(2, 3), misaligned_share=0.2,
    write_train_truth=True,
)  # fmt: skip
# sha256 of every file but synth_config.yaml (path, then bytes, in sorted path order) of
# generate_dataset(TINY) made by main at f8f960e, before hard mode and encodings existed:
# PYTHONPATH=/work/main/src python -c "..." (the loop in _checksum below). New SynthConfig fields
# add keys to synth_config.yaml, so that one file is left out.
TINY_SHA256 = "6e19605e560acedd26c38a7b00ad33c08586fcc790b5c681fab8be65e6295ca1"
HARD = SynthConfig(
    n_aoi=8, seed=4, tiles_per_aoi=(2, 3), hard=True, wrong_bed_rate=0.4, write_train_truth=True
)


def _checksum(root: Path) -> str:
    h = hashlib.sha256()
    for path in sorted(root.rglob("*")):
        if path.is_file() and path.name != CONFIG_NAME:
            h.update(str(path.relative_to(root)).encode())
            h.update(path.read_bytes())
    return h.hexdigest()


@pytest.fixture(scope="module")
def hard(tmp_path_factory: pytest.TempPathFactory) -> SynthResult:
    return generate_dataset(tmp_path_factory.mktemp("hard"), HARD, workers=2, show_progress=False)


def _mask(result: SynthResult, folder: str, tile_id: str) -> np.ndarray:
    return read_label(result.out_dir / folder / f"{tile_id}_kelp.tif").astype(bool)


def _label_and_truth(result: SynthResult, split: str, tile_id: str) -> tuple[np.ndarray, ...]:
    if split == "test":
        return _mask(result, "test_labels", tile_id), _mask(result, "test_kelp_clean", tile_id)
    return _mask(result, "train_kelp", tile_id), _mask(result, "train_labels_true", tile_id)


def test_default_output_is_byte_identical_to_before_hard_mode(tmp_path: Path) -> None:
    generate_dataset(tmp_path, TINY, workers=1, show_progress=False)
    assert _checksum(tmp_path) == TINY_SHA256


def test_hard_flag_fills_unset_fields_and_keeps_explicit_ones() -> None:
    assert HARD.fringe_share == HARD_MODE["fringe_share"] > 0
    assert HARD.noisy_test_labels is True
    assert HARD.wrong_bed_rate == 0.4
    assert SynthConfig().outline_error_rate == 0.0


def test_clean_test_copy_equals_the_truth_and_test_labels_are_noisy(
    hard: SynthResult, tmp_path: Path
) -> None:
    clean_run = generate_dataset(
        tmp_path, HARD.model_copy(update={"noisy_test_labels": False}), show_progress=False
    )
    test = hard.truth[hard.truth.split == "test"]
    assert len(test) > 0
    differ = 0
    for tile_id in test.tile_id:
        clean = _mask(hard, "test_kelp_clean", tile_id)
        assert np.array_equal(clean, _mask(clean_run, "test_labels", tile_id))
        differ += not np.array_equal(clean, _mask(hard, "test_labels", tile_id))
    assert differ > 0
    assert (test.label_corruption != "none").sum() == differ


def test_outlines_are_drawn_one_pixel_loose_or_tight(hard: SynthResult) -> None:
    seen = set()
    for tile in hard.truth.itertuples():
        if tile.label_corruption not in ("loose", "tight"):
            continue
        label, truth = _label_and_truth(hard, tile.split, tile.tile_id)
        if tile.label_corruption == "loose":
            assert (label >= truth).all() and label.sum() > truth.sum()
            assert (label <= ndimage.binary_dilation(truth)).all()
        else:
            assert (label <= truth).all() and label.sum() < truth.sum()
            assert (label >= ndimage.binary_erosion(truth)).all()
        seen.add(tile.label_corruption)
    assert seen == {"loose", "tight"}


def test_tight_outline_keeps_beds_too_thin_to_shrink() -> None:
    label = np.zeros((20, 20), bool)
    label[2:8, 2:8] = True  # a bed that survives erosion
    label[12, 2:15] = True  # a one-pixel fringe
    water = np.ones_like(label)
    for seed in range(20):
        out, kind = outline_error(np.random.default_rng(seed), label, water)
        if kind == "tight":
            assert out[12, 2:15].all() and not out[2, 2:8].any() and out[3:7, 3:7].all()
        else:
            assert out.sum() == ndimage.binary_dilation(label).sum()


def test_wrong_beds_sit_beside_real_kelp_and_are_flagged(hard: SynthResult) -> None:
    wrong = hard.truth[hard.truth.label_corruption.str.contains("wrong_bed")]
    assert len(wrong) > 0 and wrong.mislabelled.all()
    for tile in wrong.itertuples():
        assert tile.kelp_pixels_true >= 20
        label, truth = _label_and_truth(hard, tile.split, tile.tile_id)
        extra, n = ndimage.label(label & ~ndimage.binary_dilation(truth, iterations=2))
        assert n > 0 and np.bincount(extra.ravel())[1:].max() >= 80


def test_hard_canopy_makes_thin_fringes_and_sparse_beds() -> None:
    terrain = make_terrain(np.random.default_rng(4), 200, 0.0, 0.0, 1.0)
    density = kelp_density(np.random.default_rng(1), terrain, 0.0, 2.0)
    beds = density > 0
    assert beds.sum() > 200
    fringe, kind = hard_canopy(np.random.default_rng(0), terrain, density, 1.0, 0.0)
    assert kind == "fringe"
    assert (terrain.sea_dist[fringe > 0] <= 3.5).all() and (fringe > 0).sum() < beds.sum()
    sparse, kind = hard_canopy(np.random.default_rng(0), terrain, density, 0.0, 1.0)
    assert kind == "sparse"
    kept = (sparse > 0).sum() / beds.sum()
    assert 0.25 <= kept <= 0.65 and ((sparse > 0) <= beds).all()
    assert sparse[sparse > 0].max() <= 0.5 * density.max() + 1e-6
    same, kind = hard_canopy(np.random.default_rng(0), terrain, density, 0.0, 0.0)
    assert kind == "normal" and np.array_equal(same, density)


def test_hard_mode_records_the_canopy_of_each_tile(hard: SynthResult) -> None:
    assert {"fringe", "sparse"} <= set("+".join(hard.truth.canopy).split("+"))


@pytest.mark.parametrize("encoding", ["x10000", "s2l2a"])
def test_encodings_store_the_same_reflectance(encoding: str, tmp_path: Path) -> None:
    config = TINY.model_copy(update={"n_aoi": 2})
    base = generate_dataset(tmp_path / "c2", config, workers=1, show_progress=False)
    other = generate_dataset(
        tmp_path / encoding,
        config.model_copy(update={"encoding": encoding}),
        workers=1,
        show_progress=False,
    )
    row = base.truth.iloc[0]
    name = f"{row.split}_satellite/{row.tile_id}_satellite.tif"
    a = read_tile(base.out_dir / name, expected_size=None).data
    b = read_tile(other.out_dir / name, expected_size=None).data
    assert not np.array_equal(a[:5], b[:5]) and np.array_equal(a[5:], b[5:])
    rho_a, rho_b = dn_to_reflectance(a[:5]), dn_to_reflectance(b[:5], encoding)
    clear = np.isfinite(rho_a) & (a[:5] > 1) & (a[:5] < 32767)
    assert np.nanmax(np.abs(rho_a - rho_b)[clear]) <= 1e-4
