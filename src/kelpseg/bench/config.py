"""Settings of a benchmark run: which suites, on which device, how big and how often."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field

from kelpseg.config import StrictModel

SuiteName = Literal["data", "features", "train", "infer", "group"]
#: Every suite, in the order ``--suite all`` runs them (the order data flows).
SUITES: tuple[SuiteName, ...] = ("data", "features", "train", "infer", "group")
#: smp keyword arguments of the quick mode's network: a 3-stage ResNet-18 U-Net, narrow decoder.
QUICK_ARCH: dict[str, Any] = {"encoder_depth": 3, "decoder_channels": [16, 8, 8]}


class BenchConfig(StrictModel):
    """One benchmark run (saved inside the results JSON).

    Attributes:
        suites: the suites to run, in order.
        device: ``cpu``, ``cuda`` or ``auto`` (CUDA when available).
        quick: tiny sizes and a small model, so the whole run takes about a minute on a
            laptop CPU (the tests use it; the figures are not comparable with a full run).
        repeats: timed repeats of each measurement; figures are their medians.
        warmup: untimed repeats first (page cache, allocator, cuDNN autotuning).
        train_config: a training run config (YAML, e.g. ``configs/demo.yaml``) whose model,
            batch size, crops, channels and precision the train suite measures instead of the
            defaults (Unet + EfficientNet-B5, batch 32, 352 px, 24 channels).
        train_steps: training steps per timed window (None: 20 on a GPU, 5 on a CPU, 2 quick).
        train_warmup_steps: untimed training steps first (None: 5 on a GPU, 1 on a CPU).
        workdir: where generated data is kept between runs (None: a temporary folder).
        threads: torch CPU threads (0: torch's default).
    """

    suites: list[SuiteName] = Field(default_factory=lambda: list(SUITES), min_length=1)
    device: Literal["auto", "cpu", "cuda"] = "auto"
    quick: bool = False
    repeats: int = Field(default=5, ge=1)
    warmup: int = Field(default=1, ge=0)
    train_config: Path | None = None
    train_steps: int | None = Field(default=None, ge=1)
    train_warmup_steps: int | None = Field(default=None, ge=1)
    workdir: Path | None = None
    threads: int = Field(default=0, ge=0)
