"""Inference speed: end to end (read, infer, write) vs model only, for 1 and 10 models.

Run on a GPU with the seed's setup (Unet + EfficientNet-B5, 24 channels, bf16)::

    .venv/bin/python benchmarks/infer.py                      # 1,426 tiles, 1 and 10 models

or a small CPU config::

    .venv/bin/python benchmarks/infer.py --arch Unet --encoder resnet18 --n-tiles 64

Models are randomly initialised (speed does not depend on the weights) unless ``--model`` names
trained checkpoints. "Model only" runs the same Predictor on batches already on the device, so
the ratio end-to-end / model-only says how much of the device time reading and writing hide.
``--check-precision`` also counts mask pixels that differ between fp32 and the chosen precision.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from kelpseg.config import validate_config
from kelpseg.features.compute_stats import compute_band_stats
from kelpseg.features.config import SEED_CHANNELS, FeatureConfig
from kelpseg.inference.loading import LoadedModel, load_model
from kelpseg.inference.predict import Predictor, predict_tiles
from kelpseg.inference.tta import TtaConfig
from kelpseg.io.tiles import MISSING, TILE_SIZE, read_tile, write_tile
from kelpseg.nn.config import TrainConfig
from kelpseg.nn.module import KelpSegModule

TEST_TILES = 1426
UNIQUE_TILES = 24  # distinct tiles written; the rest are file copies (every one is decoded)


def fake_tile(rng: np.random.Generator) -> np.ndarray:
    """A 350 px tile: noisy water, a strip of land with DEM, missing DEM far out at sea."""
    data = np.empty((7, TILE_SIZE, TILE_SIZE), dtype=np.int16)
    for band, base in enumerate((7600, 8000, 8100, 8300, 8500)):
        data[band] = base + rng.integers(-300, 300, (TILE_SIZE, TILE_SIZE))
    land = int(rng.integers(0, TILE_SIZE // 2))
    data[5] = (rng.random((TILE_SIZE, TILE_SIZE)) < 0.02).astype(np.int16)
    data[6] = 0
    data[6, :, :land] = rng.integers(1, 200, (TILE_SIZE, land))
    data[6, :, -20:] = MISSING
    return data


def make_tiles(folder: Path, n: int) -> list[Path]:
    """``n`` satellite files in ``folder`` (``UNIQUE_TILES`` distinct ones, copied)."""
    rng = np.random.default_rng(0)
    unique = [
        write_tile(folder / f"U{i:04d}_satellite.tif", fake_tile(rng)) for i in range(UNIQUE_TILES)
    ]
    paths = []
    for i in range(n):
        path = folder / f"T{i:05d}_satellite.tif"
        shutil.copyfile(unique[i % len(unique)], path)
        paths.append(path)
    for path in unique:
        path.unlink()
    return paths


def random_members(args: argparse.Namespace, paths: list[Path], n: int) -> list[LoadedModel]:
    """``n`` randomly initialised models of the chosen architecture, with real band stats."""
    features = FeatureConfig(channels=args.channels)
    stats = compute_band_stats(
        [str(p) for p in paths[:UNIQUE_TILES]], features, device="cpu", show_progress=False
    )
    model = {"arch": args.arch, "encoder": args.encoder, "encoder_weights": None}
    config = validate_config(TrainConfig, {"features": features.model_dump(), "model": model})
    members = []
    for seed in range(n):
        torch.manual_seed(seed)
        members.append(
            LoadedModel(KelpSegModule(config, stats, pretrained=False).eval(), f"random-{seed}")
        )
    return members


def predictor_for(
    args: argparse.Namespace, members: list[LoadedModel], precision: str
) -> Predictor:
    tta = TtaConfig(enabled=args.tta)
    backend = "inductor" if args.compile else None
    return Predictor(
        members,
        device=args.device,
        precision=precision,  # type: ignore[arg-type]
        tta=tta,
        compile_backend=backend,
    )


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def model_only(predictor: Predictor, paths: list[Path], batch_size: int) -> float:
    """Tiles/s of the predictor on batches already on the device (no disk, no host work)."""
    raw = np.stack([read_tile(p).data for p in paths[:batch_size]])
    batch = torch.from_numpy(raw).to(predictor.device)
    n_batches = max(1, len(paths) // batch_size)
    predictor.predict_batch(batch)  # warm-up: kernels, autotuning, allocator
    _sync(predictor.device)
    start = time.perf_counter()
    pending = [predictor.launch(batch) for _ in range(n_batches)]
    pending[-1].result()
    _sync(predictor.device)
    return n_batches * batch_size / (time.perf_counter() - start)


def end_to_end(predictor: Predictor, folder: Path, out: Path, args: argparse.Namespace) -> float:
    """Tiles/s of ``predict_tiles``: read in workers, infer, write masks in threads."""
    warm = sorted(folder.glob("*_satellite.tif"))[: args.batch_size]
    predict_tiles(
        predictor,
        warm,
        out / "warm",
        batch_size=args.batch_size,
        num_workers=0,
        show_progress=False,
    )
    summary = predict_tiles(
        predictor,
        folder,
        out / "preds",
        overwrite=True,
        soft=args.soft,
        batch_size=args.batch_size,
        num_workers=args.num_workers,
        show_progress=False,
    )
    return summary.tiles_per_second


def check_precision(
    members: list[LoadedModel], paths: list[Path], args: argparse.Namespace
) -> None:
    """Share of mask pixels (at 0.5) that differ between fp32 and reduced precision."""
    low = args.precision if args.precision != "32" else "bf16"
    raw = np.stack([read_tile(p).data for p in paths[: min(len(paths), 64)]])
    chunks = [raw[i : i + args.batch_size] for i in range(0, len(raw), args.batch_size)]
    probs = {}
    for precision in ("32", low):
        predictor = predictor_for(args, members[:1], precision)
        probs[precision] = np.concatenate([predictor.predict_batch(c) for c in chunks])
    differ = np.mean((probs["32"] >= 0.5) != (probs[low] >= 0.5))
    print(f"{low} vs fp32 on {len(raw)} tiles: {differ:.4%} of mask pixels differ")


def parse_args() -> argparse.Namespace:
    """Command-line options, with device-dependent defaults filled in."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add = parser.add_argument
    add("--arch", default="Unet")
    add("--encoder", default="efficientnet-b5")
    add("--channels", nargs="+", default=list(SEED_CHANNELS), help="default: the seed's 24")
    add("--model", action="append", help="trained checkpoint(s) instead of random models")
    add("--n-tiles", type=int, default=TEST_TILES)
    add("--members", default="1,10", help="ensemble sizes to time, comma-separated")
    add("--device", default="auto")
    add("--precision", default=None, help="32, 16 or bf16 (default: bf16 on CUDA, else 32)")
    add("--batch-size", type=int, default=None, help="default 32 on CUDA, 8 on CPU")
    add("--num-workers", type=int, default=None, help="readers (default 6 on CUDA, 1 on CPU)")
    add("--model-only-tiles", type=int, default=None, help="default: n-tiles (2 batches on CPU)")
    add("--compile", action="store_true", help="torch.compile the networks (inductor)")
    add("--tta", action="store_true", help="8-fold TTA (eight forward passes per tile)")
    add("--soft", action="store_true", help="also write float32 probabilities")
    add("--check-precision", action="store_true", help="mask pixels differing from fp32")
    args = parser.parse_args()
    cuda = args.device.startswith("cuda") or (args.device == "auto" and torch.cuda.is_available())
    args.device = "cuda" if cuda and args.device == "auto" else args.device
    args.device = "cpu" if args.device == "auto" else args.device
    args.precision = args.precision or ("bf16" if cuda else "32")
    args.batch_size = args.batch_size or (32 if cuda else 8)
    if args.num_workers is None:
        args.num_workers = 6 if cuda else 1
    if args.model_only_tiles is None:
        args.model_only_tiles = args.n_tiles if cuda else 2 * args.batch_size
    args.sizes = [int(s) for s in args.members.split(",")]
    return args


