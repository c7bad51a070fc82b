"""Feature-stage benchmark: model-input building and band statistics.

Part 1 is the ``features`` suite of ``kelpseg bench`` (:mod:`kelpseg.bench.features`, the one
implementation) at a settable batch and tile size; part 2 measures band-statistics memory.

    .venv/bin/python benchmarks/features.py                      # both parts, defaults below
    .venv/bin/python benchmarks/features.py --stats-tiles 100 400 --threads 1

1. The seed's 24-channel input for a batch of 32 tiles of 350 px: seconds per batch against the
   floor of one read and one write of the output tensor (a clone of a same-sized tensor); the
   ratio is printed. Runs on CUDA when available (or ``--device``).
2. Band statistics over N tiles (default 500 and 2,000): tiles/s and peak RSS, each N in a
   fresh process so the peaks compare. Tiles are a pool of generated tiles (kelpseg.synth)
   listed repeatedly up to N, so disk space stays small; every listed tile is read and decoded.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from kelpseg.bench import BenchConfig, print_suite, run_bench
from kelpseg.bench.features import FeatureSettings
from kelpseg.features import FeatureConfig, compute_band_stats
from kelpseg.features.compute_stats import resolve_device


def bench_input(batch: int, size: int, device: str, repeats: int) -> None:
    """Part 1: the features suite (kelpseg.bench.features) at the given batch and tile size."""
    config = BenchConfig(suites=["features"], device=device, repeats=repeats)  # type: ignore[arg-type]
    settings = FeatureSettings(batch=batch, tile_size=size)
    run_bench(config, None, on_suite=print_suite, settings={"features": settings})


def make_pool(folder: Path, n_aoi: int) -> list[Path]:
    """Generated tiles to cycle through (kelpseg.synth, the real download layout)."""
    from kelpseg.synth import SynthConfig, generate_dataset

    generate_dataset(folder, SynthConfig(n_aoi=n_aoi, seed=0))
    return sorted(folder.glob("*_satellite/*_satellite.tif"))


def peak_rss_mb() -> float:
    """This process's peak resident memory (VmHWM; ru_maxrss would inherit the parent's)."""
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def stats_child(pool_file: Path, n: int, device: str, batch_size: int) -> dict[str, float]:
    """Part 2, inside a fresh process: one band-statistics pass over n tiles."""
    pool = [Path(p) for p in json.loads(pool_file.read_text())]
    paths = [pool[i % len(pool)] for i in range(n)]
    config = FeatureConfig()
    before = peak_rss_mb()
    start = time.perf_counter()
    compute_band_stats(paths, config, device=device, batch_size=batch_size, show_progress=False)
    seconds = time.perf_counter() - start
    peak = peak_rss_mb()
    return {
        "tiles": n,
        "seconds": seconds,
        "tiles_per_s": n / seconds,
        "rss_before_mb": before,
        "peak_rss_mb": peak,
    }


def bench_stats(counts: list[int], device: str, batch_size: int, n_aoi: int, threads: int) -> None:
    """Part 2: run each count in its own process and compare tiles/s and peak RSS."""
    with tempfile.TemporaryDirectory() as tmp:
        pool = make_pool(Path(tmp) / "pool", n_aoi)
        pool_file = Path(tmp) / "pool.json"
        pool_file.write_text(json.dumps([str(p) for p in pool]))
        print(
            f"== band statistics: 24 channels, pool of {len(pool)} generated tiles, "
            f"batch {batch_size}, device {device}"
        )
        for n in counts:
            cmd = [
                sys.executable,
                __file__,
                "--stats-child",
                str(n),
                "--pool",
                str(pool_file),
                "--device",
                device,
                "--batch-size",
                str(batch_size),
                "--threads",
                str(threads),
            ]
            result = json.loads(
                subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
            )
            print(
                f"  {n:6d} tiles: {result['seconds']:7.1f} s  "
                f"{result['tiles_per_s']:7.2f} tiles/s  "
                f"peak RSS {result['peak_rss_mb']:7.0f} MiB "
                f"(after imports {result['rss_before_mb']:.0f} MiB)"
            )


def main() -> None:
    """Parse flags and run the chosen parts."""
    parser = argparse.ArgumentParser(description="kelpseg features benchmark")
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    parser.add_argument("--batch", type=int, default=32, help="tiles per input batch")
    parser.add_argument("--size", type=int, default=350)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--stats-tiles", type=int, nargs="*", default=[500, 2000])
    parser.add_argument("--batch-size", type=int, default=8, help="tiles per statistics batch")
    parser.add_argument("--pool-aoi", type=int, default=8, help="AOIs of the generated pool")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: default)")
    parser.add_argument("--skip-input", action="store_true")
    parser.add_argument("--skip-stats", action="store_true")
    parser.add_argument("--stats-child", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--pool", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    if args.stats_child is not None:
        print(json.dumps(stats_child(args.pool, args.stats_child, str(device), args.batch_size)))
        return
    print(f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads, device {device}")
    if not args.skip_input:
        bench_input(args.batch, args.size, args.device, args.repeats)
    if not args.skip_stats and args.stats_tiles:
        bench_stats(args.stats_tiles, str(device), args.batch_size, args.pool_aoi, args.threads)


if __name__ == "__main__":
    main()
