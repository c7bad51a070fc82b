"""``kelpseg predict``: a model package, one model or an ensemble over tiles, masks written.

A model package runs on ONNX Runtime without torch (the light install); checkpoints, run
folders and MLflow run ids load the training stack, imported inside the command.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from kelpseg.cli.evaluate import parse_postprocess
from kelpseg.cli.options import (
    Device,
    IgnoreEncoding,
    Overrides,
    Quiet,
    Threads,
    Weights,
    config_option,
    model_option,
    out_option,
    overwrite_option,
    parse_weights,
    split_list,
    warn_deprecated,
    workers_option,
)
from kelpseg.cli.output import show_table
from kelpseg.config import apply_overrides, read_yaml, validate_config
from kelpseg.console import console
from kelpseg.errors import KelpsegError
from kelpseg.inference.config import PredictConfig

if TYPE_CHECKING:
    from kelpseg.inference.predict import AnyPredictor, PredictSummary


def parse_stacked(items: list[str]) -> dict[str, str]:
    """``--stacked TREEPROB=dir`` (repeatable) -> ``{"TREEPROB": "dir"}``."""
    out: dict[str, str] = {}
    for item in items:
        name, sep, folder = item.partition("=")
        if not sep or not name.strip() or not folder.strip():
            raise KelpsegError(f"{item!r} is not NAME=FOLDER", "--stacked")
        out[name.strip()] = folder.strip()
    return out


def _config(
    config: Path | None, overrides: list[str], flags: dict[str, Any], tta: dict[str, Any]
) -> PredictConfig:

    data = read_yaml(config) if config is not None else {}
    data = apply_overrides(data, overrides)
    if flags.get("stacked"):  # a channel named on the command line; the file's others stay
        flags = {**flags, "stacked": {**(data.get("stacked") or {}), **flags["stacked"]}}
    data.update({key: value for key, value in flags.items() if value is not None})
    data["tta"] = {**data.get("tta", {}), **{k: v for k, v in tta.items() if v is not None}}
    if not data.get("models"):
        raise KelpsegError(
            "give at least one --model (package, checkpoint, run folder or MLflow run id)"
        )
    return validate_config(PredictConfig, data, "command line")


def predict(
    tiles: Annotated[
        Path, typer.Option(help="Dataset folder, folder of *_satellite.tif, or catalog parquet.")
    ],
    out: Annotated[Path, out_option("Output folder for the masks (resumed: written tiles kept).")],
    model: Annotated[
        list[str] | None,
        model_option(
            "Model package (NAME or NAME@VERSION, folder), or checkpoint, run folder or MLflow "
            "run id; repeat for an ensemble."
        ),
    ] = None,
    weights: Weights = None,
    weights_from_scores: Annotated[
        bool,
        typer.Option(
            "--weights-from-scores", help="Weights from validation Dice, scaled to [0.2, 1.0]."
        ),
    ] = False,
    ensemble_mode: Annotated[
        str | None,
        typer.Option(
            help="mean_prob, mean_logit, union, intersection, majority, seed_mean or seed_vote."
        ),
    ] = None,
    soft: Annotated[bool, typer.Option("--soft", help="Also write <tile_id>_prob.tif.")] = False,
    overwrite: Annotated[bool, overwrite_option("Redo tiles already written.")] = False,
    ignore_encoding: IgnoreEncoding = False,
    precision: Annotated[str | None, typer.Option(help="32, 16 or bf16.")] = None,
    compile_: Annotated[
        bool, typer.Option("--compile", help="torch.compile the networks (inductor).")
    ] = False,
    tta: Annotated[
        bool | None, typer.Option("--tta/--no-tta", help="Test-time augmentation.")
    ] = None,
    tta_merge: Annotated[str | None, typer.Option(help="mean, max, min or gmean.")] = None,
    tta_transforms: Annotated[
        str | None, typer.Option(help="Comma-separated TTA transforms (default: all eight).")
    ] = None,
    threshold: Annotated[
        float | None, typer.Option(help="Decision threshold (default: saved with the models).")
    ] = None,
    postprocess: Annotated[
        list[str] | None,
        typer.Option(help="Step 'name:key=value,...' or a YAML file; repeat, applied in order."),
    ] = None,
    device: Device = None,
    threads: Threads = 0,
    batch_size: Annotated[int | None, typer.Option(help="Tiles per batch (16).")] = None,
    workers: Annotated[
        int | None,
        workers_option("Tile reader processes (2; 0 = one per core); a package's are threads."),
    ] = None,
    num_workers: Annotated[int | None, typer.Option("--num-workers", hidden=True)] = None,
    split: Annotated[
        str | None, typer.Option(help="Only this catalog split (test, train); default all.")
    ] = None,
    tracking_uri: Annotated[str | None, typer.Option(help="MLflow store of run ids.")] = None,
    stacked: Annotated[
        list[str] | None,
        typer.Option(
            help="NAME=FOLDER of a stored channel the models read (data.stacked), e.g. "
            "TREEPROB=treeprob-test/; repeat; default: the folder in the training config."
        ),
    ] = None,
    config: Annotated[Path | None, config_option("PredictConfig YAML file.")] = None,
    set_: Overrides = None,
    quiet: Quiet = False,
) -> None:
    """Predict kelp masks of tiles with one model or a weighted ensemble."""
    from kelpseg.inference.predict import run_predict

    if num_workers is not None:  # its 0 read tiles in this process: kept as it was
        new = "--workers N (0 now means one reader per core; --set num_workers=0 reads here)"
        warn_deprecated("predict", "--num-workers", new)
        workers = num_workers if workers is None else workers
    elif workers == 0:
        workers = os.cpu_count() or 1

    flags: dict[str, Any] = {
        "models": model or None,
        "weights": parse_weights(weights),
        "weights_from_scores": weights_from_scores or None,
        "ensemble_mode": ensemble_mode,
        "soft": soft or None,
        "overwrite": overwrite or None,
        "ignore_encoding": ignore_encoding or None,
        "precision": precision,
        "compile_backend": "inductor" if compile_ else None,
        "threshold": threshold,
        "device": device,
        "threads": threads or None,
        "batch_size": batch_size,
        "num_workers": workers,
        "split": split,
        "tracking_uri": tracking_uri,
        "stacked": parse_stacked(stacked) if stacked else None,
    }
    if postprocess:
        flags["postprocess"] = {"steps": parse_postprocess(postprocess)}
    transforms = split_list([tta_transforms]) if tta_transforms else None
    tta_flags = {"enabled": tta, "merge": tta_merge, "transforms": transforms}
    cfg = _config(config, list(set_ or []), flags, tta_flags)
    predictor, summary = run_predict(cfg, tiles, out, show_progress=not quiet)
    _print_summary(predictor, summary)


def _print_summary(predictor: AnyPredictor, summary: PredictSummary) -> None:
    table = Table(title=f"{len(predictor.members)} model(s) on {predictor.device}")
    for col in ("model", "weight", "threshold"):
        table.add_column(col, overflow="fold")
    # Loaded torch models or a package's manifest entries: both have source and threshold.
    members: list[Any] = list(predictor.members)
    for member, weight in zip(members, predictor.weights, strict=True):
        table.add_row(member.source, f"{weight:.3f}", f"{member.threshold:g}")
    show_table(table)
    console.print(
        f"{summary.written} tiles predicted, {summary.skipped} already written (skipped), "
        f"{summary.tiles_per_second:.1f} tiles/s; threshold {predictor.threshold:g} "
        f"({predictor.threshold_source}); masks in {summary.out_dir}"
    )
