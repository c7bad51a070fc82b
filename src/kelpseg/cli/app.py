"""Entry point of the ``kelpseg`` command and its error handling.

Every subcommand lives in its own module under ``kelpseg.cli`` and is registered here.
A :class:`~kelpseg.errors.KelpsegError` becomes one line on stderr and exit code 2;
``kelpseg --debug ...`` shows the traceback instead.
"""

from __future__ import annotations

import sys
from typing import Annotated

import typer
from typer.exceptions import TyperException

from kelpseg import __version__
from kelpseg.cli import data as data_cmds
from kelpseg.cli import eda as eda_cmds
from kelpseg.cli import evaluate as evaluate_cmds
from kelpseg.cli import features as features_cmds
from kelpseg.cli import portable as portable_cmds
from kelpseg.cli import predict as predict_cmds
from kelpseg.cli import prepare as prepare_cmds
from kelpseg.cli import scenes as scenes_cmds
from kelpseg.cli import split as split_cmds
from kelpseg.cli import submit as submit_cmds
from kelpseg.cli import synth as synth_cmds
from kelpseg.cli import tabular as tabular_cmds
from kelpseg.cli import train as train_cmds
from kelpseg.cli import tune as tune_cmds
from kelpseg.console import err_console
from kelpseg.errors import KelpsegError

app = typer.Typer(
    name="kelpseg",
    help="Map kelp canopy in Landsat imagery: data checks, EDA, training, inference, scenes.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)

_state = {"debug": False}


def _version(value: bool) -> None:
    if value:
        typer.echo(f"kelpseg {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks for errors.")] = False,
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version."),
    ] = False,
) -> None:
    """Map kelp canopy in Landsat imagery."""
    _state["debug"] = debug


app.command("synth", help="Generate a demo dataset in the Kelp Wanted layout.")(synth_cmds.synth)
app.command("validate", help="Check every file of a dataset; exit 1 if problems are found.")(
    data_cmds.validate
)
app.command("catalog", help="Build the tile catalog (parquet) and print a dataset summary.")(
    data_cmds.catalog
)
app.command("prepare", help="Pack tiles and labels into a memory-mapped store for fast training.")(
    prepare_cmds.prepare
)
app.command(
    "evaluate", help="Score predictions on a labelled set: Dice, threshold sweep, HTML report."
)(evaluate_cmds.evaluate)
app.command(
    "submit", help="Pack test-set masks into the submission tar, or --check one (exit 1 if wrong)."
)(submit_cmds.submit)
app.command("stats", help="Per-channel band statistics (min, max, mean, std, quantiles) as JSON.")(
    features_cmds.stats
)
app.command("channels", help="List every channel name: bands, spyndex and kelpseg indices.")(
    features_cmds.channels
)

app.add_typer(
    eda_cmds.app, name="eda", help="EDA: per-tile statistics on Dask, tile plots, HTML report."
)
app.command("split", help="Group tiles by AOI and write leak-free cross-validation folds.")(
    split_cmds.split
)
app.command("train", help="Train one model (one fold) with Lightning, tracked in MLflow.")(
    train_cmds.train
)
app.command("train-cv", help="Train every fold, each an MLflow child run.")(train_cmds.train_cv)
app.command("predict", help="Predict kelp masks for tiles with one model or an ensemble.")(
    predict_cmds.predict
)
app.add_typer(tabular_cmds.app, name="tabular", help="Per-pixel gradient-boosted tree models.")
app.command("predict-scene", help="Kelp map of a full georeferenced Landsat scene.")(
    scenes_cmds.predict_scene
)
app.command("area", help="Kelp area per scene date and region, with a plot over time.")(
    scenes_cmds.area
)
app.command("synth-scene", help="Generate a georeferenced Landsat-like scene for demos.")(
    scenes_cmds.synth_scene
)

app.command(
    "tune", help="Search hyperparameters with Optuna; workers on one --storage share a study."
)(tune_cmds.tune)

app.command(
    "export", help="Export a model or ensemble as an ONNX model package (manifest, checksums)."
)(portable_cmds.export)
app.add_typer(portable_cmds.models_app, name="models", help="The local registry of model packages.")


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; return the exit code (used by the console script and by tests)."""
    args = sys.argv[1:] if argv is None else argv
    _state["debug"] = "--debug" in args
    try:
        # Without standalone mode, click returns the code of a typer.Exit raised in a command.
        result = app(args=args, prog_name="kelpseg", standalone_mode=False)
    except KelpsegError as exc:
        if _state["debug"]:
            raise
        err_console.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
        return 2
    except typer.Exit as exc:
        return int(exc.exit_code)
    except typer.Abort:
        err_console.print("aborted")
        return 130
    except TyperException as exc:  # usage errors (typer vendors click's exception classes)
        show = getattr(exc, "show", None)
        if callable(show):
            show()
        return int(getattr(exc, "exit_code", 2))
    except KeyboardInterrupt:
        err_console.print("interrupted")
        return 130
    return result if isinstance(result, int) else 0


def run() -> None:  # pragma: no cover - console-script shim
    sys.exit(main())


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
