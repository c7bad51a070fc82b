"""Commands whose module is imported only when they run.

``kelpseg --help`` lists every command from its registered help line without importing any
command module, and ``kelpseg predict`` imports the prediction module alone: so the CLI starts
fast, and the light install (no torch, no Dask) runs what it can. A command whose module needs a
missing extra says which one to install, in one line (exit code 2).
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from dataclasses import dataclass
from typing import Any, cast

import typer
from typer.core import TyperCommand, TyperGroup, TyperOption

from kelpseg.errors import MissingExtraError

#: Top-level module -> the extra that installs it (pyproject's optional dependencies).
EXTRA_OF_MODULE = {
    **dict.fromkeys(("dask", "distributed", "sklearn", "psutil"), "data"),
    **dict.fromkeys(
        (
            "torch",
            "torchvision",
            "lightning",
            "segmentation_models_pytorch",
            "timm",
            "torchmetrics",
            "kornia",
            "spyndex",
            "mlflow",
            "optuna",
            "cmaes",
            "onnx",
            "onnxscript",
        ),
        "train",
    ),
    **dict.fromkeys(("skops", "xgboost", "lightgbm", "catboost"), "tabular"),
}


@dataclass(frozen=True)
class LazySpec:
    """A command registered by name: ``target`` is ``"module:attribute"`` (function or Typer).

    ``extra`` is the extra the command needs (None: core); it is named when a module is missing.
    ``panel`` is the help panel that lists it (data, training, prediction ...).
    """

    name: str
    target: str
    help: str
    extra: str | None = None
    panel: str | None = None


def missing_extra(exc: ImportError, wanted: str | None = None) -> str | None:
    """The extra to install for ``exc``, or None when it is not a missing optional dependency.

    A module that is installed but fails to import (a broken install, a bug) is not a missing
    extra: its error is left as it is.
    """
    top = (exc.name or "").split(".")[0]
    if top not in EXTRA_OF_MODULE or not _absent(top):
        return None
    return wanted or EXTRA_OF_MODULE[top]


def _absent(module: str) -> bool:
    if module in sys.modules:
        return sys.modules[module] is None  # None: imports of it are blocked
    try:
        return importlib.util.find_spec(module) is None
    except (ImportError, ValueError):
        return True


def _nothing() -> None:
    """Group callback of the one-command holder app."""


def load_command(spec: LazySpec) -> Any:
    """Import the command's module and build its click command (a group for a Typer app).

    Raises:
        MissingExtraError: the module needs an extra that is not installed.
    """
    module_name, _, attribute = spec.target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        extra = missing_extra(exc, spec.extra)
        if extra is None:
            raise
        raise MissingExtraError(extra, exc.name or module_name) from exc
    target = getattr(module, attribute)
    # Built through a holder app, with the public Typer API, exactly as an eager registration is.
    holder = typer.Typer(add_completion=False, rich_markup_mode="rich")
    holder.callback()(_nothing)
    if isinstance(target, typer.Typer):
        holder.add_typer(target, name=spec.name, help=spec.help, rich_help_panel=spec.panel)
    else:
        holder.command(spec.name, help=spec.help, rich_help_panel=spec.panel)(target)
    group = cast(TyperGroup, typer.main.get_command(holder))
    return group.commands[spec.name]


def _flag_type(self: TyperOption, ctx: Any) -> str | None:
    """No ``<bool>`` placeholder after a flag: a flag takes no value."""
    return None if self.is_flag else _display_type(self, ctx)


# Typer writes every option's type after its name, flags included; help of every kelpseg
# command (eager or lazy) goes through this class, so one override covers them all.
_display_type = TyperOption.display_type_rich
TyperOption.display_type_rich = _flag_type  # type: ignore[method-assign]


class DeferredCommand(TyperCommand):
    """Stands in for a command in listings; parsing its arguments loads the real one."""

    def __init__(self, spec: LazySpec) -> None:
        super().__init__(
            spec.name, help=spec.help, add_help_option=False, rich_help_panel=spec.panel
        )
        self.spec = spec

    def make_context(
        self, info_name: str | None, args: list[str], parent: Any = None, **extra: Any
    ) -> Any:
        """The real command's context: the group then invokes the real command."""
        return load_command(self.spec).make_context(info_name, args, parent=parent, **extra)


class LazyCommands:
    """The lazily imported commands of an app, in registration order."""

    def __init__(self) -> None:
        self.specs: dict[str, LazySpec] = {}

    def add(
        self,
        name: str,
        target: str,
        help: str,
        extra: str | None = None,
        *,
        panel: str | None = None,
    ) -> None:
        """Register ``kelpseg NAME``: ``target`` is ``"kelpseg.cli.module:function_or_app"``."""
        self.specs[name] = LazySpec(name, target, help, extra, panel)

    def extra_of(self, args: list[str]) -> str | None:
        """The extra the command named in ``args`` declares (None: core or no command)."""
        name = next((a for a in args if not a.startswith("-")), None)
        spec = self.specs.get(name or "")
        return spec.extra if spec is not None else None

    def group_class(self) -> type[TyperGroup]:
        """A ``TyperGroup`` that holds these commands (deferred) beside eager ones."""
        specs = self.specs

        class LazyGroup(TyperGroup):
            def __init__(self, **kwargs: Any) -> None:
                super().__init__(**kwargs)
                for name, spec in specs.items():
                    # A command registered eagerly (tests do) keeps its eager registration.
                    self.commands.setdefault(name, DeferredCommand(spec))

        return LazyGroup
