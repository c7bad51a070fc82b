"""``kelpseg export``: a trained model or ensemble as one ONNX graph with a checksummed manifest.

The graph takes the raw 7-band int16 tile batch and returns kelp probabilities; everything in
between (masking, indices, normalisation with the stored band statistics, padding, the networks,
the ensemble weights) is inside it. Right after export, ONNX Runtime is run on crafted tiles
(missing stripes, clouds, land, no-DEM sea) and compared with torch; the difference is recorded
in the manifest and a package that differs by more than the tolerance is not written.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from importlib import metadata
from pathlib import Path

import numpy as np
import torch
import yaml

from kelpseg import __version__
from kelpseg.console import console
from kelpseg.errors import KelpsegError
from kelpseg.export.graph import PortableEnsemble, min_tile_size, onnx_export
from kelpseg.export.verify import crafted_tiles, verify_export
from kelpseg.inference.ensemble import normalise_weights
from kelpseg.inference.loading import LoadedModel, load_model, validation_score
from kelpseg.inference.reader import TileSource
from kelpseg.inference.runner import needs_dem
from kelpseg.io.tiles import TILE_SIZE
from kelpseg.nn.module import KelpSegModule
from kelpseg.portable.manifest import (
    GRAPH_NAME,
    QUANTIZED_FORMAT,
    Manifest,
    MemberInfo,
    Quantization,
    check_name,
    write_manifest,
)

PathLike = str | os.PathLike[str]
ModelSource = PathLike | KelpSegModule | LoadedModel
LIBRARIES = ("torch", "onnx", "onnxscript", "onnxruntime", "segmentation-models-pytorch", "timm")


def _load(source: ModelSource, tracking_uri: str | None) -> LoadedModel:
    if isinstance(source, LoadedModel):
        return source
    if isinstance(source, KelpSegModule):
        threshold = float(source.config.trainer.threshold)
        return LoadedModel(source.eval(), "<module>", threshold=threshold)
    return load_model(source, tracking_uri)


def _refuse_stacked(model: LoadedModel) -> None:
    # The graph's one input is the seven bands; a stored channel (data.stacked) would need a
    # second, per-tile input that the runtime cannot read: refuse rather than export a graph
    # that silently lacks it.
    stacked = list(model.module.config.data.stacked)
    if stacked:
        raise KelpsegError(
            f"reads the stored channel(s) {', '.join(stacked)} (data.stacked), which a model "
            "package cannot carry; predict it with kelpseg predict --stacked NAME=DIR instead",
            model.source,
        )


def _score(model: LoadedModel) -> float | None:
    if model.run_id is None and model.checkpoint is None:
        return None
    try:
        return validation_score(model)
    except KelpsegError:
        return None


def _libraries() -> dict[str, str]:
    out = {"kelpseg": __version__, "numpy": np.__version__}
    for name in LIBRARIES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return out


def _member_info(model: LoadedModel, weight: float, index: int, folder: Path) -> MemberInfo:
    config = model.module.config
    text = yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False)
    name = f"member_{index}_config.yaml"
    (folder / name).write_text(text)
    return MemberInfo(
        source=model.source,
        run_id=model.run_id,
        arch=config.model.arch,
        encoder=config.model.encoder,
        channels=list(config.features.channels),
        features=config.features.model_dump(mode="json"),
        sizing=config.data.sizing.model_dump(mode="json"),
        weight=weight,
        threshold=model.threshold,
        validation_dice=_score(model),
        config_file=name,
        config_digest=hashlib.sha256(text.encode()).hexdigest(),
    )


def _export_graph(
    net: PortableEnsemble, path: Path, tile_size: int, dynamic_hw: bool, opset: int
) -> None:
    # A batch of 2 and a non-square example: size-1 and equal dims would be specialised.
    width = tile_size - 2 if dynamic_hw else tile_size
    example = torch.from_numpy(crafted_tiles(2, tile_size, width, seed=11))
    onnx_export(net, example, path, dynamic_hw=dynamic_hw, opset=opset)


def _graph_is_dynamic(path: Path) -> bool:
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    shape = session.get_inputs()[0].shape
    return not isinstance(shape[2], int) and not isinstance(shape[3], int)


def _input_encoding(modules: Sequence[object]) -> str | None:
    """The encoding every member trained on (None when unknown or when they differ)."""
    found = {getattr(m, "input_encoding", None) for m in modules}
    return found.pop() if len(found) == 1 else None


def _threshold(
    loaded: Sequence[LoadedModel], weights: np.ndarray, threshold: float | None
) -> tuple[float, str]:
    if threshold is not None:
        if not 0.0 <= threshold <= 1.0:
            raise KelpsegError(f"threshold {threshold} is outside [0, 1]", "--threshold")
        return float(threshold), "given"
    values = np.array([m.threshold for m in loaded], dtype=np.float64)
    sources = " and ".join(sorted({m.threshold_source for m in loaded}))
    return float(np.round((values * weights).sum(), 9)), sources


def _tile_sizes(modules: Sequence[KelpSegModule]) -> tuple[int, int, int | None]:
    """(tile size, min size, max size) the members accept together."""
    # Resized members take tiles of any size (each resamples its own way, so members trained
    # at several resolutions mix); a member padding to a fixed size caps the tile size.
    pad_fixed = [m.sizer.size for m in modules if m.sizer.size and m.sizer.strategy == "pad"]
    tile_size = min(pad_fixed) if pad_fixed and min(pad_fixed) < TILE_SIZE else TILE_SIZE
    return tile_size, max(min_tile_size(m.sizer) for m in modules), min(pad_fixed, default=None)


def _check_quantize(
    quantize: str | None, calibration: TileSource | None, holdout: TileSource | None
) -> None:
    """Fail before the export, not after it."""
    if quantize is None:
        if calibration is not None or holdout is not None:
            raise KelpsegError("calibration and held-out tiles are for --quantize int8 only")
        return
    if quantize != "int8":
        raise KelpsegError(f"unknown quantization {quantize!r} (int8)", "--quantize")
    if calibration is None or holdout is None:
        raise KelpsegError(
            "--quantize int8 needs --calibration TILES and --holdout TILES (labelled), "
            "both tiles the model did not train on",
            "--quantize",
        )


def _quantize(
    graph: Path,
    calibration: TileSource,
    holdout: TileSource,
    threshold: float,
    max_dice_loss: float,
    quant_format: str,
) -> Quantization:
    from kelpseg.export.quantize import quantize_package_graph

    q = quantize_package_graph(
        graph,
        calibration,
        holdout,
        threshold,
        max_dice_loss=max_dice_loss,
        quant_format=quant_format,
    )
    console.print(
        f"int8 graph ({q.format}, calibrated on {q.calibration.tiles} tiles): kelp Dice "
        f"{q.dice_int8:.4f} vs float {q.dice_float:.4f} on {q.holdout.tiles} held-out tiles",
        highlight=False,
    )
    return q


def _place(tmp: Path, out: Path, overwrite: bool) -> None:
    """Move the finished package onto ``out`` (a rename: never a half-written package)."""
    old = None
    if out.exists():
        old = out.with_name(f".{out.name}.old-{os.getpid()}")
        out.rename(old)
    try:
        tmp.rename(out)
    except OSError:
        if old is not None:
            old.rename(out)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def export_model(
    models: Sequence[ModelSource],
    weights: Sequence[float] | None,
    name: str,
    version: str,
    out_dir: PathLike,
    *,
    opset: int = 18,
    dynamic_hw: bool = True,
    threshold: float | None = None,
    ensemble_mode: str = "mean_prob",
    metrics: Mapping[str, float] | None = None,
    tracking_uri: str | None = None,
    overwrite: bool = False,
    tolerance: float = 1e-4,
    quantize: str | None = None,
    calibration: TileSource | None = None,
    holdout: TileSource | None = None,
    max_dice_loss: float = 0.005,
    quant_format: str = "qoperator",
) -> Path:
    """Export a model or a weighted ensemble as a model package folder.

    Args:
        models: checkpoints, run folders, MLflow run ids or loaded modules.
        weights: one weight per model (normalised); None for equal weights.
        name: package name (letters, digits, ``.``, ``_``, ``-``).
        version: package version (``1.0.0``, ``2024-03`` ...).
        out_dir: the package folder to write (must not exist unless ``overwrite``).
        opset: ONNX opset of the graph.
        dynamic_hw: accept any tile height/width (turned off for resizing models).
        threshold: the decision threshold; None: the members' saved thresholds, weighted.
        ensemble_mode: ``mean_prob`` or ``mean_logit``.
        metrics: validation metrics of the model as a whole, to record.
        tracking_uri: MLflow store of run ids.
        overwrite: replace an existing package folder.
        tolerance: largest ONNX Runtime vs torch probability difference accepted.
        quantize: ``int8`` for an int8 graph (static quantization, see
            :mod:`kelpseg.export.quantize`); None: float32.
        calibration: tiles the model did not train on, to calibrate the int8 ranges on.
        holdout: labelled tiles the model did not train on, to score float and int8 on.
        max_dice_loss: the most kelp Dice the int8 graph may lose against the float one.
        quant_format: ``qdq`` or ``qoperator``.

    Returns:
        The package folder.

    Raises:
        KelpsegError: a bad name, an existing folder, a model that cannot be loaded or exported,
            or a graph whose output differs from torch by more than ``tolerance``, or an
            int8 graph losing more than ``max_dice_loss`` Dice.
    """
    _check_quantize(quantize, calibration, holdout)
    for value, what in ((name, "name"), (version, "version")):
        try:
            check_name(value, what)
        except ValueError as exc:
            raise KelpsegError(str(exc), f"--{what}") from exc
    out = Path(out_dir)
    if out.exists() and any(out.iterdir()) and not overwrite:
        raise KelpsegError("output folder exists and is not empty (pass overwrite)", out)
    if not models:
        raise KelpsegError("give at least one model to export")
    loaded = [_load(m, tracking_uri) for m in models]
    for model in loaded:
        _refuse_stacked(model)
    w = normalise_weights(weights, len(loaded))
    modules = [m.module.cpu().eval() for m in loaded]
    if any(m.sizer.strategy == "resize" for m in modules):
        dynamic_hw = False  # resampling back depends on the size: one graph per tile size
    tile_size, low, high = _tile_sizes(modules)
    net = PortableEnsemble(modules, w.tolist(), ensemble_mode, dynamic_hw=dynamic_hw).eval()
    chosen, source = _threshold(loaded, w, threshold)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    tmp.chmod(0o755)  # mkdtemp makes it private; a package is meant to be shared
    try:
        try:
            _export_graph(net, tmp / GRAPH_NAME, tile_size, dynamic_hw, opset)
        except KelpsegError as exc:
            if not dynamic_hw:
                raise
            # Some ops fix the size (per-sample quantiles: k of kthvalue): one size then.
            console.print(f"dynamic tile size not exportable ({exc.message}); fixed size")
            dynamic_hw = False
            net = PortableEnsemble(modules, w.tolist(), ensemble_mode, dynamic_hw=False).eval()
            _export_graph(net, tmp / GRAPH_NAME, tile_size, dynamic_hw, opset)
        dynamic_hw = dynamic_hw and _graph_is_dynamic(tmp / GRAPH_NAME)
        sizes = [(tile_size, tile_size)]
        if dynamic_hw:
            odd = max(low, min(high or tile_size, tile_size // 3 * 2 + 1))
            sizes.append((odd, max(low, odd - 4)))
        check = verify_export(net, tmp / GRAPH_NAME, sizes, chosen)
        if not check.max_abs_diff <= tolerance:
            raise KelpsegError(
                f"ONNX Runtime differs from torch by {check.max_abs_diff:.3g} "
                f"(tolerance {tolerance:g}); package not written"
            )
        quantization = None
        if quantize is not None:
            assert calibration is not None and holdout is not None  # _check_quantize
            quantization = _quantize(
                tmp / GRAPH_NAME, calibration, holdout, chosen, max_dice_loss, quant_format
            )
        pairs = enumerate(zip(loaded, w.tolist(), strict=True))
        members = [_member_info(m, wi, i, tmp) for i, (m, wi) in pairs]
        scores = [m.validation_dice for m in members]
        recorded = dict(metrics or {})
        if len(members) == 1 and scores[0] is not None:
            recorded.setdefault("val_dice", scores[0])
        manifest = Manifest(
            name=name,
            version=version,
            created=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            kelpseg_version=__version__,
            opset=opset,
            tile_size=tile_size,
            min_tile_size=low if dynamic_hw else tile_size,
            max_tile_size=high if dynamic_hw else tile_size,
            dynamic_hw=dynamic_hw,
            channels=list(dict.fromkeys(c for m in members for c in m.channels)),
            needs_dem=any(needs_dem(m) for m in modules),
            ensemble_mode=ensemble_mode,
            threshold=chosen,
            threshold_source=source,
            input_encoding=_input_encoding(modules),
            metrics=recorded,
            members=members,
            libraries=_libraries(),
            verification=check,
            quantization=quantization,
            format_version=QUANTIZED_FORMAT if quantization is not None else 1,
        )
        write_manifest(manifest, tmp)
        _place(tmp, out, overwrite)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    console.print(
        f"exported {manifest.ref} ({len(members)} model(s)) to {out}: ONNX Runtime vs torch "
        f"max |diff| {check.max_abs_diff:.2g}, masks differ on "
        f"{check.mask_mismatch_share:.2e} of pixels",
        highlight=False,
    )
    return out
