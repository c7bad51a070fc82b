"""The decision threshold a trained model carries, picked on its validation fold (issue 24).

Training with CE + Dice on crops drawn around kelp over-predicts early on, so 0.5 is often not
the best cut. After training, the probabilities of the validation fold's whole tiles at the
best epoch (kept as two histograms by :class:`~kelpseg.nn.metrics.ProbabilityHistogram`) are
swept over the grid ``k / 100`` and the threshold of highest Dice is kept
(:func:`kelpseg.metrics.best_threshold`: the middle of a plateau). The choice never sees test
data. It travels with the model: in the checkpoint (``kelpseg.threshold``), in ``result.json``,
as the MLflow tag ``kelpseg.best_threshold`` and, through loading, in exported packages;
``predict``, ``predict-scene``, ensembles and ``export`` use it unless given ``--threshold``.
Full-fit runs (no validation fold) keep ``trainer.threshold`` and say so.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from kelpseg.metrics import best_threshold, scores, sweep_counts, threshold_grid

#: The MLflow tag of the picked threshold (read back by :mod:`kelpseg.inference.loading`).
THRESHOLD_TAG = "kelpseg.best_threshold"
#: The checkpoint key (inside the ``kelpseg`` payload) of the picked threshold.
PAYLOAD_KEY = "threshold"
#: Sweep limits: the extremes are never useful cuts and only fit noise on small folds.
SWEEP_RANGE = (0.05, 0.95)
#: Kelp pixels the validation fold needs before a threshold is picked on it (with none, every
#: cut that predicts nothing scores a perfect, meaningless Dice of 1).
MIN_KELP_PIXELS = 100


@dataclass(frozen=True)
class ThresholdChoice:
    """A model's decision threshold and where it came from.

    Attributes:
        threshold: kelp where the probability is at or above it.
        source: where it came from, in words (printed and stored with the model).
        default: the training config's ``trainer.threshold``.
        val_dice: validation Dice at ``threshold`` (None without a validation fold).
        val_dice_default: validation Dice at ``default`` (None without a validation fold).
        val_tiles: whole validation tiles swept (None without a validation fold).
    """

    threshold: float
    source: str
    default: float
    val_dice: float | None = None
    val_dice_default: float | None = None
    val_tiles: int | None = None

    def as_dict(self) -> dict[str, Any]:
        """Plain values, for JSON and checkpoints."""
        return asdict(self)

    @classmethod
    def from_dict(cls, doc: dict[str, Any]) -> ThresholdChoice:
        """Read :meth:`as_dict` back (unknown keys are ignored)."""
        names = cls.__dataclass_fields__
        return cls(**{k: v for k, v in doc.items() if k in names})

    def summary(self) -> str:
        """One line: the threshold, its source and the validation Dice at both thresholds."""
        line = f"threshold {self.threshold:.2f} ({self.source})"
        if self.val_dice is not None and self.val_dice_default is not None:
            line += (
                f": val Dice {self.val_dice:.4f} at {self.threshold:.2f}, "
                f"{self.val_dice_default:.4f} at {self.default:.2f}"
            )
        return line


def sweep_dice(histogram: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(thresholds, dice)`` at every grid threshold from a ``(2, n_bins + 1)`` histogram."""
    kelp, background = np.asarray(histogram, dtype=np.float64)
    tp, fp, fn = sweep_counts(kelp, background)
    return threshold_grid(kelp.size - 1), scores(tp, fp, fn, np.zeros_like(tp))["dice"]


def pick_threshold(
    histogram: np.ndarray | None, default: float, *, fold: int | None, tiles: int | None
) -> ThresholdChoice:
    """The validation-best threshold of a histogram, or ``default`` when there is none.

    Args:
        histogram: ``(2, n_bins + 1)`` kelp and background counts of the validation fold at
            the kept epoch; None when the run had no validation.
        default: the training config's threshold.
        fold: the validation fold (None in full-fit mode).
        tiles: how many whole validation tiles the histogram counts.
    """
    if histogram is None or fold is None:
        why = "full fit: no validation fold" if fold is None else "no validation pass recorded"
        return ThresholdChoice(default, f"training config ({why})", default)
    kelp_pixels = int(np.asarray(histogram)[0].sum())
    if kelp_pixels < MIN_KELP_PIXELS:
        why = f"fold {fold} has {kelp_pixels} kelp pixels, too few to pick on"
        return ThresholdChoice(default, f"training config ({why})", default, val_tiles=tiles)
    thresholds, dice = sweep_dice(histogram)
    inside = (thresholds >= SWEEP_RANGE[0] - 1e-12) & (thresholds <= SWEEP_RANGE[1] + 1e-12)
    chosen = best_threshold(thresholds[inside], dice[inside])
    at = int(np.argmin(np.abs(thresholds - chosen)))
    # The default may lie between grid points: its Dice is read at the grid point at or above it.
    at_default = int(np.searchsorted(thresholds, default - 1e-12))
    what = f"{tiles} tiles" if tiles is not None else "whole tiles"
    return ThresholdChoice(
        threshold=round(chosen, 4),
        source=f"validation sweep on fold {fold}, {what}",
        default=default,
        val_dice=float(dice[at]),
        val_dice_default=float(dice[at_default]),
        val_tiles=tiles,
    )


def checkpoint_choice(payload: dict[str, Any]) -> ThresholdChoice | None:
    """The threshold a checkpoint's ``kelpseg`` payload carries (None for older checkpoints)."""
    doc = payload.get(PAYLOAD_KEY)
    return ThresholdChoice.from_dict(doc) if isinstance(doc, dict) else None
