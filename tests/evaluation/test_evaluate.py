"""evaluate_predictions and compare_variants on a generated dataset, against brute force."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from kelpseg.errors import KelpsegError
from kelpseg.evaluation import (
    EvaluateConfig,
    ThresholdSweep,
    Variant,
    compare_variants,
    dice_coefficient,
    evaluate_predictions,
    resolve_labels,
)
from kelpseg.inference.ensemble import EnsembleSource
from kelpseg.inference.postprocess import PostprocessConfig, apply_postprocess
from kelpseg.io.catalog import build_catalog
from kelpseg.io.tiles import read_tile
from tests.evaluation.conftest import Demo


def _global_dice(preds: dict[str, np.ndarray], labels: dict[str, np.ndarray]) -> float:
    ids = sorted(preds)
    p = np.concatenate([preds[t].ravel() for t in ids]).astype(bool)
    t = np.concatenate([labels[t].ravel() for t in ids]).astype(bool)
    return dice_coefficient(p, t)


def test_dice_of_a_prediction_folder_matches_brute_force(demo: Demo) -> None:
    result = evaluate_predictions(demo.preds, demo.root, show_progress=False)
    masks = {t: p.astype(np.float64) >= 0.5 for t, p in demo.probs.items()}
    assert result.dice == pytest.approx(_global_dice(masks, demo.labels), abs=1e-12)
    assert result.is_probability and result.metrics["tiles"] == len(demo.labels)
    assert 0.3 < result.dice < 1.0  # imperfect but useful fake predictions
    assert 0.3 <= result.best_threshold <= 0.7 and result.best_dice >= result.dice


def test_every_label_source_gives_the_same_result(demo: Demo, tmp_path: Path) -> None:
    base = evaluate_predictions(demo.probs, demo.labels, show_progress=False)
    catalog = build_catalog(demo.root)
    catalog_file = catalog.save(tmp_path / "catalog.parquet")
    label_dir = demo.root.parent / "flat_labels"
    if not label_dir.exists():
        shutil.copytree(demo.root / "train_kelp", label_dir)
    for source in (demo.root, catalog, catalog.tiles, catalog_file, label_dir):
        result = evaluate_predictions(demo.preds, source, show_progress=False)
        assert result.metrics == base.metrics
        assert result.sweep.equals(base.sweep)


def test_masks_only_are_scored_as_masks(demo: Demo) -> None:
    config = EvaluateConfig(kind="mask")
    result = evaluate_predictions(demo.preds, demo.root, config, show_progress=False)
    probs = evaluate_predictions(demo.probs, demo.labels, show_progress=False)
    assert not result.is_probability
    assert result.dice == pytest.approx(probs.dice, abs=1e-12)


def test_workers_do_not_change_the_result(demo: Demo) -> None:
    one = evaluate_predictions(
        demo.preds, demo.root, EvaluateConfig(workers=1), show_progress=False
    )
    four = evaluate_predictions(
        demo.preds, demo.root, EvaluateConfig(workers=4), show_progress=False
    )
    assert one.metrics == four.metrics and one.per_tile.equals(four.per_tile)


def test_postprocessed_sweep_matches_brute_force(demo: Demo) -> None:
    post = PostprocessConfig(
        steps=[{"name": "land_mask", "dilation": 1}, {"name": "min_component", "min_pixels": 4}]
    )
    config = EvaluateConfig(postprocess=post, sweep=ThresholdSweep(start=0.4, stop=0.6, step=0.1))
    result = evaluate_predictions(demo.preds, demo.root, config, show_progress=False)
    images = resolve_labels(demo.root).images
    assert result.postprocess == ["land_mask", "min_component"]
    for row in result.sweep.itertuples():
        masks = {
            t: apply_postprocess(
                p.astype(np.float64) >= row.threshold, read_tile(images[t]).data, post
            )
            for t, p in demo.probs.items()
        }
        assert row.dice == pytest.approx(_global_dice(masks, demo.labels), abs=1e-12)


def test_missing_labels_and_predictions_are_reported(demo: Demo) -> None:
    some = dict(list(demo.probs.items())[:3])
    result = evaluate_predictions(some, demo.labels, show_progress=False)
    assert result.metrics["tiles"] == 3
    with pytest.raises(KelpsegError, match="labelled tiles have no prediction"):
        evaluate_predictions(some, demo.labels, EvaluateConfig(require_all_labelled=True))
    with pytest.raises(KelpsegError, match="predicted tiles have no label"):
        evaluate_predictions({**some, "ZZ999": some[next(iter(some))]}, demo.labels)
    with pytest.raises(KelpsegError, match="needs the satellite tiles"):
        evaluate_predictions(
            some, demo.labels, EvaluateConfig(postprocess=PostprocessConfig(steps=["land_mask"]))
        )


def test_test_labels_folder_finds_the_test_tiles_beside_it(demo: Demo) -> None:
    labels = resolve_labels(demo.root / "test_labels")
    assert labels.tile_ids and all(labels.has_image(t) for t in labels.tile_ids)
    assert labels.image(labels.tile_ids[0]).shape == (7, 350, 350)


def test_compare_variants_tabulates_ensembles_and_postprocessing(demo: Demo) -> None:
    perfect = {t: label.astype(np.float32) for t, label in demo.labels.items()}
    variants = {
        "model": demo.probs,
        "ensemble": EnsembleSource([demo.probs, perfect]),
        "model + land mask": Variant(demo.probs, PostprocessConfig(steps=["land_mask"])),
        "oracle": perfect,
    }
    table, results = compare_variants(variants, demo.root)
    assert list(table["variant"]) == list(variants)
    assert table["delta_dice"].iloc[0] == 0.0
    oracle = table.set_index("variant").loc["oracle"]
    assert oracle["dice"] == 1.0
    assert oracle["delta_dice"] == pytest.approx(1.0 - results["model"].dice)
    assert results["model + land mask"].postprocess == ["land_mask"]
    with pytest.raises(KelpsegError, match="other tiles"):
        compare_variants({"a": demo.probs, "b": dict(list(perfect.items())[:2])}, demo.root)


def test_threshold_sweep_parsing() -> None:
    sweep = ThresholdSweep.parse("0.3:0.7:0.1")
    np.testing.assert_allclose(sweep.values(), [0.3, 0.4, 0.5, 0.6, 0.7])
    assert len(ThresholdSweep().values()) == 41
    for bad in ("0.3:0.7", "a:b:c", "0.7:0.3:0.1"):
        with pytest.raises(KelpsegError):
            ThresholdSweep.parse(bad)
    with pytest.raises(ValueError, match="grid"):
        EvaluateConfig(sweep=ThresholdSweep(start=0.3, stop=0.4, step=0.0005))
