"""The whole ``kelpseg evaluate`` job as one library call: score, compare, report, log."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from kelpseg.config import save_config
from kelpseg.evaluation.compare import Variant, compare_results, compare_variants
from kelpseg.evaluation.config import EvaluateConfig
from kelpseg.evaluation.evaluate import evaluate_predictions
from kelpseg.evaluation.gallery import build_gallery
from kelpseg.evaluation.labels import ImageSource, LabelSource, resolve_labels
from kelpseg.evaluation.report import ReportPaths, write_report
from kelpseg.evaluation.result import EvaluationResult
from kelpseg.evaluation.tracking import log_to_mlflow
from kelpseg.inference.postprocess import PostprocessConfig
from kelpseg.inference.rasters import PredictionSource, as_source
from kelpseg.io.atomic import atomic_path

PathLike = str | os.PathLike[str]


@dataclass
class EvaluationRun:
    """What :func:`run_evaluation` produced."""

    result: EvaluationResult
    comparison: pd.DataFrame | None
    paths: ReportPaths
    config_path: Path


def _describe(source: object) -> str:
    if isinstance(source, str | os.PathLike):
        return str(source)
    return f"{type(source).__name__} (in memory)"


def run_evaluation(
    predictions: PredictionSource | PathLike,
    labels: LabelSource,
    out_dir: PathLike,
    config: EvaluateConfig | None = None,
    *,
    images: ImageSource | None = None,
    compare: Mapping[str, PredictionSource | PathLike] | None = None,
    run_id: str | None = None,
    tracking_uri: str | None = None,
    title: str = "kelpseg evaluation",
    show_progress: bool = True,
) -> EvaluationRun:
    """Evaluate predictions and write the report, JSON, CSVs and resolved config to ``out_dir``.

    With post-processing configured, the comparison table also holds the raw predictions,
    so every step's worth is measured; ``compare`` adds further variants (e.g. TTA off,
    single ensemble members), scored with the same settings.

    Args:
        predictions: prediction folder or mapping (the main variant).
        labels: labelled set (see :func:`evaluate_predictions`).
        out_dir: where the outputs go.
        config: evaluation settings.
        images: where the satellite tiles are, when ``labels`` does not say.
        compare: extra variants, name -> folder or mapping.
        run_id: an MLflow run to log metrics and the report into.
        tracking_uri: the MLflow tracking store of ``run_id``.
        title: the report's title.
        show_progress: draw progress bars.
    """
    config = config or EvaluateConfig()
    out = Path(out_dir)
    label_set = resolve_labels(labels, images)
    source = as_source(predictions, config.kind)
    result = evaluate_predictions(source, label_set, config, show_progress=show_progress)
    main = "main + post-processing" if config.postprocess.steps else "main"
    results = {main: result}
    variants: dict[str, Variant | PredictionSource | PathLike] = {}
    if config.postprocess.steps:
        variants["main, raw"] = Variant(source, PostprocessConfig())
    variants.update(compare or {})
    if variants:
        _, extra = compare_variants(variants, label_set, config, show_progress=show_progress)
        results.update(extra)
    comparison = compare_results(results) if len(results) > 1 else None
    gallery = build_gallery(
        result.per_tile,
        source,
        label_set,
        result.threshold,
        config.gallery_tiles,
        config.postprocess,
    )
    sources = {"predictions": _describe(predictions), "labels": _describe(labels)}
    paths = write_report(
        result,
        out,
        title=title,
        comparison=comparison,
        gallery=gallery,
        config=config,
        sources=sources,
    )
    config_path = save_config(config, out / "evaluate_config.yaml")
    if comparison is not None:
        with atomic_path(out / "comparison.csv") as tmp:
            comparison.to_csv(tmp, index=False)
    if run_id:
        artifacts = [paths.html, paths.json, paths.per_tile_csv, paths.sweep_csv, config_path]
        artifacts += [paths.files] if paths.files is not None else []
        log_to_mlflow(result, run_id, tracking_uri, artifacts)
    return EvaluationRun(result, comparison, paths, config_path)
