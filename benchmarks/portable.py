"""Portable models: ONNX Runtime vs torch tiles/s, and the light install's size vs the full one.

Model only (tiles already in memory, no reading or writing), the same batches through the torch
``Predictor`` and through the exported package's ``OnnxPredictor``, fp32::

    .venv/bin/python benchmarks/portable.py                    # demo model (configs/demo.yaml)
    .venv/bin/python benchmarks/portable.py --b5               # Unet + EfficientNet-B5
    .venv/bin/python benchmarks/portable.py --light-venv /tmp/light   # + venv sizes
    .venv/bin/python benchmarks/portable.py --parity           # accuracy, not speed (below)

``--parity`` exports tiny random-init Unet, Unet++ and Segformer networks (different channel
sets and normalisations) alone and as one weighted ensemble, and prints, per tile size, the
largest |ONNX Runtime - torch| probability and the share of mask pixels that differ at 0.5.

Networks are randomly initialised (speed does not depend on the weights). On a machine with
CUDA, torch also runs on the GPU and ONNX Runtime uses its CUDA provider when installed
(``onnxruntime-gpu``). Prints one line per runtime and the ratios.
"""

from __future__ import annotations

import argparse
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml

from kelpseg.config import validate_config
from kelpseg.export.package import export_model
from kelpseg.export.verify import crafted_tiles
from kelpseg.features.compute_stats import compute_band_stats
from kelpseg.features.config import SEED_CHANNELS, FeatureConfig
from kelpseg.inference.loading import LoadedModel
from kelpseg.inference.runner import Predictor
from kelpseg.io.tiles import write_tile
from kelpseg.nn.config import TrainConfig
from kelpseg.nn.module import KelpSegModule
from kelpseg.portable import OnnxPredictor

ROOT = Path(__file__).resolve().parents[1]


def build_module(b5: bool, folder: Path) -> KelpSegModule:
    """The demo config's network (or Unet + EfficientNet-B5 on the seed's 24 channels)."""
    demo = yaml.safe_load((ROOT / "configs" / "demo.yaml").read_text())
    features: dict[str, Any] = demo["features"]
    model: dict[str, Any] = demo["model"]
    if b5:
        features = {"channels": list(SEED_CHANNELS)}
        model = {"arch": "Unet", "encoder": "efficientnet-b5", "encoder_weights": None}
    tiles = crafted_tiles(4, 350, 350, seed=1)
    paths = [write_tile(folder / f"S{i}_satellite.tif", t) for i, t in enumerate(tiles)]
    stats = compute_band_stats(
        paths, FeatureConfig.model_validate(features), device="cpu", show_progress=False
    )
    config = validate_config(TrainConfig, {"features": features, "model": model})
    torch.manual_seed(0)
    return KelpSegModule(config, stats, pretrained=False).eval()


def rate(predict: Any, batches: list[np.ndarray], device_sync: Any = None) -> float:
    """Tiles per second over ``batches`` (after one warm-up batch)."""
    predict(batches[0])
    start = time.perf_counter()
    for batch in batches:
        predict(batch)
    if device_sync is not None:
        device_sync()
    return sum(len(b) for b in batches) / (time.perf_counter() - start)


PER_SAMPLE = {"normalization": "per-sample-min-max"}
SMALL_DECODER = {"encoder_depth": 3, "decoder_channels": [32, 16, 8]}
PARITY_MEMBERS: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    "Unet": (
        {"channels": ["R", "G", "B", "NIR", "SWIR1", "NDVI"], **PER_SAMPLE},
        {"arch": "Unet", "arch_kwargs": SMALL_DECODER},
    ),
    "UnetPlusPlus": (
        {"channels": ["SWIR1", "NIR", "G", "DEM", "DEMWM"], **PER_SAMPLE},
        {"arch": "UnetPlusPlus", "arch_kwargs": SMALL_DECODER},
    ),
    "Segformer": (
        {"channels": ["NIR", "R", "QA"], "fill_value": "zero", **PER_SAMPLE},
        {"arch": "Segformer", "arch_kwargs": {"encoder_depth": 3}},
    ),
}


