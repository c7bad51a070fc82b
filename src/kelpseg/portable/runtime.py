"""Run a model package with ONNX Runtime: the light inference path (no torch imported).

:class:`OnnxPredictor` has what tile and scene prediction ask of a predictor (``tile_size``,
``channels``, ``needs_dem``, ``threshold``, ``device``, ``predict_batch``, ``launch``), so
``predict_tiles`` and ``kelpseg.scenes`` take it in place of the torch predictor.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

from kelpseg.console import console
from kelpseg.errors import KelpsegError
from kelpseg.io.tiles import BAND_NAMES
from kelpseg.portable.manifest import FORMAT_VERSION, Manifest, read_manifest, verify_package
from kelpseg.portable.registry import resolve

PathLike = str | os.PathLike[str]
CPU, CUDA = "CPUExecutionProvider", "CUDAExecutionProvider"


@dataclass(frozen=True)
class RuntimeDevice:
    """Where the graph runs: ``type`` is ``"cpu"`` or ``"cuda"`` (as a torch device's)."""

    type: str
    provider: str
    index: int = 0

    def __str__(self) -> str:
        return f"{self.type} ({self.provider})"


class ReadyBatch:
    """Probabilities computed already (ONNX Runtime runs synchronously)."""

    def __init__(self, probs: np.ndarray) -> None:
        self._probs = probs

    def result(self) -> np.ndarray:
        """(N, H, W) float32 kelp probabilities."""
        return self._probs


def execution_providers(device: str = "auto") -> list[Any]:
    """ONNX Runtime providers for ``device``: ``auto`` (CUDA when present), ``cpu``, ``cuda[:i]``.

    Raises:
        KelpsegError: an unknown device, or CUDA asked for where ONNX Runtime has none.
    """
    available = ort.get_available_providers()
    if device == "auto":
        return [CUDA, CPU] if CUDA in available else [CPU]
    if device == "cpu":
        return [CPU]
    kind, _, index = device.partition(":")
    if kind != "cuda" or (index and not index.isdigit()):
        raise KelpsegError(f"unknown device {device!r} (auto, cpu, cuda, cuda:1 ...)", "--device")
    if CUDA not in available:
        raise KelpsegError(
            "ONNX Runtime has no CUDA here (replace the CPU build: pip uninstall -y onnxruntime && "
            "pip install onnxruntime-gpu); use --device cpu",
            "--device",
        )
    return [(CUDA, {"device_id": int(index or 0)}), CPU]


class OnnxPredictor:
    """A model package run by ONNX Runtime on batches of raw tiles.

    Args:
        package: the package folder (see :func:`load_onnx_predictor` for names).
        device: ``auto`` (CUDA when ONNX Runtime has it, else CPU), ``cpu`` or ``cuda[:i]``.
        threads: intra-op threads (None: ONNX Runtime's default, one per core).
        threshold: decision threshold; None: the one in the manifest.
        channels: refuse the package unless its channels are exactly these.
        verify: check every file's checksum before loading (always, unless you just did).
        quiet: do not print the provider used.

    Raises:
        KelpsegError: a checksum that does not match, a package for other bands or channels,
            or a graph ONNX Runtime cannot load.
    """

    def __init__(
        self,
        package: PathLike,
        *,
        device: str = "auto",
        threads: int | None = None,
        threshold: float | None = None,
        channels: Sequence[str] | None = None,
        verify: bool = True,
        quiet: bool = False,
    ) -> None:
        folder = Path(package)
        manifest = verify_package(folder) if verify else read_manifest(folder)
        _check_manifest(manifest, folder, channels)
        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = int(threads)
        # Idle pool threads sleep rather than spin: spinning burns the cores that reader and
        # writer threads (and other processes) need; benchmarks/cpu_inference.py measured 17%
        # more tiles per CPU second without it on a shared 2-core machine (docs/benchmarks.md).
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        graph = folder / manifest.graph
        try:
            self.session = ort.InferenceSession(
                str(graph), sess_options=options, providers=execution_providers(device)
            )
        except Exception as exc:  # onnxruntime's exception classes are not a stable API
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
            raise KelpsegError(f"ONNX Runtime cannot load the graph ({first})", graph) from exc
        _check_graph(self.session, manifest, graph)
        used = self.session.get_providers()[0]
        self.device = RuntimeDevice("cuda" if used == CUDA else "cpu", used)
        self.manifest, self.path, self.threads = manifest, folder, threads
        self.tile_size = manifest.tile_size
        self.channels = list(manifest.channels)
        self.needs_dem = manifest.needs_dem
        self.members = manifest.members
        self.weights = np.array([m.weight for m in manifest.members], dtype=np.float64)
        if threshold is not None and not 0.0 <= threshold <= 1.0:
            raise KelpsegError(f"threshold {threshold} is outside [0, 1]", "--threshold")
        self.threshold = manifest.threshold if threshold is None else float(threshold)
        self.threshold_source = manifest.threshold_source if threshold is None else "given"
        self.input_encoding = manifest.input_encoding
        if not quiet:
            console.print(
                f"{manifest.ref}: ONNX Runtime {ort.__version__} on {used} "
                f"({threads or 'default'} threads)",
                highlight=False,
            )

    def predict_batch(self, raw: Any) -> np.ndarray:
        """Kelp probabilities of a batch of raw tiles.

        Args:
            raw: (N, 7, H, W) int16 tiles in tile band order (a numpy array, or anything
                ``np.asarray`` reads, such as a CPU torch tensor).

        Returns:
            (N, H, W) float32 probabilities.

        Raises:
            KelpsegError: a batch of the wrong band count, dtype or size.
        """
        batch = np.ascontiguousarray(np.asarray(raw))
        self._check_batch(batch)
        m = self.manifest
        try:
            out = self.session.run([m.output_name], {m.input_name: batch})[0]
        except Exception as exc:  # onnxruntime's own exception types are not importable stably
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
            raise KelpsegError(f"ONNX Runtime failed on a batch {batch.shape} ({first})") from exc
        return np.asarray(out[:, 0], dtype=np.float32)

    def launch(self, raw: Any) -> ReadyBatch:
        """:meth:`predict_batch`, in the launch/result form ``predict_tiles`` uses."""
        return ReadyBatch(self.predict_batch(raw))

    def _check_batch(self, batch: np.ndarray) -> None:
        m = self.manifest
        bands = len(m.band_order)
        if batch.ndim != 4 or batch.shape[1] != bands:
            raise KelpsegError(
                f"expected raw tiles (N, {bands}, H, W) with bands {', '.join(m.band_order)}; "
                f"got shape {batch.shape}"
            )
        if batch.dtype != np.dtype(m.input_dtype):
            raise KelpsegError(f"expected {m.input_dtype} raw tiles, got {batch.dtype}")
        height, width = int(batch.shape[2]), int(batch.shape[3])
        if not m.dynamic_hw and (height, width) != (m.tile_size, m.tile_size):
            raise KelpsegError(
                f"{m.ref} takes {m.tile_size}x{m.tile_size} px tiles only, got {height}x{width}"
            )
        high = m.max_tile_size
        if min(height, width) < m.min_tile_size or (high and max(height, width) > high):
            span = f"{m.min_tile_size} to {high}" if high else f"at least {m.min_tile_size}"
            raise KelpsegError(f"{m.ref} takes tiles of {span} px a side, got {height}x{width}")


def _check_manifest(manifest: Manifest, folder: Path, channels: Sequence[str] | None) -> None:
    if manifest.format_version > FORMAT_VERSION:
        raise KelpsegError(
            f"package format {manifest.format_version} is newer than this kelpseg reads "
            f"({FORMAT_VERSION}); upgrade kelpseg",
            folder,
        )
    if list(manifest.band_order) != list(BAND_NAMES):
        raise KelpsegError(
            f"the model expects bands {', '.join(manifest.band_order)}; Kelp Wanted tiles "
            f"hold {', '.join(BAND_NAMES)}",
            folder,
        )
    if channels is not None and list(channels) != list(manifest.channels):
        raise KelpsegError(
            f"the model is for channels {', '.join(manifest.channels)}, not {', '.join(channels)}",
            folder,
        )


def _check_graph(session: ort.InferenceSession, manifest: Manifest, graph: Path) -> None:
    inputs, outputs = session.get_inputs(), session.get_outputs()
    if len(inputs) != 1 or inputs[0].name != manifest.input_name:
        names = ", ".join(i.name for i in inputs)
        raise KelpsegError(
            f"graph inputs are [{names}], manifest says {manifest.input_name}", graph
        )
    shape, bands = inputs[0].shape, len(manifest.band_order)
    if len(shape) != 4 or shape[1] != bands:
        raise KelpsegError(
            f"the graph takes input of shape {shape}, not raw tiles (N, {bands}, H, W): "
            "a model for other channels, or a package whose manifest does not match its graph",
            graph,
        )
    if inputs[0].type != f"tensor({manifest.input_dtype})":
        raise KelpsegError(f"the graph takes {inputs[0].type}, not raw int16 tiles", graph)
    if manifest.output_name not in [o.name for o in outputs]:
        raise KelpsegError(f"the graph has no output {manifest.output_name!r}", graph)


def load_onnx_predictor(
    name_or_path: PathLike,
    *,
    device: str = "auto",
    threads: int | None = None,
    threshold: float | None = None,
    channels: Sequence[str] | None = None,
    root: PathLike | None = None,
    quiet: bool = False,
) -> OnnxPredictor:
    """Load a model package by ``NAME[@VERSION]`` (the registry), folder or ``model.onnx`` path.

    Checksums are verified on every load. See :class:`OnnxPredictor` for the arguments.
    """
    folder = resolve(name_or_path, root)
    return OnnxPredictor(
        folder, device=device, threads=threads, threshold=threshold, channels=channels, quiet=quiet
    )
