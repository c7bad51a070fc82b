"""Settings of the EDA stage: statistic thresholds, Dask execution, plots and the report.

Every ``*_pct`` statistic is a fraction in [0, 1] (not a percentage), and so is every
threshold here: ``almost_all_water: 0.98`` means "more than 98% of the pixels".
"""

from __future__ import annotations

from typing import Self

from pydantic import Field, model_validator

from kelpseg.config import StrictModel


class Thresholds(StrictModel):
    """Cut-offs of the per-tile flags; a flag is true when its fraction is strictly above."""

    high_kelp_pixels_pct: float = Field(
        0.40, ge=0.0, le=1.0, description="kelp fraction above which high_kelp_pixels_pct is set"
    )
    almost_all_water: float = Field(
        0.98, ge=0.0, le=1.0, description="water fraction above which almost_all_water is set"
    )
    high_corrupted_pixels_pct: float = Field(
        0.40,
        ge=0.0,
        le=1.0,
        description="QA-flagged fraction above which high_corrupted_pixels_pct is set",
    )
    dem_misaligned_px: float = Field(
        1.0, ge=0.0, le=100.0, description="DEM shift (pixels) above which dem_misaligned is set"
    )


class DaskSettings(StrictModel):
    """How the per-tile work runs on Dask."""

    chunk_size: int = Field(32, ge=1, le=10_000, description="tiles per Dask task")
    connect_timeout_s: float = Field(
        5.0, gt=0.0, le=600.0, description="seconds to wait for an existing scheduler"
    )
    memory_limit: str = Field("auto", description="memory limit per local worker ('auto', '2GiB')")


class PlotSettings(StrictModel):
    """Rendering of tile plots."""

    percentile_low: float = Field(2.0, ge=0.0, lt=100.0, description="lower stretch percentile")
    percentile_high: float = Field(98.0, gt=0.0, le=100.0, description="upper stretch percentile")
    dpi: int = Field(100, ge=20, le=600, description="resolution of figures")
    channels: list[str] = Field(
        default_factory=lambda: ["NDVI"], description="extra single-channel panels per tile"
    )

    @model_validator(mode="after")
    def _check_percentiles(self) -> Self:
        if self.percentile_low >= self.percentile_high:
            raise ValueError("percentile_low must be below percentile_high")
        return self


class ReportSettings(StrictModel):
    """Contents of the HTML report."""

    title: str = Field("kelpseg EDA report", description="page title")
    gallery_per_group: int = Field(4, ge=0, le=50, description="tiles per gallery section")
    seed: int = Field(0, ge=0, description="seed of the random gallery picks")


class EdaConfig(StrictModel):
    """Settings of ``kelpseg eda``; saved as ``eda_config.yaml`` beside the outputs.

    Attributes:
        tile_size: expected tile height and width in pixels (0 accepts any size).
        stats: names of the per-tile statistic groups to compute (``None``: all registered).
    """

    tile_size: int = Field(350, ge=0, le=20_000, description="expected tile size (0 = any)")
    stats: list[str] | None = Field(None, description="statistic groups (default: all)")
    thresholds: Thresholds = Field(default_factory=Thresholds)
    dask: DaskSettings = Field(default_factory=DaskSettings)
    plots: PlotSettings = Field(default_factory=PlotSettings)
    report: ReportSettings = Field(default_factory=ReportSettings)
