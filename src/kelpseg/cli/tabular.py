"""``kelpseg tabular build | train | predict | baseline | stack``: per-pixel tree models."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import typer
from rich.table import Table

from kelpseg.cli.options import (
    Overrides,
    Quiet,
    Workers,
    config_option,
    dask_scheduler,
    model_option,
    out_option,
    overwrite_option,
    scheduler_option,
    split_list,
)
from kelpseg.cli.output import refuse_existing, show_table
from kelpseg.config import load_config
from kelpseg.console import console
from kelpseg.errors import KelpsegError
from kelpseg.tabular import (
    MODELS,
    TabularConfig,
    build_pixel_dataset,
    index_baseline,
    predict_dataset,
    train_tabular,
)
from kelpseg.tabular.artifact import SIDECAR
from kelpseg.tabular.build import SYNC

app = typer.Typer(
    no_args_is_help=True,
    help="Per-pixel tree models (XGBoost, LightGBM, CatBoost, forests): build, train, predict.",
)

ConfigFile = Annotated[Path | None, config_option("Tabular config YAML.")]


def build(
    catalog: Annotated[Path, typer.Argument(help="Catalog parquet with a 'fold' column.")],
    out: Annotated[Path, out_option("Output folder of the pixel dataset (resumed).")],
    scheduler: Annotated[str, scheduler_option("local")] = "local",
    workers: Workers = 0,
    overwrite: Annotated[bool, overwrite_option("Delete an earlier build in OUT first.")] = False,
    config: ConfigFile = None,
    overrides: Overrides = None,
    quiet: Quiet = False,
) -> None:
    """Sample kelp, buffer-ring and background pixels of every labelled tile into parquet."""
    cfg = load_config(TabularConfig, config, overrides)
    result = build_pixel_dataset(
        catalog,
        cfg,
        out,
        scheduler=dask_scheduler(scheduler, sync=SYNC, local=None, command="tabular build"),
        workers=workers or None,
        overwrite=overwrite,
        show_progress=not quiet,
    )
    console.print(
        f"{result.written} tiles written, {result.skipped} already present, "
        f"{len(result.failures)} failed; {result.pixels:,} pixels "
        f"({result.kelp_pixels:,} kelp) in {out}"
    )
    for row in result.failures.head(10).itertuples(index=False):
        console.print(f"[red]failed:[/] {row.tile_id}: {row.error}", highlight=False)
    if len(result.failures):
        raise typer.Exit(1)


def train(
    dataset: Annotated[Path, typer.Argument(help="Pixel dataset folder (from 'build').")],
    out: Annotated[Path, out_option("Output folder of the model and its reports.")],
    fold: Annotated[
        int | None, typer.Option(help="Validation fold (trained on the others).")
    ] = None,
    all_folds: Annotated[
        bool, typer.Option("--all-folds", help="Train on every fold (no validation).")
    ] = False,
    model: Annotated[
        str | None, model_option(f"Model type: {', '.join(MODELS)} (overrides the config).")
    ] = None,
    tracking_uri: Annotated[
        str | None, typer.Option(help="MLflow store (default sqlite:///OUT/mlflow.db).")
    ] = None,
    mlflow: Annotated[bool, typer.Option(help="Log the run to MLflow.")] = True,
    config: ConfigFile = None,
    overrides: Overrides = None,
    overwrite: Annotated[bool, overwrite_option("Replace a model already in OUT.")] = False,
    quiet: Quiet = False,
) -> None:
    """Train a tree model on all folds but one and score that fold's whole tiles."""
    if (fold is None) == (not all_folds):
        raise KelpsegError("give exactly one of --fold K and --all-folds")
    cfg = load_config(TabularConfig, config, [*(overrides or []), *_model_override(model)])
    refuse_existing(Path(out) / SIDECAR, overwrite)
    result = train_tabular(
        dataset, cfg, fold, out, tracking_uri, track=mlflow, show_progress=not quiet
    )
    table = Table(title=f"{cfg.model}, validation fold {fold if fold is not None else '-'}")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key, value in result.metrics.items():
        table.add_row(key, f"{value:.4f}" if abs(value) < 1000 else f"{value:,.0f}")
    show_table(table)
    top = ", ".join(f"{name} {share:.2f}" for name, share in result.importances.head(5).items())
    console.print(f"top channels: {top}")
    if result.run_id:
        console.print(f"MLflow run {result.run_id}")
    console.print(f"model saved to {result.model_dir}")


def _model_override(model: str | None) -> list[str]:
    return [] if model is None else [f"model={model}"]


