"""The option table of docs/cli.md, generated from the click command tree.

``python -m kelpseg.cli.reference`` prints the table; ``tests/cli/test_vocabulary.py`` fails
when the table in docs/cli.md differs from it, so the page cannot drift from the CLI.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from kelpseg.cli.lazy import load_command

# Typer vendors its own copy of click, so commands and options are told apart by what they
# have (``commands``, ``param_type_name``), not by click's classes.
Command = Any
Option = Any

#: The shared options, in the table's column order: column title -> long option name.
SHARED = {
    "-o/--out": "--out",
    "-m/--model": "--model",
    "--overwrite": "--overwrite",
    "-q/--quiet": "--quiet",
    "--json": "--json",
    "--workers": "--workers",
    "--threads": "--threads",
    "--scheduler": "--scheduler",
    "--weights": "--weights",
    "-c/--config": "--config",
    "--set": "--set",
}
BEGIN = "<!-- options-table:begin (python -m kelpseg.cli.reference) -->"
END = "<!-- options-table:end -->"


def walk() -> Iterator[tuple[str, Command]]:
    """Every runnable command as ``("models add", command)``, groups entered, in help order."""
    from kelpseg.cli.app import commands

    for spec in commands.specs.values():
        yield from _walk(spec.name, load_command(spec))


def _walk(path: str, command: Command) -> Iterator[tuple[str, Command]]:
    if hasattr(command, "commands"):
        if command.invoke_without_command:  # ``kelpseg bench`` runs by itself too
            yield path, command
        for name, sub in command.commands.items():
            yield from _walk(f"{path} {name}", sub)
        return
    yield path, command


def visible_options(command: Command) -> list[Option]:
    """The options a user sees in help (not ``--help``, not hidden deprecated spellings)."""
    return [
        p
        for p in command.params
        if p.param_type_name == "option" and not p.hidden and "--help" not in p.opts
    ]


def long_name(option: Option) -> str:
    """The option's first ``--long`` name."""
    return next((o for o in option.opts if o.startswith("--")), option.opts[0])


def options_table() -> str:
    """The markdown table: one row per command, a mark per shared option, then the others."""
    header = ["command", *SHARED, "other options"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for path, command in walk():
        names = {long_name(o) for o in visible_options(command)}
        marks = ["x" if name in names else "" for name in SHARED.values()]
        others = sorted(names - set(SHARED.values()))
        cells = [f"`{path}`", *marks, " ".join(f"`{o}`" for o in others)]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def table_in(text: str) -> str:
    """The table between the markers of docs/cli.md (empty when the markers are missing)."""
    if BEGIN not in text or END not in text:
        return ""
    return text.split(BEGIN, 1)[1].split(END, 1)[0].strip()


if __name__ == "__main__":  # pragma: no cover
    print(options_table())
