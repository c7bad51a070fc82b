"""Matthews correlation coefficient loss on one kelp logit per pixel.

The log dropped smp's ``MCCLoss`` because it wants probabilities, not logits, of another shape;
this wrapper takes the logits every kelpseg loss takes. MCC weighs all four confusion cells, so
unlike Dice it also rewards getting the (vast) background right.
"""

from __future__ import annotations

import segmentation_models_pytorch as smp
import torch
from torch import Tensor, nn


class MCCLoss(nn.Module):
    """``1 - MCC`` of the soft confusion matrix over the whole batch.

    Args:
        eps: added to each confusion cell, so an all-background batch stays finite.
    """

    def __init__(self, eps: float = 1e-5) -> None:
        super().__init__()
        self.mcc = smp.losses.MCCLoss(eps=eps)

    def forward(self, logits: Tensor, target: Tensor) -> Tensor:
        """Loss of (N, 1, H, W) logits against (N, 1, H, W) targets in [0, 1]."""
        loss: Tensor = self.mcc(torch.sigmoid(logits), target)
        return loss
