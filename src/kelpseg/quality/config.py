"""Settings of the data-quality tools: the label audit and the DEM re-alignment."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from kelpseg.config import StrictModel


class AuditConfig(StrictModel):
    """Settings of ``kelpseg labels audit``; saved as ``audit_config.yaml`` beside its outputs.

    Attributes:
        score: key of :data:`kelpseg.quality.audit.SCORES`, how disagreement is measured.
        area_scale: pixels of kelp (label plus predicted) at which the ``dice_area`` score
            gives a tile half the weight of its Dice disagreement.
        threshold: probability at or above which a pixel counts as predicted kelp (every
            score but ``soft_dice_area``, and the gallery).
        min_blob_pixels: predicted kelp blobs (8-connected) smaller than this are ignored:
            scattered false pixels of a per-pixel model then do not read as missed beds.
        region_scale: unmatched interior pixels of a region (a bed labelled and not
            predicted, or the reverse) at which the ``region`` score is one half.
        core_depth: distance in pixels from a region's edge from which its pixels are its
            interior; thin fringing beds have none, so a model missing them scores nothing.
        top: worst tiles shown in the gallery and considered for the exclusion list.
        min_score: score from which one of the ``top`` tiles is flagged (exclusion list).
        fold: audit only the training tiles of this fold (``None``: every tile with both a
            label and a prediction). Needs a catalog with a ``fold`` column.
        combine: how the scores of several prediction folders (a committee) make one:
            ``min`` (consensus: every member must disagree with the label), ``mean`` (of the
            members' scores) or ``mean_prob`` (score the members' mean probability).
    """

    score: str = Field(
        "dice_area",
        description="dice_area, soft_dice_area, region, dice_area_region, dice or area",
    )
    area_scale: float = Field(100.0, gt=0.0, description="pixels at half weight (dice_area)")
    threshold: float = Field(0.5, gt=0.0, lt=1.0, description="kelp probability threshold")
    min_blob_pixels: int = Field(
        0, ge=0, le=100_000, description="predicted blobs smaller than this are ignored"
    )
    region_scale: float = Field(
        100.0, gt=0.0, description="unmatched region interior pixels at half weight (region)"
    )
    core_depth: float = Field(
        3.0, ge=1.0, le=50.0, description="pixels from a region's edge to its interior"
    )
    top: int = Field(20, ge=0, le=10_000, description="tiles in the gallery")
    min_score: float = Field(0.5, ge=0.0, description="score from which a tile is flagged")
    fold: int | None = Field(None, ge=0, description="only tiles of this fold")
    combine: Literal["min", "mean", "mean_prob"] = Field(
        "min", description="committee rule: min (consensus), mean, or mean_prob"
    )
