"""Inference speed: end to end (read, infer, write) vs model only, for 1 and 10 models.

Thin wrapper of the ``infer`` suite (:mod:`kelpseg.bench.infer`, the one implementation). On a
GPU the defaults are the seed's setup (Unet + EfficientNet-B5, 24 channels, bf16, the 1,426
tiles of the test set); on a CPU the demo model over 16 tiles::

    .venv/bin/python benchmarks/infer.py
    .venv/bin/python benchmarks/infer.py --encoder resnet18 --n-tiles 64 --members 1,10

``--check-precision`` also counts mask pixels that differ between fp32 and bf16/fp16.
"""

from __future__ import annotations

import argparse
import tempfile
from dataclasses import replace
from pathlib import Path

from kelpseg.bench import BenchConfig, print_suite, run_bench
from kelpseg.bench.fixtures import tile_files
from kelpseg.bench.infer import InferSettings, precision_disagreement, random_members
from kelpseg.bench.runner import resolve_device
from kelpseg.console import console


def main() -> None:
    """Parse flags, run the suite, print its table (and the precision check)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add = parser.add_argument
    add("--encoder", default=None)
    add("--channels", nargs="+", default=None, help="input channels (default: the seed's 24)")
    add("--n-tiles", type=int, default=None)
    add("--members", default=None, help="ensemble sizes to time, comma-separated")
    add("--device", default="auto", choices=("auto", "cpu", "cuda"))
    add("--precision", default=None, help="32, 16 or bf16 (default: bf16 on CUDA, else 32)")
    add("--batch-size", type=int, default=None)
    add("--num-workers", type=int, default=None, help="reader processes")
    add("--repeats", type=int, default=3)
    add("--quick", action="store_true")
    add("--check-precision", action="store_true", help="mask pixels differing from fp32")
    add("--out", type=Path, default=None, help="results JSON")
    args = parser.parse_args()
    config = BenchConfig(
        suites=["infer"], device=args.device, quick=args.quick, repeats=args.repeats
    )
    device = resolve_device(args.device)
    settings = InferSettings.for_run(config, device)
    changes = {
        "encoder": args.encoder,
        "channels": tuple(args.channels) if args.channels else None,
        "tiles": args.n_tiles,
        "members": tuple(int(n) for n in args.members.split(",")) if args.members else None,
        "precision": args.precision,
        "batch": args.batch_size,
        "workers": args.num_workers,
    }
    settings = replace(settings, **{k: v for k, v in changes.items() if v is not None})
    run_bench(config, args.out, on_suite=print_suite, settings={"infer": settings})
    if args.check_precision:
        low = settings.precision if settings.precision != "32" else "bf16"
        with tempfile.TemporaryDirectory() as tmp:
            paths = tile_files(Path(tmp), min(settings.tiles, 64), settings.tile_size)
            members = random_members(settings, paths, 1)
            share = precision_disagreement(members, paths, device, low, settings.batch)
        console.print(f"{low} vs fp32 on {len(paths)} tiles: {share:.4%} of mask pixels differ")


if __name__ == "__main__":
    main()
