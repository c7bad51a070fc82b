"""The 2nd-place log's validation metric: macro Dice over background and kelp.

The log's ``val/dice`` was torchmetrics' ``Dice(num_classes=2, average="macro")`` on the argmax
of the 2-class head: the mean of the background class's Dice and the kelp class's Dice, each
summed over every pixel seen. Background is ~99% of the pixels, so its Dice sits near 0.99 and
lifts the mean: a kelp Dice of 0.70 reads as about 0.85. kelpseg's ``val/dice`` is the kelp
class alone (the competition's metric); :class:`MacroDice` is logged beside it as
``val/dice_macro`` so runs can be compared with the log's numbers like with like.
"""

from __future__ import annotations

import torch
from torch import Tensor
from torchmetrics import Metric

# The argmax of a 2-class softmax picks kelp when z_kelp > z_background, that is when the
# kelp probability is above 0.5 (a tie goes to background, the first class).
ARGMAX_THRESHOLD = 0.5


def dice_from_counts(tp: Tensor, fp: Tensor, fn: Tensor) -> Tensor:
    """``2 TP / (2 TP + FP + FN)``, 1.0 when the class is absent from prediction and label."""
    den = 2 * tp + fp + fn
    return torch.where(den > 0, 2 * tp / den.clamp_min(1), torch.ones_like(den))


class MacroDice(Metric):
    """Mean of background and kelp Dice over every pixel seen (the log's ``val/dice``).

    Args:
        threshold: kelp where the probability is above it (0.5 = the 2-class argmax).
    """

    full_state_update = False
    higher_is_better = True
    is_differentiable = False

    tp: Tensor
    fp: Tensor
    fn: Tensor
    tn: Tensor

    def __init__(self, threshold: float = ARGMAX_THRESHOLD) -> None:
        super().__init__()
        self.threshold = threshold
        for name in ("tp", "fp", "fn", "tn"):
            self.add_state(name, default=torch.zeros((), dtype=torch.float64), dist_reduce_fx="sum")

    def update(self, prob: Tensor, target: Tensor) -> None:
        """Add a batch: ``prob`` kelp probabilities, ``target`` 0/1 labels of the same shape."""
        pred = prob > self.threshold
        truth = target > 0
        self.tp += (pred & truth).sum()
        self.fp += (pred & ~truth).sum()
        self.fn += (~pred & truth).sum()
        self.tn += (~pred & ~truth).sum()

    def compute(self) -> Tensor:
        """The macro Dice of everything added since the last reset."""
        kelp = dice_from_counts(self.tp, self.fp, self.fn)
        background = dice_from_counts(self.tn, self.fn, self.fp)
        return ((kelp + background) / 2).float()


class ProbabilityHistogram(Metric):
    """Kelp probabilities of labelled-kelp and of background pixels, binned on ``k / n_bins``.

    From the two histograms TP, FP and FN follow at every grid threshold, so one validation
    pass yields the whole threshold sweep (:func:`kelpseg.nn.threshold.pick_threshold`). A
    pixel lands in bin ``floor(p * n_bins)``: kelp at threshold ``k / n_bins`` when its bin
    is ``>= k``, the ``prob >= threshold`` rule of inference.

    Args:
        n_bins: grid steps between 0 and 1.
    """

    full_state_update = False
    higher_is_better = None
    is_differentiable = False

    kelp: Tensor
    background: Tensor
    tiles: Tensor

    def __init__(self, n_bins: int = 100) -> None:
        super().__init__()
        self.n_bins = n_bins
        for name in ("kelp", "background"):
            zeros = torch.zeros(n_bins + 1, dtype=torch.float64)
            self.add_state(name, default=zeros, dist_reduce_fx="sum")
        self.add_state("tiles", default=torch.zeros((), dtype=torch.float64), dist_reduce_fx="sum")

    def update(self, prob: Tensor, target: Tensor) -> None:
        """Add a batch: ``prob`` kelp probabilities, ``target`` 0/1 labels of the same shape."""
        bins = torch.floor(prob.detach().double() * self.n_bins).clamp_(0, self.n_bins).long()
        truth = target > 0
        size = self.n_bins + 1
        self.kelp += torch.bincount(bins[truth], minlength=size).double()
        self.background += torch.bincount(bins[~truth], minlength=size).double()
        self.tiles += prob.shape[0]

    def compute(self) -> dict[str, Tensor]:
        """``histogram`` ``(2, n_bins + 1)`` (the kelp row, then background) and ``tiles``."""
        return {"histogram": torch.stack([self.kelp, self.background]), "tiles": self.tiles}
