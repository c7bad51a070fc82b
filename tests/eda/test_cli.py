"""``kelpseg eda``: registered in a test-only root app until app.py registers it."""

from __future__ import annotations

import socket
from pathlib import Path

import pandas as pd
import pytest
import typer
from typer.testing import CliRunner

import kelpseg.cli.app as app_module
from kelpseg.cli import eda as eda_cmds
from tests.eda.conftest import write_dataset

TRAIN = {"AA001": 0, "AA002": 7, "AA003": 2}
TEST = ["TT001"]


@pytest.fixture
def kelpseg(monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    """``main(argv)`` of the real entry point, with ``eda`` registered on a test-only app."""
    root = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
    root.callback()(lambda: None)
    root.add_typer(eda_cmds.app, name="eda")
    monkeypatch.setattr(app_module, "app", root)
    return app_module.main


@pytest.fixture
def data(tmp_path: Path) -> Path:
    return write_dataset(tmp_path / "data", TRAIN, TEST, corrupt=["BAD01"])


@pytest.mark.slow
def test_stats_plot_report_chain(kelpseg, data: Path, tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "eda"
    argv = ["eda", "stats", str(data), "--out", str(out), "--workers", "2", "--quiet"]
    assert kelpseg([*argv, "--set", "tile_size=0", "--no-plots"]) == 1  # a tile was skipped
    printed = capsys.readouterr().out
    assert "4 tiles, 1 failed" in printed
    assert "BAD01" in printed
    stats = pd.read_parquet(out / "tile_stats.parquet")
    assert sorted(stats["tile_id"]) == sorted([*TRAIN, *TEST])
    assert not (out / "plots").exists()

    plots = tmp_path / "plots"
    argv = ["eda", "plot", str(data), "--out", str(plots), "--tiles", "AA002,TT001", "--quiet"]
    assert kelpseg(argv) == 0
    assert (plots / "AA002" / "AA002_kelp.png").is_file()
    assert (plots / "TT001" / "TT001_ndvi.png").is_file()
    assert (plots / "eda_config.yaml").is_file()

    assert kelpseg(["eda", "report", str(out), "--out", str(tmp_path / "r.html"), "--quiet"]) == 0
    assert (tmp_path / "r.html").read_text().count("data:image/png;base64,") > 10


def test_plot_of_a_corrupt_tile_exits_1(data: Path, tmp_path: Path) -> None:
    # CliRunner, not main(): main() drops the code of typer.Exit under standalone_mode=False.
    argv = ["plot", str(data), "--out", str(tmp_path / "p"), "--tiles", "BAD01", "--quiet"]
    result = CliRunner().invoke(eda_cmds.app, [*argv, "--tiles", "AA001"])
    assert result.exit_code == 1, result.output
    assert "failed" in result.output and "BAD01" in result.output
    assert (tmp_path / "p" / "AA001" / "AA001.png").is_file()


def test_unknown_tile_and_bad_override_are_one_line_exit_2(
    kelpseg, data: Path, tmp_path: Path, capsys
) -> None:  # type: ignore[no-untyped-def]
    out = str(tmp_path / "p")
    assert kelpseg(["eda", "plot", str(data), "--out", out, "--tiles", "ZZ999"]) == 2
    assert "ZZ999" in capsys.readouterr().err
    assert kelpseg(["eda", "stats", str(data), "--out", out, "--set", "thresholds.nope=1"]) == 2
    assert "thresholds.nope" in capsys.readouterr().err


@pytest.mark.timeout(60)
def test_unreachable_scheduler_exits_2_with_the_address(
    kelpseg, data: Path, tmp_path: Path, capsys
) -> None:  # type: ignore[no-untyped-def]
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        address = f"tcp://127.0.0.1:{sock.getsockname()[1]}"
    argv = ["eda", "stats", str(data), "--out", str(tmp_path / "s"), "--quiet"]
    code = kelpseg([*argv, "--scheduler", address, "--set", "dask.connect_timeout_s=1"])
    err = capsys.readouterr().err
    assert code == 2
    assert address in err and "cannot reach the Dask scheduler" in err
    assert "Traceback" not in err


def test_report_without_stats_exits_2(kelpseg, tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    assert kelpseg(["eda", "report", str(tmp_path)]) == 2
    assert "kelpseg eda stats" in capsys.readouterr().err
