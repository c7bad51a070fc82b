"""Scene-prediction benchmark: peak memory of ``predict_scene`` on a full-size Landsat scene.

    .venv/bin/python benchmarks/scene_memory.py                 # 7,000 x 7,000, 350 px windows
    .venv/bin/python benchmarks/scene_memory.py --size 2000     # quicker
    .venv/bin/python benchmarks/scene_memory.py --size 1400 --size 2800 --package PKG  # 2 sizes
    .venv/bin/python benchmarks/scene_memory.py --size 7000 --workdir /tmp/scene --keep

1. Writes a crafted Collection 2 Level-2 scene of ``--size`` x ``--size`` pixels strip by strip
   (band files SR_B2..SR_B6 uint16, QA_PIXEL, a DEM on the scene grid): land on the west with
   hills, a coast with kelp-bright water, open sea, cloud blobs, fill outside the footprint.
2. Runs ``predict_scene`` with a cheap per-pixel predictor (NIR against red, numpy) in a fresh
   process, writing the mask and probability COGs, and reports that process's peak RSS
   (``ru_maxrss``) and the peak of Python/numpy allocations (``tracemalloc``) against the
   4 GB budget, next to the size the scene would take if it were held in memory.
3. Reports windows/s and the seconds spent reading strips (a background thread), in the model
   and writing rows, as shares of the wall time (reading overlaps the model, so shares can
   sum past 100%). ``--package`` runs a model package on ONNX Runtime instead of the stand-in;
   several ``--size`` values run one after the other, so peak memory is compared by size.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
from affine import Affine

BUDGET = 4 * 1024**3
PRODUCT = "LC08_L2SP_217096_20230115_20230115_02_T1"
STRIP = 512


def _strip(rows: np.ndarray, cols: np.ndarray, size: int) -> dict[str, np.ndarray]:
    """Bands of one strip, from pixel coordinates only (no whole-scene array anywhere)."""
    y, x = np.meshgrid(rows / size, cols / size, indexing="ij")
    coast = 0.3 + 0.05 * np.sin(y * 40) + 0.02 * np.sin(y * 170)
    land = x < coast
    dem = np.where(land, 5 + 300 * (coast - x) * (1 + np.sin(x * 60) ** 2), 0).astype(np.int16)
    dem[x > coast + 0.1] = -32768  # the DEM ends some way out at sea
    kelp = ~land & (x < coast + 0.01) & (np.sin(y * 900) > 0.2)
    cloud = (np.sin(x * 25) * np.sin(y * 23)) > 0.93
    # Collection 2 scaled reflectance: water ~8,000, vegetation NIR ~16,000, cloud ~27,000.
    sr = {
        "SR_B2": np.where(land, 8900, 9100),
        "SR_B3": np.where(land, 9600, 8800),
        "SR_B4": np.where(land, 9200, 8200),
        "SR_B5": np.where(land, 16700, np.where(kelp, 11000, 7700)),
        "SR_B6": np.where(land, 13800, np.where(kelp, 8900, 7500)),
    }
    outside = (y + x < 0.2) | ((1 - y) + (1 - x) < 0.2)
    qa = np.where(cloud, (1 << 3) | (1 << 1), 1 << 6).astype(np.uint16)
    qa[outside] = 1
    bands = {k: np.where(cloud, 27000, v).astype(np.uint16) for k, v in sr.items()}
    for band in bands.values():
        band[outside] = 0
    return {**bands, "QA_PIXEL": qa, "DEM": dem}


def write_scene(folder: Path, size: int) -> Path:
    """Write the crafted scene's files into ``folder``; return the band-file prefix."""
    transform = Affine(30, 0, 380_000, 0, -30, 4_300_000)
    names = ["SR_B2", "SR_B3", "SR_B4", "SR_B5", "SR_B6", "QA_PIXEL", "DEM"]
    files = {}
    for name in names:
        path = folder / ("dem.tif" if name == "DEM" else f"{PRODUCT}_{name}.TIF")
        files[name] = rasterio.open(
            path,
            "w",
            driver="GTiff",
            height=size,
            width=size,
            count=1,
            crs="EPSG:32721",
            transform=transform,
            dtype="int16" if name == "DEM" else "uint16",
            nodata=-32768 if name == "DEM" else (None if name == "QA_PIXEL" else 0),
            tiled=True,
            blockxsize=256,
            blockysize=256,
            compress="deflate",
        )
    cols = np.arange(size)
    for row in range(0, size, STRIP):
        rows = np.arange(row, min(row + STRIP, size))
        window = rasterio.windows.Window(0, row, size, len(rows))
        for name, band in _strip(rows, cols, size).items():
            files[name].write(band, 1, window=window)
    for ds in files.values():
        ds.close()
    return folder / PRODUCT


