"""One table comparing variants: TTA on/off, post-processing on/off, single models vs ensemble.

Every variant is scored on the same labelled tiles with the same thresholds, so differences
come from the predictions alone. The first variant is the base of the ``delta_dice`` column.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from kelpseg.errors import KelpsegError
from kelpseg.evaluation.config import EvaluateConfig
from kelpseg.evaluation.evaluate import evaluate_predictions
from kelpseg.evaluation.labels import ImageSource, LabelSet, LabelSource, resolve_labels
from kelpseg.evaluation.result import EvaluationResult
from kelpseg.inference.postprocess import PostprocessConfig
from kelpseg.inference.rasters import PredictionSource

PathLike = str | os.PathLike[str]


@dataclass
class Variant:
    """A prediction source, optionally post-processed before scoring.

    Attributes:
        source: prediction folder or mapping (use an ``EnsembleSource`` for an ensemble).
        postprocess: steps for this variant; ``None`` keeps the config's own steps.
    """

    source: PredictionSource | PathLike
    postprocess: PostprocessConfig | None = None


COMPARE_COLUMNS = (
    "variant",
    "tiles",
    "dice",
    "iou",
    "precision",
    "recall",
    "best_threshold",
    "best_dice",
    "delta_dice",
)


def compare_results(results: Mapping[str, EvaluationResult]) -> pd.DataFrame:
    """The comparison table of already computed results (first entry = base)."""
    if not results:
        raise KelpsegError("nothing to compare")
    rows = []
    base = next(iter(results.values())).dice
    for name, res in results.items():
        m = res.metrics
        rows.append(
            (
                name,
                m["tiles"],
                m["dice"],
                m["iou"],
                m["precision"],
                m["recall"],
                res.best_threshold,
                res.best_dice,
                m["dice"] - base,
            )
        )
    return pd.DataFrame(rows, columns=list(COMPARE_COLUMNS))


def compare_variants(
    variants: Mapping[str, Variant | PredictionSource | PathLike],
    labels: LabelSource | LabelSet,
    config: EvaluateConfig | None = None,
    *,
    images: ImageSource | None = None,
    show_progress: bool = False,
) -> tuple[pd.DataFrame, dict[str, EvaluationResult]]:
    """Evaluate each variant on the same labels and tabulate them.

    Args:
        variants: name -> :class:`Variant`, prediction folder or mapping. Name a variant
            ``"ensemble"`` or ``"tta"`` as you like; the first one is the base.
        labels: the labelled set (see :func:`evaluate_predictions`).
        config: shared evaluation settings.
        images: satellite tiles for post-processing steps that need the DEM.
        show_progress: draw a progress bar per variant.

    Returns:
        The table (``COMPARE_COLUMNS``) and each variant's full result.

    Raises:
        KelpsegError: the variants do not cover the same tiles.
    """
    config = config or EvaluateConfig()
    label_set = labels if isinstance(labels, LabelSet) else resolve_labels(labels, images)
    results: dict[str, EvaluationResult] = {}
    tiles: set[str] | None = None
    for name, spec in variants.items():
        variant = spec if isinstance(spec, Variant) else Variant(spec)
        cfg = config
        if variant.postprocess is not None:
            cfg = config.model_copy(update={"postprocess": variant.postprocess})
        res = evaluate_predictions(variant.source, label_set, cfg, show_progress=show_progress)
        ids = set(res.per_tile["tile_id"].astype(str))
        if tiles is not None and ids != tiles:
            raise KelpsegError(f"variant {name!r} covers other tiles than the first variant")
        tiles = ids
        results[name] = res
    return compare_results(results), results


def format_table(table: pd.DataFrame) -> pd.DataFrame:
    """Round the comparison table for display (4 decimals, deltas signed)."""
    out = table.copy()
    for col in out.columns:
        if out[col].dtype.kind == "f":
            out[col] = np.round(out[col].to_numpy(), 4)
    out["delta_dice"] = [f"{v:+.4f}" for v in table["delta_dice"]]
    return out
