"""Networks from segmentation-models-pytorch: creation, encoder weights, input sizes, freezing.

smp's own factory builds every model (no second registry here): any smp architecture over any
smp encoder or timm encoder (``tu-`` names), with any number of input channels and one logit.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import lightning as L
import segmentation_models_pytorch as smp
import torch
from torch import nn

from kelpseg.console import err_console
from kelpseg.errors import KelpsegError
from kelpseg.nn.config import OPTIONAL_ARCHITECTURES, ModelConfig


def create_model(config: ModelConfig, in_channels: int, *, pretrained: bool = True) -> nn.Module:
    """Build the network of ``config`` for ``in_channels`` input channels.

    The network outputs ``config.out_channels`` logits per pixel (1, or 2 for the multiclass
    head) and, with ``config.aux_head``, a tuple ``(mask logits, (N, 2) tile logits)``.

    Args:
        config: architecture, encoder and weights.
        in_channels: channels of the model input (``len(features.channels)``).
        pretrained: fetch/load encoder weights; False when the weights come from a checkpoint.

    Raises:
        KelpsegError: unknown architecture, encoder or weight name, bad ``arch_kwargs``, or an
            unusable ``encoder_weights_path``; each names its config key.
    """
    if config.arch in OPTIONAL_ARCHITECTURES:
        from kelpseg.nn.swin import create_swin_unetr

        return create_swin_unetr(config, in_channels)
    weights: str | bool | None = config.encoder_weights if pretrained else None
    if weights is not None and config.encoder.startswith("tu-"):
        weights = True  # timm encoders carry their pretrained tag in the name
    try:
        model = _smp_model(config, in_channels, weights)
    except OSError as exc:
        # No internet (or no hub access): training from scratch still works, only worse.
        err_console.print(
            f"model.encoder_weights: cannot fetch {config.encoder_weights!r} weights for "
            f"{config.encoder} ({type(exc).__name__}); using random initialisation",
            highlight=False,
            soft_wrap=True,
        )
        model = _smp_model(config, in_channels, None)
    if pretrained and config.encoder_weights_path is not None:
        load_encoder_weights(model, config.encoder_weights_path)
    return model


def _smp_model(config: ModelConfig, in_channels: int, weights: str | bool | None) -> nn.Module:
    try:
        return smp.create_model(
            config.arch,
            encoder_name=config.encoder,
            encoder_weights=weights,  # smp takes True for tu- names
            in_channels=in_channels,
            classes=config.out_channels,
            aux_params=aux_params(config),
            **config.arch_kwargs,
        )
    except KeyError as exc:
        text = str(exc.args[0]) if exc.args else str(exc)
        key = "model.encoder_weights" if "pretrained weights" in text else "model.encoder"
        key = "model.arch" if "architecture" in text else key
        raise KelpsegError(text.split(", supported encoders")[0], key) from exc
    except (TypeError, RuntimeError, ValueError, AssertionError) as exc:
        if isinstance(exc, RuntimeError) and "Unknown model" in str(exc):
            raise KelpsegError(f"unknown timm encoder ({exc})", "model.encoder") from exc
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        # Past the name checks, a failure comes from the options given to the architecture.
        key = "model.arch_kwargs" if config.arch_kwargs else "model"
        raise KelpsegError(
            f"cannot build {config.arch} with {config.encoder} ({first})", key
        ) from exc


def aux_params(config: ModelConfig) -> dict[str, Any] | None:
    """smp's ``aux_params`` for the auxiliary tile head (None when it is off).

    Two outputs per tile, both logits: has-kelp and kelp fraction.
    """
    if not config.aux_head.enabled:
        return None
    return {"classes": 2, "pooling": "avg", "dropout": config.aux_head.dropout or None}


#: How a 2-class head's logits become the kelp probability (``inference.probability``).
PROBABILITY_RULES: tuple[str, ...] = ("softmax", "sigmoid_kelp")


def kelp_logit(out: torch.Tensor, probability: str = "softmax") -> torch.Tensor:
    """The kelp logit (N, 1, H, W) of a network's mask output (N, 1 or 2, H, W).

    A binary head's logit is returned as it is. For a 2-class head, ``softmax`` (default) gives
    the difference ``z_kelp - z_background``, the logit whose sigmoid equals the softmax's kelp
    probability, so predict, TTA, ensembles and the ONNX graph treat both heads alike;
    ``sigmoid_kelp`` gives ``z_kelp`` alone, so the probability is ``sigmoid(z_kelp)``: what
    the seed's author thresholded at inference (it ignores the background logit).
    """
    if probability not in PROBABILITY_RULES:
        known = ", ".join(PROBABILITY_RULES)
        raise KelpsegError(f"unknown probability rule {probability!r}; known: {known}")
    if out.shape[1] == 2:
        if probability == "sigmoid_kelp":
            return out[:, 1:2]
        return out[:, 1:2] - out[:, 0:1]
    return out


def load_encoder_weights(model: nn.Module, path: str | os.PathLike[str]) -> None:
    """Load a local state dict into ``model.encoder``.

    Accepts an encoder state dict, a full-model one (``encoder.`` keys) or a checkpoint holding
    ``state_dict``. Weights of a 3-channel (ImageNet) first convolution are spread over the
    model's input channels: channel ``i`` takes RGB channel ``i % 3``, scaled by ``3 / C`` so
    the activations keep their magnitude.

    Raises:
        KelpsegError: unreadable file, or weights of another encoder
            (``model.encoder_weights_path``).
    """
    key = "model.encoder_weights_path"
    path = Path(path)
    if not path.is_file():
        raise KelpsegError(f"weights file {path} does not exist", key)
    try:
        loaded = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several unrelated types for bad files
        raise KelpsegError(f"cannot read weights file {path} ({type(exc).__name__})", key) from exc
    state: dict[str, Any] = loaded.get("state_dict", loaded) if isinstance(loaded, dict) else {}
    if any(k.startswith("encoder.") for k in state):
        state = {k[len("encoder.") :]: v for k, v in state.items() if k.startswith("encoder.")}
    encoder: nn.Module = model.encoder  # type: ignore[assignment]
    own = encoder.state_dict()
    adapted = {k: _spread_channels(v, own[k]) if k in own else v for k, v in state.items()}
    try:
        encoder.load_state_dict(adapted, strict=True)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[0]
        raise KelpsegError(f"weights in {path} do not fit the encoder ({first})", key) from exc


def _spread_channels(loaded: torch.Tensor, own: torch.Tensor) -> torch.Tensor:
    """A 3-input-channel conv kernel widened to ``own``'s channels; anything else unchanged."""
    if loaded.ndim != 4 or own.ndim != 4 or loaded.shape == own.shape:
        return loaded
    if loaded.shape[1] != 3 or loaded.shape[0] != own.shape[0] or loaded.shape[2:] != own.shape[2:]:
        return loaded
    channels = own.shape[1]
    index = torch.arange(channels) % 3
    return loaded[:, index] * (3.0 / channels)


