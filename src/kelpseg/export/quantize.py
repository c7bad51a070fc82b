"""int8 model packages: ONNX Runtime static quantization of an exported float graph.

The networks' convolutions and matrix products run in int8 (weights per output channel,
activations per tensor, ranges calibrated on tiles the model did not train on); the in-graph
preprocessing (masking, indices, normalisation, padding) is left in float, since raw
reflectances and band statistics would lose most of their resolution in 8 bits. The float and
int8 graphs are both scored (kelp Dice) on a labelled held-out set: a quantized graph that
loses more than the tolerance is refused. Needs ONNX Runtime only (no torch).
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pandas as pd
from onnxruntime.quantization import (
    CalibrationDataReader,
    CalibrationMethod,
    QuantFormat,
    QuantType,
    quantize_static,
)
from onnxruntime.quantization.shape_inference import quant_pre_process

from kelpseg.errors import KelpsegError
from kelpseg.inference.reader import TileSource, resolve_tiles
from kelpseg.io.tiles import read_label, read_tile
from kelpseg.portable.manifest import Quantization, TileSet

PathLike = str | os.PathLike[str]
#: Quantization formats by name: QDQ (quantize/dequantize pairs ONNX Runtime fuses into int8
#: kernels) or QOperator (QLinearConv ... operators), measured the faster on x86 CPUs here
FORMATS = {"qdq": QuantFormat.QDQ, "qoperator": QuantFormat.QOperator}
#: The operators run in int8; everything else (elementwise preprocessing, sigmoid) stays float.
INT8_OPS = ("Conv", "ConvTranspose", "MatMul", "Gemm", "Relu", "Add", "Concat", "MaxPool", "Resize")
#: Calibration tiles used at most (a seeded sample beyond that): ranges settle within a few dozen.
MAX_CALIBRATION_TILES = 64
BATCH = 4


def labelled_tiles(tiles: TileSource, what: str) -> pd.DataFrame:
    """``tile_id``, ``image_path`` and ``mask_path`` of the tiles that have a label."""
    table = resolve_tiles(tiles)
    source = tiles if isinstance(tiles, str | os.PathLike) else None
    if not isinstance(tiles, pd.DataFrame) and isinstance(source, str | os.PathLike):
        from kelpseg.io.catalog import build_catalog, load_catalog

        path = Path(source)
        full = build_catalog(path).tiles if path.is_dir() else load_catalog(path)
    else:
        full = tiles if isinstance(tiles, pd.DataFrame) else pd.DataFrame()
    if "mask_path" not in full.columns:
        raise KelpsegError(f"the {what} tiles have no labels (*_kelp.tif)", source)
    masks = full.set_index(full["tile_id"].astype(str))["mask_path"]
    table["mask_path"] = [masks.get(t) for t in table["tile_id"]]
    table = table[[isinstance(p, str) and p != "" for p in table["mask_path"]]]
    if table.empty:
        raise KelpsegError(f"none of the {what} tiles has a label (*_kelp.tif)", source)
    return table.reset_index(drop=True)


def tile_set(table: pd.DataFrame, source: TileSource) -> TileSet:
    """What the manifest records of a set of tiles: where from, how many, which (a digest)."""
    ids = sorted(str(t) for t in table["tile_id"])
    where = str(source) if isinstance(source, str | os.PathLike) else "<table>"
    digest = hashlib.sha256("\n".join(ids).encode()).hexdigest()
    return TileSet(source=where, tiles=len(ids), tile_ids_sha256=digest, first_ids=ids[:5])


def _stacks(paths: list[str]) -> Iterator[np.ndarray]:
    """Raw tiles in batches of :data:`BATCH` (tiles of one size per batch)."""
    for start in range(0, len(paths), BATCH):
        tiles = [read_tile(p, expected_size=None).data for p in paths[start : start + BATCH]]
        by_size: dict[tuple[int, ...], list[np.ndarray]] = {}
        for tile in tiles:
            by_size.setdefault(tile.shape, []).append(tile)
        yield from (np.stack(group) for group in by_size.values())


class _TileReader(CalibrationDataReader):
    """Feeds the calibration tiles to ONNX Runtime's calibrator, a batch at a time."""

    def __init__(self, paths: list[str], input_name: str) -> None:
        self.input_name = input_name
        self.batches = _stacks(paths)

    def get_next(self) -> dict[str, np.ndarray] | None:
        batch = next(self.batches, None)
        return None if batch is None else {self.input_name: batch}


def _float_nodes(model: onnx.ModelProto) -> list[str]:
    """Nodes upstream of every convolution: the preprocessing, which stays float."""
    produced_by_conv: set[str] = set()
    downstream: set[str] = set()
    for node in model.graph.node:  # ONNX graphs are topologically sorted
        if node.op_type in ("Conv", "ConvTranspose") or any(
            i in produced_by_conv for i in node.input
        ):
            downstream.add(node.name)
            produced_by_conv.update(node.output)
    return [n.name for n in model.graph.node if n.name not in downstream]


