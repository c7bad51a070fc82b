"""CPU inference: where the time goes, per runtime setting, beside the machine's matmul rate.

    .venv/bin/python benchmarks/cpu_inference.py --threads 2                 # demo model
    .venv/bin/python benchmarks/cpu_inference.py --threads 2 --b5            # Unet + EffNet-B5
    .venv/bin/python benchmarks/cpu_inference.py --threads 2 --end-to-end    # + predict on files
    .venv/bin/python benchmarks/cpu_inference.py --checkpoint RUN --calibration DIR --holdout DIR

For one model (random init unless ``--checkpoint``), in one process and on the same batches of
350 px tiles: the fp32 matrix-product rate of the machine (torch, 1024^3, same threads), the
model's FLOPs per tile (convolutions and matrix products, counted on meta tensors), then
tiles/s of torch eager, channels-last, bf16 autocast, ``torch.compile`` (``--compile``), and
ONNX Runtime at each graph optimisation level, 1 and N intra-op threads, memory arena off,
I/O binding, and the int8 packages (QOperator and QDQ). Every setting is timed ``--repeats``
times, interleaved (a busy machine slows all of them alike); each line gives the median
tiles/s with its spread, the median ratio to torch eager, and the share of the matmul rate
reached (tiles/s x FLOPs per tile / matmul FLOP/s). Then ONNX Runtime's profiler splits the
float graph's time by operator.

``--end-to-end`` writes ``--files`` tiles to disk and runs ``predict_tiles`` (reader threads,
the model, writer threads) for torch and ONNX Runtime, each beside its model-only rate on the
same tiles. With ``--calibration`` and ``--holdout`` the int8 package is calibrated on those
tiles and both graphs' kelp Dice on the held-out tiles are printed (a trained model needs
``--checkpoint``; random init has no meaningful Dice).
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from kelpseg.bench.flops import forward_flops, matmul_tflops
from kelpseg.export.package import export_model
from kelpseg.export.verify import crafted_tiles
from kelpseg.inference.loading import LoadedModel, load_model
from kelpseg.inference.predict import predict_tiles
from kelpseg.inference.runner import Predictor
from kelpseg.io.tiles import write_label, write_tile
from kelpseg.portable import OnnxPredictor
from kelpseg.portable.manifest import read_manifest
from portable import build_module

Predict = Callable[[np.ndarray], Any]
LEVELS = {
    "disabled": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
    "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
    "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
    "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
}


def load() -> str:
    """The 1, 5 and 15 minute load averages (``uptime``), for the record."""
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def session(
    graph: Path, threads: int, level: str = "all", arena: bool = True, spin: bool = True
) -> Any:
    """A CPU session with explicit settings (one intra-op pool, sequential)."""
    options = ort.SessionOptions()
    if not spin:  # idle pool threads sleep instead of spinning (leaves cores to readers)
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.graph_optimization_level = LEVELS[level]
    options.enable_cpu_mem_arena = arena
    return ort.InferenceSession(str(graph), options, providers=["CPUExecutionProvider"])


def plain_run(sess: Any) -> Predict:
    return lambda raw: sess.run(["prob"], {"raw": raw})[0]


def bound_run(sess: Any) -> Predict:
    """I/O binding: the input bound as it is, the output allocated by ONNX Runtime."""

    def run(raw: np.ndarray) -> Any:
        binding = sess.io_binding()
        binding.bind_cpu_input("raw", raw)
        binding.bind_output("prob")
        sess.run_with_iobinding(binding)
        return binding.copy_outputs_to_cpu()[0]

    return run


def gemm_per_cpu_second(size: int = 1024, repeats: int = 10) -> float:
    """fp32 matrix-product FLOPs per CPU second of this process (all its threads)."""
    gen = torch.Generator().manual_seed(0)
    a, b = torch.randn(size, size, generator=gen), torch.randn(size, size, generator=gen)
    for _ in range(3):
        a @ b
    start = time.process_time()
    for _ in range(repeats):
        a @ b
    return repeats * 2 * size**3 / (time.process_time() - start)


def timed(
    runtimes: dict[str, Predict], batches: list[np.ndarray], repeats: int
) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
    """Tiles per wall second and per CPU second (this process's, all threads) of each runtime,
    ``repeats`` times, interleaved (after one warm-up each).

    On a machine shared past its cores, wall time mostly measures the wait for a core; CPU time
    measures the work done, so its ratios hold where the wall-time ones swing.
    """
    tiles = sum(len(b) for b in batches)
    for predict in runtimes.values():
        predict(batches[0])
    wall: dict[str, list[float]] = {name: [] for name in runtimes}
    cpu: dict[str, list[float]] = {name: [] for name in runtimes}
    for _ in range(repeats):
        for name, predict in runtimes.items():
            start, start_cpu = time.perf_counter(), time.process_time()
            for batch in batches:
                predict(batch)
            wall[name].append(tiles / (time.perf_counter() - start))
            cpu[name].append(tiles / (time.process_time() - start_cpu))
    return wall, cpu


def report(
    rates: dict[str, list[float]],
    cpu: dict[str, list[float]],
    flops: float,
    gemm: float,
    gemm_cpu: float,
) -> None:
    """One line per runtime: median tiles/s (spread), ratio to torch eager, share of the
    matmul rate; then the same per CPU second (share of the matmul FLOPs per CPU second)."""
    ref = "torch eager fp32"

    def ratio(values: list[float], base: list[float]) -> float:
        return statistics.median(v / b for v, b in zip(values, base, strict=True))

    head = f"{'tiles/s':>8} {'spread':>11} {'x eager':>8} {'matmul':>7}"
    print(f"  {'runtime':<34} {head} {'tiles/cpu-s':>12} {'x eager':>8} {'matmul':>7}")
    for name, values in rates.items():
        med, cmed = statistics.median(values), statistics.median(cpu[name])
        spread = f"{min(values):.2f}-{max(values):.2f}"
        share = 100 * med * flops / gemm
        print(
            f"  {name:<34} {med:8.2f} {spread:>11} {ratio(values, rates[ref]):7.2f}x "
            f"{share:6.1f}% {cmed:12.3f} {ratio(cpu[name], cpu[ref]):7.2f}x "
            f"{100 * cmed * flops / gemm_cpu:6.1f}%"
        )


def profile(graph: Path, threads: int, batch: np.ndarray) -> None:
    """ONNX Runtime's own profiler: the float graph's kernel time by operator."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.enable_profiling = True
    options.profile_file_prefix = str(graph.parent / "ort_profile")
    sess = ort.InferenceSession(str(graph), options, providers=["CPUExecutionProvider"])
    for _ in range(3):
        sess.run(None, {"raw": batch})
    events = json.loads(Path(sess.end_profiling()).read_text())
    by_op: collections.Counter[str] = collections.Counter()
    for event in events:
        if event.get("cat") == "Node" and event["name"].endswith("_kernel_time"):
            by_op[event["args"]["op_name"]] += event["dur"]
    total = sum(by_op.values())
    top = ", ".join(f"{op} {100 * t / total:.0f}%" for op, t in by_op.most_common(8))
    print(f"  ONNX Runtime profile (float graph, kernel time): {top}")


def torch_runtimes(make: Callable[[], Any], compile_: bool) -> dict[str, Predict]:
    """Torch eager, channels-last, bf16 autocast and (optionally) ``torch.compile``.

    ``make`` builds the module afresh for each (the predictor converts it in place).
    """
    out: dict[str, Predict] = {}
    eager = Predictor([LoadedModel(make(), "<bench>")], device="cpu")
    out["torch eager fp32"] = eager.predict_batch
    last = Predictor([LoadedModel(make(), "<b>")], device="cpu", channels_last=True)
    out["torch channels-last fp32"] = last.predict_batch
    bf16 = Predictor([LoadedModel(make(), "<b>")], device="cpu", precision="bf16")
    out["torch bf16 autocast"] = bf16.predict_batch
    if compile_:
        member = LoadedModel(make(), "<b>")
        compiled = Predictor([member], device="cpu", compile_backend="inductor")
        try:
            start = time.perf_counter()
            compiled.predict_batch(crafted_tiles(2, 350, 350, seed=9))
            print(f"  torch.compile (inductor): first call {time.perf_counter() - start:.0f} s")
            out["torch.compile inductor"] = compiled.predict_batch
        except Exception as exc:  # report why, keep measuring the rest
            print(f"  torch.compile failed: {type(exc).__name__}: {str(exc).splitlines()[0]}")
    return out


def onnx_runtimes(float_graph: Path, int8: dict[str, Path], threads: int) -> dict[str, Predict]:
    """ONNX Runtime settings on the float graph, and the int8 graphs."""
    out: dict[str, Predict] = {}
    for level in LEVELS:
        out[f"ort fp32 opt={level}"] = plain_run(session(float_graph, threads, level))
    if threads > 1:
        out["ort fp32 opt=all 1 thread"] = plain_run(session(float_graph, 1))
    out["ort fp32 arena off"] = plain_run(session(float_graph, threads, arena=False))
    out["ort fp32 io binding"] = bound_run(session(float_graph, threads))
    out["ort fp32 no spinning"] = plain_run(session(float_graph, threads, spin=False))
    package = OnnxPredictor(float_graph.parent, device="cpu", threads=threads, quiet=True)
    out["ort fp32 OnnxPredictor (kelpseg)"] = package.predict_batch
    for fmt, folder in int8.items():
        predictor = OnnxPredictor(folder, device="cpu", threads=threads, quiet=True)
        out[f"ort int8 {fmt} OnnxPredictor"] = predictor.predict_batch
    return out


def end_to_end(predictors: dict[str, Any], folder: Path, n: int, batch: int, repeats: int) -> None:
    """``predict_tiles`` on ``n`` tile files beside the model-only rate of the same tiles."""
    raw = crafted_tiles(n, 350, 350, seed=4)
    tiles = folder / "tiles"
    for i, tile in enumerate(raw):
        write_tile(tiles / f"E{i:04d}_satellite.tif", tile)
    batches = [raw[i : i + batch] for i in range(0, n, batch)]
    print(f"  end to end: {n} tile files, batch {batch}, 2 reader and 2 writer threads")
    for name, predictor in predictors.items():
        model_only, files = [], []
        for r in range(repeats):
            start = time.perf_counter()
            for b in batches:
                predictor.predict_batch(b)
            model_only.append(n / (time.perf_counter() - start))
            summary = predict_tiles(
                predictor,
                tiles,
                folder / f"out_{r}",
                overwrite=True,
                batch_size=batch,
                num_workers=2,
                show_progress=False,
            )
            files.append(summary.written / summary.seconds)
        ratio = statistics.median(f / m for f, m in zip(files, model_only, strict=True))
        print(
            f"  {name:<22} model only {statistics.median(model_only):6.2f} tiles/s, "
            f"predict on files {statistics.median(files):6.2f} tiles/s "
            f"({min(files):.2f}-{max(files):.2f}): {ratio:.2f} of model-only"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--b5", action="store_true", help="Unet + EfficientNet-B5 (24 channels)")
    parser.add_argument("--checkpoint", help="a trained model (checkpoint or run) instead")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--tiles", type=int, default=16, help="tiles per timing")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--compile", action="store_true", help="also time torch.compile")
    parser.add_argument("--no-int8", action="store_true", help="skip the int8 packages")
    parser.add_argument(
        "--only", help="time only runtimes whose name holds one of these (comma-separated)"
    )
    parser.add_argument("--formats", default="qoperator,qdq", help="int8 formats to export")
    parser.add_argument("--calibration", type=Path, help="calibration tiles for int8")
    parser.add_argument("--holdout", type=Path, help="labelled held-out tiles for the Dice")
    parser.add_argument("--end-to-end", action="store_true", help="predict_tiles on files too")
    parser.add_argument("--files", type=int, default=32, help="tile files of --end-to-end")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    os.environ["OMP_NUM_THREADS"] = str(args.threads)
    print(f"load: {load()}")
    print(f"torch {torch.__version__}, onnxruntime {ort.__version__}, {args.threads} threads")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)

        def make() -> Any:
            if args.checkpoint:
                return load_model(args.checkpoint).module.cpu().eval()
            return build_module(args.b5, work)

        module = make()
        name = args.checkpoint or ("Unet + EfficientNet-B5" if args.b5 else "demo model")
        channels = len(module.config.features.channels)
        flops = forward_flops(module.model, channels, 352)  # 350 px padded to 352
        gemm = matmul_tflops(torch.device("cpu"), torch.float32) * 1e12
        gemm_cpu = gemm_per_cpu_second()
        print(
            f"{name}: {flops / 1e9:.1f} GFLOP per tile; matmul fp32 {gemm / 1e9:.0f} GFLOP/s, "
            f"{gemm_cpu / 1e9:.0f} GFLOP per CPU second"
        )
        float_pkg = export_model([module], None, "bench", "1", work / "float")
        int8: dict[str, Path] = {}
        if not args.no_int8:
            calib = args.calibration
            holdout = args.holdout
            if calib is None or holdout is None:  # random init: speed only, crafted tiles
                calib, holdout = work / "calib", work / "holdout"
                for i, tile in enumerate(crafted_tiles(8, 350, 350, seed=21)):
                    write_tile(calib / f"C{i}_satellite.tif", tile)
                for i, tile in enumerate(crafted_tiles(2, 350, 350, seed=22)):
                    write_tile(holdout / f"H{i}_satellite.tif", tile)
                    write_label(holdout / f"H{i}_kelp.tif", (tile[1] > 9000).astype(np.uint8))
            for fmt in args.formats.split(","):
                start = time.perf_counter()
                folder = export_model(
                    [module], None, "bench", "1", work / f"int8_{fmt}",
                    quantize="int8", calibration=calib, holdout=holdout,
                    max_dice_loss=1.0, quant_format=fmt,
                )  # fmt: skip
                q = read_manifest(folder).quantization
                assert q is not None
                print(
                    f"  int8 {fmt}: export {time.perf_counter() - start:.0f} s, kelp Dice "
                    f"float {q.dice_float:.4f} int8 {q.dice_int8:.4f} "
                    f"(loss {q.dice_float - q.dice_int8:+.4f}) on {q.holdout.tiles} tiles"
                )
                int8[fmt] = folder
        raw = crafted_tiles(args.batch_size, 350, 350, seed=2)
        batches = [raw] * max(1, args.tiles // args.batch_size)
        runtimes = torch_runtimes(make, args.compile)
        runtimes |= onnx_runtimes(float_pkg / "model.onnx", int8, args.threads)
        if args.only:
            keep = [w.strip() for w in args.only.split(",")] + ["torch eager fp32"]
            runtimes = {k: v for k, v in runtimes.items() if any(w in k for w in keep)}
        print(f"load before timing: {load()}")
        rates, cpu = timed(runtimes, batches, args.repeats)
        print(f"load after timing: {load()}")
        report(rates, cpu, flops, gemm, gemm_cpu)
        if int8 and "ort fp32 OnnxPredictor (kelpseg)" in rates:
            ref = rates["ort fp32 OnnxPredictor (kelpseg)"]
            for fmt in (f for f in int8 if f"ort int8 {f} OnnxPredictor" in rates):
                got = rates[f"ort int8 {fmt} OnnxPredictor"]
                ratio = statistics.median(g / f for g, f in zip(got, ref, strict=True))
                per_cpu = cpu[f"ort int8 {fmt} OnnxPredictor"]
                ref_cpu = cpu["ort fp32 OnnxPredictor (kelpseg)"]
                cratio = statistics.median(g / f for g, f in zip(per_cpu, ref_cpu, strict=True))
                print(f"  int8 {fmt} / fp32 package: {ratio:.2f}x (per CPU second {cratio:.2f}x)")
        profile(float_pkg / "model.onnx", args.threads, raw)
        if args.end_to_end:
            predictors: dict[str, Any] = {
                "torch eager": Predictor([LoadedModel(make(), "<bench>")], device="cpu"),
                "onnxruntime fp32": OnnxPredictor(
                    float_pkg, device="cpu", threads=args.threads, quiet=True
                ),
            }
            if "qoperator" in int8:
                predictors["onnxruntime int8"] = OnnxPredictor(
                    int8["qoperator"], device="cpu", threads=args.threads, quiet=True
                )
            end_to_end(predictors, work, args.files, args.batch_size, args.repeats)
            print(f"load after end to end: {load()}")


if __name__ == "__main__":
    main()
