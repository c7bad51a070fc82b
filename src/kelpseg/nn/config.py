"""The training run config: data and features composed with model, loss, optimisation, trainer
and tracking settings.

Defaults are the 2nd-place author's findings (``docs/training.md`` explains each): Unet with an
ImageNet-pretrained EfficientNet-B5, Dice loss, AdamW at lr 3e-4 with weight decay 1e-4 and a
OneCycle schedule (pct_start 0.1, div 2, final div 100), 10 epochs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal, Self

from pydantic import Field, field_validator, model_validator

from kelpseg.config import StrictModel
from kelpseg.features.config import FeatureConfig
from kelpseg.nn.data.config import DataConfig

# smp's architectures by the lower-case name its factory accepts -> the name users see.
ARCHITECTURES: dict[str, str] = {
    name.lower(): name
    for name in (
        "Unet", "UnetPlusPlus", "Linknet", "FPN", "PSPNet", "PAN", "DeepLabV3", "DeepLabV3Plus",
        "MAnet", "UPerNet", "Segformer", "DPT",
    )
}  # fmt: skip

# Architectures from optional packages: name users see -> the extra that provides it.
OPTIONAL_ARCHITECTURES: dict[str, str] = {"SwinUNETR": "monai"}

FreezeStrategy = Literal["none", "frozen_encoder", "freeze_then_unfreeze"]
Precision = Literal["32", "16-mixed", "bf16-mixed"]


class AuxHeadConfig(StrictModel):
    """Auxiliary tile-level head on the encoder's deepest features (smp ``aux_params``).

    It predicts two numbers per tile: a has-kelp logit (BCE against "any kelp pixel") and a
    kelp-fraction logit (BCE against the share of kelp pixels, a regression in [0, 1]). It only
    shapes the encoder during training; inference ignores it.

    Attributes:
        enabled: add the head.
        has_kelp_weight: loss weight of the has-kelp classification.
        fraction_weight: loss weight of the kelp-fraction regression.
        dropout: dropout before the head's linear layer.
    """

    enabled: bool = False
    has_kelp_weight: float = Field(default=0.1, ge=0.0)
    fraction_weight: float = Field(default=0.1, ge=0.0)
    dropout: float = Field(default=0.0, ge=0.0, lt=1.0)


class ModelConfig(StrictModel):
    """The network: an smp architecture over an smp or timm (``tu-``) encoder, one logit out.

    Attributes:
        arch: smp architecture (Unet, UnetPlusPlus, Linknet, FPN, PSPNet, PAN, DeepLabV3Plus,
            MAnet, UPerNet, Segformer ...), case-insensitive.
        encoder: smp encoder name (``resnet50``, ``efficientnet-b5``, ``mit_b2`` ...) or a timm
            one prefixed ``tu-`` (``tu-convnext_tiny``, ``tu-tf_efficientnetv2_s`` ...).
        encoder_weights: ``imagenet`` (or another weight name smp lists for the encoder), or
            None for random initialisation. Offline, a one-line message and random init.
        encoder_weights_path: a local state dict loaded into the encoder (3-channel ImageNet
            weights are spread over any number of input channels).
        arch_kwargs: extra keyword arguments of the smp architecture (``decoder_attention_type:
            scse``, ``decoder_channels``, ``img_size`` for Swin encoders ...).
        head: ``binary``: one logit per pixel, sigmoid probability; ``multiclass``: two
            logits (background, kelp) with a softmax and multiclass losses, as the log's runs.
            Inference always sees one kelp logit (``z_kelp - z_background``).
        aux_head: an auxiliary tile-level head (has-kelp and kelp fraction) and its loss
            weights (the 1st place's).
        freeze: keep the encoder trainable (``none``), frozen for the whole run
            (``frozen_encoder``), or frozen until epoch ``unfreeze_epoch``.
        unfreeze_epoch: first epoch (0-based) with a trainable encoder.
        channels_last: run the network in channels-last memory format (faster convolutions
            on recent GPUs with mixed precision).
        compile: ``torch.compile`` the network for training (the seed saw no speed-up).
        compile_mode: torch.compile mode (None = default).
        compile_backend: torch.compile backend (``inductor``; ``eager`` to check graph capture).
    """

    arch: str = "Unet"
    encoder: str = "efficientnet-b5"
    encoder_weights: str | None = "imagenet"
    encoder_weights_path: Path | None = None
    arch_kwargs: dict[str, Any] = Field(default_factory=dict)
    head: Literal["binary", "multiclass"] = "binary"
    aux_head: AuxHeadConfig = Field(default_factory=lambda: AuxHeadConfig())
    freeze: FreezeStrategy = "none"
    unfreeze_epoch: int = Field(default=1, ge=1)
    channels_last: bool = False
    compile: bool = False
    compile_mode: Literal["default", "reduce-overhead", "max-autotune"] | None = None
    compile_backend: str = "inductor"

    @field_validator("arch")
    @classmethod
    def _known_arch(cls, value: str) -> str:
        optional = {name.lower(): name for name in OPTIONAL_ARCHITECTURES}
        if value.lower() in optional:
            return optional[value.lower()]
        if value.lower() not in ARCHITECTURES:
            known = [*ARCHITECTURES.values(), *OPTIONAL_ARCHITECTURES]
            raise ValueError(f"unknown architecture {value!r}; one of {', '.join(known)}")
        return ARCHITECTURES[value.lower()]

    @property
    def out_channels(self) -> int:
        """Logits per pixel the network outputs: 1 (binary head) or 2 (multiclass head)."""
        return 2 if self.head == "multiclass" else 1

    @field_validator("arch_kwargs")
    @classmethod
    def _no_reserved_kwargs(cls, value: dict[str, Any]) -> dict[str, Any]:
        reserved = {"encoder_name", "encoder_weights", "in_channels", "classes", "aux_params"}
        reserved &= set(value)
        if reserved:
            raise ValueError(f"set {', '.join(sorted(reserved))} through the model keys instead")
        return value


class LossTerm(StrictModel):
    """One weighted term of the loss: a :data:`kelpseg.nn.losses.LOSSES` entry and its options."""

    name: str
    weight: float = Field(default=1.0, ge=0.0)
    params: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _known_loss(self) -> Self:
        from kelpseg.nn.losses import check_term  # here: losses imports this module

        check_term(self.name, self.params)
        return self


class LossConfig(StrictModel):
    """The training loss: a weighted sum of terms (the seed's best: Dice alone).

    YAML accepts a shorthand: ``loss: dice`` or ``loss: [{name: ce, weight: 1}, {name: dice}]``,
    and a preset of :data:`kelpseg.nn.losses.LOSS_PRESETS` by name (``loss: first-place``).
    """

    terms: list[LossTerm] = Field(
        default_factory=lambda: [LossTerm(name="dice", weight=1.0)], min_length=1
    )

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, value: Any) -> Any:
        if isinstance(value, str):
            from kelpseg.nn.losses import LOSS_PRESETS  # here: losses imports this module

            if value in LOSS_PRESETS:
                return {"terms": LOSS_PRESETS[value]}
            return {"terms": [{"name": value}]}
        if isinstance(value, list):
            return {"terms": value}
        return value


class OptimConfig(StrictModel):
    """Optimiser and learning-rate schedule (defaults: the seed's AdamW + OneCycle).

    Attributes:
        optimizer: ``adamw`` (the seed: +0.02 Dice over Adam), ``adam`` or ``sgd``.
        lr: peak learning rate (the seed tried larger and smaller: 3e-4 was best).
        weight_decay: the seed's sweep 1e-2..1e-5 peaked at 1e-4.
        momentum: SGD momentum (also beta1 is left at its default for Adam/AdamW).
        nesterov: Nesterov momentum for SGD.
        encoder_lr_scale: encoder learning rate = lr x this (1 = one rate for all); the
            3rd place's "decoder k x encoder" is ``1 / k``.
        layer_decay: layer-wise learning-rate decay inside the encoder (the 1st place's):
            the deepest encoder block keeps ``lr x encoder_lr_scale``, each shallower block
            gets this factor more (1 = off).
        scheduler: ``onecycle``, ``cosine`` (with linear warm-up), ``plateau`` or ``none``.
        pct_start, div_factor, final_div_factor: OneCycle shape (start lr = lr / div_factor,
            final lr = start / final_div_factor).
        warmup_fraction: share of all steps spent warming up (cosine).
        min_lr_ratio: cosine floor, as a fraction of lr.
        plateau_factor, plateau_patience: reduce-on-plateau of val/dice.
    """

    optimizer: Literal["adamw", "adam", "sgd"] = "adamw"
    lr: float = Field(default=3e-4, gt=0.0)
    weight_decay: float = Field(default=1e-4, ge=0.0)
    momentum: float = Field(default=0.9, ge=0.0, lt=1.0)
    nesterov: bool = False
    encoder_lr_scale: float = Field(default=1.0, ge=0.0)
    layer_decay: float = Field(default=1.0, gt=0.0, le=1.0)
    scheduler: Literal["onecycle", "cosine", "plateau", "none"] = "onecycle"
    pct_start: float = Field(default=0.1, gt=0.0, lt=1.0)
    div_factor: float = Field(default=2.0, gt=0.0)
    final_div_factor: float = Field(default=100.0, gt=0.0)
    warmup_fraction: float = Field(default=0.05, ge=0.0, lt=1.0)
    min_lr_ratio: float = Field(default=0.01, ge=0.0, le=1.0)
    plateau_factor: float = Field(default=0.5, gt=0.0, lt=1.0)
    plateau_patience: int = Field(default=2, ge=0)


class SwaConfig(StrictModel):
    """Stochastic weight averaging (Lightning's ``StochasticWeightAveraging``; off by default).

    Defaults are the seed's: from half of the epochs on, the learning rate anneals (cosine,
    over ``annealing_epochs``) to ``lr`` and the weights of every later epoch are averaged.
    The averaged weights are validated like an epoch and become ``best.ckpt`` when they score
    best: with batch norm Lightning adds one epoch that recomputes its statistics on them
    (``max_epochs + 1`` epochs in the history); without, they are validated after training.

    Attributes:
        enabled: add the callback.
        lr: the SWA learning rate.
        epoch_start: first averaged epoch, as a fraction of ``max_epochs`` (or an epoch number
            when >= 1).
        annealing_epochs: epochs of annealing to ``lr``.
    """

    enabled: bool = False
    lr: float = Field(default=3e-5, gt=0.0)
    epoch_start: float = Field(default=0.5, gt=0.0)
    annealing_epochs: int = Field(default=10, ge=1)


class TrainerConfig(StrictModel):
    """Lightning Trainer settings: length, precision, devices, determinism.

    Attributes:
        max_epochs: epochs of ``data.sampler.samples_per_epoch`` tiles each.
        precision: ``32``, ``16-mixed`` or ``bf16-mixed`` (the GPU default of the seed-best
            config).
        accelerator: ``auto``, ``cpu``, ``gpu`` ...
        devices: device count, list of ids, or ``auto``.
        num_nodes: machines of a multi-node run.
        strategy: ``auto``, ``ddp``, ``ddp_spawn`` ... (``ddp`` with ``devices`` > 1 for
            multi-GPU).
        accumulate_grad_batches: optimiser step every this many batches.
        gradient_clip_val: clip the gradient norm (None = off).
        deterministic: deterministic algorithms (``warn``: warn instead of failing on ops
            without a deterministic kernel). cuDNN benchmarking is always off in this mode.
        benchmark: cuDNN autotuning. The seed found it made runs non-deterministic.
        limit_train_batches, limit_val_batches: cap batches per epoch (int) or share (float).
        num_sanity_val_steps: validation batches run before training to catch errors.
        log_every_n_steps: how often step metrics are logged.
        check_val_every_n_epoch: validate every this many epochs.
        enable_progress_bar: Lightning's progress bar.
        threshold: probability above which a pixel counts as kelp in the metrics; also the
            model's decision threshold when none is picked (see ``pick_threshold``).
        pick_threshold: after training, sweep the decision threshold on the validation fold's
            whole tiles at the kept epoch and store the best with the model
            (:mod:`kelpseg.nn.threshold`); predictions use it unless given ``--threshold``.
        swa: stochastic weight averaging.
    """

    max_epochs: int = Field(default=10, ge=1)
    precision: Precision = "32"
    accelerator: str = "auto"
    devices: int | str | list[int] = "auto"
    num_nodes: int = Field(default=1, ge=1)
    strategy: str = "auto"
    accumulate_grad_batches: int = Field(default=1, ge=1)
    gradient_clip_val: float | None = Field(default=None, gt=0.0)
    deterministic: bool | Literal["warn"] = False
    benchmark: bool = False
    limit_train_batches: int | float | None = None
    limit_val_batches: int | float | None = None
    num_sanity_val_steps: int = Field(default=2, ge=-1)
    log_every_n_steps: int = Field(default=10, ge=1)
    check_val_every_n_epoch: int = Field(default=1, ge=1)
    enable_progress_bar: bool = True
    threshold: float = Field(default=0.5, gt=0.0, lt=1.0)
    pick_threshold: bool = True
    swa: SwaConfig = Field(default_factory=lambda: SwaConfig())

    @field_validator("precision", mode="before")
    @classmethod
    def _precision_as_text(cls, value: Any) -> Any:
        # ``--set trainer.precision=32`` parses as the number 32.
        return str(value) if isinstance(value, int) and not isinstance(value, bool) else value

    @model_validator(mode="after")
    def _benchmark_breaks_determinism(self) -> Self:
        if self.deterministic and self.benchmark:
            raise ValueError("benchmark=true makes runs non-deterministic; turn one of them off")
        return self


class TrackingConfig(StrictModel):
    """MLflow tracking.

    Attributes:
        enabled: track the run in MLflow.
        uri: tracking URI (a team server ``http://host:5000``, ``sqlite:///path.db`` ...);
            None = ``sqlite:///<output_dir>/mlflow.db`` with artifacts under the run folder.
        experiment: experiment name.
        run_name: run name (None = MLflow's generated name).
        tags: extra run tags.
        log_images: log a grid of inputs / targets / predictions each validation epoch.
        grid_tiles: validation tiles in that grid (the first ones, fixed for the run).
        log_channels: log images of the model's input channels once.
        log_confusion_matrix: log a confusion matrix figure each validation epoch.
        log_checkpoint: upload the best checkpoint, config and band statistics at the end.
    """

    enabled: bool = True
    uri: str | None = None
    experiment: str = "kelpseg"
    run_name: str | None = None
    tags: dict[str, str] = Field(default_factory=dict)
    log_images: bool = True
    grid_tiles: int = Field(default=8, ge=1, le=64)
    log_channels: bool = True
    log_confusion_matrix: bool = True
    log_checkpoint: bool = True


def tile_context_channels(config: TrainConfig) -> list[str]:
    """The input channels whose pixels depend on the whole tile (OFFSET_*, LANDCLOSE)."""
    from kelpseg.features.indices import INDICES

    return [c for c in config.features.channels if c in INDICES and INDICES[c].tile_context]


class TrainConfig(StrictModel):
    """Everything one training run needs; saved as ``config.yaml`` in its output folder.

    Attributes:
        data: tiles, fold, sampler, crops, augmentation, sizing.
        features: input channels, masking, fill, normalisation.
        stats_path: band statistics JSON (``kelpseg stats``); None only for per-sample
            normalisations.
        model, loss, optim, trainer, tracking: see their classes.
        seed: seeds weights, sampling, crops and augmentation.
        output_dir: run folder: checkpoints, config.yaml, stats.json, result.json and (by
            default) the MLflow store.
    """

    data: DataConfig = Field(default_factory=lambda: DataConfig.model_validate({}))
    features: FeatureConfig = Field(default_factory=lambda: FeatureConfig.model_validate({}))
    stats_path: Path | None = None
    model: ModelConfig = Field(default_factory=lambda: ModelConfig())
    loss: LossConfig = Field(default_factory=lambda: LossConfig())
    optim: OptimConfig = Field(default_factory=lambda: OptimConfig())
    trainer: TrainerConfig = Field(default_factory=lambda: TrainerConfig())
    tracking: TrackingConfig = Field(default_factory=lambda: TrackingConfig())
    seed: int = Field(default=42, ge=0)
    output_dir: Path = Path("runs/train")

    @model_validator(mode="after")
    def _resolve_crop_context(self) -> Self:
        if self.data.crop_context is None:
            self.data.crop_context = bool(self.data.crop_size and tile_context_channels(self))
        return self

    @property
    def has_validation(self) -> bool:
        """False in full-fit mode (``data.fold: null``): no validation, last checkpoint kept."""
        return self.data.fold is not None
