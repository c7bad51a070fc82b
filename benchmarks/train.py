"""Training throughput: end to end (store -> loader -> device -> inputs -> model) vs model only.

Thin wrapper of the ``train`` suite (:mod:`kelpseg.bench.train`, the one implementation). On a
GPU the defaults are Unet + EfficientNet-B5, batch 32, 352 px, 24 channels, bf16-mixed::

    .venv/bin/python benchmarks/train.py

Flags describe another setup (written to a training config the suite reads), e.g. on a CPU::

    .venv/bin/python benchmarks/train.py --encoder resnet18 --batch 8 --crop 128 \\
        --channels R,G,B,SWIR1,NIR,QA,DEM,DEMWM,NDVI --precision 32 --steps 10

``--config configs/demo.yaml`` measures a training config as it is (``kelpseg bench --suite
train --config ...`` does the same).
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path
from typing import Any

import torch
import yaml

from kelpseg.bench import BenchConfig, print_suite, run_bench
from kelpseg.bench.train import default_run, merged


def setup_yaml(args: argparse.Namespace, folder: Path) -> Path | None:
    """The suite's default setup with the flags given written over it (None: no flags)."""
    config: dict[str, Any] = {"model": {}, "data": {}, "trainer": {}}
    setters = {
        "arch": ("model", "arch"),
        "encoder": ("model", "encoder"),
        "channels_last": ("model", "channels_last"),
        "batch": ("data", "batch_size"),
        "crop": ("data", "crop_size"),
        "workers": ("data", "num_workers"),
        "precision": ("trainer", "precision"),
    }
    for flag, (section, key) in setters.items():
        if getattr(args, flag) is not None:
            config[section][key] = getattr(args, flag)
    if args.channels:
        config["features"] = {"channels": args.channels.split(",")}
    if not any(config.values()):
        return None
    cuda = args.device == "cuda" or (args.device == "auto" and torch.cuda.is_available())
    path = folder / "train-setup.yaml"
    path.write_text(yaml.safe_dump(merged(default_run(args.quick, cuda), config)))
    return path


def main() -> None:
    """Parse flags, run the suite, print its table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add = parser.add_argument
    add("--config", type=Path, default=None, help="a training config YAML to measure")
    add("--arch", default=None)
    add("--encoder", default=None)
    add("--batch", type=int, default=None)
    add("--crop", type=int, default=None, help="train on crops (default: whole tiles)")
    add("--channels", default=None, help="comma-separated input channels")
    add("--precision", default=None, help="default: bf16-mixed on GPU, else 32")
    add("--workers", type=int, default=None, help="DataLoader workers")
    add("--channels-last", action="store_true", default=None)
    add("--steps", type=int, default=None, help="steps per timed window")
    add("--warmup", type=int, default=None, help="untimed steps first (5 on GPU, 1 on CPU)")
    add("--repeats", type=int, default=3, help="timed windows (the figure is their median)")
    add("--device", default="auto")
    add("--quick", action="store_true")
    add("--workdir", type=Path, default=None, help="reuse/keep generated data here")
    add("--out", type=Path, default=None, help="results JSON")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        config = BenchConfig(
            suites=["train"],
            device=args.device,
            quick=args.quick,
            repeats=args.repeats,
            train_config=args.config or setup_yaml(args, Path(tmp)),
            train_steps=args.steps,
            train_warmup_steps=args.warmup,
            workdir=args.workdir,
        )
        run_bench(config, args.out, on_suite=print_suite)


if __name__ == "__main__":
    main()