def input_multiple(model: nn.Module) -> int:
    """The divisor input sides must have for ``model`` (1 when it resamples internally)."""
    if not getattr(model, "requires_divisible_input_shape", True):
        return 1
    return int(getattr(model.encoder, "output_stride", 32))


def check_input_size(
    model: nn.Module, in_channels: int, hw: tuple[int, int], key: str = "data.sizing"
) -> None:
    """Refuse an input size the network cannot take, with a message naming ``key``.

    Checks divisibility by the encoder's output stride where the architecture needs it, then
    runs one dry forward pass of a single zero tile (catches fixed-size encoders such as Swin
    and pooling pyramids that need larger inputs).
    """
    h, w = hw
    multiple = input_multiple(model)
    if h % multiple or w % multiple:
        raise KelpsegError(
            f"{h}x{w} px inputs: this model needs sides divisible by {multiple} "
            f"(set data.sizing.multiple: {multiple} or a matching data.sizing.size)",
            key,
        )
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            param = next(model.parameters())
            model(torch.zeros(1, in_channels, h, w, device=param.device, dtype=param.dtype))
    except (RuntimeError, AssertionError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise KelpsegError(f"the model cannot take {h}x{w} px inputs ({first[:200]})", key) from exc
    finally:
        model.train(was_training)


class FreezeEncoder(L.Callback):
    """Applies ``model.freeze``: frozen for the whole run, or until ``model.unfreeze_epoch``.

    A frozen encoder gets no gradient and its normalisation layers keep their running
    statistics (smp's ``freeze_encoder``). The state is derived from the epoch at every epoch
    start, so a resumed run is frozen exactly as the original was.

    Args:
        strategy: ``none``, ``frozen_encoder`` or ``freeze_then_unfreeze``.
        unfreeze_epoch: first epoch with a trainable encoder (``freeze_then_unfreeze``).
    """

    def __init__(self, strategy: str, unfreeze_epoch: int = 1) -> None:
        self.strategy = strategy
        self.unfreeze_epoch = unfreeze_epoch

    def frozen_at(self, epoch: int) -> bool:
        """Whether the encoder is frozen during ``epoch``."""
        if self.strategy == "frozen_encoder":
            return True
        return self.strategy == "freeze_then_unfreeze" and epoch < self.unfreeze_epoch

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """Freeze or unfreeze the encoder for this epoch."""
        if self.strategy == "none":
            return
        model: Any = pl_module.model
        if self.frozen_at(trainer.current_epoch):
            model.freeze_encoder()
        else:
            model.unfreeze_encoder()