def predict(
    model_dir: Annotated[Path, typer.Argument(help="Model folder (from 'train').")],
    data: Annotated[Path, typer.Argument(help="Dataset folder or catalog parquet.")],
    out: Annotated[Path, out_option("Prediction folder (resumed: written tiles kept).")],
    threshold: Annotated[
        float | None, typer.Option(help="Mask threshold (default: the model's).")
    ] = None,
    soft: Annotated[bool, typer.Option(help="Also write <tile_id>_prob.tif.")] = True,
    split: Annotated[
        Literal["test", "train", "all"], typer.Option(help="Which split's tiles.")
    ] = "test",
    fold: Annotated[int | None, typer.Option(help="Only tiles of this fold.")] = None,
    overwrite: Annotated[bool, overwrite_option("Rewrite tiles already written.")] = False,
    quiet: Quiet = False,
) -> None:
    """Predict every pixel of whole tiles into masks (and probabilities)."""
    written = predict_dataset(
        model_dir,
        data,
        out,
        threshold=threshold,
        soft=soft,
        split=split,
        fold=fold,
        overwrite=overwrite,
        show_progress=not quiet,
    )
    console.print(f"{written} tiles predicted into {out}")


def baseline(
    dataset: Annotated[Path, typer.Argument(help="Pixel dataset folder (from 'build').")],
    fold: Annotated[int, typer.Option(help="Validation fold.")],
    channel: Annotated[str, typer.Option(help="The one channel thresholded.")] = "NDVI",
) -> None:
    """Score a one-channel threshold (fitted on the other folds) on a fold's whole tiles."""
    result = index_baseline(dataset, fold, channel=channel)
    sign = ">=" if result.model.sign > 0 else "<="
    console.print(
        f"kelp where {channel} {sign} {result.model.cut:.5g}: whole-tile Dice "
        f"{result.evaluation.metrics['dice']:.4f} on fold {fold} "
        f"(train folds, weighted: {result.train_dice:.4f}); best possible cut on fold {fold}: "
        f"{result.oracle_cut:.5g}, Dice {result.oracle_dice:.4f}"
    )


def stack(
    models: Annotated[
        list[Path],
        model_option(
            "Model folder (from 'train'): one per held-out fold, and one --all-folds model "
            "for test tiles; repeat."
        ),
    ],
    catalog: Annotated[Path, typer.Option(help="Split catalog parquet (with 'fold').")],
    out: Annotated[Path, out_option("Channel folder (tiles/, provenance.parquet); resumed.")],
    splits: Annotated[str, typer.Option(help="Catalog splits to cover, comma-separated.")] = (
        "train,test"
    ),
    channel: Annotated[str, typer.Option(help="Channel name the networks use.")] = "TREEPROB",
    pixels: Annotated[
        Path | None,
        typer.Option(help="Pixel dataset (from 'build'): check per tile, not only per fold."),
    ] = None,
    overwrite: Annotated[bool, overwrite_option("Recompute tiles already stored.")] = False,
    quiet: Quiet = False,
) -> None:
    """Store the out-of-fold tree probability per tile as a network input channel."""
    from kelpseg.tabular.stacking import check_out_of_fold, write_stacking_channel

    wanted = tuple(split_list([splits]))
    result = write_stacking_channel(
        models, catalog, out, splits=wanted, channel=channel, overwrite=overwrite,
        show_progress=not quiet,
    )  # fmt: skip
    console.print(f"{channel}: {result.written} tiles written, {result.skipped} already stored")
    prov = check_out_of_fold(out, pixels)  # raises (exit 2) on a leak
    train = prov[prov["split"] == "train"]
    level = "tile" if pixels is not None else "fold"
    console.print(
        f"out of fold ({level} level): none of {len(train)} training tiles got its value from "
        f"a model trained on it; {len(prov) - len(train)} other tiles from "
        f"{prov.loc[prov['split'] != 'train', 'model_dir'].nunique()} all-folds model(s)"
    )
    console.print(f"use it in training with data.stacked={{{channel}: {out}}}", highlight=False)


app.command("build", help="Sample training pixels into a partitioned parquet dataset.")(build)
app.command("train", help="Train a tree model; validate on one fold; log to MLflow.")(train)
app.command("predict", help="Predict whole tiles into masks and probabilities.")(predict)
app.command("baseline", help="Score a single-index threshold baseline on a fold.")(baseline)
app.command("stack", help="Store the out-of-fold tree probability as a network channel.")(stack)
