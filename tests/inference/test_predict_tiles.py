"""Predicting a set of tiles into a folder: outputs, skipping, interruption, sources, CLI."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml

from kelpseg.cli import app as cli_app
from kelpseg.cli import predict as predict_cmds
from kelpseg.errors import KelpsegError
from kelpseg.inference.postprocess import PostprocessConfig
from kelpseg.inference.predict import (
    CONFIG_NAME,
    Predictor,
    load_predictor,
    predict_tiles,
    resolve_tiles,
)
from kelpseg.inference.rasters import binarize, read_prediction
from kelpseg.io import tiles as tiles_io
from kelpseg.io.tiles import read_label, write_tile
from tests.conftest import make_tile_array
from tests.inference.test_predict import constant_module, save_checkpoint, tiny_module

SIZE = 32
IDS = [f"T{i:03d}" for i in range(5)]


@pytest.fixture(scope="module")
def tile_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A flat folder of five 32 px tiles with land on the left."""
    root = tmp_path_factory.mktemp("tiles")
    for i, tile_id in enumerate(IDS):
        write_tile(root / f"{tile_id}_satellite.tif", make_tile_array(SIZE, seed=i, land_cols=6))
    return root


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_checkpoint(tiny_module(), tmp_path_factory.mktemp("model") / "tiny.ckpt")


@pytest.fixture(scope="module")
def predictor(ckpt: Path) -> Predictor:
    return load_predictor([ckpt], device="cpu", threshold=0.5)


def _reference(predictor: Predictor, tile_dir: Path, batch_size: int) -> dict[str, np.ndarray]:
    """Batch predictions of the tiles, batched as ``predict_tiles`` batches them.

    (The same batches, since a CPU convolution's rounding may depend on the batch size.)
    """
    paths = [tile_dir / f"{t}_satellite.tif" for t in IDS]
    raw = np.stack([tiles_io.read_tile(p, expected_size=None).data for p in paths])
    chunks = [raw[i : i + batch_size] for i in range(0, len(raw), batch_size)]
    probs = np.concatenate([predictor.predict_batch(chunk) for chunk in chunks])
    return dict(zip(IDS, probs, strict=True))


def _outputs(folder: Path) -> set[str]:
    return {p.name for p in folder.iterdir()}


def test_writes_masks_and_probabilities_equal_to_batch_predictions(
    predictor: Predictor, tile_dir: Path, tmp_path: Path
) -> None:
    out = tmp_path / "preds"
    summary = predict_tiles(
        predictor, tile_dir, out, soft=True, batch_size=2, num_workers=2, show_progress=False
    )
    assert (summary.tiles, summary.written, summary.skipped) == (5, 5, 0)
    reference = _reference(predictor, tile_dir, 2)
    for tile_id, prob in reference.items():
        assert np.array_equal(read_prediction(out / f"{tile_id}_prob.tif"), prob)
        mask = read_label(out / f"{tile_id}_kelp.tif")
        assert np.array_equal(mask, binarize(prob, predictor.threshold))
    assert len(_outputs(out)) == 10


def test_rerun_skips_written_tiles_and_overwrite_rewrites_them(
    predictor: Predictor, tile_dir: Path, tmp_path: Path
) -> None:
    out = tmp_path / "preds"
    predict_tiles(predictor, tile_dir, out, batch_size=2, num_workers=0, show_progress=False)
    (out / "T001_kelp.tif").unlink()
    again = predict_tiles(predictor, tile_dir, out, num_workers=0, show_progress=False)
    assert (again.written, again.skipped) == (1, 4) and (out / "T001_kelp.tif").is_file()
    soft = predict_tiles(predictor, tile_dir, out, soft=True, num_workers=0, show_progress=False)
    assert (soft.written, soft.skipped) == (5, 0)  # no probabilities yet: every tile redone
    before = {t: (out / f"{t}_kelp.tif").stat().st_mtime_ns for t in IDS}
    redo = predict_tiles(
        predictor, tile_dir, out, overwrite=True, num_workers=0, show_progress=False
    )
    assert (redo.written, redo.skipped) == (5, 0)
    assert all((out / f"{t}_kelp.tif").stat().st_mtime_ns > before[t] for t in IDS)


class _Interrupting:
    """A predictor that is interrupted (Ctrl-C) when asked for its ``stop_at``-th batch."""

    def __init__(self, inner: Predictor, stop_at: int) -> None:
        self.inner, self.stop_at, self.calls = inner, stop_at, 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def launch(self, raw: Any) -> Any:
        self.calls += 1
        if self.calls == self.stop_at:
            raise KeyboardInterrupt
        return self.inner.launch(raw)


def test_an_interrupted_run_leaves_only_complete_files_and_resumes(
    predictor: Predictor, tile_dir: Path, tmp_path: Path
) -> None:
    out = tmp_path / "preds"
    flaky: Any = _Interrupting(predictor, stop_at=3)
    with pytest.raises(KeyboardInterrupt):
        predict_tiles(flaky, tile_dir, out, soft=True, batch_size=2, show_progress=False)
    reference = _reference(predictor, tile_dir, 2)
    done = sorted(p.name[:4] for p in out.glob("*_kelp.tif"))
    assert done == ["T000", "T001"]  # batch 1 written while batch 2 was computed
    assert _outputs(out) == {f"{t}_{kind}.tif" for t in done for kind in ("kelp", "prob")}
    for tile_id in done:
        assert np.array_equal(read_prediction(out / f"{tile_id}_prob.tif"), reference[tile_id])
    resumed = predict_tiles(predictor, tile_dir, out, soft=True, show_progress=False)
    assert (resumed.written, resumed.skipped) == (3, 2)


