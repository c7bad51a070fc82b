"""Evaluation: competition Dice and friends, threshold sweep, comparisons, HTML report.

Scores masks and probabilities; needs no model. Typical use::

    from kelpseg.evaluation import EvaluateConfig, evaluate_predictions
    result = evaluate_predictions("runs/fold0/preds", "data/catalog.parquet")
    result.dice, result.best_threshold
"""

from kelpseg.evaluation.compare import Variant, compare_results, compare_variants
from kelpseg.evaluation.config import EvaluateConfig, ThresholdSweep
from kelpseg.evaluation.evaluate import evaluate_predictions
from kelpseg.evaluation.labels import LabelSet, resolve_labels
from kelpseg.evaluation.report import ReportPaths, render_html, write_report
from kelpseg.evaluation.result import EvaluationResult, MetricAccumulator
from kelpseg.evaluation.runner import EvaluationRun, run_evaluation
from kelpseg.evaluation.tracking import log_to_mlflow
from kelpseg.metrics import (
    best_threshold,
    bin_index,
    count_tile,
    dice_coefficient,
    precision_recall_curve,
    scores,
    threshold_grid,
)

__all__ = [
    "EvaluateConfig",
    "EvaluationResult",
    "EvaluationRun",
    "LabelSet",
    "MetricAccumulator",
    "ReportPaths",
    "ThresholdSweep",
    "Variant",
    "best_threshold",
    "bin_index",
    "compare_results",
    "compare_variants",
    "count_tile",
    "dice_coefficient",
    "evaluate_predictions",
    "log_to_mlflow",
    "precision_recall_curve",
    "render_html",
    "resolve_labels",
    "run_evaluation",
    "scores",
    "threshold_grid",
    "write_report",
]
