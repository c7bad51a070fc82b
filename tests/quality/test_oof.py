"""``kelpseg labels oof``: each fold's tiles predicted by the model that held the fold out."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from kelpseg.cli.app import main
from kelpseg.errors import KelpsegError
from kelpseg.quality.oof import RECORD_NAME, fold_models, predict_out_of_fold
from tests.nn.conftest import split_catalog, split_catalog_path, synth_root  # noqa: F401
from tests.nn.model_fixtures import band_stats_path, tiny_config  # noqa: F401


def test_fold_models_reads_the_train_cv_layout(tmp_path: Path) -> None:
    for name in ("fold-1", "fold-0", "fold-10", "folder-2", "notes"):
        (tmp_path / "run" / name).mkdir(parents=True)
    (tmp_path / "run" / "fold-3").write_text("a file, not a run folder")
    assert fold_models(tmp_path / "run") == {
        0: tmp_path / "run" / "fold-0",
        1: tmp_path / "run" / "fold-1",
        10: tmp_path / "run" / "fold-10",
    }
    with pytest.raises(KelpsegError, match="no fold-K folders"):
        fold_models(tmp_path / "run" / "notes")
    with pytest.raises(KelpsegError, match="does not exist"):
        fold_models(tmp_path / "missing")


@pytest.fixture(scope="module")
def cv_run(
    tmp_path_factory: pytest.TempPathFactory,
    split_catalog_path: Path,  # noqa: F811
    band_stats_path: Path,  # noqa: F811
) -> Path:
    """A two-fold train-cv run of the tiny config (folds 0 and 1)."""
    from kelpseg.nn.cv import train_cv

    out = tmp_path_factory.mktemp("oof") / "cv"
    train_cv(tiny_config(split_catalog_path, band_stats_path, out), folds=[0, 1])
    return out


@pytest.mark.slow
def test_each_fold_is_predicted_by_the_model_that_held_it_out(
    cv_run: Path,
    split_catalog_path: Path,  # noqa: F811
    tmp_path: Path,
) -> None:
    from kelpseg.inference.predict import load_predictor
    from kelpseg.inference.rasters import as_source
    from kelpseg.io.tiles import read_tile

    out = tmp_path / "oof"
    done = predict_out_of_fold(cv_run, split_catalog_path, out, device="cpu", show_progress=False)
    catalog = pd.read_parquet(split_catalog_path)
    train = catalog[catalog["split"] == "train"]
    expected = set(train.loc[train["fold"].isin([0, 1]), "tile_id"])
    source = as_source(out, "prob")
    assert set(source) == expected  # fold 2 has no model; the hold-out tile (-1) is never seen
    assert [(d.fold, d.tiles, d.predicted) for d in done] == [
        (k, int((train["fold"] == k).sum()), int((train["fold"] == k).sum())) for k in (0, 1)
    ]
    record = yaml.safe_load((out / RECORD_NAME).read_text())
    assert record == {0: str(cv_run / "fold-0"), 1: str(cv_run / "fold-1")}

    row = train[train["fold"] == 1].iloc[0]
    image = read_tile(row["image_path"], expected_size=None, allow_all_missing=True).data
    own, other = (
        load_predictor([str(cv_run / f"fold-{k}")], device="cpu").predict_batch(image[None])[0]
        for k in (1, 0)
    )
    written = source[str(row["tile_id"])]
    np.testing.assert_allclose(written, own, atol=1e-5)
    assert np.abs(written - other).max() > 1e-3  # the other fold's model differs

    again = predict_out_of_fold(cv_run, split_catalog_path, out, folds=[1], show_progress=False)
    assert again[0].predicted == 0  # a re-run skips tiles already written


@pytest.mark.slow
def test_cli_oof_and_its_errors(
    cv_run: Path,
    split_catalog_path: Path,  # noqa: F811
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    out = tmp_path / "oof"
    argv = ["labels", "oof", str(cv_run), "--data", str(split_catalog_path), "--out", str(out)]
    assert main([*argv, "--folds", "0", "--device", "cpu", "--quiet"]) == 0
    assert "out-of-fold" in capsys.readouterr().out
    assert yaml.safe_load((out / RECORD_NAME).read_text()) == {0: str(cv_run / "fold-0")}
    for extra, fault in ((["--folds", "0,x"], "folds must be integers"),
                         (["--folds", "5"], "no model for fold(s) [5]")):  # fmt: skip
        assert main([*argv, *extra, "--quiet"]) == 2
        err = capsys.readouterr().err
        assert fault in err and "Traceback" not in err
    bad = ["labels", "oof", str(tmp_path / "nope"), "--data", str(split_catalog_path)]
    assert main([*bad, "--out", str(out)]) == 2
    assert "cross-validation run folder does not exist" in capsys.readouterr().err
