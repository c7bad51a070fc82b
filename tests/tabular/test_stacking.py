"""The stored out-of-fold tree channel: routing, provenance, leak check and resume."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from kelpseg.errors import KelpsegError
from kelpseg.nn.data.stacked import SCALE, StackedChannels
from kelpseg.tabular import load_model, predict_tiles, train_tabular
from kelpseg.tabular.predict import read_batches
from kelpseg.tabular.stacking import (
    PROVENANCE_FILE,
    check_out_of_fold,
    read_stacked_tile,
    write_stacking_channel,
)
from tests.tabular.conftest import N_FOLDS, small_config


@pytest.fixture(scope="module")
def stack_models(crafted_pixels: Path, tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """One xgboost model per held-out fold and one trained on every fold."""
    root = tmp_path_factory.mktemp("stack-models")
    folds = [*range(N_FOLDS), None]
    for fold in folds:
        config = small_config(early_stopping_rounds=0)
        train_tabular(crafted_pixels, config, fold, root / f"f{fold}", track=False,
                      show_progress=False)  # fmt: skip
    return [root / f"f{fold}" for fold in folds]


def test_every_training_tile_gets_the_model_that_never_saw_it(
    tmp_path: Path, crafted_catalog: pd.DataFrame, crafted_pixels: Path, stack_models: list[Path]
) -> None:
    out = tmp_path / "treeprob"
    result = write_stacking_channel(stack_models, crafted_catalog, out, show_progress=False)

    assert result.written == len(crafted_catalog) and result.skipped == 0
    prov = check_out_of_fold(out, crafted_pixels)  # tile-level proof from the models' own data
    assert not prov["trained_on_tile"].any()
    train = prov[prov["split"] == "train"]
    assert (train["model_holdout_fold"] == train["fold"]).all()
    assert (prov.loc[prov["split"] == "test", "model_holdout_fold"] == -1).all()
    # The stored values are the answering model's own predictions (float16).
    models = {str(p.resolve()): load_model(p) for p in stack_models}
    for ids, raw in read_batches(crafted_catalog, 16):
        for tile_id, tile in zip(ids, raw, strict=True):
            model = models[prov.set_index("tile_id").loc[tile_id, "model_dir"]]
            expected = predict_tiles(model, tile[None])[0]
            stored = read_stacked_tile(out, tile_id)
            assert stored.dtype == np.float16
            np.testing.assert_allclose(stored, expected, atol=1e-3)

    # What the networks read (data.stacked) is what was stored, to the 1e-4 of its int16 plane.
    plane = np.empty((1, *stored.shape), np.int16)
    StackedChannels({"TREEPROB": out}).read(tile_id, None, plane)
    np.testing.assert_allclose(plane[0] / SCALE, stored.astype(np.float32), atol=1e-4)

    again = write_stacking_channel(stack_models, crafted_catalog, out, show_progress=False)
    assert again.written == 0 and again.skipped == len(crafted_catalog)


def test_an_in_sample_tree_channel_is_caught(
    tmp_path: Path, crafted_catalog: pd.DataFrame, crafted_pixels: Path, stack_models: list[Path]
) -> None:
    out = tmp_path / "treeprob"
    write_stacking_channel(stack_models, crafted_catalog, out, show_progress=False)
    # The 1st place's set-up: the all-folds model answers for a training tile.
    prov = pd.read_parquet(out / PROVENANCE_FILE)
    tile = prov.index[prov["split"] == "train"][0]
    prov.loc[tile, "model_dir"] = str(stack_models[-1].resolve())
    prov.to_parquet(out / PROVENANCE_FILE)
    with pytest.raises(KelpsegError, match="1 training tile"):
        check_out_of_fold(out, crafted_pixels)
    with pytest.raises(KelpsegError, match="1 training tile"):
        check_out_of_fold(out)  # the fold-level check catches it too


def test_a_fold_without_its_model_is_refused(
    tmp_path: Path, crafted_catalog: pd.DataFrame, stack_models: list[Path]
) -> None:
    with pytest.raises(KelpsegError, match="no model holds out fold 2"):
        write_stacking_channel(stack_models[:2] + stack_models[3:], crafted_catalog,
                               tmp_path / "x", show_progress=False)  # fmt: skip


def test_the_stack_command_writes_the_channel_and_prints_the_verdict(
    tmp_path: Path,
    crafted_catalog: pd.DataFrame,
    crafted_pixels: Path,
    stack_models: list[Path],
    capsys: pytest.CaptureFixture[str],
) -> None:
    from kelpseg.cli.app import main

    catalog = tmp_path / "catalog.parquet"
    crafted_catalog.to_parquet(catalog)
    out = tmp_path / "treeprob"
    models = [arg for m in stack_models for arg in ("--models", str(m))]
    args = ["tabular", "stack", *models, "--catalog", str(catalog), "--out", str(out)]
    assert main([*args, "--splits", "train", "--pixels", str(crafted_pixels), "--quiet"]) == 0
    printed = " ".join(capsys.readouterr().out.split())
    n_train = int((crafted_catalog["split"] == "train").sum())
    assert f"{n_train} tiles written" in printed
    assert f"out of fold (tile level): none of {n_train} training tiles" in printed
    assert sorted(p.stem for p in (out / "tiles").iterdir()) == sorted(
        crafted_catalog.loc[crafted_catalog["split"] == "train", "tile_id"]
    )

    # A fold without its held-out model: exit 2 and one line, nothing half-written.
    without_fold_2 = [a for m in stack_models if m.name != "f2" for a in ("--models", str(m))]
    other = tmp_path / "other"
    bad = ["tabular", "stack", *without_fold_2, "--catalog", str(catalog), "--out", str(other)]
    assert main([*bad, "--quiet"]) == 2
    assert "no model holds out fold 2" in capsys.readouterr().err
    assert not other.exists()
