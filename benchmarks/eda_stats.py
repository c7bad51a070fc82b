"""Benchmark of ``kelpseg eda stats``: tiles/s on Dask vs a plain sequential read, and memory.

Run: ``.venv/bin/python benchmarks/eda_stats.py`` (2,000 tiles; ``--tiles 200 --small 50`` for
a quick look). Generates a demo dataset with ``kelpseg.synth`` once (a few dozen real-size
tiles), then links those files under new ids until there are ``--tiles`` of them, so the files
read are real-sized, real-content GeoTIFFs. Every timing reads from a warm page cache (the
sequential read runs first), so the ratio compares decoding + statistics to decoding alone.

Reports:
- the I/O floor: tiles/s of ``read_tile`` + ``read_label`` in one process, one tile at a time;
- tiles/s of ``compute_tile_stats`` with 1 and 2 local workers (cluster start-up excluded and
  reported apart), and the ratio of each to the floor;
- peak resident memory (driver + workers) for ``--small`` vs ``--tiles`` tiles, 2 workers.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import os
import shutil
import tempfile
import threading
import time
from pathlib import Path

import pandas as pd
import psutil

from kelpseg.eda.cluster import dask_client
from kelpseg.eda.config import EdaConfig
from kelpseg.eda.runner import compute_tile_stats, process_chunk
from kelpseg.io.catalog import build_catalog
from kelpseg.io.tiles import read_label, read_tile
from kelpseg.synth import SynthConfig, generate_dataset


def make_dataset(root: Path, n_tiles: int, n_aoi: int) -> pd.DataFrame:
    """A flat folder of ``n_tiles`` tiles (hard links to a small generated set) and its catalog."""
    base = root / "base"
    generate_dataset(base, SynthConfig(n_aoi=n_aoi, seed=0), show_progress=False)
    sources = build_catalog(base).tiles
    flat = root / "tiles"
    flat.mkdir(parents=True)
    for i in range(n_tiles):
        src = sources.iloc[i % len(sources)]
        tile_id = f"B{i:05d}"
        _link(Path(src["image_path"]), flat / f"{tile_id}_satellite.tif")
        if src["mask_path"]:
            _link(Path(src["mask_path"]), flat / f"{tile_id}_kelp.tif")
    return build_catalog(flat).tiles


def _link(src: Path, dst: Path) -> None:
    try:
        os.link(src, dst)
    except OSError:  # another file system: copy instead
        shutil.copyfile(src, dst)


def sequential_read(catalog: pd.DataFrame) -> tuple[float, float]:
    """(wall s, CPU s) to read every tile and label once, in this process."""
    start, cpu = time.perf_counter(), time.process_time()
    for image, mask in zip(catalog["image_path"], catalog["mask_path"], strict=True):
        tile = read_tile(image)
        if mask:
            read_label(mask, expected_size=tile.shape)
    return time.perf_counter() - start, time.process_time() - cpu


def cpu_seconds() -> float:
    """User + system CPU seconds of this process and its descendants (Dask workers) so far."""
    me = psutil.Process()
    total = 0.0
    for proc in [me, *me.children(recursive=True)]:
        with contextlib.suppress(psutil.Error):
            times = proc.cpu_times()
            total += times.user + times.system
    return total


class PeakMemory:
    """Samples the summed RSS of this process and its descendants (every 0.1 s)."""

    def __init__(self) -> None:
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        me = psutil.Process()
        procs: list[psutil.Process] = []
        for tick in itertools.count():
            if self._stop.is_set():
                return
            if tick % 10 == 0:  # listing children scans /proc: not at every sample
                procs = [me, *me.children(recursive=True)]
            total = 0
            for proc in procs:
                with contextlib.suppress(psutil.Error):  # a process may exit meanwhile
                    total += proc.memory_info().rss
            self.peak = max(self.peak, total)
            time.sleep(0.1)

    def __enter__(self) -> PeakMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def timed_stats(
    catalog: pd.DataFrame, workers: int, config: EdaConfig, memory: bool = False
) -> tuple[float, float, float, int]:
    """(start-up s, compute s, CPU s, peak RSS bytes or 0) of compute_tile_stats on a new cluster.

    Memory is sampled only when asked, so that sampling does not slow the timed runs.
    """
    sampler = PeakMemory() if memory else contextlib.nullcontext()
    with sampler:
        start = time.perf_counter()
        # The same client kelpseg makes for a local run, then timed on its own address.
        with dask_client(None, workers, config.dask) as client:
            ready, cpu = time.perf_counter(), cpu_seconds()
            stats, failures = compute_tile_stats(
                catalog, config, scheduler=client.scheduler.address, show_progress=False
            )
            done, cpu = time.perf_counter(), cpu_seconds() - cpu
    if len(stats) != len(catalog) or len(failures):
        raise SystemExit(f"benchmark run lost tiles: {len(stats)} ok, {len(failures)} failed")
    peak = sampler.peak if isinstance(sampler, PeakMemory) else 0
    return ready - start, done - ready, cpu, peak


def in_process(catalog: pd.DataFrame, config: EdaConfig) -> tuple[float, float]:
    """(wall s, CPU s) of the per-tile work (read + statistics) in this process, without Dask."""
    columns = (catalog["tile_id"], catalog["image_path"], catalog["mask_path"])
    rows = [(i, *row) for i, row in enumerate(zip(*columns, strict=True))]
    start, cpu = time.perf_counter(), time.process_time()
    result = process_chunk(rows, config)
    if result.failures:
        raise SystemExit(f"benchmark tiles failed: {result.failures[:3]}")
    return time.perf_counter() - start, time.process_time() - cpu


def _line(name: str, rate: float, floor: float, cpu: float, floor_cpu: float) -> None:
    print(
        f"{name:30s} {rate:7.1f} tiles/s  x{rate / floor:5.2f} of floor   "
        f"CPU {cpu * 1000:6.1f} ms/tile  x{cpu / floor_cpu:5.2f} of floor"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiles", type=int, default=2000, help="tiles in the large run")
    parser.add_argument("--small", type=int, default=500, help="tiles in the small memory run")
    parser.add_argument("--aoi", type=int, default=6, help="AOIs of the generated base set")
    parser.add_argument("--workers", default="1,2", help="worker counts to time")
    parser.add_argument("--keep", type=Path, default=None, help="keep the data in this folder")
    args = parser.parse_args()
    root = args.keep or Path(tempfile.mkdtemp(prefix="kelpseg-bench-"))
    try:
        catalog = make_dataset(root, args.tiles, args.aoi)
        config = EdaConfig()
        print(
            f"{len(catalog)} tiles ({(catalog['mask_path'] != '').sum()} labelled), "
            f"{os.cpu_count()} CPUs"
        )
        n = len(catalog)
        sequential_read(catalog.head(50))  # warm the page cache and imports
        wall, cpu = sequential_read(catalog)
        floor, floor_cpu = n / wall, cpu / n
        _line("sequential read (I/O floor)", n / wall, floor, cpu / n, floor_cpu)
        wall, cpu = in_process(catalog, config)
        _line("read + statistics, no Dask", n / wall, floor, cpu / n, floor_cpu)
        for workers in (int(w) for w in args.workers.split(",")):
            startup, wall, cpu, _ = timed_stats(catalog, workers, config)
            _line(f"eda stats, {workers} worker(s)", n / wall, floor, cpu / n, floor_cpu)
            print(f"    (cluster start-up {startup:.1f} s, not counted)")
        peaks = {}
        for size in (args.small, args.tiles):
            peaks[size] = timed_stats(catalog.head(size), 2, config, memory=True)[3]
            mib = peaks[size] / 2**20
            print(f"peak RSS, {size:5d} tiles, 2 workers: {mib:6.0f} MiB (all processes)")
        ratio = peaks[args.tiles] / peaks[args.small]
        print(f"peak memory ratio {args.tiles} / {args.small} tiles: {ratio:.2f} (flat = 1.0)")
    finally:
        if args.keep is None:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
