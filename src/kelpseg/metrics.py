"""Segmentation metrics streamed over tiles, with an exact one-pass threshold sweep.

Probabilities are binned on the grid ``k / n_bins``; a pixel is kelp at threshold ``t`` when
``prob >= t``. Per-class histograms give exact TP/FP/FN for every grid threshold after a single
pass, so the precision-recall curve and the sweep cost no extra reads.

Conventions (all results are NaN-free): the Dice of an empty prediction against an empty label
is 1.0 (nothing to find, nothing claimed), per tile and globally; precision is 1.0 when nothing
is predicted and recall 1.0 when nothing is labelled; IoU follows Dice.

``dice`` is the kelp class's Dice (the competition's metric). ``dice_macro`` is the 2nd-place
log's ``val/dice``: the mean of the background class's Dice ``2 TN / (2 TN + FP + FN)`` and the
kelp Dice (torchmetrics ``Dice(num_classes=2, average="macro")``); with ~99% background it
reads about 0.15 above kelp Dice on the competition's data.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from kelpseg.errors import KelpsegError

MaskFn = Callable[[np.ndarray], np.ndarray]


def threshold_grid(n_bins: int) -> np.ndarray:
    """The thresholds ``k / n_bins`` for k = 0..n_bins, exactly as the sweep compares them."""
    return np.arange(n_bins + 1, dtype=np.float64) / n_bins


def bin_index(prob: np.ndarray, n_bins: int) -> np.ndarray:
    """Index k of each probability with ``grid[k] <= p < grid[k + 1]`` (1.0 -> n_bins).

    Exact against the float grid: ``bin_index(p) >= k`` if and only if ``p >= grid[k]``.
    """
    p = np.asarray(prob, dtype=np.float64)
    idx = p * n_bins
    np.floor(idx, out=idx)
    np.clip(idx, 0, n_bins, out=idx)
    # floor(p * n) can be one off when p * n rounds across an integer: correct it both ways.
    # k / n here is bit-identical to threshold_grid(n)[k] (the same correctly rounded division).
    idx -= (idx / n_bins) > p
    idx += (idx < n_bins) & ((idx + 1) / n_bins <= p)
    return idx.astype(np.int64)


def grid_indices(thresholds: Sequence[float] | np.ndarray, n_bins: int) -> np.ndarray:
    """Grid index of each threshold; errors when one is not on the grid."""
    t = np.asarray(thresholds, dtype=np.float64)
    k = np.round(t * n_bins).astype(np.int64)
    if (np.abs(k - t * n_bins) > 1e-6).any() or (k < 0).any() or (k > n_bins).any():
        raise KelpsegError(f"thresholds must lie on the 1/{n_bins} grid within [0, 1]")
    return k


def scores(
    tp: np.ndarray | float, fp: np.ndarray | float, fn: np.ndarray | float, tn: np.ndarray | float
) -> dict[str, np.ndarray]:
    """Dice, IoU, precision, recall, accuracy and the macro Dice from counts (vectorised,
    NaN-free)."""
    tp, fp, fn, tn = (np.asarray(v, dtype=np.float64) for v in (tp, fp, fn, tn))

    def ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
        return np.divide(num, den, out=np.ones_like(num), where=den > 0)

    total = tp + fp + fn + tn
    dice = ratio(2 * tp, 2 * tp + fp + fn)
    dice_background = ratio(2 * tn, 2 * tn + fp + fn)
    return {
        "dice": dice,
        "dice_background": dice_background,
        "dice_macro": (dice + dice_background) / 2,
        "iou": ratio(tp, tp + fp + fn),
        "precision": ratio(tp, tp + fp),
        "recall": ratio(tp, tp + fn),
        "accuracy": ratio(tp + tn, total),
    }


def dice_coefficient(pred: np.ndarray, label: np.ndarray) -> float:
    """Dice of two binary masks, 2|P∩T| / (|P| + |T|), 1.0 when both are empty."""
    p, t = np.asarray(pred, dtype=bool), np.asarray(label, dtype=bool)
    den = int(p.sum()) + int(t.sum())
    return 1.0 if den == 0 else 2.0 * int((p & t).sum()) / den


@dataclass
class TileCounts:
    """One tile's contribution: histograms and TP/FP/FN at each evaluated threshold."""

    tile_id: str
    pixels: int
    label_pixels: int
    hist_pos: np.ndarray
    hist_neg: np.ndarray
    tp: np.ndarray
    fp: np.ndarray
    fn: np.ndarray


