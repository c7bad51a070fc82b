"""Settings of the tree-model stage: pixel sampling, channels, model choice and training.

One :class:`TabularConfig` drives ``kelpseg tabular build``, ``train`` and ``predict``; the
build saves it beside the pixel dataset and training checks that its channels can be read
from that dataset. Model parameters are overrides merged over the registry's defaults
(:data:`kelpseg.tabular.models.MODELS`), so ``params.xgboost.max_depth=6`` changes one knob.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal, Self

from pydantic import Field, field_validator, model_validator

from kelpseg.config import StrictModel
from kelpseg.eda.config import DaskSettings
from kelpseg.evaluation.config import ThresholdSweep
from kelpseg.features.config import FeatureConfig
from kelpseg.tabular.models import MODELS

# Feature options whose change alters every pixel value of a built dataset.
VALUE_OPTIONS: tuple[str, ...] = (
    "mask_using_qa",
    "mask_using_water_mask",
    "fill_value",
    "dem_clip_zero",
    "index_constants",
)


def tree_features() -> FeatureConfig:
    """The seed's 24 channels with masked pixels kept as NaN (trees route missing values).

    Normalisation is never applied to tree inputs (trees are invariant to monotone
    rescaling); a per-sample strategy is named only so no band statistics are required.
    """
    return FeatureConfig(fill_value="nan", normalization="per-sample-min-max")


class TabularConfig(StrictModel):
    """How pixels are sampled and tree models trained (see docs/tabular.md).

    Attributes:
        features: channels and masking of the per-pixel features.
        stats_path: band statistics JSON, needed only for ``features.fill_value: min`` with
            dataset-wide minima (otherwise each tile's own minimum is used).
        buffer_px: width of the ring of non-kelp pixels kept around kelp (dilation steps).
        non_kelp_per_tile: random non-kelp pixels sampled per tile, outside kelp and ring.
        seed: seed of the pixel sampling and of the models.
        model: key of :data:`kelpseg.tabular.models.MODELS`.
        params: per model name, parameters merged over the registry's defaults.
        class_weight: ``"none"``, ``"balanced"`` (negatives / positives of the training
            pixels) or a positive weight of the kelp class.
        row_weights: ``"tile"`` (default: each row weighted by the tile pixels it stands for,
            so the model fits the whole-tile class balance and its probabilities suit whole
            tiles) or ``"none"`` (every sampled row counts 1: kelp is over-represented ~100x
            and the best threshold moves towards 0.9).
        early_stopping_rounds: rounds without validation improvement before stopping
            (boosted models; 0 disables).
        threads: CPU threads of training and prediction (``None``: the library default).
        threshold_sweep: thresholds tried to pick the saved decision threshold.
        n_bins: probability histogram bins of the whole-tile scoring.
        predict_batch_pixels: pixels per prediction call (bounds memory).
        predict_batch_tiles: tiles read and predicted together.
        experiment: MLflow experiment name.
        chunk_size: tiles per Dask task of the build.
        dask: Dask connection and local memory settings of the build.
    """

    features: FeatureConfig = Field(default_factory=tree_features)
    stats_path: Path | None = None
    buffer_px: int = Field(2, ge=0, le=64)
    non_kelp_per_tile: int = Field(1000, ge=0, le=10_000_000)
    seed: int = Field(0, ge=0)
    model: str = "xgboost"
    params: dict[str, dict[str, Any]] = Field(default_factory=dict)
    class_weight: Literal["none", "balanced"] | float = "none"
    row_weights: Literal["none", "tile"] = "tile"
    early_stopping_rounds: int = Field(50, ge=0, le=100_000)
    threads: int | None = Field(None, ge=1, le=1024)
    threshold_sweep: ThresholdSweep = Field(
        default_factory=lambda: ThresholdSweep(start=0.01, stop=0.99, step=0.01)
    )
    n_bins: int = Field(1000, ge=10, le=100_000)
    predict_batch_pixels: int = Field(2_000_000, ge=1_000, le=1_000_000_000)
    predict_batch_tiles: int = Field(8, ge=1, le=10_000)
    experiment: str = Field("kelpseg-tabular", min_length=1)
    chunk_size: int = Field(8, ge=1, le=10_000)
    dask: DaskSettings = Field(default_factory=DaskSettings)

    @field_validator("model")
    @classmethod
    def _known_model(cls, value: str) -> str:
        if value not in MODELS:
            raise ValueError(f"unknown model {value!r}; one of {', '.join(MODELS)}")
        return value

    @field_validator("params")
    @classmethod
    def _known_param_groups(cls, value: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
        unknown = sorted(set(value) - set(MODELS))
        if unknown:
            raise ValueError(f"params for unknown model(s) {', '.join(unknown)}")
        return value

    @field_validator("class_weight")
    @classmethod
    def _positive_weight(cls, value: str | float) -> str | float:
        if isinstance(value, float) and not value > 0:
            raise ValueError(f"a class weight must be > 0, got {value}")
        return value

    @model_validator(mode="after")
    def _threshold_on_grid(self) -> Self:
        for t in self.threshold_sweep.values():
            if abs(round(t * self.n_bins) - t * self.n_bins) > 1e-6:
                raise ValueError(
                    f"threshold_sweep value {t} is not on the 1/{self.n_bins} grid of n_bins"
                )
        return self

    def build_fingerprint(self) -> dict[str, Any]:
        """The settings that decide a built dataset's rows and values (compared on resume)."""
        return self.model_dump(
            mode="json",
            include={"features", "stats_path", "buffer_px", "non_kelp_per_tile", "seed"},
        )
