"""Cost of the 1st place's channels, augmentations and loss, as ratios to a reference.

    .venv/bin/python benchmarks/firstplace.py                  # 32 tiles of 350 px, CPU or CUDA
    .venv/bin/python benchmarks/firstplace.py --batch 8 --threads 1 --device cpu

Prints the median seconds per batch of:

1. each per-tile channel (OFFSET_NIR, LANDCLOSE, the NDVI filters), against NDVI alone;
2. Mosaic, CutMix and soft labels on a (N, 24, H, W) input, against a left-right flip;
3. the boundary loss against soft Dice; the exact distance transform in torch against scipy's.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from kelpseg.features import ChannelStack
from kelpseg.features.firstplace import SPATIAL_ENTRIES
from kelpseg.features.spatial import distance_to
from kelpseg.io.tiles import read_tile
from kelpseg.nn.data.mixing import CutMix, Mosaic, SoftLabels
from kelpseg.nn.data.transforms import RandomFlip
from kelpseg.nn.losses import build_term
from kelpseg.synth import SynthConfig, generate_dataset


def _timed(fn: Callable[[], object], device: torch.device, repeats: int) -> float:
    fn()  # warm-up (kernels, caches)
    times = []
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _row(name: str, seconds: float, reference: float) -> None:
    print(f"  {name:<22} {seconds * 1000:9.1f} ms   {seconds / reference:6.2f}x")


def main() -> None:
    """Run the three parts and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--size", type=int, default=350)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    dev = torch.device(args.device)
    raw = _tiles(args.batch, args.size).to(dev)
    print(f"{args.batch} tiles of {args.size} px on {dev}, median of {args.repeats}")

    print("1. channels (reference: NDVI)")
    ref = _timed(lambda: ChannelStack(["NDVI"])(raw), dev, args.repeats)
    _row("NDVI", ref, ref)
    for name in SPATIAL_ENTRIES:
        stack = ChannelStack(["NDVI", name])
        _row(name, _timed(lambda s=stack: s(raw), dev, args.repeats), ref)

    print("2. augmentations (reference: left-right flip)")
    g = torch.Generator().manual_seed(0)
    x = torch.rand(args.batch, 24, args.size, args.size, device=dev)
    y = (torch.rand(args.batch, 1, args.size, args.size, device=dev) > 0.98).float()
    ref = _timed(lambda: RandomFlip(1.0, -1)(x, y, g), dev, args.repeats)
    _row("hflip", ref, ref)
    for name, op in (
        ("mosaic", Mosaic(1.0)),
        ("cutmix", CutMix(1.0)),
        ("soft labels", SoftLabels(1.5)),
    ):
        _row(name, _timed(lambda op=op: op(x, y, g), dev, args.repeats), ref)

    print("3. loss (reference: soft Dice) and distance transforms")
    logits = torch.randn_like(y)
    ref = _timed(lambda: build_term("dice")(logits, y), dev, args.repeats)
    _row("dice", ref, ref)
    _row("boundary", _timed(lambda: build_term("boundary")(logits, y), dev, args.repeats), ref)
    mask = y[:, 0] > 0.5
    scipy_s = _timed(lambda: distance_to(mask, "scipy"), dev, args.repeats)
    _row("EDT scipy (host)", scipy_s, scipy_s)
    _row("EDT torch", _timed(lambda: distance_to(mask, "torch"), dev, args.repeats), scipy_s)


def _tiles(n: int, size: int) -> torch.Tensor:
    """``n`` generated tiles (kelpseg.synth; cycled when fewer were generated)."""
    with tempfile.TemporaryDirectory() as tmp:
        config = SynthConfig(n_aoi=4, tile_size=size, seed=0)
        generate_dataset(Path(tmp) / "data", config, workers=1, show_progress=False)
        paths = sorted((Path(tmp) / "data").rglob("*_satellite.tif"))
        arrays = [read_tile(p, expected_size=None).data for p in paths]
    return torch.from_numpy(np.stack([arrays[i % len(arrays)] for i in range(n)]))


if __name__ == "__main__":
    main()
