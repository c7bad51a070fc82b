"""The HTML report: content, JSON, headless Chromium rendering, and MLflow logging."""

from __future__ import annotations

import base64
import io
import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from kelpseg.errors import KelpsegError
from kelpseg.evaluation import EvaluateConfig, run_evaluation
from kelpseg.evaluation.gallery import pick_tiles
from kelpseg.evaluation.report import GALLERY_WIDTH
from kelpseg.inference.postprocess import PostprocessConfig
from tests.browser import browser_test, load_page, screenshot
from tests.evaluation.conftest import Demo


@pytest.fixture(scope="module")
def report(demo: Demo, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A full report with post-processing (so with a comparison table) and a gallery."""
    out = tmp_path_factory.mktemp("report")
    config = EvaluateConfig(
        postprocess=PostprocessConfig(steps=[{"name": "min_component", "min_pixels": 3}]),
        gallery_tiles=2,
    )
    run_evaluation(
        demo.preds, demo.root, out, config, compare={"masks only": demo.probs}, show_progress=False
    )
    return out


def test_report_files_and_json_agree(report: Path) -> None:
    names = {p.name for p in report.iterdir()}
    assert {"report.html", "metrics.json", "per_tile.csv", "threshold_sweep.csv"} <= names
    assert {"evaluate_config.yaml", "comparison.csv"} <= names
    data = json.loads((report / "metrics.json").read_text())
    assert 0 < data["metrics"]["dice"] < 1
    assert data["postprocess"] == ["min_component"]
    assert len(data["sweep"]) == 41 and len(data["pr_curve"]["recall"]) == 1001
    assert data["best_dice"] == max(row["dice"] for row in data["sweep"])
    assert data["confusion"]["matrix"][1][1] == data["metrics"]["tp"]


def test_report_is_self_contained_with_every_section(report: Path) -> None:
    text = (report / "report.html").read_text()
    for title in (
        "Comparison",
        "Decision threshold",
        "Confusion matrix",
        "Per-tile Dice",
        "Gallery",
    ):
        assert f"<h2>{title}</h2>" in text
    assert "main + post-processing" in text and "main, raw" in text and "masks only" in text
    sources = re.findall(r'src="([^"]*)"', text)
    assert sources and all(s.startswith("data:image/webp;base64,") for s in sources)
    images = [Image.open(io.BytesIO(base64.b64decode(s.split(",", 1)[1]))) for s in sources]
    assert all(i.format == "WEBP" and i.size[0] <= GALLERY_WIDTH for i in images)
    assert "http://" not in text and "https://" not in text
    per_tile = pd.read_csv(report / "per_tile.csv", dtype={"tile_id": "string"})
    worst, best = pick_tiles(per_tile, 2)
    assert len(worst) == 2 and best
    assert text.count('class="tile"') == len(worst) + len(best)
    links = re.findall(r'<a href="([^"]*)"', text)
    assert links == [f"report_files/{t}.png" for t in (*worst, *best)]
    for link in links:  # full resolution: four panels of the tile and three gaps
        full = Image.open(report / link)
        assert full.format == "PNG" and full.size[0] == 4 * full.size[1] + 3 * 6


def test_gallery_picks_the_worst_and_best_tiles(report: Path) -> None:
    per_tile = pd.read_csv(report / "per_tile.csv", dtype={"tile_id": "string"})
    worst, best = pick_tiles(per_tile, 2)
    active = per_tile[(per_tile.label_pixels > 0) | (per_tile.pred_pixels > 0)]
    assert per_tile.set_index("tile_id").loc[worst[0], "dice"] == active["dice"].min()
    assert not set(worst) & set(best)
    assert all(per_tile.set_index("tile_id").loc[best, "label_pixels"] > 0)


@browser_test
def test_report_renders_in_headless_chromium(report: Path, tmp_path: Path) -> None:
    gallery = (report / "report.html").read_text().count('class="tile"')
    load_page(report / "report.html", tmp_path).assert_clean(images=4 + gallery)
    pixels = screenshot(report / "report.html", tmp_path)
    assert pixels.shape[:2] == (2000, 1280) and pixels[..., :3].std() > 0.05


@pytest.mark.slow
def test_results_are_logged_to_mlflow(demo: Demo, tmp_path: Path) -> None:
    from mlflow.tracking import MlflowClient

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=uri)
    experiment = client.create_experiment("eval", artifact_location=(tmp_path / "art").as_uri())
    run_id = client.create_run(experiment).info.run_id
    out = tmp_path / "out"
    run = run_evaluation(
        demo.preds,
        demo.root,
        out,
        EvaluateConfig(gallery_tiles=1),
        run_id=run_id,
        tracking_uri=uri,
        show_progress=False,
    )
    logged = client.get_run(run_id).data
    assert logged.metrics["eval/dice"] == pytest.approx(run.result.dice)
    assert logged.metrics["eval/best_threshold"] == pytest.approx(run.result.best_threshold)
    assert logged.tags["kelpseg.best_threshold"] == f"{run.result.best_threshold:g}"
    history = client.get_metric_history(run_id, "eval/sweep_dice")
    assert sorted(m.step for m in history) == list(range(300, 701, 10))
    best = max(history, key=lambda m: m.value)
    assert best.value == pytest.approx(run.result.best_dice)
    artifacts = {Path(a.path).name for a in client.list_artifacts(run_id, "evaluation")}
    assert {"report.html", "metrics.json", "evaluate_config.yaml", "report_files"} <= artifacts
    files = client.list_artifacts(run_id, "evaluation/report_files")
    assert {Path(a.path).name for a in files} == {p.name for p in (out / "report_files").iterdir()}
    with pytest.raises(KelpsegError, match="MLflow run"):
        run_evaluation(
            demo.preds, demo.root, out, run_id="0" * 32, tracking_uri=uri, show_progress=False
        )
    assert np.isfinite(logged.metrics["eval/per_tile_dice_mean"])
