"""Settings of ``kelpseg evaluate``: thresholds, histogram grid, post-processing, report."""

from __future__ import annotations

from typing import Literal, Self

import numpy as np
from pydantic import Field, ValidationError, model_validator

from kelpseg.config import StrictModel
from kelpseg.errors import KelpsegError
from kelpseg.inference.postprocess import PostprocessConfig


class ThresholdSweep(StrictModel):
    """Decision thresholds tried by the sweep: ``start`` to ``stop`` inclusive, by ``step``."""

    start: float = Field(default=0.30, ge=0.0, le=1.0)
    stop: float = Field(default=0.70, ge=0.0, le=1.0)
    step: float = Field(default=0.01, gt=0.0, le=1.0)

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.stop < self.start:
            raise ValueError(f"stop {self.stop} is below start {self.start}")
        return self

    def values(self) -> np.ndarray:
        """The thresholds, rounded to 1e-9 so 0.3 + 4 * 0.1 lands on 0.7."""
        count = int(np.floor((self.stop - self.start) / self.step + 1e-9)) + 1
        return np.round(self.start + self.step * np.arange(count), 9)

    @classmethod
    def parse(cls, text: str) -> ThresholdSweep:
        """``"0.3:0.7:0.01"`` -> ThresholdSweep(start=0.3, stop=0.7, step=0.01)."""
        parts = text.split(":")
        if len(parts) != 3:
            raise KelpsegError(f"thresholds {text!r} must look like start:stop:step (0.3:0.7:0.01)")
        try:
            start, stop, step = (float(p) for p in parts)
        except ValueError as exc:
            raise KelpsegError(f"thresholds {text!r}: not numbers") from exc
        try:
            return cls(start=start, stop=stop, step=step)
        except ValidationError as exc:
            raise KelpsegError(f"thresholds {text!r}: {exc.errors()[0]['msg']}") from exc


class EvaluateConfig(StrictModel):
    """How predictions are scored; saved as ``evaluate_config.yaml`` beside the report."""

    threshold: float = Field(
        default=0.5, ge=0.0, le=1.0, description="decision threshold of the headline metrics"
    )
    sweep: ThresholdSweep = Field(default_factory=ThresholdSweep)
    n_bins: int = Field(
        default=1000,
        ge=10,
        le=100_000,
        description="probability histogram bins (thresholds k / n_bins)",
    )
    kind: Literal["auto", "prob", "mask"] = Field(
        default="auto", description="read probabilities (_prob.tif) when present, or only one kind"
    )
    postprocess: PostprocessConfig = Field(
        default_factory=PostprocessConfig, description="steps applied to masks before scoring"
    )
    require_all_labelled: bool = Field(
        default=False, description="fail unless every labelled tile has a prediction"
    )
    workers: int = Field(default=2, ge=1, le=64, description="threads reading and scoring tiles")
    gallery_tiles: int = Field(
        default=6, ge=0, le=50, description="worst and best tiles shown each"
    )

    @model_validator(mode="after")
    def _on_grid(self) -> Self:
        for t in (self.threshold, *self.sweep.values()):
            if abs(round(t * self.n_bins) - t * self.n_bins) > 1e-6:
                raise ValueError(
                    f"threshold {t} is not on the 1/{self.n_bins} grid; change n_bins or the step"
                )
        return self

    def thresholds(self) -> np.ndarray:
        """Sweep thresholds plus the headline threshold: sorted, unique grid values."""
        values = np.append(self.sweep.values(), self.threshold)
        return np.unique(np.round(values * self.n_bins).astype(np.int64)) / self.n_bins
