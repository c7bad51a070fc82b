"""Metrics against independent computations: Dice, the one-pass sweep, PR curve, conventions."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import average_precision_score, confusion_matrix

from kelpseg.errors import KelpsegError
from kelpseg.evaluation.result import MetricAccumulator
from kelpseg.metrics import (
    best_threshold,
    bin_index,
    count_tile,
    dice_coefficient,
    grid_indices,
    scores,
    threshold_grid,
)

N_BINS = 1000
SWEEP = np.round(np.arange(30, 71) / 100, 9)


def _random_tiles(n: int, seed: int, size: int = 40) -> list[tuple[str, np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(seed)
    tiles = []
    for i in range(n):
        label = (rng.random((size, size)) < rng.uniform(0, 0.3)).astype(np.uint8)
        prob = np.clip(label * 0.35 + rng.random((size, size)) * 0.65, 0, 1).astype(np.float32)
        # Values exactly on the grid, and float32 values next to it, are the hard cases.
        prob.flat[:50] = rng.integers(0, N_BINS + 1, 50) / N_BINS
        tiles.append((f"T{i:03d}", prob, label))
    return tiles


def _accumulate(tiles: list, thresholds: np.ndarray = SWEEP) -> MetricAccumulator:
    acc = MetricAccumulator(thresholds, N_BINS)
    for tile_id, prob, label in tiles:
        acc.add(count_tile(tile_id, prob, label, thresholds, N_BINS))
    return acc


def test_bin_index_is_exact_against_the_grid() -> None:
    rng = np.random.default_rng(0)
    grid = threshold_grid(N_BINS)
    p = np.concatenate(
        [rng.random(20_000), grid, np.nextafter(grid, -1), grid.astype(np.float32)]
    ).clip(0, 1)
    idx = bin_index(p, N_BINS)
    for k in range(0, N_BINS + 1, 7):
        np.testing.assert_array_equal(idx >= k, p >= grid[k])
    assert idx.min() >= 0 and idx.max() == N_BINS


def test_sweep_equals_brute_force_per_threshold_computation() -> None:
    tiles = _random_tiles(6, seed=1)
    result = _accumulate(tiles).result(0.5, SWEEP)
    probs = np.concatenate([p.ravel().astype(np.float64) for _, p, _ in tiles])
    truth = np.concatenate([t.ravel().astype(bool) for _, _, t in tiles])
    for row in result.sweep.itertuples():
        pred = probs >= row.threshold
        tp = np.sum(pred & truth)
        expected = 2 * tp / (pred.sum() + truth.sum())
        assert row.dice == expected
        assert row.precision == tp / pred.sum()
        assert row.recall == tp / truth.sum()
    assert result.best_dice == result.sweep["dice"].max()
    assert result.sweep.loc[result.sweep.threshold == result.best_threshold, "dice"].item() == (
        result.sweep["dice"].max()
    )


def test_global_dice_is_over_all_pixels_not_a_mean_of_tiles() -> None:
    tiles = _random_tiles(5, seed=2)
    result = _accumulate(tiles).result(0.5, SWEEP)
    preds = [p.astype(np.float64) >= 0.5 for _, p, _ in tiles]
    labels = [t for _, _, t in tiles]
    all_pred, all_true = (
        np.concatenate([x.ravel() for x in preds]),
        np.concatenate([x.ravel() for x in labels]),
    )
    expected = 2 * np.sum(all_pred & (all_true == 1)) / (all_pred.sum() + all_true.sum())
    assert result.dice == pytest.approx(expected, abs=1e-15)
    assert result.dice == pytest.approx(dice_coefficient(all_pred, all_true), abs=1e-15)
    per_tile = [dice_coefficient(p, t) for p, t in zip(preds, labels, strict=True)]
    np.testing.assert_allclose(result.per_tile["dice"], per_tile)
    assert result.dice != pytest.approx(np.mean(per_tile))
    cm = confusion_matrix(all_true, all_pred, labels=[0, 1])
    np.testing.assert_array_equal(result.confusion, cm)
    m = result.metrics
    assert m["iou"] == pytest.approx(cm[1, 1] / (cm[1, 1] + cm[0, 1] + cm[1, 0]))
    assert m["accuracy"] == pytest.approx((cm[0, 0] + cm[1, 1]) / cm.sum())
    assert m["tp"] + m["fp"] + m["fn"] + m["tn"] == m["pixels"] == 5 * 40 * 40


def test_pr_curve_and_average_precision_match_sklearn_on_grid_values() -> None:
    tiles = _random_tiles(4, seed=3)
    tiles = [(i, bin_index(p, N_BINS) / N_BINS, t) for i, p, t in tiles]
    result = _accumulate(tiles).result(0.5, SWEEP)
    probs = np.concatenate([p.ravel() for _, p, _ in tiles])
    truth = np.concatenate([t.ravel() for _, _, t in tiles])
    assert result.average_precision == pytest.approx(average_precision_score(truth, probs))
    curve = result.pr_curve
    for k in (0, 123, 500, 999, 1000):
        pred = probs >= curve.threshold[k]
        tp = np.sum(pred & (truth == 1))
        assert curve.recall[k] == tp / truth.sum()
        assert curve.precision[k] == (tp / pred.sum() if pred.sum() else 1.0)


def test_empty_tiles_score_one_and_nothing_is_nan() -> None:
    empty = np.zeros((8, 8), np.uint8)
    tiles = [("E1", empty.astype(np.float32), empty), ("E2", empty.astype(np.float32), empty)]
    result = _accumulate(tiles).result(0.5, SWEEP)
    assert result.dice == 1.0 and result.metrics["precision"] == 1.0
    assert (result.per_tile["dice"] == 1.0).all()
    summary = result.per_tile_summary()
    assert summary["empty_both_tiles"] == 2 and summary["mean_on_kelp_tiles"] == 1.0
    assert all(np.isfinite(v) for v in summary.values())
    assert np.isfinite(result.sweep.drop(columns="threshold").to_numpy()).all()
    assert result.average_precision == 0.0


def test_per_tile_dice_of_a_missed_tile_is_zero() -> None:
    label = np.zeros((8, 8), np.uint8)
    label[2:4, 2:4] = 1
    result = _accumulate([("M", np.zeros((8, 8), np.float32), label)]).result(0.5, SWEEP)
    assert result.per_tile["dice"].item() == 0.0
    assert result.per_tile_summary()["zero_dice_tiles"] == 1
    assert result.metrics["recall"] == 0.0 and result.metrics["precision"] == 1.0


def test_binary_masks_keep_the_headline_threshold() -> None:
    tiles = [(i, (p >= 0.5).astype(np.float32), t) for i, p, t in _random_tiles(2, seed=4)]
    result = _accumulate(tiles).result(0.5, SWEEP)
    assert not result.is_probability
    assert result.best_threshold == 0.5
    assert result.sweep["dice"].nunique() == 1


def test_count_tile_with_a_postprocess_counts_the_processed_masks() -> None:
    ((_, prob, label),) = _random_tiles(1, seed=5)
    plain = count_tile("A", prob, label, SWEEP, N_BINS)
    same = count_tile("A", prob, label, SWEEP, N_BINS, postprocess=lambda m: m)
    np.testing.assert_array_equal(plain.tp, same.tp)
    np.testing.assert_array_equal(plain.fp, same.fp)
    wiped = count_tile("A", prob, label, SWEEP, N_BINS, postprocess=np.zeros_like)
    assert not wiped.tp.any() and not wiped.fp.any()
    np.testing.assert_array_equal(wiped.fn, label.sum())
    np.testing.assert_array_equal(wiped.hist_pos, plain.hist_pos)


def test_best_threshold_takes_the_middle_of_a_plateau() -> None:
    assert best_threshold([0.3, 0.4, 0.5, 0.6], [0.1, 0.9, 0.2, 0.3]) == 0.4
    assert best_threshold([0.3, 0.4, 0.5, 0.6, 0.7], [0.1, 0.8, 0.8, 0.8, 0.2]) == 0.5
    with pytest.raises(KelpsegError):
        best_threshold([], [])


def test_thresholds_off_the_grid_are_refused() -> None:
    assert grid_indices([0.3, 0.45], 100).tolist() == [30, 45]
    with pytest.raises(KelpsegError, match="grid"):
        grid_indices([0.305], 100)
    with pytest.raises(KelpsegError, match="differ"):
        count_tile("A", np.zeros((2, 2)), np.zeros((3, 3)), SWEEP, N_BINS)


def test_scores_are_vectorised_and_nan_free() -> None:
    s = scores(np.array([0, 5]), np.array([0, 5]), np.array([0, 0]), np.array([4, 0]))
    np.testing.assert_allclose(s["dice"], [1.0, 2 * 5 / 15])
    np.testing.assert_allclose(s["precision"], [1.0, 0.5])
    np.testing.assert_allclose(s["recall"], [1.0, 1.0])
