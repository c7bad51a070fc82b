"""``kelpseg submit`` through a test-only Typer app (CliRunner)."""

from __future__ import annotations

import tarfile
from pathlib import Path

import numpy as np
import typer
from typer.testing import CliRunner

from kelpseg.cli.submit import submit
from kelpseg.errors import KelpsegError
from kelpseg.io.tiles import write_mask
from tests.cli.conftest import copy_labels_as_predictions

app = typer.Typer()


@app.callback()
def _group() -> None:
    """A group, so the command is called by its name as in ``kelpseg``."""


app.command("submit")(submit)
runner = CliRunner()


def test_submit_writes_then_checks_an_archive(data: Path, tmp_path: Path) -> None:
    preds = copy_labels_as_predictions(data / "test_labels", tmp_path / "preds")
    out = tmp_path / "submission.tar"
    result = runner.invoke(app, ["submit", str(preds), "--catalog", str(data), "--out", str(out)])
    assert result.exit_code == 0, result.output
    with tarfile.open(out) as tar:
        assert sorted(tar.getnames()) == sorted(p.name for p in preds.glob("*_kelp.tif"))
    checked = runner.invoke(app, ["submit", "--check", str(out), "--catalog", str(data)])
    assert checked.exit_code == 0 and "valid submission" in checked.output


def test_submit_lists_problems_and_exits_one(data: Path, tmp_path: Path) -> None:
    preds = copy_labels_as_predictions(data / "test_labels", tmp_path / "preds")
    victim = sorted(preds.glob("*_kelp.tif"))[0]
    victim.unlink()
    write_mask(preds / "XX000_kelp.tif", np.zeros((350, 350), np.uint8))
    out = tmp_path / "submission.tar"
    result = runner.invoke(app, ["submit", str(preds), "--catalog", str(data), "--out", str(out)])
    assert result.exit_code == 1
    assert "missing_tile" in result.output and "extra_file" in result.output
    assert not out.exists()
    bad = tmp_path / "bad.tar"
    with tarfile.open(bad, "w") as tar:
        tar.add(preds / "XX000_kelp.tif", arcname="nested/XX000_kelp.tif")
    checked = runner.invoke(app, ["submit", "--check", str(bad)])
    assert checked.exit_code == 1 and "nested_path" in checked.output
    both = runner.invoke(app, ["submit", str(preds), "--check", str(bad)])
    assert isinstance(both.exception, KelpsegError)
