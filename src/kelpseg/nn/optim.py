"""Optimisers and learning-rate schedules of ``optim:``, in Lightning's format.

Defaults are the seed's: AdamW at lr 3e-4 with weight decay 1e-4 and a OneCycle schedule
(pct_start 0.1, div_factor 2, final_div_factor 100), stepped every optimiser step.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, Literal

import torch

from kelpseg.nn.config import OptimConfig
from kelpseg.nn.layer_decay import layer_decay_groups

OPTIMIZERS: dict[str, Callable[..., torch.optim.Optimizer]] = {
    "adamw": torch.optim.AdamW,
    "adam": torch.optim.Adam,
    "sgd": torch.optim.SGD,
}


def param_groups(model: torch.nn.Module, config: OptimConfig) -> list[dict[str, Any]]:
    """Parameter groups: the decoder and heads at ``lr``, the encoder at ``lr x encoder_lr_scale``.

    One group when the scale is 1. The base group comes first (its lr is the one logged). With
    ``layer_decay`` < 1 the encoder is split into per-block groups
    (:func:`~kelpseg.nn.layer_decay.layer_decay_groups`).
    """
    encoder = getattr(model, "encoder", None)
    if encoder is None or (config.encoder_lr_scale == 1.0 and config.layer_decay == 1.0):
        return [{"params": list(model.parameters()), "lr": config.lr}]
    enc_ids = {id(p) for p in encoder.parameters()}
    rest = [p for p in model.parameters() if id(p) not in enc_ids]
    encoder_lr = config.lr * config.encoder_lr_scale
    if config.layer_decay != 1.0:
        return [
            {"params": rest, "lr": config.lr},
            *layer_decay_groups(encoder, encoder_lr, config.layer_decay),
        ]
    return [
        {"params": rest, "lr": config.lr},
        {"params": list(encoder.parameters()), "lr": encoder_lr},
    ]


class WarmupCosine:
    """Learning-rate factor: linear warm-up, then cosine decay to ``floor`` (a LambdaLR lambda).

    A class, not a closure, so the scheduler state is saved in checkpoints.
    """

    def __init__(self, total_steps: int, warmup_steps: int, floor: float) -> None:
        self.total_steps, self.warmup_steps, self.floor = total_steps, warmup_steps, floor

    def __call__(self, step: int) -> float:
        if step < self.warmup_steps:
            return (step + 1) / self.warmup_steps
        span = max(1, self.total_steps - self.warmup_steps)
        progress = min(1.0, (step - self.warmup_steps) / span)
        return self.floor + (1.0 - self.floor) * 0.5 * (1.0 + math.cos(math.pi * progress))


def configure_optimization(
    model: torch.nn.Module,
    config: OptimConfig,
    total_steps: int,
    monitor: tuple[str, Literal["min", "max"]],
) -> Any:
    """The optimiser and scheduler in Lightning's ``configure_optimizers`` format.

    Args:
        model: the network whose parameters are optimised.
        config: optimiser and schedule settings.
        total_steps: optimiser steps of the whole run (OneCycle and cosine span them).
        monitor: metric and mode ("max"/"min") for reduce-on-plateau.
    """
    groups = param_groups(model, config)
    extra: dict[str, Any] = {"weight_decay": config.weight_decay}
    if config.optimizer == "sgd":
        extra.update(momentum=config.momentum, nesterov=config.nesterov)
    optimizer = OPTIMIZERS[config.optimizer](groups, lr=config.lr, **extra)
    total_steps = max(1, total_steps)
    scheduler: Any
    if config.scheduler == "none":
        return optimizer
    if config.scheduler == "onecycle":
        # OneCycle needs a few steps per phase; very short runs (smoke tests) get a cycle
        # they do not finish rather than a division by zero.
        cycle = max(total_steps, math.ceil(2 / config.pct_start) + 2)
        scheduler = torch.optim.lr_scheduler.OneCycleLR(
            optimizer,
            max_lr=[g["lr"] for g in groups],
            total_steps=cycle,
            pct_start=config.pct_start,
            div_factor=config.div_factor,
            final_div_factor=config.final_div_factor,
        )
    elif config.scheduler == "cosine":
        warmup = int(total_steps * config.warmup_fraction)
        scheduler = torch.optim.lr_scheduler.LambdaLR(
            optimizer, WarmupCosine(total_steps, warmup, config.min_lr_ratio)
        )
    else:
        name, mode = monitor
        plateau = torch.optim.lr_scheduler.ReduceLROnPlateau(
            optimizer, mode=mode, factor=config.plateau_factor, patience=config.plateau_patience
        )
        return {
            "optimizer": optimizer,
            "lr_scheduler": {"scheduler": plateau, "monitor": name, "interval": "epoch"},
        }
    return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}