def count_tile(
    tile_id: str,
    prob: np.ndarray,
    label: np.ndarray,
    thresholds: np.ndarray,
    n_bins: int,
    postprocess: MaskFn | None = None,
) -> TileCounts:
    """Count one tile: probability histograms by class and TP/FP/FN at ``thresholds``.

    Args:
        tile_id: the tile's id.
        prob: (H, W) probabilities (or a 0/1 mask).
        label: (H, W) 0/1 label.
        thresholds: grid thresholds at which to count (see :func:`grid_indices`).
        n_bins: the histogram grid.
        postprocess: optional mask -> mask function applied after each thresholding; the
            histograms (precision-recall curve) always describe the raw probabilities.
    """
    prob = np.asarray(prob)
    truth = np.asarray(label).astype(bool)
    if prob.shape != truth.shape:
        raise KelpsegError(f"prediction {prob.shape} and label {truth.shape} differ", tile_id)
    idx = bin_index(prob, n_bins)
    hist_all = np.bincount(idx.ravel(), minlength=n_bins + 1)
    hist_pos = np.bincount(idx[truth], minlength=n_bins + 1)
    hist_neg = hist_all - hist_pos
    k = grid_indices(thresholds, n_bins)
    n_pos = int(truth.sum())
    if postprocess is None:
        tp = np.cumsum(hist_pos[::-1])[::-1][k]
        fp = np.cumsum(hist_neg[::-1])[::-1][k]
    else:
        tp, fp = np.empty(k.size, np.int64), np.empty(k.size, np.int64)
        for i, ki in enumerate(k):
            mask = np.asarray(postprocess(idx >= ki), dtype=bool)
            tp[i] = int((mask & truth).sum())
            fp[i] = int(mask.sum()) - tp[i]
    return TileCounts(tile_id, int(truth.size), n_pos, hist_pos, hist_neg, tp, fp, n_pos - tp)


def best_threshold(
    thresholds: Sequence[float] | np.ndarray, dice: Sequence[float] | np.ndarray
) -> float:
    """The threshold of highest Dice; among ties, the one nearest the middle of the ties.

    Ties are common on small sets (a plateau); its centre is the choice least likely to be a
    lucky edge.
    """
    t = np.asarray(thresholds, dtype=np.float64)
    d = np.asarray(dice, dtype=np.float64)
    if t.size == 0 or t.size != d.size:
        raise KelpsegError("best_threshold needs one Dice per threshold")
    ties = np.flatnonzero(d >= d.max() - 1e-12)
    return float(t[ties[len(ties) // 2]])


def sweep_counts(
    hist_pos: np.ndarray, hist_neg: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(tp, fp, fn)`` at every grid threshold from the kelp and background histograms
    (a pixel is kelp at threshold k when its bin is k or above)."""
    tp = np.cumsum(np.asarray(hist_pos, dtype=np.float64)[::-1])[::-1]
    fp = np.cumsum(np.asarray(hist_neg, dtype=np.float64)[::-1])[::-1]
    return tp, fp, tp[0] - tp


def precision_recall_curve(
    hist_pos: np.ndarray, hist_neg: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """Precision and recall at every grid threshold, and the average precision.

    Returns:
        (thresholds, precision, recall, average_precision); thresholds ascending.
    """
    n_bins = hist_pos.size - 1
    tp, fp, fn = sweep_counts(hist_pos, hist_neg)
    s = scores(tp, fp, fn, np.zeros_like(tp))
    recall, precision = s["recall"], s["precision"]
    # Step-wise area: each recall drop weighted by the precision where it ends.
    drops = recall - np.append(recall[1:], 0.0)
    ap = float((drops * precision).sum()) if tp[0] > 0 else 0.0
    return threshold_grid(n_bins), precision, recall, ap