class PixelPredictor:
    """Kelp where NIR clearly exceeds red on the sea (DEM not above 0): a numpy stand-in."""

    tile_size = 350
    needs_dem = True
    threshold = 0.5
    channels = ("NIR", "R", "DEM")
    device = "cpu"

    def predict_batch(self, raw: np.ndarray) -> np.ndarray:
        nir, red = raw[:, 1].astype(np.float32), raw[:, 2].astype(np.float32)
        prob = 1 / (1 + np.exp(np.clip((red - nir) / 500, -50, 50)))
        prob[(raw[:, 6] > 0) | (raw[:, 5] > 0)] = 0
        return prob.astype(np.float32)


class UnetPredictor(PixelPredictor):
    """A randomly initialised smp U-Net (resnet18) on the 7 raw bands: torch's memory, real work.

    Tiles are padded to a multiple of 32 for the network and cropped back.
    """

    def __init__(self, device: str) -> None:
        import segmentation_models_pytorch as smp
        import torch

        self.torch = torch
        self.device = device
        self.net = smp.Unet("resnet18", encoder_weights=None, in_channels=7, classes=1)
        self.net = self.net.eval().to(device)

    def predict_batch(self, raw: np.ndarray) -> np.ndarray:
        torch = self.torch
        x = torch.from_numpy(raw).to(self.device).float()
        x = torch.where(x == -32768, 0.0, (x - 8000.0) / 4000.0)
        pad = (-x.shape[-1]) % 32
        x = torch.nn.functional.pad(x, (0, pad, 0, pad))
        with torch.inference_mode():
            prob = torch.sigmoid(self.net(x))[:, 0, : raw.shape[2], : raw.shape[3]]
        return prob.float().cpu().numpy()


def _peak_rss() -> int:
    """This process's peak resident memory in bytes.

    Linux's ``VmHWM`` starts afresh at exec, unlike ``ru_maxrss``, which a child inherits from
    the parent that forked it (here: the process that wrote the scene).
    """
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # kB on Linux, B on macOS


class Timed:
    """Wraps a callable and adds up the seconds spent in it (thread-safe enough: one caller)."""

    def __init__(self, fn: Any) -> None:
        self.fn, self.seconds = fn, 0.0

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            return self.fn(*args, **kwargs)
        finally:
            self.seconds += time.perf_counter() - start


