"""``kelpseg train`` / ``train-cv``: options become config keys; faults exit 2 in one line."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from kelpseg.cli import app as cli_app
from kelpseg.cli import train as train_cmds
from kelpseg.config import save_config
from kelpseg.nn.cv import CVResult
from kelpseg.nn.train import TrainResult
from tests.nn.model_fixtures import tiny_config


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    config = tiny_config(tmp_path / "catalog.parquet", None, tmp_path / "out")
    return save_config(config, tmp_path / "run.yaml")


@pytest.fixture
def registered(monkeypatch: pytest.MonkeyPatch) -> typer.Typer:
    """The real ``kelpseg`` app with the training commands registered (for this test only)."""
    app = cli_app.app
    monkeypatch.setattr(app, "registered_commands", list(app.registered_commands))
    app.command("train")(train_cmds.train)
    app.command("train-cv")(train_cmds.train_cv)
    return app


def test_train_options_become_config_keys(
    config_file: Path, registered: typer.Typer, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: dict[str, Any] = {}

    def fake_train(config: Any, *, resume: bool = False) -> TrainResult:
        seen.update(config=config, resume=resume)
        history = {0: {"val/dice": 0.25, "train/loss": 0.9}, 1: {"val/dice": 0.5}}
        return TrainResult(Path("out"), best_dice=0.5, best_epoch=1, history=history)

    monkeypatch.setattr("kelpseg.nn.train.train", fake_train)
    result = CliRunner().invoke(
        registered,
        ["train", "--config", str(config_file), "--set", "optim.lr=0.001", "--set",
         "trainer.max_epochs=4", "--fold", "2", "--resume", "--experiment", "exp",
         "--run-name", "r1", "--devices", "2", "--num-nodes", "1", "--strategy", "ddp"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    config = seen["config"]
    assert seen["resume"] is True
    assert (config.optim.lr, config.trainer.max_epochs, config.data.fold) == (0.001, 4, 2)
    assert (config.tracking.experiment, config.tracking.run_name) == ("exp", "r1")
    assert (config.trainer.devices, config.trainer.strategy) == (2, "ddp")
    assert "best val Dice: 0.5000 (epoch 1)" in result.output
    assert "0.2500" in result.output  # the learning curve


def test_a_bad_key_exits_2_with_one_line_naming_it(
    config_file: Path, registered: typer.Typer, capsys: pytest.CaptureFixture[str]
) -> None:
    for override, key in (("optim.lr=-1", "optim.lr"), ("optim.nope=1", "optim.nope")):
        code = cli_app.main(["train", "--config", str(config_file), "--set", override])
        err = capsys.readouterr().err.strip()
        assert code == 2 and len(err.splitlines()) == 1
        assert f"config key '{key}'" in err and "Traceback" not in err


def test_train_cv_parses_folds(
    config_file: Path, registered: typer.Typer, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: dict[str, Any] = {}

    def fake_cv(config: Any, *, folds: list[int] | None = None, resume: bool = False) -> CVResult:
        seen.update(folds=folds, resume=resume)
        fold = TrainResult(Path("f"), best_dice=0.4, best_epoch=0)
        return CVResult(Path("out"), {0: fold, 1: fold}, 0.4, 0.0, "parent")

    monkeypatch.setattr("kelpseg.nn.cv.train_cv", fake_cv)
    runner = CliRunner()
    result = runner.invoke(registered, ["train-cv", "-c", str(config_file), "--folds", "0,1"])
    assert result.exit_code == 0, result.output
    assert seen == {"folds": [0, 1], "resume": False}
    assert "mean val Dice: 0.4000" in result.output and "parent" in result.output
    assert cli_app.main(["train-cv", "-c", str(config_file), "--folds", "0,x"]) == 2
