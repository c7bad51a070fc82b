"""Entry point of the ``kelpseg`` command and its error handling.

Every subcommand lives in its own module under ``kelpseg.cli`` and is registered here by name:
its module is imported only when it runs, so the light install (no torch) runs what it can.
A :class:`~kelpseg.errors.KelpsegError` becomes one line on stderr and exit code 2;
``kelpseg --debug ...`` shows the traceback instead. Commands are listed in help panels by
stage; ``kelpseg --install-completion`` installs shell completion.
"""

from __future__ import annotations

import sys
from typing import Annotated

import typer
from rich.markup import escape
from typer.exceptions import TyperException

from kelpseg import __version__
from kelpseg.cli.lazy import LazyCommands, missing_extra
from kelpseg.cli.options import rewrite_deprecated
from kelpseg.console import err_console
from kelpseg.errors import KelpsegError, MissingExtraError

#: Commands imported when they run (see kelpseg.cli.lazy): register new ones below with
#: ``commands.add(NAME, "kelpseg.cli.MODULE:FUNCTION_OR_TYPER_APP", HELP, EXTRA)``.
commands = LazyCommands()
app = typer.Typer(
    cls=commands.group_class(),
    name="kelpseg",
    help="Map kelp canopy in Landsat imagery: data checks, EDA, training, inference, scenes.",
    no_args_is_help=True,
    add_completion=True,
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


_add = commands.add
DATA, TRAINING, PREDICTION = "Data", "Training", "Prediction"
MODELS, QUALITY, TOOLS = "Models", "Quality", "Tools"
_add(
    "synth",
    "kelpseg.cli.synth:synth",
    "Generate a demo dataset in the Kelp Wanted layout.",
    panel=DATA,
)
_add(
    "validate",
    "kelpseg.cli.data:validate",
    "Check every file of a dataset; exit 1 if problems are found.",
    panel=DATA,
)
_add(
    "catalog",
    "kelpseg.cli.data:catalog",
    "Build the tile catalog (parquet) and print a dataset summary.",
    panel=DATA,
)
_add(
    "eda",
    "kelpseg.cli.eda:app",
    "EDA: per-tile statistics on Dask, tile plots, HTML report.",
    "data",
    panel=DATA,
)
_add(
    "split",
    "kelpseg.cli.split:split",
    "Group tiles by AOI and write leak-free cross-validation folds.",
    "data",
    panel=DATA,
)
_add(
    "prepare",
    "kelpseg.cli.prepare:prepare",
    "Pack tiles and labels into a memory-mapped store for fast training.",
    panel=DATA,
)
_add(
    "synth-scene",
    "kelpseg.cli.scenes:synth_scene",
    "Generate a georeferenced Landsat-like scene for demos.",
    panel=DATA,
)
_add(
    "train",
    "kelpseg.cli.train:train",
    "Train one model (one fold) with Lightning, tracked in MLflow.",
    "train",
    panel=TRAINING,
)
_add(
    "train-cv",
    "kelpseg.cli.train:train_cv",
    "Train every fold, each an MLflow child run.",
    "train",
    panel=TRAINING,
)
_add(
    "tune",
    "kelpseg.cli.tune:tune",
    "Search hyperparameters with Optuna; workers on one --storage share a study.",
    "train",
    panel=TRAINING,
)
_add(
    "ablate",
    "kelpseg.cli.ablate:ablate",
    "Train a base config and variants (same folds, seeds); Dice table.",
    "train",
    panel=TRAINING,
)
_add(
    "tabular",
    "kelpseg.cli.tabular:app",
    "Per-pixel gradient-boosted tree models.",
    "tabular",
    panel=TRAINING,
)
_add(
    "predict",
    "kelpseg.cli.predict:predict",
    "Predict kelp masks for tiles with a model package, one model or an ensemble.",
    panel=PREDICTION,
)
_add(
    "predict-scene",
    "kelpseg.cli.scenes:predict_scene",
    "Kelp map of a full georeferenced Landsat scene.",
    panel=PREDICTION,
)
_add(
    "area",
    "kelpseg.cli.scenes:area",
    "Kelp area per scene date and region, with a plot over time.",
    panel=PREDICTION,
)
_add(
    "ensemble",
    "kelpseg.cli.ensemble:app",
    "Ensemble selection on saved predictions.",
    panel=PREDICTION,
)
_add(
    "submit",
    "kelpseg.cli.submit:submit",
    "Pack test-set masks into the submission tar, or --check one (exit 1 if wrong).",
    panel=PREDICTION,
)
_add(
    "export",
    "kelpseg.cli.portable:export",
    "Export a model or ensemble as an ONNX model package (manifest, checksums).",
    "train",
    panel=MODELS,
)
_add(
    "models",
    "kelpseg.cli.portable:models_app",
    "The local registry of model packages.",
    panel=MODELS,
)
_add(
    "evaluate",
    "kelpseg.cli.evaluate:evaluate",
    "Score predictions on a labelled set: Dice, threshold sweep, HTML report.",
    panel=QUALITY,
)
_add(
    "labels",
    "kelpseg.cli.quality:app",
    "Data quality: audit labels, list misaligned DEMs, re-align them.",
    panel=QUALITY,
)
_add(
    "stats",
    "kelpseg.cli.features:stats",
    "Per-channel band statistics (min, max, mean, std, quantiles) as JSON.",
    "train",
    panel=TOOLS,
)
_add(
    "channels",
    "kelpseg.cli.features:channels",
    "List every channel name: bands, spyndex and kelpseg indices.",
    "train",
    panel=TOOLS,
)
_add(
    "bench",
    "kelpseg.cli.bench:app",
    "Benchmarks: each figure vs its floor; compare.",
    "train",
    panel=TOOLS,
)

#: Subcommands of the group commands, for reading old spellings before click parses anything.
SUBCOMMANDS = {
    "eda": {"stats", "plot", "report"},
    "tabular": {"build", "train", "predict", "baseline", "stack"},
    "ensemble": {"select"},
    "models": {"list", "show", "add", "remove"},
    "bench": {"compare"},
    "labels": {"audit", "oof", "realign", "misaligned"},
}


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; return the exit code (used by the console script and by tests)."""
    args = sys.argv[1:] if argv is None else argv
    args = rewrite_deprecated(list(args), SUBCOMMANDS)
    _state["debug"] = "--debug" in args
    try:
        # Without standalone mode, click returns the code of a typer.Exit raised in a command.
        result = app(args=args, prog_name="kelpseg", standalone_mode=False)
    except KelpsegError as exc:
        if _state["debug"]:
            raise
        err_console.print(
            f"[bold red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True
        )
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
    except SystemExit as exc:  # typer's --show-completion and --install-completion exit
        return exc.code if isinstance(exc.code, int) else int(exc.code is not None)
    except ImportError as exc:  # an optional dependency imported inside a command
        extra = missing_extra(exc, commands.extra_of(args))
        if extra is None or _state["debug"]:
            raise
        missing = MissingExtraError(extra, exc.name or "?")
        err_console.print(
            f"[bold red]error:[/] {escape(str(missing))}", highlight=False, soft_wrap=True
        )
        return 2
    return result if isinstance(result, int) else 0


def run() -> None:  # pragma: no cover - console-script shim
    sys.exit(main())


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
