"""Ensemble selection: crafted members whose best subset is known; the reporting fold unread."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from kelpseg.cli.app import main
from kelpseg.config import validate_config
from kelpseg.errors import KelpsegError
from kelpseg.inference.predict import PredictConfig
from kelpseg.inference.selection import PixelTable, ThresholdGrid, best_dice, select_members
from kelpseg.inference.selection_run import SelectionConfig, load_ensemble_spec, run_selection
from kelpseg.io.tiles import write_label, write_probability

SIZE, TILES_PER_FOLD = 32, 6
GOOD, BAD = ("good-a", "good-b", "good-c"), ("noise", "blind")


def _labels(rng: np.random.Generator) -> np.ndarray:
    y = np.zeros((SIZE, SIZE), bool)
    for _ in range(3):
        r, c = rng.integers(0, SIZE - 6, 2)
        y[r : r + rng.integers(3, 7), c : c + rng.integers(3, 7)] = True
    return y


def crafted(seed: int = 0) -> tuple[dict[str, dict[str, np.ndarray]], dict[str, np.ndarray]]:
    """Three noisy but informative members with independent errors, pure noise, and one blind.

    Averaging independent errors helps, so the best ensemble is the three good members with
    (about) equal weights; noise and the blind member only hurt.
    """
    rng = np.random.default_rng(seed)
    labels: dict[str, np.ndarray] = {}
    members: dict[str, dict[str, np.ndarray]] = {name: {} for name in (*GOOD, *BAD)}
    for fold in (0, 1):
        for i in range(TILES_PER_FOLD):
            tile = f"F{fold}T{i}"
            y = _labels(rng)
            labels[tile] = y.astype(np.uint8)
            for name in GOOD:
                p = 0.35 * y + 0.3 + rng.normal(0, 0.18, y.shape)
                members[name][tile] = np.clip(p, 0, 1).astype(np.float32)
            members["noise"][tile] = rng.random(y.shape, dtype=np.float32)
            members["blind"][tile] = np.full(y.shape, 0.01, np.float32)
    return members, labels


def _catalog(tmp_path: Path, labels: dict[str, np.ndarray]) -> Path:
    rows = []
    for tile, y in labels.items():
        mask = write_label(tmp_path / "labels" / f"{tile}_kelp.tif", y)
        rows.append({"tile_id": tile, "split": "train", "image_path": "", "mask_path": str(mask),
                     "fold": int(tile[1])})  # fmt: skip
    path = tmp_path / "catalog.parquet"
    pd.DataFrame(rows).to_parquet(path)
    return path


def _config(catalog: Path, tmp_path: Path, **extra: object) -> SelectionConfig:
    members = [
        {"name": n, "predictions": [str(tmp_path / n)], "models": [f"runs/{n}"]}
        for n in (*GOOD, *BAD)
    ]
    data = {"members": members, "catalog": str(catalog), "select_folds": [0],
            "report_folds": [1], **extra}  # fmt: skip
    return validate_config(SelectionConfig, data)


def test_best_dice_matches_a_plain_threshold_sweep() -> None:
    rng = np.random.default_rng(1)
    prob, y = rng.random(5000), rng.random(5000) < 0.2
    grid = ThresholdGrid(0.1, 0.9, 100)
    plain = [(2 * ((prob >= t) & y).sum() / ((prob >= t).sum() + y.sum()), t)
             for t in np.arange(10, 91) / 100]  # fmt: skip
    dice, threshold = best_dice(prob, y, grid)
    assert dice == pytest.approx(max(plain)[0])
    assert threshold == pytest.approx(max(plain)[1])


def test_forward_selection_finds_the_informative_members(tmp_path: Path) -> None:
    members, labels = crafted()
    catalog = _catalog(tmp_path, labels)
    config = _config(catalog, tmp_path)
    sources = [members[m.name] for m in config.members]

    result = run_selection(config, tmp_path / "out", members=sources, labels=labels)

    weights = result.report["weights"]
    assert all(weights[n] > 0.15 for n in GOOD), weights
    assert all(weights[n] == 0 for n in BAD), weights
    select = result.report["select"]
    assert select["ensemble_dice"] > max(select["single_dice"].values()) + 0.02
    assert result.report["report"]["gain"] > 0.02  # honest: measured on the unseen fold
    spec = load_ensemble_spec(tmp_path / "out" / "ensemble.yaml")
    assert spec["models"] == [f"runs/{n}" for n in GOOD]
    assert sum(spec["weights"]) == pytest.approx(1.0, abs=1e-5)
    # The spec is a valid predict config as it stands.
    predict = validate_config(
        PredictConfig, yaml.safe_load((tmp_path / "out/ensemble.yaml").read_text())
    )
    assert predict.threshold == pytest.approx(result.selection.threshold)


def test_selection_never_reads_the_reporting_fold(tmp_path: Path) -> None:
    members, labels = crafted()
    catalog = _catalog(tmp_path, labels)
    config = _config(catalog, tmp_path)
    clean = run_selection(
        config, tmp_path / "clean", members=[members[m.name] for m in config.members], labels=labels
    )
    # Poison the reporting fold: the noise member becomes a perfect oracle there.
    poisoned = {name: dict(tiles) for name, tiles in members.items()}
    for tile, y in labels.items():
        if tile.startswith("F1"):
            poisoned["noise"][tile] = y.astype(np.float32)
    dirty = run_selection(
        config,
        tmp_path / "dirty",
        members=[poisoned[m.name] for m in config.members],
        labels=labels,
    )
    np.testing.assert_array_equal(dirty.selection.weights, clean.selection.weights)
    assert dirty.selection.threshold == clean.selection.threshold
    assert dirty.report["select"] == clean.report["select"]
    assert dirty.report["report"] == clean.report["report"]  # the ensemble ignores noise there


def test_a_fold_used_both_to_select_and_report_is_refused(tmp_path: Path) -> None:
    with pytest.raises(KelpsegError, match="biased"):
        validate_config(SelectionConfig, {"members": [{"name": "a", "predictions": ["x"]}],
                                          "catalog": "c.parquet", "select_folds": [0, 1],
                                          "report_folds": [1]})  # fmt: skip


def test_selection_refuses_tiles_without_kelp() -> None:
    table = PixelTable(np.zeros((4, 2), np.float32), np.zeros(4, bool), 1, 4)
    with pytest.raises(KelpsegError, match="no kelp"):
        select_members(table)


def test_the_cli_reads_prediction_folders_and_writes_a_predict_config(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    members, labels = crafted(seed=2)
    catalog = _catalog(tmp_path, labels)
    args = ["ensemble", "select", "--catalog", str(catalog), "--out", str(tmp_path / "ens"),
            "--select-fold", "0", "--report-fold", "1"]  # fmt: skip
    for name, tiles in members.items():
        folder = tmp_path / "preds" / name
        for tile, prob in tiles.items():
            write_probability(folder / f"{tile}_prob.tif", prob)
        (folder / "predict_config.yaml").write_text(yaml.safe_dump({"models": [f"ckpt/{name}"]}))
        args += ["--member", str(folder)]

    assert main(args) == 0
    printed = capsys.readouterr().out
    assert f"kelpseg export --ensemble {tmp_path / 'ens' / 'ensemble.yaml'}" in printed.replace(
        "\n", ""
    )

    spec = load_ensemble_spec(tmp_path / "ens" / "ensemble.yaml")
    assert set(spec["models"]) == {f"ckpt/{n}" for n in GOOD}
    report = json.loads((tmp_path / "ens" / "selection.json").read_text())
    assert report["report"]["gain"] > 0 and report["weights"]["noise"] == 0
