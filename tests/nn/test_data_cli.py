"""``kelpseg prepare`` through a Typer app (registered here until cli/app.py adds it)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import typer
from typer.testing import CliRunner

from kelpseg.cli.prepare import prepare
from kelpseg.errors import KelpsegError
from kelpseg.io.tiles import read_tile
from kelpseg.nn.data.store_format import open_store


def _app() -> typer.Typer:
    app = typer.Typer()
    app.command("prepare")(prepare)
    app.command("noop")(lambda: None)  # keeps "prepare" a subcommand, as in kelpseg
    return app


def test_prepare_packs_a_dataset_folder(synth_root: Path, tmp_path: Path):
    out = tmp_path / "store"
    result = CliRunner().invoke(
        _app(), ["prepare", str(synth_root), "--out", str(out), "--split", "train", "--verify"]
    )
    assert result.exit_code == 0, result.output
    assert "verified" in result.output and "train" in result.output
    store = open_store(out)
    assert list(store.splits) == ["train"]
    tile = store.split("train")
    first = synth_root / "train_satellite" / f"{tile.tile_ids[0]}_satellite.tif"
    np.testing.assert_array_equal(tile.images[0], read_tile(first, expected_size=None).data)


def test_prepare_reports_a_missing_source_as_a_user_error(tmp_path: Path):
    result = CliRunner().invoke(_app(), ["prepare", str(tmp_path / "nope"), "--out", str(tmp_path)])
    assert isinstance(result.exception, KelpsegError)
    assert "does not exist" in str(result.exception)
