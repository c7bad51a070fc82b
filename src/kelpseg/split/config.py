"""Settings of the split stage: embedder, grouping threshold, fold scheme; one strict model."""

from __future__ import annotations

from pathlib import Path
from typing import Literal, Self

from pydantic import Field, model_validator

from kelpseg.config import StrictModel

DEFAULT_STRATIFY = ("qa_ok", "has_kelp", "dem_has_nans", "high_corrupted_pixels_pct")


class DemEmbedderConfig(StrictModel):
    """The weight-free DEM embedder (``embedder: dem``).

    Three coarse maps of the DEM layer, each a ``grid`` x ``grid`` area mean after a Gaussian
    blur: elevation (missing as 0, scaled by ``elevation_scale``), land (DEM > 0) and DEM
    coverage (not missing). The blur makes the vectors robust to a DEM shifted by a few pixels.
    """

    grid: int = Field(32, ge=4, le=128, description="cells per side of the coarse maps")
    blur_sigma: float = Field(4.0, ge=0.0, le=50.0, description="Gaussian blur (pixels) first")
    elevation_scale: float = Field(100.0, gt=0.0, description="metres that weigh like full land")
    land: bool = Field(True, description="add the land / water map")
    coverage: bool = Field(True, description="add the DEM coverage (missing / present) map")


class TimmEmbedderConfig(StrictModel):
    """A timm CNN encoder on the DEM (``embedder: timm:<model_name>``)."""

    pretrained: bool = Field(False, description="load pretrained weights (needs them locally)")
    checkpoint: Path | None = Field(None, description="local weights file for pretrained=true")
    image_size: int = Field(224, ge=32, le=1024, description="DEM resized to this many pixels")
    batch_size: int = Field(32, ge=1, le=4096, description="tiles per forward pass")
    device: str = Field("auto", description="'auto' (CUDA when present), 'cpu', 'cuda:0' ...")
    init_seed: int = Field(0, ge=0, description="seed of random weights (pretrained=false)")
    classifier: bool = Field(
        False,
        description="embed with the classifier's outputs (1,000 ImageNet logits, as the seed's "
        "ResNet-50) instead of the pooled features",
    )


class SplitConfig(StrictModel):
    """Settings of ``kelpseg split``; saved as ``split_config.yaml`` beside the outputs.

    Attributes:
        embedder: ``dem`` (weight-free, default) or ``timm:<model_name>``.
        threshold: cosine similarity at or above which two tiles share an AOI; ``None`` uses
            the embedder's calibrated default (``dem``: 0.90, ``timm``: 0.97 as the seed).
        mode: ``kfold`` (stratified group k-fold), ``random`` (stratified, ignores AOIs; for
            comparison only) or ``holdout`` (train / val / test by AOI).
        large_groups: what happens to a group above ``max_group_size``: ``explode`` regroups
            it at stricter thresholds (kelpseg), ``singletons`` makes each of its tiles a
            group of its own (the seed, with ``max_group_size: 100``).
        group_stratification: ``tiles``: stratified group k-fold on the tiles' labels
            (kelpseg); ``majority``: each AOI takes its tiles' most common label and the AOIs
            are split by stratified k-fold (the seed).
        exclude_kelp_above: training tiles whose kelp share (``kelp_pixels_pct``) is above
            this are excluded from every fold (the seed: 0.4, its ``high_kelp_pixels_pct``).

    ``configs/split/seed.yaml`` sets all of these as the seed's author did (docs/split.md).
    """

    embedder: str = Field("dem", description="'dem' or 'timm:<model_name>'")
    threshold: float | None = Field(None, gt=0.0, lt=1.0, description="cosine threshold")
    max_group_size: int = Field(50, ge=2, description="groups above this are split again")
    explode_step: float = Field(
        0.01, gt=0.0, lt=0.5, description="threshold increase per explode round"
    )
    large_groups: Literal["explode", "singletons"] = Field(
        "explode", description="groups above max_group_size: regroup stricter, or split up"
    )
    min_structure_pixels: int = Field(
        50, ge=1, description="DEM pixels of the minority class a tile needs to be grouped"
    )
    mode: Literal["kfold", "random", "holdout"] = "kfold"
    k: int = Field(10, ge=2, le=100, description="folds (kfold and random modes)")
    stratify: list[str] = Field(
        default_factory=lambda: list(DEFAULT_STRATIFY), description="EDA columns to stratify on"
    )
    stratify_bins: int = Field(4, ge=2, le=20, description="quantile bins of numeric columns")
    group_stratification: Literal["tiles", "majority"] = Field(
        "tiles", description="stratify tiles (group k-fold) or AOIs by their majority label"
    )
    exclude_kelp_above: float | None = Field(
        None, ge=0.0, le=1.0, description="exclude training tiles with a larger kelp share"
    )
    holdout: tuple[float, float, float] = Field(
        (0.8, 0.1, 0.1), description="train, val, test fractions (holdout mode)"
    )
    seed: int = Field(42, ge=0, description="seed of the fold assignment")
    workers: int = Field(0, ge=0, le=256, description="threads reading tiles (0 = CPU count)")
    sample_groups: int = Field(6, ge=0, le=50, description="groups drawn in sample_groups.png")
    dem: DemEmbedderConfig = Field(default_factory=DemEmbedderConfig)
    timm: TimmEmbedderConfig = Field(default_factory=TimmEmbedderConfig)

    @model_validator(mode="after")
    def _check(self) -> Self:
        if abs(sum(self.holdout) - 1.0) > 1e-6 or min(self.holdout) < 0.0:
            raise ValueError(f"holdout fractions must be >= 0 and sum to 1, got {self.holdout}")
        if self.holdout[0] <= 0.0 or self.holdout[1] <= 0.0:
            raise ValueError("holdout needs a train and a val fraction above 0")
        return self
