"""``kelpseg export --ensemble``: the spec ``kelpseg ensemble select`` wrote, as one package."""

from __future__ import annotations

import json
import os
from pathlib import Path

from kelpseg.errors import KelpsegError
from kelpseg.export.graph import GRAPH_MODES
from kelpseg.export.package import export_model
from kelpseg.inference.selection_run import REPORT_FILE, load_ensemble_spec

PathLike = str | os.PathLike[str]


def _spec_model(model: str, spec_dir: Path) -> str:
    # Paths in a spec are as its author typed them; beside the spec is the other sensible base.
    beside = spec_dir / model
    return str(beside) if not Path(model).exists() and beside.exists() else model


def export_ensemble(
    spec_path: PathLike,
    name: str,
    version: str,
    out_dir: PathLike,
    *,
    threshold: float | None = None,
    **options: object,
) -> Path:
    """Export the ensemble spec of ``kelpseg ensemble select`` (``ensemble.yaml``) as one package.

    Its models, weights, ``ensemble_mode`` and threshold go into the graph and manifest; the
    reporting-fold scores of ``selection.json`` beside the spec, if present, are recorded as
    the package's metrics (``select_report_dice``, ``select_report_gain``).

    Args:
        spec_path: the ``ensemble.yaml``.
        name: package name.
        version: package version.
        out_dir: the package folder to write.
        threshold: overrides the spec's threshold.
        **options: the rest of :func:`export_model` (``opset``, ``overwrite`` ...).

    Raises:
        KelpsegError: a spec without models, weights, mode or threshold, a mode the graph cannot
            hold, or any fault of :func:`export_model`.
    """
    path = Path(spec_path)
    spec = load_ensemble_spec(path)
    mode = str(spec["ensemble_mode"])
    if mode not in GRAPH_MODES:
        known = " or ".join(GRAPH_MODES)
        raise KelpsegError(f"ensemble_mode {mode!r}: a package holds {known}", path)
    models = [_spec_model(str(m), path.parent) for m in spec["models"]]
    metrics: dict[str, float] = {}
    report = path.parent / REPORT_FILE
    if report.is_file():
        scores = json.loads(report.read_text()).get("report", {})
        keys = {"select_report_dice": "ensemble_dice", "select_report_gain": "gain"}
        metrics = {k: float(scores[v]) for k, v in keys.items() if v in scores}
    chosen = float(spec["threshold"]) if threshold is None else threshold
    return export_model(
        models,
        [float(w) for w in spec["weights"]],
        name,
        version,
        out_dir,
        threshold=chosen,
        ensemble_mode=mode,
        metrics=metrics,
        **options,  # type: ignore[arg-type]
    )
