"""``kelpseg tune``: options reach run_study, --best writes the config, faults exit 2."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from kelpseg.cli import app as cli_app
from kelpseg.cli import tune as tune_cmds
from kelpseg.config import load_config
from kelpseg.nn.config import TrainConfig
from tests.tune.conftest import scored_objective


@pytest.fixture
def registered(monkeypatch: pytest.MonkeyPatch) -> typer.Typer:
    """The real ``kelpseg`` app with ``tune`` registered (for this test only)."""
    app = cli_app.app
    monkeypatch.setattr(app, "registered_commands", list(app.registered_commands))
    app.command("tune")(tune_cmds.tune)
    return app


@pytest.fixture
def crafted(monkeypatch: pytest.MonkeyPatch) -> None:
    """Trials score their config instead of training it."""
    monkeypatch.setattr("kelpseg.tune.study.TrainObjective", lambda *a, **k: scored_objective)


def test_a_study_from_the_command_line_then_its_best_config(
    registered: typer.Typer, crafted: None, study_dir: Path, base_config: Path, space_file: Path
) -> None:
    out = study_dir / "cli"
    args = ["tune", "--config", str(base_config), "--space", str(space_file), "--trials", "5",
            "--study", "cli", "--sampler", "random", "--pruner", "none", "--seed", "1",
            "--out", str(out), "--set", "data.batch_size=3", "--no-plots", "--quiet"]  # fmt: skip
    result = CliRunner().invoke(registered, args)
    assert result.exit_code == 0, result.output
    assert "5 finished: 5 complete, 0 pruned, 0 failed" in result.output
    assert f"kelpseg train --config {out / 'best.yaml'}" in result.output.replace("\n", "")
    written = load_config(TrainConfig, out / "best.yaml")
    assert written.data.batch_size == 3

    (out / "best.yaml").unlink()
    again = CliRunner().invoke(registered, ["tune", "--best", "cli", "--out", str(out)])
    assert again.exit_code == 0, again.output
    assert load_config(TrainConfig, out / "best.yaml") == written
    url = f"sqlite:///{out / 'optuna.db'}"
    elsewhere = study_dir / "elsewhere"
    third = CliRunner().invoke(
        registered, ["tune", "--best", "cli", "--storage", url, "--out", str(elsewhere)]
    )
    assert third.exit_code == 0, third.output
    assert load_config(TrainConfig, elsewhere / "best.yaml") == written


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--best", "nothing"], "no study storage here"),
        ([], "--config and --space are needed"),
        (["--config", "{base}", "--space", "{space}", "--direction", "up"], "--direction"),
        (["--config", "{base}", "--space", "{space}", "--sampler", "grid"], "sampler"),
        (["--config", "{base}", "--space", "{space}", "--set", "optim.lrr=1"], "optim.lrr"),
    ],
)
def test_faults_exit_2_with_one_line(
    registered: typer.Typer, study_dir: Path, base_config: Path, space_file: Path,
    extra: list[str], message: str, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    monkeypatch.chdir(study_dir)
    args = [a.format(base=base_config, space=space_file) for a in extra]
    code = cli_app.main(["tune", *args, "--out", str(study_dir / "x")])
    err = capsys.readouterr().err
    assert code == 2
    assert message in err and "Traceback" not in err


def test_options_reach_run_study(
    registered: typer.Typer, monkeypatch: pytest.MonkeyPatch, base_config: Path, space_file: Path
) -> None:
    seen: dict[str, Any] = {}

    def fake(config: Path, space: Path, n: int, **kwargs: Any) -> Any:
        seen.update(config=config, space=space, n=n, **kwargs)
        raise typer.Exit(0)

    monkeypatch.setattr("kelpseg.tune.study.run_study", fake)
    result = CliRunner().invoke(registered, [
        "tune", "-c", str(base_config), "--space", str(space_file), "-n", "40",
        "--storage", "journal:/nfs/s.log", "--study", "s1", "--sampler", "tpe", "--pruner",
        "hyperband", "--seed", "9", "--direction", "minimize", "--set", "a.b=1", "--set", "c=2",
        "--heartbeat", "30", "--keep-checkpoints",
    ])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert (seen["config"], seen["space"], seen["n"]) == (base_config, space_file, 40)
    assert seen["storage"] == "journal:/nfs/s.log" and seen["study_name"] == "s1"
    assert (seen["pruner"], seen["seed"], seen["direction"]) == ("hyperband", 9, "minimize")
    assert seen["overrides"] == ["a.b=1", "c=2"] and seen["heartbeat_interval"] == 30
    assert seen["keep_checkpoints"] is True and seen["out_dir"] is None