def quantize_graph(
    float_graph: Path,
    out_graph: Path,
    calibration: list[str],
    *,
    input_name: str = "raw",
    quant_format: str = "qoperator",
) -> None:
    """Write the int8 version of ``float_graph``, calibrated on the raw tiles ``calibration``.

    Raises:
        KelpsegError: an unknown format or a graph ONNX Runtime cannot quantize.
    """
    if quant_format not in FORMATS:
        raise KelpsegError(f"unknown quantization format {quant_format!r}: {', '.join(FORMATS)}")
    with tempfile.TemporaryDirectory(prefix="kelpseg-quant-") as tmp:
        prepared = Path(tmp) / "prepared.onnx"
        try:  # folds batch norms, infers shapes: what the quantizer needs to see the convs
            quant_pre_process(str(float_graph), str(prepared), skip_symbolic_shape=True)
        except Exception:  # a graph the shape inference cannot follow quantizes as it is
            prepared = float_graph
        model = onnx.load(str(prepared))
        # The quantizer logs a warning per tensor whose type shape inference cannot follow (the
        # float preprocessing, left alone on purpose): hundreds of lines that say nothing.
        logging.disable(logging.WARNING)
        try:
            quantize_static(
                str(prepared),
                str(out_graph),
                _TileReader(calibration, input_name),
                quant_format=FORMATS[quant_format],
                op_types_to_quantize=list(INT8_OPS),
                nodes_to_exclude=_float_nodes(model),
                per_channel=True,
                activation_type=QuantType.QUInt8,
                weight_type=QuantType.QInt8,
                calibrate_method=CalibrationMethod.MinMax,
                extra_options={"CalibTensorRangeSymmetric": False},
            )
        except KelpsegError:
            raise
        except Exception as exc:  # onnxruntime's quantizer raises many types
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
            raise KelpsegError(f"int8 quantization failed ({first})", float_graph) from exc
        finally:
            logging.disable(logging.NOTSET)


def _session(graph: Path, threads: int | None) -> ort.InferenceSession:
    options = ort.SessionOptions()
    if threads:
        options.intra_op_num_threads = threads
    return ort.InferenceSession(str(graph), options, providers=["CPUExecutionProvider"])


def graph_dice(
    graph: Path, table: pd.DataFrame, threshold: float, *, threads: int | None = None
) -> float:
    """Kelp Dice of ``graph``'s masks over all pixels of the labelled tiles together."""
    session = _session(graph, threads)
    name = session.get_inputs()[0].name
    hit = predicted = actual = 0
    paths, labels = list(table["image_path"]), list(table["mask_path"])
    for start in range(0, len(paths), BATCH):
        for path, label_path in zip(
            paths[start : start + BATCH], labels[start : start + BATCH], strict=True
        ):
            raw = read_tile(path, expected_size=None).data[None]
            prob = session.run(None, {name: raw})[0][0, 0]
            mask, truth = prob >= threshold, read_label(label_path).astype(bool)
            hit += int((mask & truth).sum())
            predicted, actual = predicted + int(mask.sum()), actual + int(truth.sum())
    return 1.0 if predicted + actual == 0 else 2.0 * hit / (predicted + actual)


def quantize_package_graph(
    graph: Path,
    calibration: TileSource,
    holdout: TileSource,
    threshold: float,
    *,
    max_dice_loss: float = 0.005,
    quant_format: str = "qoperator",
    seed: int = 0,
    threads: int | None = None,
) -> Quantization:
    """Replace the float ``graph`` of a package being written by its int8 version.

    Args:
        graph: the package's float ``model.onnx`` (overwritten by the int8 graph).
        calibration: tiles the model did not train on (folder, catalog or table).
        holdout: labelled tiles the model did not train on, for the float and int8 Dice.
        threshold: the package's decision threshold.
        max_dice_loss: the largest Dice the int8 graph may lose against the float one.
        quant_format: ``qdq`` or ``qoperator``.
        seed: of the calibration sample when there are more than
            :data:`MAX_CALIBRATION_TILES` tiles.
        threads: ONNX Runtime threads while scoring.

    Returns:
        What the manifest records.

    Raises:
        KelpsegError: unreadable tiles, no labels, a failed quantization, or a Dice loss above
            ``max_dice_loss`` (the float graph is then left as it was).
    """
    calib = resolve_tiles(calibration)
    if len(calib) > MAX_CALIBRATION_TILES:
        calib = calib.sample(MAX_CALIBRATION_TILES, random_state=seed).sort_index()
    held = labelled_tiles(holdout, "held-out")
    overlap = set(calib["tile_id"]) & set(held["tile_id"])
    if overlap:
        raise KelpsegError(
            f"tile {sorted(overlap)[0]} is both a calibration and a held-out tile; "
            "score on tiles the calibration did not see",
            str(holdout) if isinstance(holdout, str | os.PathLike) else None,
        )
    int8 = graph.with_name(f".{graph.stem}.int8.onnx")
    quantize_graph(graph, int8, list(calib["image_path"]), quant_format=quant_format)
    dice_float = graph_dice(graph, held, threshold, threads=threads)
    dice_int8 = graph_dice(int8, held, threshold, threads=threads)
    loss = dice_float - dice_int8
    if loss > max_dice_loss:
        int8.unlink(missing_ok=True)
        raise KelpsegError(
            f"the int8 graph loses {loss:.4f} Dice on {len(held)} held-out tiles "
            f"(float {dice_float:.4f}, int8 {dice_int8:.4f}; --max-dice-loss {max_dice_loss:g}); "
            "package not written"
        )
    int8.replace(graph)
    return Quantization(
        dtype="int8",
        format=quant_format,
        calibration=tile_set(calib, calibration),
        holdout=tile_set(held, holdout),
        dice_float=dice_float,
        dice_int8=dice_int8,
        max_dice_loss=max_dice_loss,
    )
