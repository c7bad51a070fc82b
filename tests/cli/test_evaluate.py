"""``kelpseg evaluate`` through a test-only Typer app (CliRunner)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from kelpseg.cli.evaluate import evaluate, parse_postprocess
from kelpseg.errors import KelpsegError
from tests.cli.conftest import copy_labels_as_predictions

app = typer.Typer()


@app.callback()
def _group() -> None:
    """A group, so the command is called by its name as in ``kelpseg``."""


app.command("evaluate")(evaluate)
runner = CliRunner()


def test_evaluate_writes_the_report_and_applies_options(data: Path, tmp_path: Path) -> None:
    preds = copy_labels_as_predictions(data / "train_kelp", tmp_path / "preds")
    out = tmp_path / "eval"
    args = [
        "evaluate",
        str(preds),
        "--labels",
        str(data),
        "--out",
        str(out),
        "--thresholds",
        "0.4:0.6:0.05",
        "--postprocess",
        "min_component:min_pixels=2",
        "--compare",
        f"again={preds}",
        "--set",
        "gallery_tiles=1",
        "--quiet",
    ]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "report:" in result.output and "comparison" in result.output
    metrics = json.loads((out / "metrics.json").read_text())
    assert [row["threshold"] for row in metrics["sweep"]] == [0.4, 0.45, 0.5, 0.55, 0.6]
    assert metrics["postprocess"] == ["min_component"]
    saved = (out / "evaluate_config.yaml").read_text()
    assert "min_pixels: 2" in saved and "gallery_tiles: 1" in saved


def test_evaluate_errors_are_kelpseg_errors(data: Path, tmp_path: Path) -> None:
    preds = copy_labels_as_predictions(data / "train_kelp", tmp_path / "preds")
    for extra in (["--thresholds", "0.3-0.7"], ["--set", "nonsense=1"], ["--compare", "x"]):
        result = runner.invoke(app, ["evaluate", str(preds), "--labels", str(data), *extra])
        assert isinstance(result.exception, KelpsegError), extra


def test_postprocess_option_accepts_inline_steps_and_files(tmp_path: Path) -> None:
    path = tmp_path / "post.yaml"
    path.write_text("steps:\n  - {name: opening, radius: 2}\n")
    steps = parse_postprocess(["land_mask:dilation=1,min_land_pixels=2", str(path), "closing"])
    assert steps == [
        {"name": "land_mask", "dilation": 1, "min_land_pixels": 2},
        {"name": "opening", "radius": 2},
        {"name": "closing"},
    ]
    with pytest.raises(KelpsegError, match="does not exist"):
        parse_postprocess([str(tmp_path / "missing.yaml")])


def test_the_headline_threshold_is_the_one_predict_used_unless_given(
    data: Path, tmp_path: Path
) -> None:
    preds = copy_labels_as_predictions(data / "train_kelp", tmp_path / "preds")
    (preds / "predict_config.yaml").write_text("models: [runs/fold0]\nthreshold: 0.6234\n")

    def headline(*extra: str) -> float:
        out = tmp_path / ("eval-" + "-".join(extra).replace("=", ""))
        args = ["evaluate", str(preds), "--labels", str(data), "--out", str(out), "--json", "-q"]
        result = runner.invoke(app, [*args, *extra])
        assert result.exit_code == 0, result.output
        return float(json.loads(result.output)["threshold"])

    assert headline() == 0.623  # rounded onto the 1/1000 grid of the sweep
    assert headline("--threshold", "0.4") == 0.4
    assert headline("--set", "threshold=0.45") == 0.45
