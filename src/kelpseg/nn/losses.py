"""Segmentation losses by name (:data:`LOSSES`) and their weighted sums.

Every loss takes one logit per pixel ``(N, 1, H, W)`` and a target of the same shape with values
in [0, 1]: soft labels (blurred masks, rotated mask edges) are used as they are, except by
Lovasz, which needs hard labels and thresholds the target at 0.5. Losses are computed in float32
whatever the autocast precision.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import segmentation_models_pytorch as smp
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from kelpseg.errors import KelpsegError
from kelpseg.nn.boundary import BoundaryLoss
from kelpseg.nn.config import LossConfig
from kelpseg.nn.mcc import MCCLoss


class WeightedBCE(nn.Module):
    """Binary cross entropy with per-class weights, as a 2-class ``CrossEntropyLoss(weight=w)``.

    The mean is weighted (divided by the summed pixel weights), exactly what torch's
    cross entropy does with class weights, so ``class_weights=[0.4, 0.6]`` reproduces the
    seed's weighted CE on a 1-logit head.
    """

    def __init__(self, class_weights: list[float] | None = None) -> None:
        super().__init__()
        self.class_weights = class_weights

    def forward(self, logits: Tensor, target: Tensor) -> Tensor:
        """Weighted mean BCE over all pixels."""
        loss = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
        if self.class_weights is None:
            return loss.mean()
        w0, w1 = self.class_weights
        weight = w1 * target + w0 * (1.0 - target)
        return (loss * weight).sum() / weight.sum().clamp_min(1e-12)


class BCEWithPosWeight(nn.Module):
    """Plain BCE (mean over pixels); ``pos_weight`` > 1 weights kelp pixels up."""

    def __init__(self, pos_weight: float | None = None) -> None:
        super().__init__()
        self.pos_weight = pos_weight

    def forward(self, logits: Tensor, target: Tensor) -> Tensor:
        """Mean BCE over all pixels."""
        pos = None if self.pos_weight is None else logits.new_tensor(self.pos_weight)
        return F.binary_cross_entropy_with_logits(logits, target, pos_weight=pos)


class SmoothedBCE(nn.Module):
    """Cross entropy with label smoothing, as smp's 2-class ``SoftCrossEntropyLoss``.

    Targets become ``y * (1 - s) + s / 2``: the seed's ``smooth_factor`` spread over 2 classes.
    """

    def __init__(self, smooth_factor: float = 0.1) -> None:
        super().__init__()
        if not 0.0 <= smooth_factor < 1.0:
            raise KelpsegError(f"smooth_factor must be in [0, 1), got {smooth_factor}")
        self.smooth_factor = smooth_factor

    def forward(self, logits: Tensor, target: Tensor) -> Tensor:
        """Mean BCE against smoothed targets."""
        smoothed = target * (1.0 - self.smooth_factor) + self.smooth_factor / 2.0
        return F.binary_cross_entropy_with_logits(logits, smoothed)


@dataclass(frozen=True)
class LossSpec:
    """A registry entry: how to build the loss, its options with defaults, a one-line summary.

    Attributes:
        build: called with the options (defaults updated by the config's ``params``).
        params: allowed option names and their defaults.
        summary: what it is, for docs and errors.
        hard_targets: threshold targets at 0.5 first (the loss needs 0/1 labels).
    """

    build: Callable[..., nn.Module]
    params: Mapping[str, Any] = field(default_factory=dict)
    summary: str = ""
    hard_targets: bool = False


LOSSES: dict[str, LossSpec] = {
    "dice": LossSpec(
        lambda smooth, log_loss: smp.losses.DiceLoss("binary", smooth=smooth, log_loss=log_loss),
        {"smooth": 0.0, "log_loss": False},
        "soft Dice over the batch (the seed's best)",
    ),
    "jaccard": LossSpec(
        lambda smooth, log_loss: smp.losses.JaccardLoss("binary", smooth=smooth, log_loss=log_loss),
        {"smooth": 0.0, "log_loss": False},
        "soft Jaccard (IoU)",
    ),
    "tversky": LossSpec(
        lambda alpha, beta, gamma, smooth: smp.losses.TverskyLoss(
            "binary", alpha=alpha, beta=beta, gamma=gamma, smooth=smooth
        ),
        {"alpha": 0.5, "beta": 0.5, "gamma": 1.0, "smooth": 0.0},
        "Tversky: alpha weighs false positives, beta false negatives",
    ),
    "focal": LossSpec(
        lambda alpha, gamma: smp.losses.FocalLoss("binary", alpha=alpha, gamma=gamma),
        {"alpha": None, "gamma": 2.0},
        "focal loss (down-weights easy pixels)",
    ),
    "lovasz": LossSpec(
        lambda per_image: smp.losses.LovaszLoss("binary", per_image=per_image),
        {"per_image": False},
        "Lovasz hinge (IoU surrogate; targets thresholded at 0.5)",
        hard_targets=True,
    ),
    "bce": LossSpec(
        BCEWithPosWeight, {"pos_weight": None}, "binary cross entropy, optional pos_weight"
    ),
    "ce": LossSpec(
        WeightedBCE,
        {"class_weights": None},
        "cross entropy with class weights [background, kelp] (the seed: [0.4, 0.6])",
    ),
    "soft_ce": LossSpec(SmoothedBCE, {"smooth_factor": 0.1}, "cross entropy with label smoothing"),
    "mcc": LossSpec(
        MCCLoss, {"eps": 1e-5}, "1 - Matthews correlation of the soft confusion matrix"
    ),
    "boundary": LossSpec(
        BoundaryLoss,
        {"max_distance": None},
        "boundary loss: probability x signed distance to the true kelp edge, per tile; 0 at "
        "the truth (targets thresholded at 0.5)",
        hard_targets=True,
    ),
}

# Named loss configs: ``loss: first-place`` in YAML (or ``--set loss=first-place``) expands to
# these terms. first-place: the 1st place's focal + soft Dice + boundary; the weights are a
# starting point (the boundary term's distances reach hundreds of pixels), not theirs.
LOSS_PRESETS: dict[str, list[dict[str, Any]]] = {
    "first-place": [
        {"name": "focal", "weight": 1.0, "params": {"gamma": 2.0}},
        {"name": "dice", "weight": 1.0},
        {"name": "boundary", "weight": 0.01},
    ],
}


def check_term(name: str, params: Mapping[str, Any]) -> None:
    """Raise ``ValueError`` for an unknown loss name or option (config validation)."""
    if name not in LOSSES:
        raise ValueError(f"unknown loss {name!r}; one of {', '.join(LOSSES)}")
    unknown = sorted(set(params) - set(LOSSES[name].params))
    if unknown:
        allowed = ", ".join(LOSSES[name].params) or "none"
        raise ValueError(f"loss {name!r} has no option {', '.join(unknown)} (options: {allowed})")
    weights = params.get("class_weights")
    if weights is not None and (len(weights) != 2 or min(weights) < 0 or sum(weights) <= 0):
        raise ValueError("class_weights must be two non-negative numbers [background, kelp]")


def build_term(name: str, params: Mapping[str, Any] | None = None) -> nn.Module:
    """Build one registry loss with ``params`` over its defaults."""
    params = dict(params or {})
    try:
        check_term(name, params)
    except ValueError as exc:
        raise KelpsegError(str(exc), "loss") from exc
    spec = LOSSES[name]
    return spec.build(**{**spec.params, **params})


class CombinedLoss(nn.Module):
    """A weighted sum of registry losses; :meth:`breakdown` gives each term for logging.

    Args:
        terms: ``(name, weight, params)`` triples.
    """

    def __init__(self, terms: list[tuple[str, float, Mapping[str, Any]]]) -> None:
        super().__init__()
        if not terms:
            raise KelpsegError("a loss needs at least one term", "loss.terms")
        self.names = [name for name, _, _ in terms]
        self.weights = [float(weight) for _, weight, _ in terms]
        self.hard = [LOSSES[name].hard_targets if name in LOSSES else False for name in self.names]
        self.terms = nn.ModuleList(build_term(name, params) for name, _, params in terms)

    def breakdown(self, logits: Tensor, target: Tensor) -> dict[str, Tensor]:
        """Each term's unweighted value, keyed by name (by ``name_i`` if a name repeats)."""
        if logits.shape != target.shape:
            raise KelpsegError(
                f"logits {tuple(logits.shape)} and target {tuple(target.shape)} differ"
            )
        logits, target = logits.float(), target.float()
        out: dict[str, Tensor] = {}
        for i, (name, hard, term) in enumerate(zip(self.names, self.hard, self.terms, strict=True)):
            key = name if self.names.count(name) == 1 else f"{name}_{i}"
            out[key] = term(logits, (target > 0.5).float() if hard else target)
        return out

    def combine(self, parts: dict[str, Tensor]) -> Tensor:
        """The weighted sum of a :meth:`breakdown`."""
        values = parts.values()
        return torch.stack([w * p for w, p in zip(self.weights, values, strict=True)]).sum()

    def forward(self, logits: Tensor, target: Tensor) -> Tensor:
        """The weighted sum of the terms."""
        return self.combine(self.breakdown(logits, target))


def build_loss(config: LossConfig) -> CombinedLoss:
    """The loss of a :class:`~kelpseg.nn.config.LossConfig`."""
    return CombinedLoss([(t.name, t.weight, t.params) for t in config.terms])
