"""What every command promises: refusal without --overwrite, --json, plain output, exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from kelpseg.cli.app import main
from tests.cli.conftest import copy_labels_as_predictions

LABEL = np.zeros((350, 350), dtype=np.uint8)


def test_catalog_refuses_to_replace_its_output_without_overwrite(
    data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "catalog.parquet"
    assert main(["catalog", str(data), "-o", str(out)]) == 0
    out.write_bytes(b"an older catalog")
    capsys.readouterr()
    assert main(["catalog", str(data), "-o", str(out)]) == 2
    assert capsys.readouterr().err.strip() == f"error: {out} exists; pass --overwrite"
    assert out.read_bytes() == b"an older catalog"
    assert main(["catalog", str(data), "-o", str(out), "--overwrite"]) == 0
    assert len(pd.read_parquet(out)) > 0


def test_submit_refuses_to_replace_an_archive_without_overwrite(
    data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    preds = copy_labels_as_predictions(data / "test_labels", tmp_path / "preds")
    out = tmp_path / "submission.tar"
    out.write_bytes(b"yesterday's submission")
    args = ["submit", str(preds), "--catalog", str(data), "-o", str(out)]
    assert main(args) == 2
    assert "exists; pass --overwrite" in capsys.readouterr().err
    assert out.read_bytes() == b"yesterday's submission"
    assert main([*args, "--overwrite"]) == 0
    assert out.stat().st_size > 1000


def test_json_of_validate_catalog_and_models_list_is_all_of_stdout(
    data: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    capsys.readouterr()
    assert main(["validate", str(data), "--workers", "1", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] is True and report["problems"] == [] and report["files_checked"] > 0

    assert main(["catalog", str(data), "-o", str(tmp_path / "c.parquet"), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    tiles = pd.read_parquet(tmp_path / "c.parquet")
    assert {s["split"]: s["tiles"] for s in summary["splits"]} == (
        tiles.groupby("split").size().to_dict()
    )

    monkeypatch.setenv("KELPSEG_MODELS_DIR", str(tmp_path / "registry"))
    assert main(["models", "list", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {
        "root": str(tmp_path / "registry"),
        "models": [],
    }


def test_evaluate_json(data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    preds = copy_labels_as_predictions(data / "train_kelp", tmp_path / "preds")
    args = ["evaluate", str(preds), "--labels", str(data), "-o", str(tmp_path / "ev"), "-q"]
    capsys.readouterr()
    assert main([*args, "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["metrics"]["dice"] == pytest.approx(1.0)
    assert result["report"] == str(tmp_path / "ev" / "report.html")


def test_piped_problems_print_one_line_each_with_the_whole_path(
    tmp_path: Path, tile_factory, capsys: pytest.CaptureFixture[str]
) -> None:  # type: ignore[no-untyped-def]
    root = tmp_path / ("a-dataset-folder-with-a-long-name-" * 3)  # paths far over 80 columns
    tile_factory("AA001", label=LABEL, root=root)
    bad = tile_factory("AA002", label=LABEL, root=root)
    bad.write_bytes(bad.read_bytes()[:500])
    capsys.readouterr()
    assert main(["validate", str(root), "--workers", "1"]) == 1
    lines = capsys.readouterr().out.splitlines()
    rows = [line.split("\t") for line in lines if "\t" in line]
    assert rows[0] == ["kind", "path", "message"]
    assert [row[1] for row in rows[1:]] == [str(bad)]
    assert rows[1][0] == "corrupt"
    assert lines[-1] == "1 problems in 4 files checked"
    bad.unlink()
    out = root / "a-catalog-with-a-long-name.parquet"
    assert main(["catalog", str(root), "-o", str(out)]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == f"catalog written to {out}"


def test_an_unknown_model_name_points_to_models_list(
    data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["predict", "--tiles", str(data), "-o", str(tmp_path / "p"), "-m", "kelp-nope"]
    assert main(args) == 2
    assert capsys.readouterr().err.strip() == (
        "error: no model named kelp-nope; see `kelpseg models list`"
    )
    assert main([*args[:-1], str(tmp_path / "missing.ckpt")]) == 2
    assert "no such checkpoint, run folder or model package" in capsys.readouterr().err


def test_prepare_old_workers_spelling_still_works_and_warns(
    data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "store"
    assert main(["prepare", str(data), "-o", str(out), "--workers", "1", "-q"]) == 0
    err = capsys.readouterr().err
    assert "'kelpseg prepare --workers' is deprecated" in err and "use --threads" in err
    assert any(out.iterdir())


@pytest.mark.timeout(300)
def test_eda_stats_exits_1_when_it_skipped_a_tile(
    tmp_path: Path, tile_factory, capsys: pytest.CaptureFixture[str]
) -> None:  # type: ignore[no-untyped-def]
    tile_factory("AA001", label=LABEL)
    tile_factory("AA002", label=LABEL)
    bad = tile_factory("AA003", label=LABEL)
    bad.write_bytes(bad.read_bytes()[:500])
    out = tmp_path / "eda"
    argv = ["eda", "stats", str(tmp_path), "-o", str(out), "--workers", "1", "--no-plots", "-q"]
    assert main(argv) == 1
    assert "2 tiles, 1 failed" in capsys.readouterr().out
    assert list(pd.read_csv(out / "failures.csv")["tile_id"]) == ["AA003"]


def test_predict_old_num_workers_spelling_warns_in_one_line(
    data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["predict", "--tiles", str(data), "-o", str(tmp_path / "p"), "-m", "kelp-nope"]
    assert main([*args, "--num-workers", "0"]) == 2
    warning, error = capsys.readouterr().err.strip().splitlines()
    assert warning.startswith("warning: 'kelpseg predict --num-workers' is deprecated")
    assert error.startswith("error: no model named kelp-nope")