def test_a_write_interrupted_midway_leaves_no_file(
    predictor: Predictor, tile_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_open = tiles_io.rasterio.open

    @contextmanager
    def dying_open(path: Any, mode: str = "r", **kwargs: Any) -> Iterator[Any]:
        with real_open(path, mode, **kwargs) as dst:
            if mode == "w" and "T002_kelp" in str(path):
                raise KeyboardInterrupt  # the temporary file exists, half made
            yield dst

    monkeypatch.setattr(tiles_io.rasterio, "open", dying_open)
    out = tmp_path / "preds"
    with pytest.raises(KeyboardInterrupt):
        predict_tiles(predictor, tile_dir, out, batch_size=5, num_workers=0, show_progress=False)
    assert "T002_kelp.tif" not in _outputs(out)
    assert not [name for name in _outputs(out) if name.endswith(".tmp")]


def test_postprocessing_changes_masks_and_leaves_probabilities_raw(
    tile_dir: Path, tmp_path: Path
) -> None:
    kelp_everywhere = load_predictor(
        [save_checkpoint(constant_module(0.9), tmp_path / "c.ckpt")], device="cpu"
    )
    steps = PostprocessConfig.model_validate({"steps": [{"name": "land_mask"}]})
    out = tmp_path / "preds"
    predict_tiles(kelp_everywhere, tile_dir, out, soft=True, postprocess=steps, show_progress=False)
    mask = read_label(out / "T000_kelp.tif")
    assert mask[:, :6].sum() == 0 and mask[:, 6:].all()  # land columns (DEM 20) removed
    np.testing.assert_allclose(read_prediction(out / "T000_prob.tif"), 0.9, atol=1e-6)


def test_tiles_come_from_folders_catalogs_tables_and_lists(tile_dir: Path, tmp_path: Path) -> None:
    from_dir = resolve_tiles(tile_dir)
    assert list(from_dir["tile_id"]) == IDS
    paths = [tile_dir / f"{t}_satellite.tif" for t in IDS[:2]]
    assert list(resolve_tiles(paths)["tile_id"]) == IDS[:2]
    table = pd.DataFrame({"image_path": [str(p) for p in paths], "split": ["test", "train"]})
    assert list(resolve_tiles(table, split="test")["tile_id"]) == ["T000"]
    catalog = tmp_path / "catalog.parquet"
    frame = from_dir.assign(split=["train", "test", "test", "train", "test"], mask_path="")
    frame.to_parquet(catalog)
    assert list(resolve_tiles(catalog, split="test")["tile_id"]) == ["T001", "T002", "T004"]
    (tmp_path / "empty").mkdir()
    with pytest.raises(KelpsegError, match="no \\*_satellite.tif tiles found"):
        resolve_tiles(tmp_path / "empty")
    with pytest.raises(KelpsegError, match="no tiles of split 'val'"):
        resolve_tiles(catalog, split="val")
    with pytest.raises(KelpsegError, match="does not exist"):
        resolve_tiles(tmp_path / "missing")
    with pytest.raises(KelpsegError, match="appears twice"):
        resolve_tiles([*paths, paths[0]])


def test_an_unreadable_tile_is_a_one_line_error_naming_it(
    predictor: Predictor, tile_dir: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "tiles"
    folder.mkdir()
    for name in ("T000_satellite.tif", "T001_satellite.tif"):
        (folder / name).write_bytes((tile_dir / name).read_bytes())
    (folder / "T002_satellite.tif").write_bytes(b"not a tiff")
    with pytest.raises(KelpsegError) as err:
        predict_tiles(predictor, folder, tmp_path / "out", num_workers=1, show_progress=False)
    assert err.value.path == str(folder / "T002_satellite.tif")
    assert "\n" not in str(err.value)


def _cli(monkeypatch: pytest.MonkeyPatch, args: list[str]) -> int:
    commands = list(cli_app.app.registered_commands)
    monkeypatch.setattr(cli_app.app, "registered_commands", commands)
    if not any(c.name == "predict" for c in commands):
        cli_app.app.command("predict")(predict_cmds.predict)
    return cli_app.main(args)


def test_cli_predicts_an_ensemble_and_saves_the_resolved_config(
    ckpt: Path, tile_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "preds"
    args = ["predict", "--model", str(ckpt), "-m", str(ckpt), "--weights", "1,3"]
    args += ["--tiles", str(tile_dir), "--out", str(out), "--soft", "--threshold", "0.45"]
    args += ["--tta", "--tta-transforms", "identity,hflip", "--device", "cpu", "--quiet"]
    assert _cli(monkeypatch, args) == 0
    assert {p.name for p in out.glob("*_kelp.tif")} == {f"{t}_kelp.tif" for t in IDS}
    saved = yaml.safe_load((out / CONFIG_NAME).read_text())
    assert saved["weights"] == [0.25, 0.75] and saved["threshold"] == 0.45
    assert saved["tta"] == {"enabled": True, "transforms": ["identity", "hflip"], "merge": "mean"}


def test_cli_faults_exit_2_with_one_line(
    ckpt: Path, tile_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    base = ["predict", "--tiles", str(tile_dir), "--out", str(tmp_path / "o"), "--quiet"]
    assert _cli(monkeypatch, [*base, "-m", str(ckpt), "-m", str(ckpt), "--weights", "1,2,3"]) == 2
    assert "3 weights for 2 models" in capsys.readouterr().err
    assert _cli(monkeypatch, base) == 2
    assert "at least one --model" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    empty = ["predict", "-m", str(ckpt), "--tiles", str(tmp_path / "empty"), "--out", "o"]
    assert _cli(monkeypatch, empty) == 2
    err = capsys.readouterr().err
    assert "no *_satellite.tif tiles found" in err and "Traceback" not in err