def main() -> None:
    args = parse_args()
    torch.backends.cudnn.benchmark = True  # fixed input sizes: let cuDNN pick its fastest
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "tiles"
        paths = make_tiles(folder, args.n_tiles)
        if args.model:
            pool = [load_model(m) for m in args.model]
            members = [pool[i % len(pool)] for i in range(max(args.sizes))]
        else:
            members = random_members(args, paths, max(args.sizes))
        name = args.model[0] if args.model else f"{args.arch} + {args.encoder}"
        where = torch.cuda.get_device_name() if args.device.startswith("cuda") else args.device
        channels = len(members[0].module.config.features.channels)
        print(
            f"{name}, {channels} channels, {args.precision}, TTA {args.tta}, compile {args.compile}"
        )
        readers = f"{args.num_workers} reader(s)"
        print(f"batch {args.batch_size}, {readers}, {args.n_tiles} tiles on {where}")
        for n in args.sizes:
            predictor = predictor_for(args, members[:n], args.precision)
            fast = model_only(predictor, paths[: args.model_only_tiles], args.batch_size)
            e2e = end_to_end(predictor, folder, Path(tmp) / f"out{n}", args)
            print(
                f"  {n:2d} model(s): model only {fast:7.2f} tiles/s | end to end {e2e:7.2f} tiles/s"
                f" | ratio {e2e / fast:.2f} | {TEST_TILES} tiles: {TEST_TILES / e2e:7.1f} s"
            )
        if args.check_precision:
            check_precision(members, paths, args)


if __name__ == "__main__":
    main()
