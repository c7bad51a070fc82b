"""Infer suite: end-to-end tiles/s (read, infer, write) against the model alone, 1 and 10 models.

*End to end* is :func:`~kelpseg.inference.predict.predict_tiles`: GeoTIFFs read in loader
workers, the ensemble on the device, masks written in threads, all overlapped. *Model only* is
the same :class:`~kelpseg.inference.runner.Predictor` on a batch already on the device, so the
ratio says how much of the device time reading and writing hide. Models are randomly
initialised: speed does not depend on the weights.
"""

from __future__ import annotations

import statistics
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from kelpseg.bench.config import QUICK_ARCH, BenchConfig
from kelpseg.bench.fixtures import tile_files
from kelpseg.bench.measure import Figure, SuiteResult, time_repeats
from kelpseg.config import validate_config
from kelpseg.features.compute_stats import compute_band_stats
from kelpseg.features.config import SEED_CHANNELS, FeatureConfig
from kelpseg.inference.loading import LoadedModel
from kelpseg.inference.predict import predict_tiles
from kelpseg.inference.runner import Predictor
from kelpseg.io.tiles import read_tile
from kelpseg.nn.config import TrainConfig
from kelpseg.nn.module import KelpSegModule

TEST_TILES = 1426  # tiles of the competition's test set
TEST_TARGET_S = 60.0  # 10-model ensemble over the test set on one H100 (issue 11)
DEMO_CHANNELS = ("R", "G", "B", "SWIR1", "NIR", "QA", "DEM", "DEMWM", "NDVI")


@dataclass(frozen=True)
class InferSettings:
    """Sizes of the infer suite."""

    encoder: str = "efficientnet-b5"
    arch_kwargs: tuple[tuple[str, Any], ...] = ()
    channels: tuple[str, ...] = tuple(SEED_CHANNELS)
    precision: str = "bf16"
    tiles: int = TEST_TILES
    tile_size: int = 350
    batch: int = 32
    workers: int = 6
    members: tuple[int, ...] = (1, 10)

    @classmethod
    def for_run(cls, config: BenchConfig, device: torch.device) -> InferSettings:
        """The seed's setup on a GPU; the demo model on a CPU; tiny with ``quick``."""
        cuda = device.type == "cuda"
        if config.quick:
            quick_arch = tuple(QUICK_ARCH.items())
            return cls("resnet18", quick_arch, DEMO_CHANNELS, "bf16" if cuda else "32",
                       8, 64, 4, 0, (1, 2))  # fmt: skip
        if cuda:
            return cls()
        demo_arch = (("decoder_channels", (128, 64, 32, 16, 8)),)
        return cls("resnet18", demo_arch, DEMO_CHANNELS, "32", 16, 350, 8, 1, (1, 10))


def random_members(settings: InferSettings, paths: list[Path], n: int) -> list[LoadedModel]:
    """``n`` randomly initialised models of the setup, with band statistics of the tiles."""
    features = FeatureConfig(channels=list(settings.channels))
    stats = compute_band_stats(paths[:24], features, device="cpu", show_progress=False)
    model = {
        "arch": "Unet",
        "encoder": settings.encoder,
        "encoder_weights": None,
        "arch_kwargs": {k: list(v) if isinstance(v, tuple) else v for k, v in settings.arch_kwargs},
    }
    config = validate_config(TrainConfig, {"features": features.model_dump(), "model": model})
    members = []
    for seed in range(n):
        torch.manual_seed(seed)
        module = KelpSegModule(config, stats, pretrained=False).eval()
        members.append(LoadedModel(module, f"random-{seed}"))
    return members


def model_only_rates(
    predictor: Predictor, paths: list[Path], settings: InferSettings, config: BenchConfig
) -> list[float]:
    """Tiles/s of each timed repeat of the predictor on one batch already on the device."""
    tiles = [torch.from_numpy(read_tile(p, expected_size=None).data) for p in paths]
    batch = torch.stack(tiles[: settings.batch]).to(predictor.device)
    n_batches = max(1, settings.tiles // settings.batch)

    def launches() -> None:
        pending = [predictor.launch(batch) for _ in range(n_batches)]  # back to back
        pending[-1].result()

    seconds = time_repeats(
        launches, repeats=config.repeats, warmup=max(1, config.warmup), device=predictor.device
    )
    return [n_batches * len(batch) / s for s in seconds]


def end_to_end_rate(
    predictor: Predictor, folder: Path, out: Path, settings: InferSettings, config: BenchConfig
) -> list[float]:
    """Tiles/s of each timed ``predict_tiles`` run over every tile of ``folder``."""
    rates = []
    for i in range(max(1, config.warmup) + config.repeats):
        summary = predict_tiles(
            predictor,
            folder,
            out,
            overwrite=True,
            batch_size=settings.batch,
            num_workers=settings.workers,
            show_progress=False,
        )
        if i >= max(1, config.warmup):
            rates.append(summary.tiles_per_second)
    return rates


def run_infer(
    config: BenchConfig,
    work: Path,
    device: torch.device,
    settings: InferSettings | None = None,
) -> SuiteResult:
    """End-to-end vs model-only tiles/s for each ensemble size."""
    settings = settings or InferSettings.for_run(config, device)
    folder = work / f"infer-tiles-{settings.tiles}-{settings.tile_size}"
    paths = tile_files(folder, settings.tiles, settings.tile_size)
    members = random_members(settings, paths, max(settings.members))
    torch.backends.cudnn.benchmark = True  # fixed input sizes: let cuDNN pick its fastest
    figures = []
    for n in settings.members:
        predictor = Predictor(members[:n], device=device, precision=settings.precision)  # type: ignore[arg-type]
        # Model only before and after end to end: load on a shared machine drifts.
        before = model_only_rates(predictor, paths, settings, config)
        e2e = end_to_end_rate(predictor, folder, work / f"infer-out-{n}", settings, config)
        after = model_only_rates(predictor, paths, settings, config)
        rate, fast = statistics.median(e2e), statistics.median(before + after)
        extra = {
            "members": n,
            "e2e_runs": e2e,
            "model_only_runs": before + after,
            "test_set_seconds": TEST_TILES / rate,
        }
        if device.type == "cuda" and n >= 10:
            extra["test_set_target_s"] = TEST_TARGET_S
        figures.append(
            Figure(
                f"infer.models{n}",
                rate,
                "tiles/s",
                fast,
                "model only (batches on the device)",
                "share of model-only throughput",
                extra=extra,
            )
        )
    return SuiteResult("infer", figures, asdict(settings) | {"device": str(device)})


def precision_disagreement(
    members: list[LoadedModel], paths: list[Path], device: torch.device, low: str, batch: int
) -> float:
    """Share of mask pixels (at 0.5) that differ between fp32 and ``low`` precision (1 model)."""
    raw = np.stack([read_tile(p, expected_size=None).data for p in paths[: min(len(paths), 64)]])
    chunks = [raw[i : i + batch] for i in range(0, len(raw), batch)]
    probs = {}
    for precision in ("32", low):
        predictor = Predictor(members[:1], device=device, precision=precision)  # type: ignore[arg-type]
        probs[precision] = np.concatenate([predictor.predict_batch(c) for c in chunks])
    return float(np.mean((probs["32"] >= 0.5) != (probs[low] >= 0.5)))