def parity(folder: Path) -> None:
    """Print ONNX Runtime vs torch differences of single models and their ensemble."""
    modules = {}
    for seed, (name, (features, model)) in enumerate(PARITY_MEMBERS.items()):
        model = {"encoder": "tu-resnet10t", "encoder_weights": None, **model}
        config = validate_config(TrainConfig, {"features": features, "model": model})
        torch.manual_seed(seed)
        modules[name] = KelpSegModule(config, None, pretrained=False).eval()
    cases = {name: ([m], None) for name, m in modules.items()}
    cases["ensemble 2:1:1"] = (list(modules.values()), [2.0, 1.0, 1.0])
    for name, (members, weights) in cases.items():
        package = export_model(members, weights, "parity", "1", folder / name.replace(" ", "_"))
        onnx = OnnxPredictor(package, device="cpu", quiet=True)
        reference = Predictor([LoadedModel(m, name) for m in members], weights, device="cpu")
        for height, width in ((350, 350), (97, 131), (33, 40)):
            raw = crafted_tiles(4, height, width, seed=height)
            got, expected = onnx.predict_batch(raw), reference.predict_batch(raw)
            diff = float(np.abs(got - expected).max())
            flips = float(((got >= 0.5) != (expected >= 0.5)).mean())
            size = f"{height}x{width}"
            print(f"  {name:<16} {size:>7}  max|diff| {diff:.2e}  masks differ {flips:.2e}")


def venv_size(path: Path) -> float:
    """Installed size of a virtual environment in MB (``du``)."""
    out = subprocess.run(["du", "-sk", str(path)], capture_output=True, text=True, check=True)
    return int(out.stdout.split()[0]) / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--b5", action="store_true", help="Unet + EfficientNet-B5 (24 channels)")
    parser.add_argument("--tiles", type=int, default=32, help="tiles timed per runtime")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--threads", type=int, default=0, help="CPU threads (0: all cores)")
    parser.add_argument("--light-venv", type=Path, help="a venv with `pip install kelpseg` only")
    parser.add_argument("--parity", action="store_true", help="ONNX vs torch differences only")
    args = parser.parse_args()
    if args.parity:
        with tempfile.TemporaryDirectory() as tmp:
            parity(Path(tmp))
        return
    threads = args.threads or torch.get_num_threads()
    torch.set_num_threads(threads)
    name = "Unet + EfficientNet-B5, 24 channels" if args.b5 else "demo model (configs/demo.yaml)"
    with tempfile.TemporaryDirectory() as tmp:
        module = build_module(args.b5, Path(tmp))
        start = time.perf_counter()
        package = export_model([module], None, "bench", "1", Path(tmp) / "pkg")
        export_s = time.perf_counter() - start
        size_mb = sum(p.stat().st_size for p in package.iterdir()) / 1e6
        raw = crafted_tiles(args.batch_size, 350, 350, seed=2)
        batches = [raw] * max(1, args.tiles // args.batch_size)
        print(f"{name}: export {export_s:.0f} s, package {size_mb:.1f} MB, {threads} threads")
        results: dict[str, float] = {}
        torch_cpu = Predictor([LoadedModel(module, "<bench>")], device="cpu")
        results["torch cpu"] = rate(torch_cpu.predict_batch, batches)
        onnx_cpu = OnnxPredictor(package, device="cpu", threads=threads, quiet=True)
        results["onnxruntime cpu"] = rate(onnx_cpu.predict_batch, batches)
        if torch.cuda.is_available():
            torch_gpu = Predictor([LoadedModel(module, "<bench>")], device="cuda")
            results["torch cuda"] = rate(torch_gpu.predict_batch, batches, torch.cuda.synchronize)
            onnx_gpu = OnnxPredictor(package, device="auto", quiet=True)
            results[f"onnxruntime {onnx_gpu.device.provider}"] = rate(
                onnx_gpu.predict_batch, batches
            )
    for key, value in results.items():
        print(f"  {key:<40} {value:8.2f} tiles/s")
    print(f"  onnxruntime / torch on CPU: {results['onnxruntime cpu'] / results['torch cpu']:.2f}x")
    if args.light_venv is not None:
        light, full = venv_size(args.light_venv), venv_size(ROOT / ".venv")
        print(f"light venv {light:.0f} MB vs full .venv {full:.0f} MB ({full / light:.1f}x)")


if __name__ == "__main__":
    main()
