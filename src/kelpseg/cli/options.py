"""The options every command shares: one name, one meaning and one parser each.

Commands declare their outputs, models, progress, parallelism and config the same way, from
here; ``tests/cli/test_vocabulary.py`` walks the whole command tree and fails on a command that
spells one of these ideas differently. Spellings of an earlier release are rewritten to the
current ones by :func:`rewrite_deprecated` (called by ``kelpseg.cli.app.main``), with one
warning line on stderr, for one release.

Shared meanings:

- ``-o/--out``: where the command writes. It refuses an existing output without
  ``--overwrite`` (see :func:`kelpseg.cli.output.refuse_existing`), except in the commands that
  resume into their output folder (listed in ``RESUMING``).
- ``-m/--model``: a model (package, checkpoint, run folder or run id, or a model type for tree
  models); repeat it for an ensemble. ``--weights`` takes one weight per model, repeated or
  comma-separated.
- ``--workers``: processes (0 = one per core). ``--threads``: compute threads inside one
  process, torch's or ONNX Runtime's (0 = the library's default).
- ``--scheduler``: ``sync`` (this process, no Dask), ``local`` (a new local Dask cluster, of
  ``--workers`` processes where the command has that option) or the address of a running Dask
  scheduler.
- ``-q/--quiet``: no progress bars. ``--json``: machine-readable JSON on stdout, nothing else.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from kelpseg.errors import KelpsegError

# --------------------------------------------------------------------------- option factories
# A factory where the help text differs per command; an alias where it does not.


def out_option(help: str) -> Any:
    """``-o/--out``: the file or folder a command writes."""
    return typer.Option("--out", "-o", help=help)


def model_option(help: str) -> Any:
    """``-m/--model``: the model(s) a command reads; repeat for an ensemble."""
    return typer.Option("--model", "-m", help=help)


def config_option(help: str) -> Any:
    """``-c/--config``: the command's YAML config file."""
    return typer.Option("--config", "-c", help=help)


def overwrite_option(help: str = "Replace an existing output.") -> Any:
    """``--overwrite``: replace (or, where a command resumes, redo) an existing output."""
    return typer.Option("--overwrite", help=help)


def workers_option(help: str = "Worker processes (0 = one per core).") -> Any:
    """``--workers``: processes, never threads."""
    return typer.Option("--workers", help=help)


def threads_option(
    help: str = "Compute threads per process, torch or ONNX Runtime (0 = library default).",
) -> Any:
    """``--threads``: threads inside one process."""
    return typer.Option("--threads", help=help)


Overwrite = Annotated[bool, overwrite_option()]
Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars.")]
IgnoreEncoding = Annotated[
    bool,
    typer.Option(
        "--ignore-encoding",
        help="Predict inputs in another integer encoding than the model's (warn, not stop).",
    ),
]
Json = Annotated[
    bool, typer.Option("--json", help="Print machine-readable JSON on stdout, nothing else.")
]
Workers = Annotated[int, workers_option()]
Threads = Annotated[int, threads_option()]
Overrides = Annotated[
    list[str] | None,
    typer.Option("--set", help="Config override key.sub=value (repeatable)."),
]
Weights = Annotated[
    list[str] | None,
    typer.Option("--weights", help="One weight per --model: repeat, or w1,w2,... (default equal)."),
]
Device = Annotated[str | None, typer.Option("--device", help="auto, cpu, cuda, cuda:1 ...")]

SCHEDULER_HELP = (
    "sync (this process), local (a new local Dask cluster) "
    "or the address of a running Dask scheduler, tcp://host:port."
)
SCHEDULERS = ("sync", "local")


def scheduler_option(default: str) -> Any:
    """``--scheduler``: one set of values in every command (see :func:`dask_scheduler`)."""
    return typer.Option("--scheduler", help=f"{SCHEDULER_HELP} [default: {default}]")


# --------------------------------------------------------------------------------- parsers


def split_list(items: list[str] | None) -> list[str]:
    """Values of a repeatable option that also takes comma-separated lists, in order.

    ``["a,b", "c"]`` -> ``["a", "b", "c"]``; empty parts are dropped.
    """
    return [part.strip() for item in items or [] for part in item.split(",") if part.strip()]


