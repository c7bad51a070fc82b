"""Models refuse inputs in another integer encoding than they trained on (issue 24, item 4)."""

from __future__ import annotations

from pathlib import Path

import pytest

from kelpseg.errors import KelpsegError
from kelpseg.export.package import export_model
from kelpseg.inference.predict import load_predictor, predict_tiles
from kelpseg.io.catalog import build_catalog
from kelpseg.synth import SynthConfig, generate_dataset
from tests.inference.test_predict import save_checkpoint, tiny_module


@pytest.fixture(scope="module")
def encoded(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The same small generated dataset in the Collection 2 and the x 10,000 encodings."""
    root = tmp_path_factory.mktemp("encodings")
    out = {}
    for name in ("c2l2", "x10000"):
        config = SynthConfig(n_aoi=2, tiles_per_aoi=(2, 2), seed=5, encoding=name)
        generate_dataset(root / name, config, workers=1, show_progress=False)
        out[name] = root / name
    return out


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny model that trained (so its checkpoint says) on Collection 2 tiles."""
    module = tiny_module()
    module.input_encoding = "c2l2"
    return save_checkpoint(module, tmp_path_factory.mktemp("model") / "c2.ckpt")


def test_a_model_trained_on_collection_2_refuses_x10000_tiles_before_writing(
    encoded: dict[str, Path], checkpoint: Path, tmp_path: Path
) -> None:
    predictor = load_predictor([checkpoint], device="cpu")
    assert predictor.input_encoding == "c2l2"
    done = predict_tiles(predictor, encoded["c2l2"], tmp_path / "ok", show_progress=False)
    assert done.written == len(build_catalog(encoded["c2l2"]).tiles)
    with pytest.raises(KelpsegError, match="reflectance x 10,000 .*pass --ignore-encoding") as err:
        predict_tiles(predictor, encoded["x10000"], tmp_path / "no", show_progress=False)
    assert "\n" not in str(err.value)
    assert not list((tmp_path / "no").glob("*_kelp.tif"))


def test_forced_it_predicts_with_one_warning(
    encoded: dict[str, Path], checkpoint: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    predictor = load_predictor([checkpoint], device="cpu")
    done = predict_tiles(
        predictor, encoded["x10000"], tmp_path / "forced", show_progress=False, ignore_encoding=True,
        batch_size=2,
    )  # fmt: skip
    assert done.written == len(build_catalog(encoded["x10000"]).tiles)
    err = " ".join(capsys.readouterr().err.split())  # rich wraps long lines
    assert err.count("warning:") == 1 and "(--ignore-encoding: going on)" in err


def test_the_package_carries_the_encoding_and_refuses_the_same(
    encoded: dict[str, Path], checkpoint: Path, tmp_path: Path
) -> None:
    package = export_model([checkpoint], None, "c2", "1.0", tmp_path / "pkg")
    predictor = load_predictor([package], device="cpu")
    assert predictor.input_encoding == "c2l2"
    with pytest.raises(KelpsegError, match="reflectance x 10,000"):
        predict_tiles(predictor, encoded["x10000"], tmp_path / "no", show_progress=False)
    older = tiny_module()  # a checkpoint from before encodings were recorded: no check
    unknown = load_predictor([save_checkpoint(older, tmp_path / "old.ckpt")], device="cpu")
    assert unknown.input_encoding is None
    predict_tiles(unknown, encoded["x10000"], tmp_path / "old", show_progress=False)
