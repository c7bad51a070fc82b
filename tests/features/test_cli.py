"""``kelpseg stats`` and ``kelpseg channels`` through a test-only Typer app and through main()."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
import typer
import yaml
from typer.models import CommandInfo
from typer.testing import CliRunner

from kelpseg.cli import app as app_module
from kelpseg.cli import features as features_cmds
from kelpseg.features import BandStats, FeatureConfig
from kelpseg.io.catalog import build_catalog
from tests.features.conftest import crafted_tile

runner = CliRunner()


@pytest.fixture
def cli() -> typer.Typer:
    app = typer.Typer()
    app.command("stats")(features_cmds.stats)
    app.command("channels")(features_cmds.channels)
    return app


@pytest.fixture
def dataset(tile_factory: Callable[..., Path], tmp_path: Path) -> Path:
    label = np.zeros((32, 32), np.uint8)
    for i in range(3):
        tile_factory(f"TR{i}", data=crafted_tile(seed=i), label=label, size=32)
    tile_factory("TE0", folder="test_satellite", data=crafted_tile(seed=9), size=32)
    return tmp_path


def test_stats_command_writes_json_and_resolved_config(cli: typer.Typer, dataset: Path) -> None:
    out = dataset / "out" / "stats.json"
    result = runner.invoke(
        cli,
        [
            "stats",
            str(dataset),
            "--out",
            str(out),
            "--channels",
            "NIR,NDVI",
            "--set",
            "fill_value=zero",
            "--device",
            "cpu",
            "--quiet",
        ],
    )
    assert result.exit_code == 0, result.output
    stats = BandStats.from_json(out)
    assert stats.channels == ["NIR", "NDVI"] and stats.options["tiles"] == 3
    assert stats.options["adjustment"] == "zero-adjusted"
    saved = yaml.safe_load((dataset / "out" / "stats.features.yaml").read_text())
    assert saved["channels"] == ["NIR", "NDVI"] and saved["fill_value"] == "zero"
    stats.check_compatible(FeatureConfig.model_validate(saved))
    assert "NDVI" in result.output and "3 tiles" in result.output


def test_stats_command_reads_a_catalog_and_a_split(cli: typer.Typer, dataset: Path) -> None:
    catalog = build_catalog(dataset).save(dataset / "catalog.parquet")
    out = dataset / "test_stats.json"
    before = torch.get_num_threads()
    try:
        args = ["stats", str(catalog), "--out", str(out), "--split", "test", "--channels", "DEMWM"]
        result = runner.invoke(cli, [*args, "--threads", "1", "--quiet"])
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)
    assert result.exit_code == 0, result.output
    assert json.loads(out.read_text())["options"]["tiles"] == 1


def test_user_errors_exit_2_without_traceback(
    dataset: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    commands = [
        *app_module.app.registered_commands,
        CommandInfo("stats", callback=features_cmds.stats),
    ]
    monkeypatch.setattr(app_module.app, "registered_commands", commands)
    code = app_module.main(["stats", str(dataset), "--channels", "NIR,NDVII", "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2 and "NDVII" in err and "Traceback" not in err
    code = app_module.main(["stats", str(dataset / "missing"), "--no-progress"])
    assert code == 2 and "does not exist" in capsys.readouterr().err
    assert not (dataset / "stats.json").exists()


def test_channels_command_lists_sources(cli: typer.Typer) -> None:
    result = runner.invoke(cli, ["channels", "--source", "kelpseg"])
    assert result.exit_code == 0
    assert "WATERCOLOR" in result.output and not re.search(r"│ NDVI\s+│", result.output)
    everything = runner.invoke(cli, ["channels"])
    assert "spyndex.AVI" in everything.output and "DEM" in everything.output
