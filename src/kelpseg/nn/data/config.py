"""Settings of the training data pipeline: sources, folds, crops, sampler, augmentation, sizing.

Sampler defaults are the 2nd-place author's best (see ``docs/training.md``, "Data pipeline"): his
weight formula with the factors (3.0, 0.2, 0.0, -1.0, 0.5, 0.25, -1.0) tuned for it and 10,240
samples per epoch. Augmentation and sizing defaults are kelpseg's (flips and quarter turns,
reflect padding to the next multiple of 32); docs/reproduce.md lists where they differ from his.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal, Self

from pydantic import Field, model_validator

from kelpseg.config import StrictModel


class ImportanceFactors(StrictModel):
    """Per-tile importance factors of the weighted sampler, one per EDA statistic.

    How a factor enters the weight depends on ``SamplerConfig.formula`` (see
    :func:`~kelpseg.nn.data.sampler.sample_weights`). Under ``"author"`` (the 2nd-place
    author's): flags count as 0/1 (``has_kelp``, ``qa_ok``), every share enters as
    ``1 - share`` and ``almost_all_water`` multiplies ``1 - water_pixels_pct``; the sum is
    min-max normalised over the tiles. Under ``"kelpseg"``: ``1 + sum(factor * column)`` over
    the columns as they are, clipped below at ``min_weight``. The defaults were tuned by the
    author for his formula.
    """

    has_kelp: float = Field(default=3.0, description="tile holds at least one kelp pixel")
    kelp_pixels_pct: float = Field(default=0.2, description="share of kelp pixels")
    qa_ok: float = Field(default=0.0, description="no QA-flagged (cloud/corrupt) pixels")
    qa_corrupted_pixels_pct: float = Field(default=-1.0, description="share of QA-flagged pixels")
    almost_all_water: float = Field(
        default=0.5,
        description="author: times 1 - water_pixels_pct; kelpseg: times the over-98%-water flag",
    )
    dem_nan_pixels_pct: float = Field(
        default=0.25, description="share of pixels without DEM (open sea)"
    )
    dem_zero_pixels_pct: float = Field(
        default=-1.0, description="share of pixels with DEM exactly 0"
    )


class SamplerConfig(StrictModel):
    """Which training tiles an epoch draws, and how many."""

    weighted: bool = Field(
        default=True, description="draw tiles by importance weight (with replacement)"
    )
    samples_per_epoch: int | None = Field(
        default=10240,
        ge=1,
        description="tiles drawn per epoch; None = the number of training tiles",
    )
    formula: Literal["author", "kelpseg"] = Field(
        default="author",
        description="tile weight formula: the 2nd-place author's (min-max normalised; the "
        "lowest-weight tiles get 0 and are never drawn) or kelpseg's 1 + sum(f * column)",
    )
    factors: ImportanceFactors = Field(default_factory=ImportanceFactors)
    min_weight: float = Field(
        default=0.01,
        gt=0.0,
        description="formula kelpseg only: weights are clipped below at this value (never zero)",
    )


class AugmentConfig(StrictModel):
    """Batch augmentations applied on the device to training batches only.

    Every transform is applied per sample with its probability; image and mask move together.
    """

    enabled: bool = Field(default=True, description="off = identity")
    hflip: float = Field(default=0.5, ge=0.0, le=1.0, description="left-right flip")
    vflip: float = Field(default=0.5, ge=0.0, le=1.0, description="up-down flip")
    rot90: float = Field(
        default=0.5, ge=0.0, le=1.0, description="quarter turn by 90, 180 or 270 degrees (uniform)"
    )
    rotate: float = Field(default=0.0, ge=0.0, le=1.0, description="small free rotation")
    rotate_degrees: float = Field(
        default=15.0, gt=0.0, le=180.0, description="max angle of `rotate`"
    )
    rotate_interpolation: Literal["bilinear", "nearest"] = Field(
        default="bilinear",
        description="resampling of image and mask (bilinear gives soft mask edges)",
    )
    rotate_padding: Literal["reflection", "zeros", "border"] = Field(
        default="reflection", description="how pixels rotated in from outside the tile are filled"
    )
    mosaic: float = Field(
        default=0.0, ge=0.0, le=1.0, description="Mosaic: four tiles of the batch -> one"
    )
    mosaic_min_share: float = Field(
        default=0.25, gt=0.0, le=0.5, description="smallest side of a Mosaic quadrant (share)"
    )
    cutmix: float = Field(
        default=0.0, ge=0.0, le=1.0, description="CutMix: a box pasted from another tile"
    )
    cutmix_area: tuple[float, float] = Field(
        default=(0.1, 0.5), description="CutMix box area, uniform in [low, high] (share of tile)"
    )
    soft_label_sigma: float = Field(
        default=0.0, ge=0.0, description="Gaussian blur of targets, pixels (0 = hard labels)"
    )
    holes: float = Field(
        default=0.0,
        ge=0.0,
        le=1.0,
        description="chance of blanking random rectangles (image: holes_fill, mask: 0)",
    )
    holes_max: int = Field(default=4, ge=1, description="at most this many rectangles")
    holes_size: tuple[float, float] = Field(
        default=(0.05, 0.2), description="(min, max) rectangle side as a fraction of the tile"
    )
    holes_fill: float = Field(default=0.0, description="value of blanked image pixels")

    @model_validator(mode="after")
    def _holes_size_order(self) -> Self:
        low, high = self.holes_size
        if not 0.0 < low <= high <= 1.0:
            raise ValueError(f"holes_size must satisfy 0 < min <= max <= 1, got {self.holes_size}")
        return self

    @model_validator(mode="after")
    def _cutmix_area_order(self) -> Self:
        low, high = self.cutmix_area
        if not 0.0 < low <= high <= 1.0:
            raise ValueError(f"cutmix_area must satisfy 0 < low <= high <= 1, got {low, high}")
        return self


class SizingConfig(StrictModel):
    """How tiles are brought to a size the network accepts (and predictions brought back)."""

    size: int | None = Field(
        default=None, ge=1, description="target height/width; None = next multiple of `multiple`"
    )
    scale: float | None = Field(
        default=None,
        ge=0.25,
        le=8.0,
        description="resize by this factor, rounded up to a multiple of `multiple` (scale 2.0: "
        "128 px crop -> 256, 350 px tile -> 704); relative, so crops and whole tiles keep one "
        "resolution; needs strategy resize, excludes size",
    )
    strategy: Literal["pad", "resize"] = Field(
        default="pad", description="pad, or resample the tile"
    )
    multiple: int = Field(default=32, ge=1, description="sizes must be divisible by this")
    pad_mode: Literal["reflect", "zeros", "replicate"] = Field(default="reflect")
    interpolation: Literal["bilinear", "bicubic"] = Field(
        default="bilinear", description="for resize"
    )
    mask_interpolation: Literal["soft", "nearest", "bilinear"] = Field(
        default="soft",
        description="masks under resize: soft (as the image, clamped to [0, 1]), nearest, or "
        "bilinear then thresholded at 0.5",
    )

    @model_validator(mode="after")
    def _size_is_multiple(self) -> Self:
        if self.size is not None and self.size % self.multiple:
            raise ValueError(f"size {self.size} is not a multiple of {self.multiple}")
        if self.scale is not None and self.size is not None:
            raise ValueError(
                f"scale ({self.scale}) and size ({self.size}) are mutually exclusive: "
                "set one of them (scale resizes by a factor, size to an absolute size)"
            )
        if self.scale is not None and self.strategy != "resize":
            raise ValueError(
                f"scale ({self.scale}) needs strategy: resize (strategy is {self.strategy})"
            )
        return self


class SlicingConfig(StrictModel):
    """Sliced training and overlapped sliced prediction (the seed's SAHI try; off by default).

    ``train``: training crops are ``size`` px slices of the grid whose windows start
    ``size - overlap`` px apart (the last one shifted to the tile's edge); the sizing below then
    brings each slice to the network's size (``strategy: resize`` resizes it, as the seed did).
    ``predict``: validation and prediction run the network on every slice of that grid and
    average the probabilities where slices overlap (see :mod:`kelpseg.nn.slicing`).
    """

    train: bool = Field(default=False, description="train on slices of the slice grid")
    predict: bool = Field(default=False, description="validate and predict by averaged slices")
    size: int = Field(default=128, ge=8, description="slice side in pixels")
    overlap: int = Field(default=64, ge=0, description="pixels shared by neighbouring slices")

    @model_validator(mode="after")
    def _overlap_below_size(self) -> Self:
        if self.overlap >= self.size:
            raise ValueError(f"overlap {self.overlap} must be smaller than size {self.size}")
        return self


class DataConfig(StrictModel):
    """Where training tiles come from and how batches are drawn.

    ``catalog`` is the split catalog parquet (tile paths + EDA statistics + ``fold``). Training
    uses the tiles of every fold but ``fold``, validation that fold; rows with fold -1 never train.
    ``fold: null`` trains on all folds (full fit) with no validation.
    """

    catalog: Path | None = Field(default=None, description="split catalog parquet")
    fold: int | None = Field(default=0, ge=0, description="validation fold; None = full fit")
    store: Path | None = Field(
        default=None, description="prepared store folder (kelpseg prepare); None = read GeoTIFFs"
    )
    exclude: list[str] = Field(default_factory=list, description="tile ids never used")
    exclude_file: Path | None = Field(
        default=None,
        description="file of tile ids to exclude (.txt one per line, or .csv/.parquet)",
    )
    predict_split: Literal["test", "val", "train", "holdout"] = Field(
        default="test", description="catalog tiles the predict loader serves (holdout = fold -1)"
    )
    stacked: dict[str, Path] = Field(
        default_factory=dict,
        description="stored per-tile channels appended to the input, e.g. {TREEPROB: treeprob/} "
        "(out-of-fold tree probabilities, kelpseg.tabular.stacking)",
    )

    batch_size: int = Field(default=32, ge=1)
    val_batch_size: int | None = Field(default=None, ge=1, description="None = batch_size")
    num_workers: int = Field(default=4, ge=0)
    pin_memory: bool | None = Field(default=None, description="None = when CUDA is available")
    persistent_workers: bool = Field(default=True, description="keep workers between epochs")
    prefetch_factor: int = Field(default=2, ge=1, description="batches loaded ahead per worker")

    crop_size: int | None = Field(
        default=None,
        ge=8,
        description="train on random square crops of this size; None = full tiles",
    )
    kelp_crop_prob: float = Field(
        default=0.0, ge=0.0, le=1.0, description="chance a crop is centred on a random kelp pixel"
    )
    crop_context: bool | None = Field(
        default=None,
        description="build input channels on the whole tile, then crop (channels that depend "
        "on the whole tile, OFFSET_* and LANDCLOSE, then see what prediction sees); None = on "
        "exactly when such a channel is used with crops",
    )

    slicing: SlicingConfig = Field(default_factory=SlicingConfig)
    sampler: SamplerConfig = Field(default_factory=SamplerConfig)
    augment: AugmentConfig = Field(default_factory=AugmentConfig)
    sizing: SizingConfig = Field(default_factory=SizingConfig)

    @model_validator(mode="after")
    def _slices_are_the_crops(self) -> Self:
        if not self.slicing.train:
            return self
        if self.crop_size not in (None, self.slicing.size):
            raise ValueError(
                f"slicing.train crops slices of slicing.size={self.slicing.size}; "
                f"crop_size={self.crop_size} contradicts it (leave crop_size unset)"
            )
        if self.crop_size is None:
            self.crop_size = self.slicing.size
        return self
