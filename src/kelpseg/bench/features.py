"""Features suite: building the 24-channel model input of a batch against one read + one write.

The input builder turns a raw int16 batch into normalised float channels (indices, masking,
fill, normalisation) on the device. Its floor is reading and writing the output tensor once,
timed as a clone of a tensor of the output's size: no builder can produce the output faster.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from kelpseg.bench.config import BenchConfig
from kelpseg.bench.fixtures import raw_batch
from kelpseg.bench.measure import Figure, SuiteResult, median_rate, time_repeats
from kelpseg.features import FeatureConfig, InputBuilder
from kelpseg.features.channels import ChannelStack
from kelpseg.features.compute_stats import to_band_stats
from kelpseg.features.sketch import StatsAccumulator

NORMALIZATIONS = ("quantile", "z-score", "per-sample-min-max", "per-sample-quantile")


@dataclass(frozen=True)
class FeatureSettings:
    """Sizes of the features suite."""

    batch: int = 32
    tile_size: int = 350
    normalizations: tuple[str, ...] = NORMALIZATIONS

    @classmethod
    def for_run(cls, config: BenchConfig) -> FeatureSettings:
        """The full sizes, or tiny ones with ``quick``."""
        return cls(batch=4, tile_size=64) if config.quick else cls()


def builders(
    raw: torch.Tensor, names: tuple[str, ...], device: torch.device
) -> dict[str, InputBuilder]:
    """An input builder of the seed's 24 channels per normalisation, with stats of ``raw``."""
    config = FeatureConfig()
    accumulator = StatsAccumulator.empty(config.channels)
    with torch.inference_mode():
        accumulator.update(ChannelStack.from_config(config).to(device)(raw))
    stats = to_band_stats(accumulator, config, config.quantiles, {})
    return {
        name: InputBuilder(config.model_copy(update={"normalization": name}), stats).to(device)
        for name in names
    }


def run_features(
    config: BenchConfig,
    work: Path,
    device: torch.device,
    settings: FeatureSettings | None = None,
) -> SuiteResult:
    """Input batches/s per normalisation against the clone floor."""
    settings = settings or FeatureSettings.for_run(config)
    raw = raw_batch(settings.batch, settings.tile_size).to(device)
    built = builders(raw, settings.normalizations, device)
    warmup = max(1, config.warmup)  # the first calls pay for allocation and kernel choice
    figures = []
    with torch.inference_mode():
        out = built[settings.normalizations[0]](raw)
        floor = median_rate(
            1, time_repeats(out.clone, repeats=config.repeats, warmup=warmup, device=device)
        )
        mib = out.numel() * out.element_size() / 2**20
        for name, builder in built.items():
            seconds = time_repeats(
                lambda b=builder: b(raw),  # type: ignore[misc]
                repeats=config.repeats,
                warmup=warmup,
                device=device,
            )
            figures.append(
                Figure(
                    f"features.input_{name}",
                    median_rate(1, seconds),
                    "batches/s",
                    floor,
                    "clone of the output (one read + one write)",
                    "share of the read+write floor",
                    extra={
                        "output_mib": mib,
                        "channels": int(out.shape[1]),
                        "tiles_per_s": median_rate(settings.batch, seconds),
                        "seconds": seconds,
                    },
                )
            )
    return SuiteResult("features", figures, asdict(settings) | {"device": str(device)})
