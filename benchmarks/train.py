"""Training throughput: end to end (store -> loader -> device -> inputs -> model) vs model only.

Run on a GPU with the defaults (Unet + EfficientNet-B5, batch 32, 352 px, 24 channels,
bf16-mixed)::

    .venv/bin/python benchmarks/train.py

and a smaller CPU run::

    .venv/bin/python benchmarks/train.py --encoder resnet18 --batch 8 --crop 128 \\
        --channels R,G,B,SWIR1,NIR,QA,DEM,DEMWM,NDVI --precision 32 --steps 10 --warmup 3

*Model only* times forward, loss, backward and optimiser step on one batch of normalised inputs
already on the device. *End to end* times the same steps inside ``Trainer.fit`` of the real
:class:`~kelpseg.nn.module.KelpSegModule` fed by the real datamodule (prepared store, sampler,
DataLoader workers, host-to-device copy of raw int16, channel building, normalisation, padding,
augmentation, metrics, logging). The target: end to end >= 90% of model only on a GPU.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

import lightning as L
import torch

from kelpseg.config import validate_config
from kelpseg.features.compute_stats import compute_band_stats
from kelpseg.features.config import SEED_CHANNELS
from kelpseg.io.catalog import build_catalog
from kelpseg.nn.config import TrainConfig
from kelpseg.nn.data.datamodule import KelpDataModule
from kelpseg.nn.data.store import prepare_store
from kelpseg.nn.module import KelpSegModule
from kelpseg.synth import SynthConfig, generate_dataset


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class StepTimer(L.Callback):
    """Wall time of the training steps after ``warmup`` (synchronised with the device)."""

    def __init__(self, warmup: int) -> None:
        self.warmup, self.samples, self.start, self.end = warmup, 0, 0.0, 0.0

    def on_train_batch_start(
        self, trainer: L.Trainer, pl_module: Any, batch: Any, idx: int
    ) -> None:
        if idx == self.warmup:
            _sync(pl_module.device)
            self.start = time.perf_counter()

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: Any, outputs: Any, batch: Any, idx: int
    ) -> None:
        if idx >= self.warmup:
            _sync(pl_module.device)
            self.end = time.perf_counter()
            self.samples += int(batch["image"].shape[0])

    @property
    def rate(self) -> float:
        return self.samples / max(self.end - self.start, 1e-9)


def model_only_rate(
    module: KelpSegModule,
    config: TrainConfig,
    size: int,
    steps: int,
    warmup: int,
    device: torch.device,
) -> float:
    """Samples/s of train steps on one pre-staged batch of normalised inputs."""
    model, loss_fn = module.model.to(device).train(), module.loss.to(device)
    batch = config.data.batch_size
    x = torch.randn(batch, module.in_channels, size, size, device=device)
    y = (torch.rand(batch, 1, size, size, device=device) > 0.98).float()
    if config.model.channels_last:
        model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.optim.lr)
    bf16 = config.trainer.precision == "bf16-mixed"
    for i in range(warmup + steps):
        if i == warmup:
            _sync(device)
            start = time.perf_counter()
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            logits = model(x)
        loss = loss_fn(logits.float(), y)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    _sync(device)
    return steps * batch / (time.perf_counter() - start)


def prepare(work: Path, n_aoi: int, config_data: dict[str, Any]) -> dict[str, Any]:
    """Demo tiles, a one-fold catalog, their band statistics and a prepared store."""
    data = work / "data"
    if not (data / "synth_truth.parquet").is_file():
        generate_dataset(data, SynthConfig(n_aoi=n_aoi, seed=0), overwrite=True)
    catalog = build_catalog(data).tiles
    catalog = catalog[catalog["split"] == "train"].reset_index(drop=True)
    catalog["fold"] = (catalog.index % 5 == 0).astype("int64")  # fold 1 = validation
    catalog.to_parquet(work / "catalog.parquet", index=False)
    features = validate_config(TrainConfig, config_data).features
    stats = work / f"stats-{len(features.channels)}.json"
    if not stats.is_file():
        compute_band_stats(catalog, features, device="cpu", show_progress=False).to_json(stats)
    prepare_store(catalog, work / "store", splits=("train",), show_progress=False)
    return {"catalog": work / "catalog.parquet", "stats": stats, "store": work / "store"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", default="Unet")
    parser.add_argument("--encoder", default="efficientnet-b5")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--crop", type=int, default=None, help="train on crops (default: tiles)")
    parser.add_argument("--channels", default=",".join(SEED_CHANNELS))
    parser.add_argument("--precision", default=None, help="default: bf16-mixed on GPU, else 32")
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--n-aoi", type=int, default=12)
    parser.add_argument("--channels-last", action="store_true")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/kelpseg-train-bench"))
    args = parser.parse_args()
    cuda = torch.cuda.is_available()
    device = torch.device("cuda" if cuda else "cpu")
    precision = args.precision or ("bf16-mixed" if cuda else "32")
    config_data: dict[str, Any] = {
        "data": {"fold": 1, "batch_size": args.batch, "num_workers": args.workers,
                 "crop_size": args.crop, "kelp_crop_prob": 0.5 if args.crop else 0.0,
                 "sampler": {"weighted": False,
                             "samples_per_epoch": args.batch * (args.steps + args.warmup)}},
        "features": {"channels": args.channels.split(",")},
        "model": {"arch": args.arch, "encoder": args.encoder, "encoder_weights": None,
                  "channels_last": args.channels_last},
        "trainer": {"max_epochs": 1, "precision": precision, "accelerator": device.type,
                    "devices": 1, "limit_val_batches": 0, "num_sanity_val_steps": 0,
                    "enable_progress_bar": False},
        "tracking": {"enabled": False},
        "output_dir": str(args.workdir / "run"),
    }  # fmt: skip
    args.workdir.mkdir(parents=True, exist_ok=True)
    paths = prepare(args.workdir, args.n_aoi, config_data)
    config_data["data"].update(catalog=str(paths["catalog"]), store=str(paths["store"]))
    config_data["stats_path"] = str(paths["stats"])
    config = validate_config(TrainConfig, config_data)
    module = KelpSegModule(config, None if config.stats_path is None else _stats(config))
    size = args.crop or module.sizer.target_hw(350, 350)[0]

    # Model-only runs before and after the end-to-end run: on a shared machine the load drifts.
    before = model_only_rate(module, config, size, args.steps, args.warmup, device)
    timer = StepTimer(args.warmup)
    trainer = L.Trainer(callbacks=[timer], logger=False, enable_checkpointing=False,
                        enable_model_summary=False,
                        **{k: v for k, v in config.trainer.model_dump().items()
                           if k in ("max_epochs", "precision", "accelerator", "devices",
                                    "limit_val_batches", "num_sanity_val_steps",
                                    "enable_progress_bar")})  # fmt: skip
    trainer.fit(module, datamodule=KelpDataModule(config.data, seed=0))
    end_to_end = timer.rate
    after = model_only_rate(module, config, size, args.steps, args.warmup, device)
    model_only = (before + after) / 2

    name = (
        torch.cuda.get_device_name(device) if cuda else f"CPU ({torch.get_num_threads()} threads)"
    )
    setup = f"{args.arch} + {args.encoder}, batch {args.batch}, {size} px"
    print(f"device: {name}; {setup}, {module.in_channels} channels, precision {precision}")
    print(f"model only:  {model_only:8.1f} samples/s (before {before:.1f}, after {after:.1f})")
    print(f"end to end:  {end_to_end:8.1f} samples/s")
    print(f"end to end / model only: {end_to_end / model_only:.2f} (target >= 0.90 on GPU)")


def _stats(config: TrainConfig) -> Any:
    from kelpseg.features.stats import BandStats

    assert config.stats_path is not None
    return BandStats.from_json(config.stats_path)


if __name__ == "__main__":
    main()
