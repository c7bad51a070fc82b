"""The study summary: best trial, parameter importance and plots, as JSON, CSV, PNG and HTML.

Everything goes to ``<out>/summary/``: ``summary.json``, ``trials.csv`` and, per plot,
``<name>.png`` (matplotlib) and ``<name>.html`` (interactive plotly; ``plotly.min.js`` is written
once beside them so the pages work offline). Plots: optimisation history, parameter importance
(fANOVA, seeded), parallel coordinates (the most important parameters) and intermediate values
(the per-epoch val Dice curves, where pruning shows). ``report.html`` puts it all on one page
that needs nothing beside it (:mod:`kelpseg.tune.report`).
"""

from __future__ import annotations

import json
import math
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import optuna
from optuna.importance import FanovaImportanceEvaluator
from optuna.trial import TrialState

from kelpseg.io.atomic import atomic_path
from kelpseg.tune.report import write_report

VALUES_ATTR = "kelpseg.values"
# Parallel coordinates beyond this many axes are unreadable (subsets add one per candidate).
MAX_PARALLEL_AXES = 8


@dataclass
class StudySummary:
    """Where a study stands.

    Attributes:
        study_name: the study.
        storage: its storage URL (password hidden).
        direction: ``maximize`` or ``minimize``.
        n_trials: trials that finished (complete, pruned or failed).
        n_complete, n_pruned, n_failed, n_running: trials by state.
        best_trial: number of the best complete trial (None before the first).
        best_value: its objective value (best val Dice).
        best_params: its Optuna parameters (a subset shows one key per candidate).
        best_values: the config values they set, by dotted key (a subset as its list).
        importances: parameter importance (fANOVA, sums to 1), most important first.
        summary_dir: the folder the files were written to.
        best_config: the best trial's full training config (YAML), when written.
        parent_run_id: the study's MLflow parent run (None without tracking).
        skipped: plots that could not be drawn, with the reason.
    """

    study_name: str
    storage: str
    direction: str
    n_trials: int
    n_complete: int
    n_pruned: int
    n_failed: int
    n_running: int
    best_trial: int | None
    best_value: float | None
    best_params: dict[str, Any]
    best_values: dict[str, Any]
    importances: dict[str, float]
    summary_dir: Path
    best_config: Path | None = None
    parent_run_id: str | None = None
    skipped: dict[str, str] = field(default_factory=dict)

    def to_json(self, path: Path) -> Path:
        """Write as JSON, atomically."""
        doc = {k: str(v) if isinstance(v, Path) else v for k, v in asdict(self).items()}
        with atomic_path(path) as tmp:
            tmp.write_text(json.dumps(doc, indent=2, default=str) + "\n")
        return path


def summarize_study(
    study: optuna.Study, summary_dir: Path, storage: str, plots: bool = True
) -> StudySummary:
    """Count the trials, find the best, rank parameters, and write the summary files.

    Args:
        study: the study.
        summary_dir: where the files go.
        storage: the storage URL to record (password hidden).
        plots: also draw the plots (seconds each with many trials or parameters).
    """
    trials = study.get_trials(deepcopy=False)
    count = {s: sum(t.state == s for t in trials) for s in TrialState}
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    best = study.best_trial if complete else None
    summary = StudySummary(
        study_name=study.study_name,
        storage=storage,
        direction=study.direction.name.lower(),
        n_trials=count[TrialState.COMPLETE] + count[TrialState.PRUNED] + count[TrialState.FAIL],
        n_complete=count[TrialState.COMPLETE],
        n_pruned=count[TrialState.PRUNED],
        n_failed=count[TrialState.FAIL],
        n_running=count[TrialState.RUNNING],
        best_trial=None if best is None else best.number,
        best_value=None if best is None else best.value,
        best_params={} if best is None else dict(best.params),
        best_values={} if best is None else dict(best.user_attrs.get(VALUES_ATTR, {})),
        importances={},
        summary_dir=summary_dir,
    )
    summary_dir.mkdir(parents=True, exist_ok=True)
    if trials:
        with atomic_path(summary_dir / "trials.csv") as tmp:
            study.trials_dataframe().to_csv(tmp, index=False)
    summary.importances = _importances(study, complete, summary.skipped)
    if plots:
        _write_plots(study, summary, summary_dir)
    summary.to_json(summary_dir / "summary.json")
    write_report(summary, summary_dir)
    return summary


