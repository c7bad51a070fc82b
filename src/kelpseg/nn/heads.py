"""Losses of the other heads: the 2-class softmax head and the auxiliary tile-level head.

The multiclass head (``model.head: multiclass``) outputs (N, 2, H, W) logits, background and
kelp, as the 2nd-place log's networks did. Its loss terms use the names and options of
:data:`~kelpseg.nn.losses.LOSSES`; the ones the log compared in multiclass mode (Dice, Jaccard,
Tversky, focal, Lovasz, CE with class weights, soft CE) are smp's / torch's multiclass forms on
hard class targets, every other registry loss is applied to the kelp logit
``z_kelp - z_background`` (whose sigmoid is the softmax's kelp probability) with soft targets.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import segmentation_models_pytorch as smp
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from kelpseg.errors import KelpsegError
from kelpseg.nn.config import AuxHeadConfig, LossConfig
from kelpseg.nn.losses import LOSSES, CombinedLoss, build_term, check_term
from kelpseg.nn.models import kelp_logit


def _cross_entropy(class_weights: list[float] | None) -> nn.Module:
    weight = None if class_weights is None else torch.tensor(class_weights, dtype=torch.float32)
    return nn.CrossEntropyLoss(weight=weight)


#: Registry names with a native multiclass form: built from the same options as the binary one.
MULTICLASS_LOSSES: dict[str, Callable[..., nn.Module]] = {
    "dice": lambda smooth, log_loss: smp.losses.DiceLoss(
        "multiclass", smooth=smooth, log_loss=log_loss
    ),
    "jaccard": lambda smooth, log_loss: smp.losses.JaccardLoss(
        "multiclass", smooth=smooth, log_loss=log_loss
    ),
    "tversky": lambda alpha, beta, gamma, smooth: smp.losses.TverskyLoss(
        "multiclass", alpha=alpha, beta=beta, gamma=gamma, smooth=smooth
    ),
    "focal": lambda alpha, gamma: smp.losses.FocalLoss("multiclass", alpha=alpha, gamma=gamma),
    "lovasz": lambda per_image: smp.losses.LovaszLoss("multiclass", per_image=per_image),
    "ce": _cross_entropy,
    "soft_ce": lambda smooth_factor: smp.losses.SoftCrossEntropyLoss(smooth_factor=smooth_factor),
}


class MulticlassLoss(CombinedLoss):
    """A weighted sum of loss terms on (N, 2, H, W) logits and (N, 1, H, W) targets in [0, 1].

    Args:
        terms: ``(name, weight, params)`` triples, names and options of the loss registry.
    """

    def __init__(self, terms: list[tuple[str, float, Mapping[str, Any]]]) -> None:
        nn.Module.__init__(self)
        if not terms:
            raise KelpsegError("a loss needs at least one term", "loss.terms")
        for name, _, params in terms:
            try:
                check_term(name, params)
            except ValueError as exc:
                raise KelpsegError(str(exc), "loss") from exc
        self.names = [name for name, _, _ in terms]
        self.weights = [float(weight) for _, weight, _ in terms]
        self.native = [name in MULTICLASS_LOSSES for name in self.names]
        self.hard = [LOSSES[name].hard_targets for name in self.names]
        self.terms = nn.ModuleList(
            MULTICLASS_LOSSES[name](**{**LOSSES[name].params, **params})
            if name in MULTICLASS_LOSSES
            else build_term(name, params)
            for name, _, params in terms
        )

    def breakdown(self, logits: Tensor, target: Tensor) -> dict[str, Tensor]:
        """Each term's unweighted value, keyed by name (by ``name_i`` if a name repeats)."""
        if logits.ndim != 4 or logits.shape[1] != 2 or target.shape[1] != 1:
            raise KelpsegError(
                f"a multiclass loss takes (N, 2, H, W) logits and (N, 1, H, W) targets, got "
                f"{tuple(logits.shape)} and {tuple(target.shape)}"
            )
        if logits.shape[-2:] != target.shape[-2:] or logits.shape[0] != target.shape[0]:
            raise KelpsegError(f"logits {tuple(logits.shape)} and target {tuple(target.shape)}")
        logits, target = logits.float(), target.float()
        classes = (target[:, 0] > 0.5).long()
        kelp = kelp_logit(logits)
        out: dict[str, Tensor] = {}
        parts = zip(self.names, self.native, self.hard, self.terms, strict=True)
        for i, (name, native, hard, term) in enumerate(parts):
            key = name if self.names.count(name) == 1 else f"{name}_{i}"
            if native:
                out[key] = term(logits, classes)
            else:
                out[key] = term(kelp, (target > 0.5).float() if hard else target)
        return out


def build_head_loss(config: LossConfig, head: str) -> CombinedLoss:
    """The loss of ``config`` for a ``binary`` or ``multiclass`` head."""
    terms: list[tuple[str, float, Mapping[str, Any]]] = [
        (t.name, t.weight, t.params) for t in config.terms
    ]
    return MulticlassLoss(terms) if head == "multiclass" else CombinedLoss(terms)


def tile_targets(target: Tensor) -> Tensor:
    """(N, 2) float targets of the auxiliary head: has kelp (0/1) and kelp fraction."""
    kelp = (target > 0.5).flatten(1).float()
    return torch.stack([kelp.amax(dim=1), kelp.mean(dim=1)], dim=1)


def aux_losses(tile_logits: Tensor, target: Tensor, config: AuxHeadConfig) -> dict[str, Tensor]:
    """Weighted losses of the auxiliary head: ``aux_has_kelp`` and ``aux_fraction``.

    Args:
        tile_logits: (N, 2) head output: has-kelp logit, kelp-fraction logit.
        target: (N, 1, H, W) masks at the tiles' own size (the pixels scored).
        config: the loss weights.
    """
    truth = tile_targets(target)
    logits = tile_logits.float()
    # Both are BCE with logits: classification for has-kelp, a [0, 1] regression for the share.
    has_kelp = F.binary_cross_entropy_with_logits(logits[:, 0], truth[:, 0])
    fraction = F.binary_cross_entropy_with_logits(logits[:, 1], truth[:, 1])
    return {
        "aux_has_kelp": config.has_kelp_weight * has_kelp,
        "aux_fraction": config.fraction_weight * fraction,
    }
