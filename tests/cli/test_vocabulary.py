"""One vocabulary: every command of the click tree spells the shared ideas the same way."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from kelpseg.cli.app import main
from kelpseg.cli.options import DEPRECATED, RESUMING, SCHEDULER_HELP, rewrite_deprecated
from kelpseg.cli.reference import long_name, options_table, table_in, visible_options, walk

DOCS = Path(__file__).resolve().parents[2] / "docs" / "cli.md"
JSON_COMMANDS = {"validate", "catalog", "split", "evaluate", "models list", "bench compare"}


@pytest.fixture(scope="module")
def tree() -> list[tuple[str, Any]]:
    return list(walk())


def _names(option: Any) -> set[str]:
    return {*option.opts, *option.secondary_opts}


def _faults(tree: list[tuple[str, Any]]) -> list[str]:
    faults: list[str] = []
    for path, command in tree:
        for option in visible_options(command):
            names, long = _names(option), long_name(option)
            where = f"kelpseg {path} {long}"
            if re.search(r"^--out(put)?(-|$)", long) and set(option.opts) != {"--out", "-o"}:
                faults.append(f"{where}: an output is -o/--out")
            if long in ("--model", "--models") and set(option.opts) != {"--model", "-m"}:
                faults.append(f"{where}: a model is -m/--model")
            if names & {"--force", "--progress", "--no-progress", "--num-workers", "--jobs"}:
                faults.append(f"{where}: old spelling (--overwrite, --quiet, --workers)")
            if long == "--quiet" and set(option.opts) != {"--quiet", "-q"}:
                faults.append(f"{where}: progress is -q/--quiet")
            if long == "--config" and set(option.opts) != {"--config", "-c"}:
                faults.append(f"{where}: a config is -c/--config")
            if option.is_flag and option.default is False and option.secondary_opts:
                faults.append(f"{where}: an off-by-default flag has no --no- twin")
            if long == "--scheduler" and not (option.help or "").startswith(SCHEDULER_HELP):
                faults.append(f"{where}: one set of --scheduler values")
            if long in ("--weights", "--set") and not option.multiple:
                faults.append(f"{where}: repeatable (and for weights, comma lists)")
        longs = {long_name(o) for o in visible_options(command)}
        if "--out" in longs and "--overwrite" not in longs and tuple(path.split()) not in RESUMING:
            faults.append(
                f"kelpseg {path}: writes --out but has no --overwrite and does not resume"
            )
        if path in JSON_COMMANDS and "--json" not in longs:
            faults.append(f"kelpseg {path}: prints a summary table but has no --json")
    return faults


def test_the_walk_reaches_every_command(tree: list[tuple[str, Any]]) -> None:
    paths = {path for path, _ in tree}
    assert {"predict", "models add", "tabular stack", "labels oof", "bench", "eda stats"} <= paths
    assert len(paths) >= 35


def test_every_command_uses_the_shared_names(tree: list[tuple[str, Any]]) -> None:
    assert _faults(tree) == []


def test_the_walk_would_catch_an_old_spelling(tree: list[tuple[str, Any]]) -> None:
    class Old:
        opts = ["--output"]
        secondary_opts: list[str] = []
        hidden = False
        param_type_name = "option"
        is_flag = False
        default = None
        help = ""
        multiple = False

    class Command:
        params = [Old()]

    assert _faults([("fake", Command())]) == ["kelpseg fake --output: an output is -o/--out"]


def test_help_at_80_columns_keeps_every_option_name_whole(
    tree: list[tuple[str, Any]], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    cut: list[str] = []
    for path, command in tree:
        assert main([*path.split(), "--help"]) == 0
        text = capsys.readouterr().out
        assert "<bool>" not in text, path
        for option in visible_options(command):
            for name in _names(option):
                if name.startswith("--") and not re.search(rf"{re.escape(name)}(?![\w…-])", text):
                    cut.append(f"{path} {name}")
    assert cut == []


def test_root_help_groups_commands_in_panels_and_offers_completion(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["--help"]) == 0
    text = capsys.readouterr().out
    for panel in ("Data", "Training", "Prediction", "Models", "Quality", "Tools"):
        assert re.search(rf"─ {panel} ─", text), panel
    assert "--install-completion" in text and "--show-completion" in text
    # In a fresh interpreter: typer reads the shell and program name at start-up.
    shown = subprocess.run(
        [sys.executable, "-m", "kelpseg.cli.app", "--show-completion", "bash"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert shown.returncode == 0, shown.stderr
    assert "_KELPSEG_COMPLETE=complete_bash" in shown.stdout


def test_deprecated_spellings_are_rewritten_with_one_warning_line(
    capsys: pytest.CaptureFixture[str],
) -> None:
    groups = {"models": {"add"}, "tabular": {"stack"}}
    for path, renames in DEPRECATED.items():
        for old, new in renames.items():
            args = [*path, "X", f"{old}=1" if new else old]
            expected = [*path, "X", *([f"{new[0]}=1"] if new else [])]
            assert rewrite_deprecated(args, groups) == expected
            err = capsys.readouterr().err.strip()
            assert err.count("\n") == 0 and "deprecated" in err and old in err
    assert rewrite_deprecated(["predict", "--force"], groups) == ["predict", "--force"]


def test_docs_table_is_current() -> None:
    assert table_in(DOCS.read_text()) == options_table(), (
        "docs/cli.md is out of date: paste `python -m kelpseg.cli.reference` between its markers"
    )
