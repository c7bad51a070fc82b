"""Ensemble selection (Caruana et al. 2004) and weight optimisation on global Dice.

Works on a :class:`PixelTable`: the pixels of some tiles with every member's probability and
the label. Pixels that no member scores at or above ``threshold_min`` and that are not kelp
can never count for any threshold in range (a weighted mean, of probabilities or of logits, is
at most the largest member), so they are dropped and the table stays small while every Dice
computed from it is exact. Selection only ever sees the table it is given: the caller builds
the selection fold's table, selects, and only then builds the reporting fold's table.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np
from scipy.optimize import minimize

from kelpseg.errors import KelpsegError

Mode = Literal["mean_prob", "mean_logit"]
_EPS = 1e-6


@dataclass(frozen=True)
class PixelTable:
    """Member probabilities (n, M) float32 and labels (n,) bool of the kept pixels.

    Attributes:
        probs: one column per member.
        labels: kelp or not.
        tiles: how many tiles the pixels come from.
        pixels: how many pixels those tiles hold (kept or not).
    """

    probs: np.ndarray
    labels: np.ndarray
    tiles: int
    pixels: int


@dataclass(frozen=True)
class ThresholdGrid:
    """Thresholds tried: ``k / n_bins`` for every k with ``low <= k / n_bins <= high``."""

    low: float = 0.05
    high: float = 0.95
    n_bins: int = 1000

    def __post_init__(self) -> None:
        if not 0.0 < self.low <= self.high < 1.0:
            raise KelpsegError(f"thresholds need 0 < low <= high < 1, got {self.low}, {self.high}")

    @property
    def bins(self) -> tuple[int, int]:
        """First and last grid index in range."""
        return int(np.ceil(self.low * self.n_bins - 1e-9)), int(np.floor(self.high * self.n_bins))


def combine(probs: np.ndarray, weights: np.ndarray, mode: Mode) -> np.ndarray:
    """Weighted mean of the columns of ``probs`` (weights summing to 1), as probabilities."""
    if mode == "mean_prob":
        return probs @ weights
    p = np.clip(probs, _EPS, 1.0 - _EPS)
    z = np.log(p / (1.0 - p)) @ weights
    return 1.0 / (1.0 + np.exp(-z))


def dice_curve(prob: np.ndarray, labels: np.ndarray, grid: ThresholdGrid) -> np.ndarray:
    """Global Dice ``2TP / (|P| + |T|)`` at every grid threshold in range (one histogram pass)."""
    index = np.clip(np.floor(prob * grid.n_bins + 1e-9).astype(np.int64), 0, grid.n_bins)
    everything = np.bincount(index, minlength=grid.n_bins + 1)
    kelp = np.bincount(index[labels], minlength=grid.n_bins + 1)
    predicted = np.cumsum(everything[::-1])[::-1]  # pixels with prob >= k / n_bins
    hits = np.cumsum(kelp[::-1])[::-1]
    lo, hi = grid.bins
    total = predicted[lo : hi + 1] + int(labels.sum())
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, 2.0 * hits[lo : hi + 1] / total, 1.0)


def best_dice(prob: np.ndarray, labels: np.ndarray, grid: ThresholdGrid) -> tuple[float, float]:
    """(best Dice, its threshold) over the grid; ties go to the lowest threshold."""
    curve = dice_curve(prob, labels, grid)
    k = int(np.argmax(curve))
    return float(curve[k]), (grid.bins[0] + k) / grid.n_bins


def dice_at(prob: np.ndarray, labels: np.ndarray, threshold: float) -> float:
    """Global Dice of ``prob >= threshold``."""
    pred = prob >= threshold
    total = int(pred.sum()) + int(labels.sum())
    return 1.0 if total == 0 else 2.0 * int((pred & labels).sum()) / total


@dataclass
class Selection:
    """The result of :func:`select_members`.

    Attributes:
        weights: one per member (sums to 1; 0 for members left out).
        threshold: decision threshold tuned jointly with the weights.
        dice: global Dice on the selection table at that threshold.
        greedy_counts: how often forward selection picked each member.
        greedy_dice: Dice after each greedy step (with its best threshold).
        greedy_best_dice: Dice of the greedy ensemble before weight optimisation.
        single_dice: each member alone (best threshold), on the selection table.
        single_thresholds: each member's own best threshold there.
    """

    weights: np.ndarray
    threshold: float
    dice: float
    greedy_counts: np.ndarray
    greedy_dice: list[float] = field(default_factory=list)
    greedy_best_dice: float = 0.0
    single_dice: np.ndarray = field(default_factory=lambda: np.zeros(0))
    single_thresholds: np.ndarray = field(default_factory=lambda: np.zeros(0))


def greedy_forward(
    table: PixelTable, grid: ThresholdGrid, mode: Mode, max_steps: int, patience: int
) -> tuple[np.ndarray, list[float]]:
    """Forward selection with replacement: add the member that most raises Dice, repeat.

    Returns the pick counts of the best prefix (earliest on ties) and Dice after each step.
    """
    m = table.probs.shape[1]
    picks: list[int] = []
    history: list[float] = []
    best_at, best = 0, -1.0
    for step in range(max_steps):
        scores = []
        for j in range(m):
            counts = np.bincount([*picks, j], minlength=m).astype(np.float64)
            prob = combine(table.probs, counts / counts.sum(), mode)
            scores.append(best_dice(prob, table.labels, grid)[0])
        j = int(np.argmax(scores))  # ties: the lowest member index, so runs repeat
        picks.append(j)
        history.append(scores[j])
        if scores[j] > best + 1e-12:
            best_at, best = step + 1, scores[j]
        elif step + 1 - best_at >= patience:
            break
    counts = np.bincount(picks[:best_at], minlength=m).astype(np.float64)
    return counts, history


def optimise_weights(
    table: PixelTable, start: np.ndarray, grid: ThresholdGrid, mode: Mode, max_iter: int
) -> np.ndarray:
    """Nelder-Mead over the weights of the members ``start`` uses, threshold tuned each time.

    Global Dice is piecewise constant in the weights, so the simplex starts wide (a quarter of
    the mean weight per member) rather than at scipy's 5 % default.
    """
    used = np.flatnonzero(start > 0)
    if len(used) < 2:
        return start / start.sum()
    x0 = start[used] / start[used].sum()

    def loss(x: np.ndarray) -> float:
        w = np.abs(x)
        if w.sum() <= 0:
            return 1.0
        full = np.zeros_like(start)
        full[used] = w / w.sum()
        return -best_dice(combine(table.probs, full, mode), table.labels, grid)[0]

    step = 0.25 * x0.mean()
    simplex = np.vstack([x0, *[x0 + step * np.eye(len(used))[i] for i in range(len(used))]])
    opts = {"maxiter": max_iter, "initial_simplex": simplex, "xatol": 1e-4, "fatol": 1e-7}
    found = minimize(loss, x0, method="Nelder-Mead", options=opts)
    best_x = found.x if found.fun < loss(x0) else x0
    out = np.zeros_like(start)
    out[used] = np.abs(best_x) / np.abs(best_x).sum()
    return out


def select_members(
    table: PixelTable,
    *,
    grid: ThresholdGrid | None = None,
    mode: Mode = "mean_prob",
    max_steps: int = 20,
    patience: int = 5,
    optimise: bool = True,
    max_iter: int = 400,
    min_weight: float = 0.01,
) -> Selection:
    """Greedy selection with replacement, then weight optimisation, threshold tuned jointly.

    Args:
        table: the selection fold's pixels (nothing else is read).
        grid: thresholds tried.
        mode: how members combine (``mean_prob`` or ``mean_logit``).
        max_steps: greedy steps at most; patience: steps without gain before stopping.
        optimise: refine the greedy weights with Nelder-Mead.
        max_iter: Nelder-Mead iterations.
        min_weight: members below this weight are dropped (and weights renormalised).
    """
    grid = grid or ThresholdGrid()
    if table.probs.ndim != 2 or table.probs.shape[1] < 1:
        raise KelpsegError("ensemble selection needs at least one member")
    if not table.labels.any():
        raise KelpsegError("the selection tiles hold no kelp: Dice cannot rank members")
    singles = [
        best_dice(table.probs[:, j], table.labels, grid) for j in range(table.probs.shape[1])
    ]
    counts, history = greedy_forward(table, grid, mode, max_steps, patience)
    greedy_dice = best_dice(combine(table.probs, counts / counts.sum(), mode), table.labels, grid)
    weights = optimise_weights(table, counts, grid, mode, max_iter) if optimise else counts
    weights = np.where(weights / weights.sum() < min_weight, 0.0, weights)
    weights = weights / weights.sum()
    dice, threshold = best_dice(combine(table.probs, weights, mode), table.labels, grid)
    return Selection(
        weights=weights,
        threshold=threshold,
        dice=dice,
        greedy_counts=counts,
        greedy_dice=history,
        greedy_best_dice=greedy_dice[0],
        single_dice=np.array([s[0] for s in singles]),
        single_thresholds=np.array([s[1] for s in singles]),
    )