def _importances(
    study: optuna.Study, complete: list[optuna.trial.FrozenTrial], skipped: dict[str, str]
) -> dict[str, float]:
    if len(complete) < 2:
        skipped["importance"] = "needs at least two complete trials"
        return {}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            found = optuna.importance.get_param_importances(
                study, evaluator=FanovaImportanceEvaluator(seed=0)
            )
    except (ValueError, RuntimeError) as exc:  # e.g. every parameter held one value
        skipped["importance"] = str(exc).splitlines()[0]
        return {}
    return {k: float(v) for k, v in found.items() if not math.isnan(v)}


def _write_plots(study: optuna.Study, summary: StudySummary, out: Path) -> None:
    from optuna import visualization as ov
    from optuna.visualization import matplotlib as om

    if summary.n_complete == 0:
        summary.skipped["plots"] = "no complete trial yet"
        return
    params = list(summary.importances or summary.best_params)[:MAX_PARALLEL_AXES]
    plots: dict[str, tuple[Callable[..., Any], Callable[..., Any], dict[str, Any]]] = {
        "optimization_history": (ov.plot_optimization_history, om.plot_optimization_history, {}),
        "intermediate_values": (ov.plot_intermediate_values, om.plot_intermediate_values, {}),
        "parallel_coordinate": (
            ov.plot_parallel_coordinate, om.plot_parallel_coordinate, {"params": params}
        ),
    }  # fmt: skip
    if not any(t.intermediate_values for t in study.get_trials(deepcopy=False)):
        del plots["intermediate_values"]  # an objective that reports nothing per epoch
    if summary.importances:
        # Drawn from the importances already computed: Optuna's plots would refit fANOVA twice.
        kwargs = {"importances": summary.importances}
        plots["param_importances"] = (_importance_html, _importance_png, kwargs)
    for name, (interactive, static, kwargs) in plots.items():
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # the matplotlib backend is "experimental"
                _save_html(interactive(study, **kwargs), out / f"{name}.html")
                _save_png(_figure_of(static(study, **kwargs)), out / f"{name}.png")
        except (ValueError, RuntimeError, ImportError) as exc:
            summary.skipped[name] = str(exc).splitlines()[0] if str(exc) else type(exc).__name__


def _importance_html(study: optuna.Study, importances: dict[str, float]) -> Any:
    import plotly.graph_objects as go

    found = importances
    names = list(found)[::-1]  # most important at the top
    figure = go.Figure(go.Bar(x=[found[n] for n in names], y=names, orientation="h"))
    figure.update_layout(title="Parameter importance (fANOVA)", xaxis_title="importance")
    return figure


def _importance_png(study: optuna.Study, importances: dict[str, float]) -> Any:
    from matplotlib.figure import Figure

    found = importances
    names = list(found)[::-1]
    fig = Figure(figsize=(8, 1.5 + 0.3 * len(names)), layout="constrained")
    ax = fig.subplots()
    ax.barh(names, [found[n] for n in names], color="tab:blue")
    ax.set_xlabel("importance")
    ax.set_title("Parameter importance (fANOVA)")
    return ax


def _save_html(figure: Any, path: Path) -> None:
    with atomic_path(path) as tmp:
        # "directory": one shared plotly.min.js beside the pages, so they work offline.
        figure.write_html(str(tmp), include_plotlyjs="directory")


def _save_png(fig: Any, path: Path) -> None:
    import matplotlib.pyplot as plt

    try:
        width, height = fig.get_size_inches()
        fig.set_size_inches(max(width, 8), max(height, 5))
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format="png", dpi=100)
    finally:
        plt.close(fig)


def _figure_of(axes: Any) -> Any:
    if hasattr(axes, "figure"):
        return axes.figure
    first = axes.flat[0] if hasattr(axes, "flat") else axes[0]
    return first.figure
