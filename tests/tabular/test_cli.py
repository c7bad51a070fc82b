"""``kelpseg tabular``: build, train, predict and baseline through the real entry point."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from kelpseg.cli import app as cli_app
from kelpseg.cli import tabular as tabular_cmds
from kelpseg.inference import PredictionDir
from tests.tabular.conftest import CHANNELS


@pytest.fixture
def kelpseg_main() -> Iterator[object]:
    """``kelpseg.cli.app.main`` with the tabular group registered (for this test, if it is not)."""
    before = list(cli_app.app.registered_groups)
    if not any(group.name == "tabular" for group in before):
        cli_app.app.add_typer(tabular_cmds.app, name="tabular")
    try:
        yield cli_app.main
    finally:
        cli_app.app.registered_groups[:] = before


@pytest.mark.slow
def test_build_train_predict_baseline(
    kelpseg_main, crafted_catalog: pd.DataFrame, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:  # type: ignore[no-untyped-def]
    catalog = tmp_path / "catalog.parquet"
    crafted_catalog.to_parquet(catalog)
    sets = [
        "--set", f"features.channels={CHANNELS}", "--set", "features.fill_value=nan",
        "--set", "non_kelp_per_tile=40", "--set", "threads=1",
    ]  # fmt: skip
    px = tmp_path / "px"
    assert (
        kelpseg_main(
            [
                "tabular",
                "build",
                str(catalog),
                "--out",
                str(px),
                "--scheduler",
                "sync",
                "--quiet",
                *sets,
            ]
        )
        == 0
    )
    assert "12 tiles written" in capsys.readouterr().out

    model = tmp_path / "lgb"
    args = ["tabular", "train", str(px), "--out", str(model), "--fold", "0", "--model", "lightgbm"]
    tiny = ["--set", "params.lightgbm.n_estimators=15", "--no-mlflow", "--quiet"]
    assert kelpseg_main([*args, *tiny, *sets]) == 0
    out = capsys.readouterr().out
    assert "val_tiles_dice_at_0.5" in out and "top channels" in out
    assert (model / "model.txt").is_file()

    preds = tmp_path / "preds"
    assert (
        kelpseg_main(
            ["tabular", "predict", str(model), str(catalog), "--out", str(preds), "--quiet"]
        )
        == 0
    )
    assert sorted(PredictionDir(preds, kind="prob")) == ["TE000", "TE001"]

    assert kelpseg_main(["tabular", "baseline", str(px), "--fold", "0", "--channel", "NIR"]) == 0
    assert "whole-tile Dice" in capsys.readouterr().out


def test_errors_are_one_line_with_exit_code_2(
    kelpseg_main, crafted_catalog: pd.DataFrame, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:  # type: ignore[no-untyped-def]
    catalog = tmp_path / "catalog.parquet"
    crafted_catalog.drop(columns="fold").to_parquet(catalog)
    assert kelpseg_main(["tabular", "build", str(catalog), "--out", str(tmp_path / "px")]) == 2
    assert "no 'fold' column" in capsys.readouterr().err
    assert kelpseg_main(["tabular", "train", str(tmp_path), "--out", str(tmp_path / "m")]) == 2
    assert "exactly one of --fold" in capsys.readouterr().err
    assert kelpseg_main(["tabular", "train", str(tmp_path), "--out", "m", "--fold", "0"]) == 2
    assert "not a pixel dataset" in capsys.readouterr().err
    bad = ["tabular", "build", str(catalog), "--out", "x", "--set", "model=svm"]
    assert kelpseg_main(bad) == 2
    assert "unknown model 'svm'" in capsys.readouterr().err
