"""Settings of the feature stage: which channels, how masked, filled and normalised."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from kelpseg.config import StrictModel
from kelpseg.errors import KelpsegError
from kelpseg.features.indices import check_channels, known_constants
from kelpseg.features.normalize import NORMALIZERS

# The seed's best input: the seven bands, the DEM water mask and 16 indices (24 channels).
SEED_CHANNELS: tuple[str, ...] = (
    "R", "G", "B", "SWIR1", "NIR", "QA", "DEM",
    "DEMWM", "NDVI", "ATSAVI", "AVI", "CI", "ClGreen", "GBNDVI", "GVMI", "IPVI", "KIVU",
    "MCARI", "MVI", "NormNIR", "PNDVI", "SABI", "WDRVI", "mCRIG",
)  # fmt: skip

Adjustment = Literal["nan-adjusted", "zero-adjusted"]


class FeatureConfig(StrictModel):
    """How a batch of raw tiles becomes model input (see docs/features.md).

    Attributes:
        channels: model input in order: base bands by name and any registry entry.
        mask_using_qa: set index pixels to "masked" where QA flags cloud or corruption.
        mask_using_water_mask: set index pixels to "masked" on land (DEM > 0).
        fill_value: what masked, missing and undefined pixels become: ``"min"`` the channel's
            minimum (``+inf`` its maximum) from band statistics; ``"zero"`` 0.0; ``"nan"`` kept
            as NaN by :meth:`InputBuilder.raw_channels` (for tree models) and the minimum in the
            network input.
        dem_clip_zero: clip the DEM at 0 before use (missing DEM becomes 0, sea level). The
            2nd-place author did not: his DEM channel keeps negative heights and a missing DEM
            stays missing (and masks the indices there).
        missing_bands: what missing pixels (-32768) of every band become before indices are
            computed: ``"nan"`` (then filled per ``fill_value``) or ``"zero"`` (the author's
            ``fill_value=0.0`` runs: bands and indices see 0 there; masked index pixels still
            go to ``fill_value``).
        stats_method: how band statistics are defined: ``"kelpseg"`` (exact streaming
            statistics over every unmasked pixel) or ``"author"`` (the 2nd-place author's: mean
            of per-tile quantiles, QA and water masks forced to [0, 1] ...; see
            :mod:`kelpseg.features.author_stats`).
        stats_masked: the band statistics are computed with this config's masking (true), or
            without any masking (false: the log's 2023-12-31 run trained with water-mask
            masking on statistics computed unmasked).
        normalization: key of :data:`kelpseg.features.NORMALIZERS`.
        quantiles: low and high quantile of the quantile strategies.
        index_constants: overrides of formula constants (``alpha``, ``L``, ``sla``,
            ``ndvi_water_threshold`` ...), applied to every formula that reads them.
    """

    channels: list[str] = Field(default_factory=lambda: list(SEED_CHANNELS))
    mask_using_qa: bool = True
    mask_using_water_mask: bool = True
    fill_value: Literal["min", "zero", "nan"] = "min"
    dem_clip_zero: bool = True
    missing_bands: Literal["nan", "zero"] = "nan"
    stats_method: Literal["kelpseg", "author"] = "kelpseg"
    stats_masked: bool = True
    normalization: str = "quantile"
    quantiles: tuple[float, float] = (0.01, 0.99)
    index_constants: dict[str, float] = Field(default_factory=dict)

    @field_validator("channels")
    @classmethod
    def _known_channels(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError("at least one channel is needed")
        repeated = sorted({c for c in value if value.count(c) > 1})
        if repeated:
            raise ValueError(f"channel(s) listed twice: {', '.join(repeated)}")
        try:
            check_channels(value)
        except KelpsegError as exc:
            raise ValueError(exc.message) from exc
        return value

    @field_validator("normalization")
    @classmethod
    def _known_normalization(cls, value: str) -> str:
        if value not in NORMALIZERS:
            raise ValueError(f"unknown normalization {value!r}; one of {', '.join(NORMALIZERS)}")
        return value

    @field_validator("index_constants")
    @classmethod
    def _known_constants(cls, value: dict[str, float]) -> dict[str, float]:
        unknown = sorted(set(value) - set(known_constants()))
        if unknown:
            raise ValueError(f"unknown constant(s) {', '.join(unknown)}")
        return value

    @model_validator(mode="after")
    def _quantile_order(self) -> FeatureConfig:
        low, high = self.quantiles
        if not 0.0 <= low < high <= 1.0:
            raise ValueError(f"quantiles must satisfy 0 <= low < high <= 1, got {self.quantiles}")
        return self

    def stats_config(self) -> FeatureConfig:
        """The config band statistics for this one are computed with (masking per
        ``stats_masked``)."""
        if self.stats_masked:
            return self
        return self.model_copy(update={"mask_using_qa": False, "mask_using_water_mask": False})

    @property
    def adjustment(self) -> Adjustment:
        """How band statistics must treat masked or missing pixels for this config: as 0
        (``fill_value: zero``, or missing band pixels read as 0) or left out."""
        zero = self.fill_value == "zero" or self.missing_bands == "zero"
        return "zero-adjusted" if zero else "nan-adjusted"
