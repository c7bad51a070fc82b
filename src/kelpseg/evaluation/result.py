"""Accumulating per-tile counts into an :class:`EvaluationResult` (tables, curves, JSON)."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from kelpseg.errors import KelpsegError
from kelpseg.io.atomic import atomic_path
from kelpseg.metrics import (
    TileCounts,
    best_threshold,
    grid_indices,
    precision_recall_curve,
    scores,
)

METRIC_NAMES = ("dice", "iou", "precision", "recall", "accuracy", "dice_macro")


@dataclass
class EvaluationResult:
    """Everything ``kelpseg evaluate`` measured on a labelled set.

    Attributes:
        threshold: decision threshold of ``metrics``, ``confusion`` and ``per_tile.dice``.
        metrics: global scores over all pixels of all tiles (Dice is the competition metric;
            ``dice_macro`` the 2nd-place log's mean of background and kelp Dice), plus
            tp/fp/fn/tn and tile/pixel counts.
        confusion: [[TN, FP], [FN, TP]] at ``threshold``.
        sweep: one row per swept threshold: threshold, dice, iou, precision, recall.
        best_threshold: threshold of the highest swept Dice; ``best_dice`` its Dice.
        pr_curve: precision and recall at every grid threshold.
        average_precision: area under the step-wise precision-recall curve.
        per_tile: tile_id, label_pixels, pred_pixels, tp, fp, fn, dice, dice_best.
        is_probability: False when every prediction was a 0/1 mask (the sweep is then flat).
        postprocess: names of the post-processing steps applied before scoring.
    """

    threshold: float
    metrics: dict[str, float]
    confusion: np.ndarray
    sweep: pd.DataFrame
    best_threshold: float
    best_dice: float
    pr_curve: pd.DataFrame
    average_precision: float
    per_tile: pd.DataFrame
    is_probability: bool = True
    postprocess: list[str] = field(default_factory=list)

    @property
    def dice(self) -> float:
        """The competition metric: global Dice at ``threshold``."""
        return self.metrics["dice"]

    def per_tile_summary(self) -> dict[str, float | int]:
        """NaN-free statistics of per-tile Dice (empty-vs-empty tiles count as 1.0)."""
        tiles = self.per_tile
        d = tiles["dice"].to_numpy(dtype=np.float64)
        kelp = tiles["label_pixels"].to_numpy() > 0
        empty = (tiles["label_pixels"].to_numpy() == 0) & (tiles["pred_pixels"].to_numpy() == 0)
        if d.size == 0:
            return {"tiles": 0}
        return {
            "tiles": int(d.size),
            "mean": float(d.mean()),
            "median": float(np.median(d)),
            "p10": float(np.percentile(d, 10)),
            "p90": float(np.percentile(d, 90)),
            "min": float(d.min()),
            "empty_both_tiles": int(empty.sum()),
            "kelp_tiles": int(kelp.sum()),
            "mean_on_kelp_tiles": float(d[kelp].mean()) if kelp.any() else 1.0,
            "zero_dice_tiles": int((d == 0).sum()),
        }

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready summary (per-tile rows included, the PR curve every grid point)."""
        return {
            "threshold": self.threshold,
            "metrics": self.metrics,
            "confusion": {"labels": ["no kelp", "kelp"], "matrix": self.confusion.tolist()},
            "best_threshold": self.best_threshold,
            "best_dice": self.best_dice,
            "average_precision": self.average_precision,
            "is_probability": self.is_probability,
            "postprocess": self.postprocess,
            "per_tile_summary": self.per_tile_summary(),
            "sweep": self.sweep.to_dict(orient="records"),
            "pr_curve": self.pr_curve.to_dict(orient="list"),
            "per_tile": self.per_tile.to_dict(orient="records"),
        }

    def to_json(self, path: str | os.PathLike[str]) -> Path:
        """Write :meth:`to_dict` as JSON, atomically."""
        with atomic_path(path) as tmp:
            tmp.write_text(json.dumps(_plain(self.to_dict()), indent=1))
        return Path(path)


def _plain(value: Any) -> Any:
    """numpy and pandas scalars -> Python scalars, recursively (json cannot write them)."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


class MetricAccumulator:
    """Streams :class:`TileCounts` into global counters; :meth:`result` summarises them.

    Args:
        thresholds: the thresholds every tile was counted at (sweep plus headline threshold).
        n_bins: the histogram grid of the tiles' counts.
    """

    def __init__(self, thresholds: np.ndarray, n_bins: int) -> None:
        self.thresholds = np.asarray(thresholds, dtype=np.float64)
        grid_indices(self.thresholds, n_bins)
        self.n_bins = n_bins
        self.hist_pos = np.zeros(n_bins + 1, np.int64)
        self.hist_neg = np.zeros(n_bins + 1, np.int64)
        self.tiles: list[TileCounts] = []
        self.binary = True

    def add(self, counts: TileCounts) -> None:
        """Add one tile (its histograms are folded in; only its threshold counts are kept)."""
        self.hist_pos += counts.hist_pos
        self.hist_neg += counts.hist_neg
        inner = counts.hist_pos[1:-1].any() or counts.hist_neg[1:-1].any()
        self.binary = self.binary and not inner
        self.tiles.append(
            TileCounts(
                counts.tile_id,
                counts.pixels,
                counts.label_pixels,
                np.empty(0),
                np.empty(0),
                counts.tp,
                counts.fp,
                counts.fn,
            )
        )

    def result(
        self, threshold: float, sweep: np.ndarray, postprocess: list[str] | None = None
    ) -> EvaluationResult:
        """Summarise: metrics at ``threshold``, the sweep over ``sweep``, curves, per tile."""
        if not self.tiles:
            raise KelpsegError("no tiles were evaluated")
        # Thresholds are matched by grid index, never by float equality.
        col = {int(k): i for i, k in enumerate(grid_indices(self.thresholds, self.n_bins))}
        tp = np.sum([t.tp for t in self.tiles], axis=0)
        fp = np.sum([t.fp for t in self.tiles], axis=0)
        fn = np.sum([t.fn for t in self.tiles], axis=0)
        pixels = sum(t.pixels for t in self.tiles)
        tn = pixels - tp - fp - fn
        s = scores(tp, fp, fn, tn)
        sweep_cols = [col[int(k)] for k in grid_indices(sweep, self.n_bins)]
        sweep_df = pd.DataFrame({"threshold": np.asarray(sweep, dtype=np.float64)})
        for name in ("dice", "iou", "precision", "recall"):
            sweep_df[name] = s[name][sweep_cols]
        # 0/1 masks score the same at every threshold: keep the headline one as "best".
        best = threshold if self.binary else best_threshold(sweep, sweep_df["dice"].to_numpy())
        i, b = (col[int(k)] for k in grid_indices([threshold, best], self.n_bins))
        metrics = {name: float(s[name][i]) for name in METRIC_NAMES}
        metrics.update(tp=int(tp[i]), fp=int(fp[i]), fn=int(fn[i]), tn=int(tn[i]))
        metrics.update(tiles=len(self.tiles), pixels=int(pixels))
        grid, precision, recall, ap = precision_recall_curve(self.hist_pos, self.hist_neg)
        return EvaluationResult(
            threshold=float(threshold),
            metrics=metrics,
            confusion=np.array([[tn[i], fp[i]], [fn[i], tp[i]]], dtype=np.int64),
            sweep=sweep_df,
            best_threshold=float(best),
            best_dice=float(s["dice"][b]),
            pr_curve=pd.DataFrame({"threshold": grid, "precision": precision, "recall": recall}),
            average_precision=ap,
            per_tile=self._per_tile(i, b),
            is_probability=not self.binary,
            postprocess=list(postprocess or []),
        )

    def _per_tile(self, i: int, b: int) -> pd.DataFrame:
        tp = np.array([t.tp[i] for t in self.tiles])
        fp = np.array([t.fp[i] for t in self.tiles])
        fn = np.array([t.fn[i] for t in self.tiles])
        best = scores(
            np.array([t.tp[b] for t in self.tiles]),
            np.array([t.fp[b] for t in self.tiles]),
            np.array([t.fn[b] for t in self.tiles]),
            np.zeros(len(self.tiles)),
        )
        frame = pd.DataFrame(
            {
                "tile_id": pd.array([t.tile_id for t in self.tiles], dtype="string"),
                "label_pixels": np.array([t.label_pixels for t in self.tiles], dtype=np.int64),
                "pred_pixels": tp + fp,
                "tp": tp,
                "fp": fp,
                "fn": fn,
                "dice": scores(tp, fp, fn, np.zeros(tp.size))["dice"],
                "dice_best": best["dice"],
            }
        )
        return frame.sort_values("tile_id", ignore_index=True)
