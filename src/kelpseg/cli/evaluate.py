"""``kelpseg evaluate``: score predictions on a labelled set and write the HTML report."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import pandas as pd
import typer
from rich.table import Table

from kelpseg.cli.options import Json, Overrides, Overwrite, Quiet, config_option, out_option
from kelpseg.cli.output import print_json, refuse_existing, show_table
from kelpseg.config import load_config, parse_override, read_yaml, validate_config
from kelpseg.console import console
from kelpseg.errors import KelpsegError
from kelpseg.evaluation.compare import format_table
from kelpseg.evaluation.config import EvaluateConfig, ThresholdSweep
from kelpseg.evaluation.runner import run_evaluation
from kelpseg.inference.predict import CONFIG_NAME as PREDICT_CONFIG

REPORT_JSON = "metrics.json"  # the report's own file: an earlier evaluation is in OUT


def parse_postprocess(items: list[str]) -> list[dict[str, Any]]:
    """``--postprocess`` values -> step mappings.

    Each item is a YAML file (``steps: [...]`` or a bare list) or an inline step
    ``name`` / ``name:key=value,key=value`` (values parsed as YAML).
    """
    steps: list[dict[str, Any]] = []
    for item in items:
        path = Path(item)
        if item.endswith((".yaml", ".yml")):
            data = read_yaml(path) if path.is_file() else None
            if data is None:
                raise KelpsegError("post-processing file does not exist", path)
            listed = data.get("steps", [])
            if not isinstance(listed, list):
                raise KelpsegError("'steps' must be a list", path)
            steps += listed
            continue
        name, _, args = item.partition(":")
        step: dict[str, Any] = {"name": name.strip()}
        for pair in filter(None, args.split(",")):
            keys, value = parse_override(pair)
            step[".".join(keys)] = value
        steps.append(step)
    return steps


def _compare_map(items: list[str]) -> dict[str, Path]:
    out: dict[str, Path] = {}
    for item in items:
        name, sep, folder = item.partition("=")
        if not sep or not name.strip() or not folder.strip():
            raise KelpsegError(f"--compare {item!r} must look like NAME=FOLDER")
        out[name.strip()] = Path(folder.strip())
    return out


def evaluate(
    pred_dir: Annotated[
        Path, typer.Argument(help="Predictions: <tile_id>_kelp.tif masks and/or _prob.tif.")
    ],
    labels: Annotated[
        Path,
        typer.Option(help="Labels: dataset folder, catalog parquet, or folder of *_kelp.tif."),
    ],
    out: Annotated[Path, out_option("Output folder for the report.")] = Path("evaluation"),
    thresholds: Annotated[
        str | None, typer.Option(help="Threshold sweep start:stop:step (default 0.3:0.7:0.01).")
    ] = None,
    threshold: Annotated[
        float | None,
        typer.Option(
            help="Decision threshold of the headline metrics (default: the one predict used, "
            "from the folder's predict_config.yaml; else 0.5)."
        ),
    ] = None,
    postprocess: Annotated[
        list[str] | None,
        typer.Option(help="Step 'name:key=value,...' or a YAML file; repeat, applied in order."),
    ] = None,
    compare: Annotated[
        list[str] | None, typer.Option(help="Extra variant NAME=FOLDER to compare; repeatable.")
    ] = None,
    images: Annotated[
        Path | None, typer.Option(help="Satellite tiles, if the labels do not say where.")
    ] = None,
    kind: Annotated[
        str | None, typer.Option(help="Read 'auto' (probabilities first), 'prob' or 'mask'.")
    ] = None,
    config: Annotated[Path | None, config_option("EvaluateConfig YAML file.")] = None,
    set_: Overrides = None,
    run_id: Annotated[str | None, typer.Option(help="MLflow run to log into.")] = None,
    tracking_uri: Annotated[str | None, typer.Option(help="MLflow tracking URI.")] = None,
    overwrite: Overwrite = False,
    quiet: Quiet = False,
    json_: Json = False,
) -> None:
    """Score predictions (global Dice and more), sweep thresholds, write the HTML report."""
    overrides = list(set_ or [])
    if threshold is not None:
        overrides.append(f"threshold={threshold}")
    if kind is not None:
        overrides.append(f"kind={kind}")
    cfg = load_config(EvaluateConfig, config, overrides)
    updates: dict[str, Any] = {}
    chosen = all(not o.startswith("threshold=") for o in overrides)
    if config is None and chosen and (used := predicted_threshold(pred_dir, cfg.n_bins)):
        updates["threshold"] = used
        if not quiet and not json_:
            console.print(f"headline threshold {used:g}: the one predict used ({PREDICT_CONFIG})")
    if thresholds is not None:
        updates["sweep"] = ThresholdSweep.parse(thresholds).model_dump()
    if postprocess:
        updates["postprocess"] = {"steps": parse_postprocess(postprocess)}
    if updates:
        data = {**cfg.model_dump(mode="json"), **updates}
        cfg = validate_config(EvaluateConfig, data, "command line")
    refuse_existing(Path(out) / REPORT_JSON, overwrite)
    run = run_evaluation(
        pred_dir,
        labels,
        out,
        cfg,
        images=images,
        compare=_compare_map(compare or []),
        run_id=run_id,
        tracking_uri=tracking_uri,
        show_progress=not quiet,
    )
    if json_:
        comparison = run.comparison
        print_json(
            {
                "threshold": cfg.threshold,
                "metrics": run.result.metrics,
                "best_threshold": run.result.best_threshold,
                "best_dice": run.result.best_dice,
                "comparison": None
                if comparison is None
                else comparison.astype(object).where(comparison.notna(), None).to_dict("records"),
                "report": run.paths.html,
                "run_id": run_id,
            }
        )
        return
    _print_summary(run.result.metrics, run.result.best_threshold, run.result.best_dice, cfg)
    if run.comparison is not None:
        _print_comparison(run.comparison)
    console.print(f"report: {run.paths.html}")
    if run_id:
        console.print(f"logged to MLflow run {run_id}")


def _print_comparison(comparison: pd.DataFrame) -> None:
    shown = format_table(comparison)
    table = Table(title="comparison (full table in comparison.csv)")
    table.add_column("variant", overflow="fold")
    columns = {"dice": "dice", "precision": "prec.", "recall": "recall"}
    columns.update(best_threshold="best t", best_dice="best dice", delta_dice="Δ dice")
    for header in columns.values():
        table.add_column(header, justify="right", no_wrap=True)
    for row in shown.to_dict(orient="records"):
        table.add_row(str(row["variant"]), *(str(row[col]) for col in columns))
    show_table(table)


def predicted_threshold(pred_dir: Path, n_bins: int) -> float | None:
    """The threshold ``kelpseg predict`` wrote the folder's masks with, on the 1/n_bins grid.

    None when the folder has no ``predict_config.yaml`` (masks from elsewhere) or it names none.
    """
    path = Path(pred_dir) / PREDICT_CONFIG
    if not path.is_file():
        return None
    value = read_yaml(path).get("threshold")
    if not isinstance(value, int | float):
        return None
    return round(float(value) * n_bins) / n_bins


def _print_summary(metrics: dict[str, Any], best_t: float, best_d: float, cfg: Any) -> None:
    table = Table(title=f"evaluation at threshold {cfg.threshold:g}")
    for col in ("dice", "iou", "precision", "recall", "tiles", "best threshold", "best dice"):
        table.add_column(col, justify="right")
    table.add_row(
        f"{metrics['dice']:.4f}",
        f"{metrics['iou']:.4f}",
        f"{metrics['precision']:.4f}",
        f"{metrics['recall']:.4f}",
        str(metrics["tiles"]),
        f"{best_t:g}",
        f"{best_d:.4f}",
    )
    show_table(table)
