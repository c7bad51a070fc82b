"""Settings of scene prediction, as one strict pydantic model (saved beside the outputs)."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from kelpseg.config import StrictModel
from kelpseg.io.tiles import SPECTRAL_BANDS
from kelpseg.scenes.bands import QA_KEYS
from kelpseg.scenes.qa import QaConfig
from kelpseg.scenes.scaling import SCALING_CHOICES
from kelpseg.scenes.windows import BLENDS


class SceneConfig(StrictModel):
    """How a scene is read, which model runs on it, and how windows are blended."""

    preset: Literal["landsat57", "landsat89"] | None = Field(
        default=None, description="band numbers of Landsat 5/7 or 8/9 (detected if omitted)"
    )
    bands: dict[str, int] = Field(
        default_factory=dict,
        description="explicit band number per meaning (SWIR1, NIR, R, G, B, QA_PIXEL, ...)",
    )
    scaling: str = Field(default="auto", description=f"one of {', '.join(SCALING_CHOICES)}")
    scale: float | None = Field(default=None, description="custom scaling: multiplier")
    offset: float | None = Field(default=None, description="custom scaling: offset")
    qa: QaConfig = Field(default_factory=QaConfig)
    dem: Path | None = Field(default=None, description="elevation raster covering the scene")

    models: list[str] = Field(default_factory=list, description="model(s) to load and ensemble")
    weights: list[float] | None = Field(default=None, description="ensemble weights")
    device: str = Field(default="auto", description="auto, cpu, cuda, cuda:1, mps ...")
    threshold: float | None = Field(
        default=None, ge=0.0, le=1.0, description="kelp threshold (default: the model's)"
    )

    overlap: int | None = Field(
        default=None, ge=0, description="minimum window overlap in pixels (default: tile / 4)"
    )
    blend: str = Field(default="cosine", description=f"one of {', '.join(BLENDS)}")
    batch_size: int = Field(default=8, ge=1, description="windows per model call")
    write_prob: bool = Field(default=False, description="also write the probability COG")
    nodata_on_qa: bool = Field(
        default=True, description="QA-flagged pixels are no data (255) in the mask"
    )
    polygon_min_pixels: int = Field(default=1, ge=1, description="smallest bed to polygonise")
    ignore_encoding: bool = Field(
        default=False,
        description="predict inputs that read as another integer encoding than the model "
        "trained on (one warning instead of stopping)",
    )
    geojson_crs: Literal["wgs84", "scene"] = Field(
        default="wgs84",
        description="GeoJSON polygon coordinates: wgs84 (RFC 7946 lon/lat) or scene (the scene's "
        "CRS with the legacy, non-standard crs member); a GeoPackage always keeps the scene's CRS",
    )

    @model_validator(mode="before")
    @classmethod
    def _renamed_keys(cls, data: Any) -> Any:
        """Accept ``polygon_crs`` (the old name of ``geojson_crs``) for one release."""
        if isinstance(data, dict) and "polygon_crs" in data:
            data = dict(data)
            value = data.pop("polygon_crs")
            data.setdefault("geojson_crs", value)
            warnings.warn(
                "config key 'polygon_crs' is deprecated: use 'geojson_crs'",
                FutureWarning,
                stacklevel=2,
            )
        return data

    @field_validator("bands")
    @classmethod
    def _known_bands(cls, bands: dict[str, int]) -> dict[str, int]:
        unknown = set(bands) - {*SPECTRAL_BANDS, *QA_KEYS}
        if unknown:
            raise ValueError(f"unknown band names {sorted(unknown)}")
        if any(n < 1 for n in bands.values()):
            raise ValueError("band numbers start at 1")
        return bands

    @field_validator("scaling")
    @classmethod
    def _known_scaling(cls, scaling: str) -> str:
        if scaling not in SCALING_CHOICES:
            raise ValueError(f"must be one of {', '.join(SCALING_CHOICES)}")
        return scaling

    @field_validator("blend")
    @classmethod
    def _known_blend(cls, blend: str) -> str:
        if blend not in BLENDS:
            raise ValueError(f"must be one of {', '.join(BLENDS)}")
        return blend