def child(
    prefix: str, out: str, overlap: int | None, batch: int, model: str, package: str | None
) -> None:
    """Run one prediction and print its measurements as JSON (in a fresh process)."""
    from kelpseg.scenes import open_scene, predict_scene
    from kelpseg.scenes import predict as scene_predict
    from kelpseg.scenes.reader import LandsatScene

    predictor: Any = PixelPredictor()
    if package is not None:
        from kelpseg.portable import OnnxPredictor

        predictor = OnnxPredictor(package, device="cpu", quiet=True)
    elif model != "pixel":
        import torch

        predictor = UnetPredictor("cuda" if torch.cuda.is_available() else "cpu")
    infer = Timed(predictor.predict_batch)
    predictor.predict_batch = infer
    read = Timed(LandsatScene.read)
    LandsatScene.read = lambda self, window: read(self, window)  # type: ignore[method-assign]
    write = Timed(scene_predict.StripRasters.write)
    scene_predict.StripRasters.write = lambda self, *a: write(self, *a)  # type: ignore[method-assign]
    base_rss = _peak_rss()
    tracemalloc.start()
    start = time.perf_counter()
    with open_scene(prefix, dem=Path(prefix).parent / "dem.tif") as scene:
        result = predict_scene(
            scene,
            predictor,
            out,
            overlap=overlap,
            batch_size=batch,
            write_prob=True,
            show_progress=False,
        )
    seconds = time.perf_counter() - start
    _, traced = tracemalloc.get_traced_memory()
    print(
        json.dumps(
            {
                "seconds": seconds,
                "read_s": read.seconds,
                "infer_s": infer.seconds,
                "write_s": write.seconds,
                "device": str(predictor.device),
                "windows": result.windows,
                "skipped": result.skipped,
                "kelp_pixels": result.kelp_pixels,
                "base_rss": base_rss,
                "traced_peak": traced,
                "peak_rss": _peak_rss(),
            }
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--size", type=int, action="append", help="scene rows and columns (repeat; 7000)"
    )
    parser.add_argument("--package", help="a model package to run (ONNX Runtime, CPU)")
    parser.add_argument("--overlap", type=int, default=None, help="window overlap (tile/4)")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument(
        "--model",
        choices=("pixel", "unet"),
        default="pixel",
        help="numpy per-pixel stand-in, or a random-init smp U-Net (GPU if available)",
    )
    parser.add_argument("--workdir", type=Path, default=None, help="where to write the scene")
    parser.add_argument("--keep", action="store_true", help="keep the scene and outputs")
    parser.add_argument("--child", nargs=2, metavar=("PREFIX", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.child, args.overlap, args.batch_size, args.model, args.package)
        return
    print(f"load: {subprocess.run(['uptime'], capture_output=True, text=True).stdout.strip()}")
    for size in args.size or [7000]:
        args.size = size
        run_size(args)


def run_size(args: argparse.Namespace) -> None:
    """Write a scene of ``args.size`` px a side, predict it in a fresh process, report."""
    work = args.workdir or Path(tempfile.mkdtemp(prefix="kelpseg-scene-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        start = time.perf_counter()
        prefix = write_scene(work, args.size)
        print(f"== scene {args.size} x {args.size} written in {time.perf_counter() - start:.1f} s")
        cmd = [
            sys.executable,
            __file__,
            "--child",
            str(prefix),
            str(work / "kelp.tif"),
            "--batch-size",
            str(args.batch_size),
            "--model",
            args.model,
        ]
        if args.overlap is not None:
            cmd += ["--overlap", str(args.overlap)]
        if args.package is not None:
            cmd += ["--package", args.package]
        run = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)
        in_memory = args.size**2 * (7 * 2 + 4 + 1)  # raw int16 bands + prob + mask
        mib = 1024**2
        model = args.package or args.model
        print(
            f"windows {run['windows']} (skipped {run['skipped']}), {run['seconds']:.1f} s, "
            f"kelp pixels {run['kelp_pixels']:,}, model {model} on {run['device']}"
        )
        wall = run["seconds"]
        predicted = run["windows"] - sum(run["skipped"].values())
        print(
            f"{run['windows'] / wall:.2f} windows/s ({predicted / wall:.2f} predicted/s); "
            f"time in reading {100 * run['read_s'] / wall:.0f}% (background thread), "
            f"inference {100 * run['infer_s'] / wall:.0f}%, writing "
            f"{100 * run['write_s'] / wall:.0f}%, the rest (blend, COG finish) "
            f"{100 * (wall - run['infer_s'] - run['write_s']) / wall:.0f}% of the wall time"
        )
        print(
            f"peak RSS {run['peak_rss'] / mib:,.0f} MiB (after imports "
            f"{run['base_rss'] / mib:,.0f} MiB); traced allocations peak "
            f"{run['traced_peak'] / mib:,.0f} MiB"
        )
        print(f"whole scene in memory would be {in_memory / mib:,.0f} MiB")
        print(f"peak RSS / 4 GB budget = {run['peak_rss'] / BUDGET:.3f}")
        print(f"peak RSS / whole-scene size = {run['peak_rss'] / in_memory:.3f}")
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
