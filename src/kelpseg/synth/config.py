"""Every knob of the demo data generator, as one strict pydantic model."""

from __future__ import annotations

from typing import Any, Self

from pydantic import Field, model_validator

from kelpseg.config import StrictModel
from kelpseg.io.encoding import EncodingName

# The terrain canvas is 64 px wider than the tile on each side; shifts must stay inside it.
MAX_SHIFT = 32

#: What ``hard: true`` sets, for every one of these fields not given explicitly. Like the
#: competition: thin fringing beds, sparse canopy, outlines a pixel off, noisy test truth.
HARD_MODE: dict[str, Any] = {
    "fringe_share": 0.4,
    "sparse_canopy_share": 0.4,
    "outline_error_rate": 0.5,
    "noisy_test_labels": True,
    "wrong_bed_rate": 0.015,
}


class SynthConfig(StrictModel):
    """Settings of :func:`kelpseg.synth.generate_dataset`; saved as ``synth_config.yaml``.

    Shares are fractions of tiles unless stated otherwise. Defaults mimic the Kelp Wanted data:
    about 1% kelp pixels, over a third of tiles without kelp, 20% of tiles in the test split.
    """

    n_aoi: int = Field(
        default=40, ge=1, le=100_000, description="areas of interest (distinct DEMs)"
    )
    seed: int = Field(default=0, ge=0, description="one seed fixes every byte of the output")
    tile_size: int = Field(
        default=350, ge=32, le=2048, description="tile height and width in pixels"
    )
    tiles_per_aoi: tuple[int, int] = Field(
        default=(3, 12), description="min and max images per AOI"
    )

    test_fraction: float = Field(
        default=0.2, ge=0.0, le=0.9, description="share of tiles in the test split"
    )
    test_whole_aoi_share: float = Field(
        default=0.5, ge=0.0, le=1.0, description="share of test tiles drawn as whole test-only AOIs"
    )

    open_water_aoi_share: float = Field(
        default=0.1, ge=0.0, le=1.0, description="AOIs with no land"
    )
    mostly_land_aoi_share: float = Field(
        default=0.1, ge=0.0, le=1.0, description="AOIs mostly land"
    )
    kelp_aoi_share: float = Field(
        default=0.7, ge=0.0, le=1.0, description="AOIs whose shore holds kelp"
    )
    kelp_absent_date_share: float = Field(
        default=0.2, ge=0.0, le=1.0, description="dates without kelp in a kelp AOI"
    )
    kelp_abundance: float = Field(default=1.0, gt=0.0, le=5.0, description="scales kelp bed extent")

    cloud_free_share: float = Field(default=0.45, ge=0.0, le=1.0, description="tiles with no cloud")
    mostly_cloudy_share: float = Field(
        default=0.05, ge=0.0, le=1.0, description="tiles 70-100% cloud"
    )
    cloud_cover_max: float = Field(default=0.4, ge=0.0, le=1.0, description="max cover of the rest")
    slc_off_share: float = Field(default=0.2, ge=0.0, le=1.0, description="Landsat 7 SLC-off tiles")
    corrupted_tile_share: float = Field(
        default=0.1, ge=0.0, le=1.0, description="tiles with bad pixels"
    )

    missed_blob_tile_rate: float = Field(
        default=0.25, ge=0.0, le=1.0, description="train kelp tiles whose labels miss some beds"
    )
    missed_blob_rate: float = Field(
        default=0.35, ge=0.0, le=1.0, description="beds dropped in those"
    )
    false_blob_rate: float = Field(
        default=0.03, ge=0.0, le=1.0, description="train tiles with a false bed"
    )
    wrong_tile_rate: float = Field(
        default=0.02,
        ge=0.0,
        le=1.0,
        description="train tiles labelled wholly wrongly (mislabelled)",
    )

    misaligned_share: float = Field(
        default=0.03, ge=0.0, le=1.0, description="tiles with a shifted DEM"
    )
    misaligned_shift_px: tuple[int, int] = Field(
        default=(2, 4), description="min and max DEM shift (pixels, largest of row/col)"
    )

    hard: bool = Field(
        default=False,
        description="hard mode: fill the fields of HARD_MODE not set explicitly with its values",
    )
    fringe_share: float = Field(
        default=0.0, ge=0.0, le=1.0, description="kelp dates whose beds are thin fringes (1-3 px)"
    )
    sparse_canopy_share: float = Field(
        default=0.0, ge=0.0, le=1.0, description="kelp dates with sparse, speckled, faint canopy"
    )
    outline_error_rate: float = Field(
        default=0.0, ge=0.0, le=1.0, description="labels drawn a pixel loose or tight"
    )
    wrong_bed_rate: float = Field(
        default=0.0,
        ge=0.0,
        le=1.0,
        description="train tiles with kelp that also get a large wrong bed (mislabelled)",
    )
    noisy_test_labels: bool = Field(
        default=False,
        description="test labels as noisy as train ones; clean copy in test_kelp_clean/",
    )
    encoding: EncodingName = Field(
        default="c2l2",
        description="integer encoding of reflectance: c2l2 (Landsat Collection 2 Level-2), "
        "x10000 (Collection 1), s2l2a (Sentinel-2 L2A, x 10,000 + 1,000)",
    )

    write_train_truth: bool = Field(
        default=False,
        description="also write clean train labels to train_labels_true/ (for audits)",
    )

    @model_validator(mode="before")
    @classmethod
    def _hard_mode(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("hard") is True:
            data = {**HARD_MODE, **data}
        return data

    @model_validator(mode="after")
    def _check_ranges(self) -> Self:
        lo, hi = self.tiles_per_aoi
        if not 1 <= lo <= hi <= 1000:
            raise ValueError(f"tiles_per_aoi must satisfy 1 <= min <= max <= 1000, got {lo}, {hi}")
        lo, hi = self.misaligned_shift_px
        limit = min(MAX_SHIFT, self.tile_size // 8)
        if not 1 <= lo <= hi <= limit:
            raise ValueError(
                f"misaligned_shift_px must satisfy 1 <= min <= max <= {limit}, got {lo}, {hi}"
            )
        if self.open_water_aoi_share + self.mostly_land_aoi_share > 1.0:
            raise ValueError("open_water_aoi_share + mostly_land_aoi_share must be <= 1")
        if self.cloud_free_share + self.mostly_cloudy_share > 1.0:
            raise ValueError("cloud_free_share + mostly_cloudy_share must be <= 1")
        return self
