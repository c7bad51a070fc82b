"""``kelpseg predict`` and ``export`` of models that read a stored channel (``data.stacked``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml

from kelpseg.cli.app import main
from kelpseg.errors import KelpsegError
from kelpseg.inference import PredictionDir
from kelpseg.inference.loading import load_model
from kelpseg.inference.runner import Predictor
from kelpseg.io.tiles import write_tile
from kelpseg.nn.data.stacked import SCALE, TILES_DIR
from tests.conftest import make_tile_array
from tests.inference.test_predict import save_checkpoint, tiny_module

SIZE = 32
TILE_IDS = ["TE001", "TE002", "TE003"]


def write_planes(folder: Path, value: float | None, seed: int = 0) -> Path:
    """A stored channel folder: ``value`` everywhere, or random probabilities (None)."""
    rng = np.random.default_rng(seed)
    (folder / TILES_DIR).mkdir(parents=True, exist_ok=True)
    for tile_id in TILE_IDS:
        plane = rng.random((SIZE, SIZE)) if value is None else np.full((SIZE, SIZE), value)
        np.save(folder / TILES_DIR / f"{tile_id}.npy", plane.astype(np.float16))
    return folder


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Three tiles, a training-time channel folder, and a model trained to read it."""
    root = tmp_path_factory.mktemp("stacked-predict")
    for i, tile_id in enumerate(TILE_IDS):
        write_tile(root / "tiles" / f"{tile_id}_satellite.tif", make_tile_array(SIZE, seed=i))
    train_dir = write_planes(root / "treeprob", None)
    module = tiny_module(data={"stacked": {"TREEPROB": str(train_dir)}}, seed=4)
    return {
        "tiles": root / "tiles",
        "treeprob": train_dir,
        "ckpt": save_checkpoint(module, root / "stacked.ckpt"),
        "plain": save_checkpoint(tiny_module(seed=5), root / "plain.ckpt"),
    }


def predict_args(setup: dict[str, Path], out: Path, *extra: str) -> list[str]:
    tiles = ["predict", "--tiles", str(setup["tiles"]), "--out", str(out)]
    return [*tiles, "-m", str(setup["ckpt"]), "--soft", "--device", "cpu", "--num-workers",
            "0", "--quiet", *extra]  # fmt: skip


def stacked_batch(folder: Path) -> np.ndarray:
    """(N, 8, H, W): the tiles' bands and the stored plane, as the reader builds them."""
    raw = np.stack([make_tile_array(SIZE, seed=i) for i in range(len(TILE_IDS))])
    planes = [np.load(folder / TILES_DIR / f"{t}.npy").astype(np.float32) for t in TILE_IDS]
    stored = np.rint(np.stack(planes) * SCALE).astype(np.int16)[:, None]
    return np.concatenate([raw, stored], axis=1)


def test_predict_reads_each_tiles_stored_plane(setup: dict[str, Path], tmp_path: Path) -> None:
    assert main(predict_args(setup, tmp_path / "a")) == 0
    first = PredictionDir(tmp_path / "a", "prob")
    # What was written is the network's answer to the bands plus the training-time plane.
    expected = Predictor([load_model(setup["ckpt"])], device="cpu").predict_batch(
        stacked_batch(setup["treeprob"])
    )
    for i, tile_id in enumerate(TILE_IDS):
        np.testing.assert_allclose(first[tile_id], expected[i], atol=1e-6)
    saved = yaml.safe_load((tmp_path / "a" / "predict_config.yaml").read_text())
    assert saved["stacked"] == {"TREEPROB": str(setup["treeprob"])}

    # A test-time folder of other values changes the probabilities: the plane is really used.
    other = write_planes(tmp_path / "test-treeprob", 1.0)
    assert main(predict_args(setup, tmp_path / "b", "--stacked", f"TREEPROB={other}")) == 0
    second = PredictionDir(tmp_path / "b", "prob")
    for tile_id in TILE_IDS:
        assert np.abs(first[tile_id] - second[tile_id]).max() > 1e-3
    saved = yaml.safe_load((tmp_path / "b" / "predict_config.yaml").read_text())
    assert saved["stacked"] == {"TREEPROB": str(other)}


def test_a_missing_plane_fails_in_one_line_naming_channel_and_tile(
    setup: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    partial = write_planes(tmp_path / "partial", 0.5)
    (partial / TILES_DIR / "TE002.npy").unlink()
    assert main(predict_args(setup, tmp_path / "out", "--stacked", f"TREEPROB={partial}")) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "no stacked TREEPROB for tile TE002" in err and "Traceback" not in err
    assert main(predict_args(setup, tmp_path / "out", "--stacked", f"NOPE={partial}")) == 2
    assert "no model reads the stored channel(s) NOPE (they read: TREEPROB)" in " ".join(
        capsys.readouterr().err.split()
    )


def test_an_ensemble_gives_each_member_its_own_planes(setup: dict[str, Path]) -> None:
    stacked, plain = load_model(setup["ckpt"]), load_model(setup["plain"])
    batch = stacked_batch(setup["treeprob"])
    both = Predictor([stacked, plain], [3.0, 1.0], device="cpu").predict_batch(batch)
    alone = Predictor([load_model(setup["ckpt"])], device="cpu").predict_batch(batch)
    bands_only = Predictor([load_model(setup["plain"])], device="cpu").predict_batch(batch[:, :7])
    np.testing.assert_allclose(both, 0.75 * alone + 0.25 * bands_only, atol=1e-6)
    with pytest.raises(KelpsegError, match=r"\(N, 8, H, W\): the bands \+ stored TREEPROB"):
        Predictor([stacked], device="cpu").predict_batch(batch[:, :7])


def test_export_refuses_a_model_reading_a_stored_channel(
    setup: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["export", "-m", str(setup["ckpt"]), "--name", "s", "--version", "1", "--out"]
    assert main([*args, str(tmp_path / "pkg")]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "reads the stored channel(s) TREEPROB" in err and str(setup["ckpt"]) in err
    assert not (tmp_path / "pkg").exists()
