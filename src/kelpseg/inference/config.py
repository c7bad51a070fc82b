"""Settings of a prediction run: TTA, precision and :class:`PredictConfig`.

Plain pydantic, no torch: a packaged (ONNX) model is predicted on the light install with the same
config, and the config saved beside its masks reads the same as a torch run's.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal, Self

from pydantic import Field, field_validator, model_validator

from kelpseg.config import StrictModel
from kelpseg.inference.postprocess import PostprocessConfig

Precision = Literal["32", "16", "bf16"]
#: How a 2-class head's logits become the kelp probability (kelpseg.nn.models.PROBABILITY_RULES):
#: ``softmax`` of both logits, or ``sigmoid_kelp``, the sigmoid of the kelp logit alone (the
#: seed's inference). A binary head has one logit: both rules give its sigmoid.
ProbabilityRule = Literal["softmax", "sigmoid_kelp"]
#: Names of the test-time transforms (the dihedral group D4), in the order tta.TRANSFORMS holds.
TTA_TRANSFORMS: tuple[str, ...] = (
    "identity",
    "hflip",
    "vflip",
    "rot90",
    "rot180",
    "rot270",
    "transpose",
    "antitranspose",
)
#: Names of the merges of per-transform probabilities (tta.MERGES).
TTA_MERGES: tuple[str, ...] = ("mean", "max", "min", "gmean")


class TtaConfig(StrictModel):
    """Test-time augmentation of one run: on or off, which transforms, how to merge."""

    enabled: bool = Field(default=False, description="apply TTA at inference")
    transforms: list[str] = Field(
        default_factory=lambda: list(TTA_TRANSFORMS), description="names from TRANSFORMS"
    )
    merge: str = Field(default="mean", description="merge mode: one of MERGES")

    @field_validator("transforms")
    @classmethod
    def _known_transforms(cls, value: list[str]) -> list[str]:
        unknown = [name for name in value if name not in TTA_TRANSFORMS]
        if unknown or not value:
            known = ", ".join(TTA_TRANSFORMS)
            raise ValueError(f"unknown or no transforms {unknown}; known: {known}")
        return value

    @field_validator("merge")
    @classmethod
    def _known_merge(cls, value: str) -> str:
        if value not in TTA_MERGES:
            raise ValueError(f"unknown merge {value!r}; known: {', '.join(TTA_MERGES)}")
        return value


class PredictConfig(StrictModel):
    """Settings of one prediction run (saved as ``predict_config.yaml`` beside the masks)."""

    models: list[str] = Field(
        min_length=1, description="checkpoints, run folders, run ids, or one model package"
    )
    weights: list[float] | None = Field(default=None, description="one per model; None: equal")
    weights_from_scores: bool = Field(default=False, description="weights from val Dice")
    scores: list[float] | None = Field(
        default=None,
        description="one given score per model (e.g. its public leaderboard Dice); weights are "
        "the scores min-max scaled to [0.2, 1.0], as the seed did",
    )
    probability: ProbabilityRule = Field(
        default="softmax", description="2-class head: softmax or sigmoid_kelp (the seed's)"
    )
    ensemble_mode: str = "mean_prob"
    threshold: float | None = Field(default=None, ge=0.0, le=1.0, description="None: model's")
    device: str = "auto"
    precision: Precision = "32"
    compile_backend: str | None = Field(default=None, description="torch.compile backend")
    threads: int | None = Field(
        default=None, ge=1, description="ONNX Runtime threads of a model package; None: all cores"
    )
    tta: TtaConfig = Field(default_factory=TtaConfig)
    postprocess: PostprocessConfig = Field(default_factory=PostprocessConfig)
    batch_size: int = Field(default=16, ge=1)
    num_workers: int = Field(default=2, ge=0, description="tile readers")
    write_threads: int = Field(default=2, ge=1)
    soft: bool = Field(default=False, description="also write _prob.tif probabilities")
    overwrite: bool = False
    ignore_encoding: bool = Field(
        default=False,
        description="predict inputs that read as another integer encoding than the model "
        "trained on (one warning instead of stopping)",
    )
    split: str | None = Field(default=None, description="catalog split to predict; None: all")
    tracking_uri: str | None = None
    stacked: dict[str, Path] = Field(
        default_factory=dict,
        description="folder of a stored channel the models read (data.stacked), e.g. the "
        "test-time tree probabilities; unnamed: the folder in the model's training config",
    )

    @field_validator("precision", mode="before")
    @classmethod
    def _precision_as_text(cls, value: Any) -> Any:
        # ``--set precision=32`` / ``16`` parse as numbers.
        return str(value) if isinstance(value, int) and not isinstance(value, bool) else value

    @model_validator(mode="after")
    def _weights_fit(self) -> Self:
        if self.weights is not None and len(self.weights) != len(self.models):
            raise ValueError(f"{len(self.weights)} weights for {len(self.models)} models")
        if self.weights is not None and self.weights_from_scores:
            raise ValueError("give weights or weights_from_scores, not both")
        if self.scores is not None:
            if len(self.scores) != len(self.models):
                raise ValueError(f"{len(self.scores)} scores for {len(self.models)} models")
            if self.weights is not None or self.weights_from_scores:
                raise ValueError("give one of weights, scores and weights_from_scores")
        return self
