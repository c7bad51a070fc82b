"""Commands imported when they run: help without imports, one line for a missing extra."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from kelpseg.cli.lazy import LazyCommands, load_command, missing_extra
from kelpseg.errors import MissingExtraError


def test_help_lists_every_command_without_importing_any() -> None:
    code = (
        "import json, sys\n"
        "from kelpseg.cli.app import commands, main\n"
        "assert main(['--help']) == 0\n"
        'names = [f\'kelpseg.cli.{t.target.split(":")[0].rsplit(".", 1)[1]}\''
        " for t in commands.specs.values()]\n"
        "print(json.dumps([m for m in [*names, 'torch', 'dask'] if m in sys.modules]))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "predict-scene" in done.stdout and "tabular" in done.stdout
    assert json.loads(done.stdout.strip().splitlines()[-1]) == []


def test_a_missing_optional_module_names_its_extra() -> None:
    absent = ImportError("no module", name="xgboost")
    # Only when the module is really absent: here xgboost is installed, so it is a real fault.
    assert missing_extra(absent) is None
    blocked = ModuleNotFoundError("blocked", name="catboost.core")
    with pytest.MonkeyPatch.context() as mp:
        mp.setitem(sys.modules, "catboost", None)
        assert missing_extra(blocked) == "tabular"
        assert missing_extra(blocked, wanted="all") == "all"
    assert missing_extra(ImportError("x", name="kelpseg.nope")) is None


def test_a_command_whose_module_needs_a_missing_extra_fails_in_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from kelpseg.cli import app as app_module

    monkeypatch.setitem(sys.modules, "lightgbm", None)  # as if not installed
    commands = LazyCommands()
    commands.add("boost", "lightgbm:train", "A command of the tabular extra.", "tabular")
    with pytest.raises(MissingExtraError, match=r"pip install 'kelpseg\[tabular\]'"):
        load_command(commands.specs["boost"])
    monkeypatch.setattr(app_module, "commands", commands)
    monkeypatch.setattr(app_module.app.info, "cls", commands.group_class())
    assert app_module.main(["boost", "--anything"]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert err == (
        "error: this needs the 'tabular' extra (missing module 'lightgbm'): "
        "pip install 'kelpseg[tabular]'"
    )