def parse_weights(items: list[str] | None) -> list[float] | None:
    """``--weights 1 --weights 2`` or ``--weights 1,2`` -> ``[1.0, 2.0]``; None when not given.

    Raises:
        KelpsegError: a part that is not a number.
    """
    parts = split_list(items)
    if not parts:
        return None
    out: list[float] = []
    for part in parts:
        try:
            out.append(float(part))
        except ValueError as exc:
            raise KelpsegError(f"weight {part!r} is not a number", "--weights") from exc
    return out


def dask_scheduler(value: str, *, sync: Any, local: Any, command: str) -> Any:
    """The library's value for ``--scheduler``: ``sync``/``local`` mapped, an address kept.

    ``sync`` and ``local`` are the shared spellings; each library function names them its own
    way (``None``, ``"sync"``, ``"local"``). ``NotImplemented`` marks a mode the command lacks.

    Raises:
        KelpsegError: a mode the command does not support.
    """
    mode = value.strip()
    mapped = {"sync": sync, "local": local}.get(mode, mode)
    if mapped is NotImplemented:
        others = " or ".join(m for m in SCHEDULERS if m != mode)
        raise KelpsegError(
            f"{command} cannot run with --scheduler {mode}; use {others} or a scheduler address",
            "--scheduler",
        )
    return mapped


# ----------------------------------------------------------------------------- deprecations
#: Old spelling -> new tokens, per command path (``()``: every command). One release only.
#: An empty replacement drops the token (``--progress`` was the default).
DEPRECATED: dict[tuple[str, ...], dict[str, tuple[str, ...]]] = {
    ("models", "add"): {"--force": ("--overwrite",)},
    ("stats",): {"--no-progress": ("--quiet",), "--progress": ()},
    ("prepare",): {"--workers": ("--threads",)},
    ("tabular", "stack"): {"--models": ("--model",)},
}

#: Commands that resume into an existing output instead of refusing it (docs/cli.md says why).
RESUMING = {
    ("predict",): "skips tiles already written; --overwrite redoes them",
    ("prepare",): "resumes an interrupted store; a finished one is a no-op",
    ("train",): "--resume continues from checkpoints/last.ckpt",
    ("train-cv",): "--resume skips finished folds",
    ("tune",): "workers on one storage share the study",
    ("ablate",): "reads back runs already trained",
    ("labels", "oof"): "skips folds already predicted",
    ("tabular", "build"): "skips tiles already sampled; --overwrite starts over",
    ("tabular", "predict"): "skips tiles already written; --overwrite redoes them",
    ("tabular", "stack"): "skips tiles already stored; --overwrite recomputes them",
    ("split",): "reuses cached embeddings; the split files are replaced only with --overwrite",
}


def warn_deprecated(command: str, old: str, new: str) -> None:
    """One warning line on stderr: ``kelpseg COMMAND OLD`` is deprecated, use ``NEW``.

    :func:`rewrite_deprecated` calls it; so does a command that still reads an old spelling
    itself (a hidden option) because its meaning differs: ``predict --num-workers 0`` read tiles
    in this process, where ``--workers 0`` means one reader per core.
    """
    from kelpseg.console import err_console

    err_console.print(
        f"warning: 'kelpseg {command} {old}' is deprecated and goes in the next release; use {new}",
        highlight=False,
        markup=False,
        soft_wrap=True,
    )


def command_path(args: list[str], groups: dict[str, set[str]]) -> tuple[str, ...]:
    """The command (and subcommand) named in ``args``: ``("models", "add")``, ``("stats",)``.

    ``groups`` maps a group command to its subcommand names.
    """
    words = [a for a in args if not a.startswith("-")]
    if not words:
        return ()
    head = words[0]
    sub = next((w for w in words[1:] if w in groups.get(head, set())), None)
    return (head, sub) if sub else (head,)


def rewrite_deprecated(args: list[str], groups: dict[str, set[str]]) -> list[str]:
    """``args`` with deprecated spellings replaced by current ones, with a warning for each."""
    path = command_path(args, groups)
    table = {**DEPRECATED.get(path[:1], {}), **DEPRECATED.get(path, {})} if path else {}
    if not table:
        return args
    out: list[str] = []
    for arg in args:
        name, eq, value = arg.partition("=")
        if name in table and arg.startswith("--"):
            new = table[name]
            spelled = " ".join(new) if new else "nothing (it is the default)"
            warn_deprecated(" ".join(path), name, spelled)
            if new and eq:
                out += [*new[:-1], f"{new[-1]}={value}"]
            else:
                out += list(new)
            continue
        out.append(arg)
    return out
