"""MONAI's SwinUNETR as an optional architecture (``model.arch: SwinUNETR``, the 1st place's).

MONAI is not a kelpseg dependency: without it, asking for the architecture raises
:class:`~kelpseg.errors.MissingExtraError`. The network is wrapped so the rest of kelpseg sees
what it sees of an smp model: an ``encoder`` (the Swin transformer, for the encoder learning-rate
scale and freezing), ``freeze_encoder``/``unfreeze_encoder`` and sides divisible by 32.
"""

from __future__ import annotations

import importlib
from typing import Any

from torch import Tensor, nn

from kelpseg.errors import KelpsegError, MissingExtraError
from kelpseg.nn.config import ModelConfig

#: SwinUNETR's defaults here: a 2-D network (tiles, not volumes) of MONAI's smallest width.
DEFAULT_KWARGS: dict[str, Any] = {"spatial_dims": 2, "feature_size": 24}


class SwinUNETRNet(nn.Module):
    """A MONAI SwinUNETR with the smp-like surface the trainer uses.

    Args:
        net: the MONAI network (its ``swinViT`` attribute is the encoder).
    """

    requires_divisible_input_shape = True

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    @property
    def encoder(self) -> nn.Module:
        """The Swin transformer encoder (a property: its weights are stored once, under net)."""
        encoder: nn.Module = self.net.swinViT  # type: ignore[assignment]
        return encoder

    def freeze_encoder(self) -> None:
        """Stop gradients to the encoder and keep its normalisation statistics."""
        self._set_encoder_trainable(False)

    def unfreeze_encoder(self) -> None:
        """Train the encoder again."""
        self._set_encoder_trainable(True)

    def _set_encoder_trainable(self, mode: bool) -> None:
        for param in self.encoder.parameters():
            param.requires_grad = mode
        self.encoder.train(mode and self.training)

    def forward(self, x: Tensor) -> Tensor:
        """Logits (N, out_channels, H, W)."""
        out: Tensor = self.net(x)
        return out


def create_swin_unetr(config: ModelConfig, in_channels: int) -> nn.Module:
    """Build SwinUNETR for ``in_channels`` inputs and ``config.out_channels`` logits.

    ``config.arch_kwargs`` go to MONAI's constructor over :data:`DEFAULT_KWARGS` (MONAI
    releases before 1.5 also need ``img_size``). ImageNet encoder weights do not exist for it:
    it always starts from random initialisation.

    Raises:
        MissingExtraError: MONAI is not installed.
        KelpsegError: an auxiliary head was asked for, or MONAI refused the options.
    """
    try:
        nets = importlib.import_module("monai.networks.nets")
    except ImportError as exc:
        raise MissingExtraError("monai", "monai") from exc
    if config.aux_head.enabled:
        raise KelpsegError("SwinUNETR has no auxiliary tile head", "model.aux_head.enabled")
    kwargs = {**DEFAULT_KWARGS, **config.arch_kwargs}
    try:
        net = nets.SwinUNETR(in_channels=in_channels, out_channels=config.out_channels, **kwargs)
    except (TypeError, ValueError, AssertionError) as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise KelpsegError(f"cannot build SwinUNETR ({first})", "model.arch_kwargs") from exc
    return SwinUNETRNet(net)
