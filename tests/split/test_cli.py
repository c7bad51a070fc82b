"""``kelpseg split``: registered on a test-only root app until app.py registers it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import typer
import yaml

import kelpseg.cli.app as app_module
from kelpseg.cli import split as split_cmds
from tests.split.conftest import CraftedDataset


@pytest.fixture
def kelpseg(monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    """``main(argv)`` of the real entry point, with ``split`` registered on a test-only app."""
    root = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
    root.callback()(lambda: None)
    root.command("split")(split_cmds.split)
    monkeypatch.setattr(app_module, "app", root)
    return app_module.main


@pytest.fixture
def stats_file(crafted: CraftedDataset, tmp_path: Path) -> Path:
    path = tmp_path / "tile_stats.parquet"
    crafted.stats.to_parquet(path)
    return path


def test_split_command_writes_folds_and_prints_summary(  # type: ignore[no-untyped-def]
    kelpseg, stats_file: Path, tmp_path: Path, capsys
) -> None:
    exclude = tmp_path / "bad.txt"
    exclude.write_text("T0100\nNOPE9\n")
    out = tmp_path / "split"
    argv = ["split", str(stats_file), "--out", str(out), "--set", "k=3", "--quiet"]
    assert kelpseg([*argv, "--exclude", str(exclude)]) == 0
    text = capsys.readouterr().out
    assert "leakage check passed" in text
    assert "8 of 8 test tiles share an AOI" in text
    assert "excluded 1 training tiles; 1 listed ids unknown" in text
    table = pd.read_parquet(out / "split.parquet").set_index("tile_id")
    assert table.loc["T0100", "fold"] == -1
    assert set(table.loc[table["split"] == "train", "fold"]) == {-1, 0, 1, 2}
    saved = yaml.safe_load((out / "split_config.yaml").read_text())
    assert saved["k"] == 3 and saved["mode"] == "kfold"


def test_config_file_and_random_mode_warn_about_leaks(  # type: ignore[no-untyped-def]
    kelpseg, stats_file: Path, tmp_path: Path, capsys
) -> None:
    cfg = tmp_path / "split.yaml"
    cfg.write_text("mode: random\nk: 3\ndem:\n  grid: 16\n")
    argv = ["split", str(stats_file), "--out", str(tmp_path / "o"), "--config", str(cfg)]
    assert kelpseg([*argv, "--quiet"]) == 0
    assert "AOIs span several folds" in capsys.readouterr().out


def test_bad_input_is_one_line_and_exit_2(  # type: ignore[no-untyped-def]
    kelpseg, stats_file: Path, tmp_path: Path, capsys
) -> None:
    out = ["--out", str(tmp_path / "o"), "--quiet"]
    assert kelpseg(["split", str(tmp_path / "missing.parquet"), *out]) == 2
    err = capsys.readouterr().err
    assert "missing.parquet" in err and "does not exist" in err and "Traceback" not in err
    assert kelpseg(["split", str(stats_file), *out, "--set", "k=99"]) == 2
    assert "fewer than k=99" in capsys.readouterr().err
    assert kelpseg(["split", str(stats_file), *out, "--set", "embedder=faiss"]) == 2
    assert "unknown embedder 'faiss'" in capsys.readouterr().err
    assert kelpseg(["split", str(stats_file), *out, "--set", "nope=1"]) == 2
    assert "config key 'nope': unknown key" in capsys.readouterr().err


def test_core_install_imports_the_command_and_names_the_missing_extra() -> None:
    """Without scikit-learn, ``kelpseg --help`` still loads; splitting asks for the data extra."""
    code = """
import sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("sklearn", "timm", "torch"):
            raise ImportError(name)
sys.meta_path.insert(0, Block())
import pandas as pd
import kelpseg.cli.split
from kelpseg.errors import MissingExtraError
from kelpseg.split import SplitConfig, assign_folds
frame = pd.DataFrame({"tile_id": ["a", "b"], "split": "train", "aoi_id": [0, 1]})
try:
    assign_folds(frame, SplitConfig(k=2, stratify=[]))
except MissingExtraError as exc:
    print(exc)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "pip install 'kelpseg[data]'" in out.stdout


def test_json_summary_and_overwrite(  # type: ignore[no-untyped-def]
    kelpseg, stats_file: Path, tmp_path: Path, capsys
) -> None:
    import json

    out = tmp_path / "split"
    argv = ["split", str(stats_file), "--out", str(out), "--set", "k=3", "--quiet"]
    assert kelpseg([*argv, "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["mode"] == "kfold" and summary["split"] == str(out / "split.parquet")
    assert summary["groups"]["tiles"] == len(pd.read_parquet(out / "split.parquet"))
    before = (out / "split.parquet").read_bytes()
    assert kelpseg([*argv, "--set", "k=2"]) == 2
    assert capsys.readouterr().err.strip() == (
        f"error: {out / 'split.parquet'} exists; pass --overwrite"
    )
    assert (out / "split.parquet").read_bytes() == before
    assert kelpseg([*argv, "--set", "k=2", "--overwrite"]) == 0
