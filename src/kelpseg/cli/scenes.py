"""``kelpseg predict-scene``, ``area`` and ``synth-scene``: kelp maps from Landsat scenes."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Annotated, Any

import pandas as pd
import typer
from rich.table import Table

from kelpseg.cli.options import (
    Device,
    IgnoreEncoding,
    Overrides,
    Overwrite,
    Quiet,
    Threads,
    Weights,
    config_option,
    model_option,
    out_option,
    overwrite_option,
    parse_weights,
)
from kelpseg.cli.output import refuse_existing, show_table
from kelpseg.config import apply_overrides, read_yaml, validate_config
from kelpseg.console import console
from kelpseg.errors import KelpsegError
from kelpseg.scenes.area import read_regions
from kelpseg.scenes.bands import parse_band_mapping
from kelpseg.scenes.config import SceneConfig
from kelpseg.scenes.predict import TilePredictor
from kelpseg.scenes.runner import SceneRun, list_scenes, run_scene, run_scenes
from kelpseg.scenes.timeseries import area_timeseries, read_dates, write_timeseries


def build_scene_config(
    config_file: Path | None, overrides: list[str], options: dict[str, Any]
) -> SceneConfig:
    """Defaults, then the YAML file, then ``--set key=value``, then explicit options."""
    data = read_yaml(config_file) if config_file is not None else {}
    data = apply_overrides(data, overrides)
    data.update({k: v for k, v in options.items() if v is not None})
    return validate_config(SceneConfig, data, str(config_file) if config_file else None)


def load_scene_predictor(
    config: SceneConfig, threads: int | None = None, tracking_uri: str | None = None
) -> TilePredictor:
    """Load the configured model(s) with the inference stage's ``load_predictor``.

    A model package runs on ONNX Runtime (``threads`` intra-op threads) without torch;
    checkpoints and runs need the ``train`` extra, and say so when it is missing; run ids are
    looked up in ``tracking_uri``.
    """
    if not config.models:
        raise KelpsegError("no model given: pass --model (repeat it for an ensemble)")
    from kelpseg.inference.predict import load_predictor

    options: dict[str, Any] = {} if threads is None else {"threads": threads}  # packages only
    if tracking_uri is not None:
        options["tracking_uri"] = tracking_uri  # trained models only
    predictor: TilePredictor = load_predictor(
        config.models, config.weights, device=config.device, threshold=config.threshold, **options
    )
    return predictor


def _print_run(run: SceneRun) -> None:
    res, info = run.result, run.scene
    skipped = ", ".join(f"{v} {k}" for k, v in res.skipped.items() if v) or "none"
    console.print(
        f"[bold]{info['scene']}[/] ({info['date'] or 'date unknown'}): "
        f"{res.width} x {res.height} px, {res.windows} windows (skipped: {skipped}), "
        f"{res.seconds:.1f} s"
    )
    _print_areas(run.areas)
    outputs = [res.mask_path, res.prob_path, run.polygons, run.area_path, run.summary_path]
    console.print("wrote " + ", ".join(str(p) for p in outputs if p is not None))


def _print_areas(areas: pd.DataFrame) -> None:
    table = Table(title="kelp canopy area", title_justify="left")
    columns = [c for c in ("date", "region") if c in areas.columns]
    for col in (*columns, "kelp ha", "observed"):
        table.add_column(col, justify="right" if col in ("kelp ha", "observed") else "left")
    for row in areas.to_dict(orient="records"):
        region_ha, observed_ha = float(row["region_ha"]), float(row["observed_ha"])
        seen = observed_ha / region_ha if region_ha > 0 else 0.0
        cells = [str(row[c])[:10] if c == "date" else str(row[c]) for c in columns]
        table.add_row(*cells, f"{float(row['kelp_ha']):,.1f}", f"{100 * seen:.0f}%")
    show_table(table)


def predict_scene(
    scene: Annotated[
        list[Path],
        typer.Argument(
            help="Stacked GeoTIFF, folder of *_SR_B<n>.TIF files, or prefix; several, or a "
            "folder of scenes, run with one model load."
        ),
    ],
    out: Annotated[Path, out_option("Mask COG to write (kelp.tif); a folder for several scenes.")],
    model: Annotated[
        list[str] | None,
        model_option("Model package, checkpoint or run; repeat for an ensemble."),
    ] = None,
    weights: Weights = None,
    prob: Annotated[bool, typer.Option("--prob", help="Also write <out>_prob.tif.")] = False,
    polygons: Annotated[
        Path | None,
        typer.Option(help="Kelp polygons to write (.geojson, or .gpkg: needs kelpseg[scenes])."),
    ] = None,
    geojson_crs: Annotated[
        str | None,
        typer.Option(
            "--geojson-crs",
            help="GeoJSON coordinates: wgs84 (RFC 7946, default) or scene (legacy crs member).",
        ),
    ] = None,
    preset: Annotated[
        str | None, typer.Option(help="landsat89 or landsat57 (detected from names if omitted).")
    ] = None,
    bands: Annotated[
        str | None, typer.Option(help="Explicit band numbers, e.g. 'SWIR1=6,NIR=5,R=4,G=3,B=2'.")
    ] = None,
    scaling: Annotated[
        str | None, typer.Option(help="auto, c2l2, reflectance, x10000 or custom (--set).")
    ] = None,
    dem: Annotated[
        Path | None, typer.Option(help="Elevation raster covering the scene (any CRS).")
    ] = None,
    overlap: Annotated[
        int | None, typer.Option(min=0, help="Minimum window overlap in pixels (a quarter tile).")
    ] = None,
    blend: Annotated[
        str | None, typer.Option(help="Blend of overlapping windows: cosine, linear, none.")
    ] = None,
    batch_size: Annotated[
        int | None, typer.Option(min=1, help="Windows per model call (8).")
    ] = None,
    device: Device = None,
    threads: Threads = 0,
    threshold: Annotated[
        float | None, typer.Option(help="Kelp threshold (default: the model's).")
    ] = None,
    regions: Annotated[
        Path | None, typer.Option(help="GeoJSON polygons to measure kelp area in.")
    ] = None,
    tracking_uri: Annotated[str | None, typer.Option(help="MLflow store of run ids.")] = None,
    config: Annotated[Path | None, config_option("SceneConfig YAML file.")] = None,
    set_: Overrides = None,
    overwrite: Annotated[
        bool, overwrite_option("Replace an existing mask (and its side outputs).")
    ] = False,
    ignore_encoding: IgnoreEncoding = False,
    quiet: Quiet = False,
) -> None:
    """Map kelp over a whole Landsat scene: mask COG, polygons, area summary."""
    options = {
        "models": model or None,
        "weights": parse_weights(weights),
        "write_prob": prob or None,
        "preset": preset,
        "bands": parse_band_mapping(bands) if bands else None,
        "scaling": scaling,
        "dem": str(dem) if dem else None,
        "overlap": overlap,
        "blend": blend,
        "batch_size": batch_size,
        "device": device,
        "threshold": threshold,
        "geojson_crs": geojson_crs,
        "ignore_encoding": ignore_encoding or None,
    }
    cfg = build_scene_config(config, list(set_ or []), options)
    scenes = list_scenes(scene, cfg)  # before loading the model: fail fast
    predictor = load_scene_predictor(cfg, threads or None, tracking_uri)
    for path in (out, polygons):  # after the inputs' checks, before the long run
        if path is not None:
            refuse_existing(path, overwrite)
    if len(scenes) == 1 and out.suffix.lower() in (".tif", ".tiff"):
        run = run_scene(
            scenes[0],
            predictor,
            out,
            cfg,
            polygons=polygons,
            regions=regions,
            show_progress=not quiet,
        )
        _print_run(run)
        return
    # Several scenes: <out>/<scene>/kelp.tif each, the model loaded once for all of them.
    runs = run_scenes(
        scenes,
        predictor,
        out,
        cfg,
        polygons=polygons.name if polygons else None,
        regions=regions,
        show_progress=not quiet,
    )
    for run in runs:
        _print_run(run)


def area(
    masks: Annotated[list[Path], typer.Argument(help="Scene masks written by predict-scene.")],
    out: Annotated[Path, out_option("Table to write (.csv or .parquet; a plot <out>.png).")],
    regions: Annotated[
        Path | None, typer.Option(help="GeoJSON polygons to measure kelp area in.")
    ] = None,
    dates: Annotated[
        Path | None, typer.Option(help="Dates per mask file: YAML 'name: date' or CSV file,date.")
    ] = None,
    overwrite: Overwrite = False,
    quiet: Quiet = False,
) -> None:
    """Tabulate kelp area per scene date and region, and plot it over time (<out>.png)."""
    shapes = read_regions(regions) if regions else None
    when = read_dates(dates) if dates else None
    for path in (out, out.with_suffix(".png")):
        refuse_existing(path, overwrite)
    table = area_timeseries(masks, regions=shapes, dates=when, show_progress=not quiet)
    table_path, plot_path = write_timeseries(table, out)
    _print_areas(table)
    console.print(f"wrote {table_path} and {plot_path}")


def synth_scene(
    out: Annotated[Path, out_option("Folder for the scene files.")],
    preset: Annotated[str, typer.Option(help="landsat89 or landsat57.")] = "landsat89",
    grid: Annotated[
        tuple[int, int], typer.Option(help="AOIs down and across (scene = grid x size px).")
    ] = (3, 3),
    size: Annotated[int, typer.Option(min=32, help="Pixels per AOI.")] = 350,
    seed: Annotated[int, typer.Option(min=0, help="Random seed.")] = 0,
    date: Annotated[
        str | None, typer.Option(help="Acquisition date YYYY-MM-DD (default per mission).")
    ] = None,
    overwrite: Annotated[bool, overwrite_option("Write into a folder that is not empty.")] = False,
) -> None:
    """Generate a georeferenced demo scene (Collection 2 band files, a stack and a DEM)."""
    from kelpseg.scenes.synth import write_synthetic_scene

    try:
        when = dt.date.fromisoformat(date) if date else None
    except ValueError as exc:
        raise KelpsegError(f"--date {date!r} is not YYYY-MM-DD") from exc
    refuse_existing(out, overwrite)
    scene = write_synthetic_scene(
        out, preset=preset, grid=grid, tile_size=size, seed=seed, date=when
    )
    h, w = scene.raw.shape[1:]
    console.print(
        f"wrote {scene.product_id} ({w} x {h} px, {scene.preset}) to {out}: band files, "
        f"{scene.stack_path.name if scene.stack_path else 'no stack'}, {scene.dem_path.name}"
    )
