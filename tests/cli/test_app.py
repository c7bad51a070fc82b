"""The kelpseg command: help, exit codes, one-line errors."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from kelpseg.cli.app import main

LABEL = np.zeros((350, 350), dtype=np.uint8)


def test_help_lists_commands_with_one_line_each(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for command in ("synth", "validate", "catalog"):
        assert command in out


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.startswith("kelpseg ")


def test_clean_dataset_validates_with_exit_0(tmp_path: Path, tile_factory, capsys) -> None:  # type: ignore[no-untyped-def]
    tile_factory("AA001", label=LABEL)
    tile_factory("AA002", folder="test_satellite")
    assert main(["validate", str(tmp_path), "--workers", "1"]) == 0
    assert "no problems" in capsys.readouterr().out


def test_problems_give_exit_1_and_a_table_by_kind(tmp_path: Path, tile_factory, capsys) -> None:  # type: ignore[no-untyped-def]
    tile_factory("AA001", label=LABEL)
    bad = tile_factory("AA002", label=np.full((350, 350), 1, dtype=np.uint8))
    bad.write_bytes(bad.read_bytes()[:500])  # truncated
    tile_factory("AA003", size=100, label=np.zeros((100, 100), dtype=np.uint8))
    assert main(["validate", str(tmp_path), "--workers", "2"]) == 1
    out = capsys.readouterr().out
    assert "corrupt" in out
    assert "size" in out


def test_missing_folder_is_one_line_exit_2(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    code = main(["validate", str(tmp_path / "nope")])
    err = capsys.readouterr().err
    assert code == 2
    assert "nope: dataset folder does not exist" in err
    assert "Traceback" not in err


def test_empty_folder_exit_2(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    assert main(["catalog", str(tmp_path)]) == 2
    assert "no *_satellite.tif tiles found" in capsys.readouterr().err


def test_debug_shows_the_traceback(tmp_path: Path) -> None:
    from kelpseg.errors import KelpsegError

    with pytest.raises(KelpsegError):
        main(["--debug", "validate", str(tmp_path / "nope")])


def test_usage_error_is_exit_2(capsys) -> None:  # type: ignore[no-untyped-def]
    assert main(["validate"]) == 2


def test_catalog_writes_parquet(tmp_path: Path, tile_factory) -> None:  # type: ignore[no-untyped-def]
    tile_factory("AA001", label=LABEL)
    out = tmp_path / "cat.parquet"
    assert main(["catalog", str(tmp_path), "--out", str(out)]) == 0
    assert list(pd.read_parquet(out)["tile_id"]) == ["AA001"]


def test_console_script_exit_code_and_stderr(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "kelpseg.cli.app", "validate", str(tmp_path / "x")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0
    assert "dataset folder does not exist" in proc.stderr
