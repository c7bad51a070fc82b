"""The stages stand in order: no import runs back up, and docs/architecture.md shows the code."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "scripts" / "import_graph.py"
BEGIN, END = "<!-- import-graph:begin (scripts/import_graph.py) -->", "<!-- import-graph:end -->"


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True)


def test_no_import_runs_back_up() -> None:
    done = _run("--check")
    assert done.returncode == 0, f"imports that run back up:\n{done.stdout}"
    assert done.stdout.startswith("no import runs back up")


def test_the_check_names_an_upward_import(tmp_path: Path) -> None:
    """The check can fail: a copy of the script over a package where io imports nn."""
    package = tmp_path / "src" / "kelpseg"
    for stage in ("io", "nn"):
        (package / stage).mkdir(parents=True)
    (package / "io" / "tiles.py").write_text("def f():\n    from kelpseg.nn import module\n")
    (package / "nn" / "module.py").write_text("from kelpseg.io.tiles import f\n")
    (tmp_path / "scripts").mkdir()
    copy = tmp_path / "scripts" / "import_graph.py"
    copy.write_text(SCRIPT.read_text())
    done = subprocess.run([sys.executable, str(copy), "--check"], capture_output=True, text=True)
    assert done.returncode == 1
    assert "kelpseg/io/tiles.py:2: io (floor 1) imports nn (floor 4)" in done.stdout


def test_the_architecture_picture_is_current() -> None:
    text = (REPO / "docs" / "architecture.md").read_text()
    shown = text.split(BEGIN, 1)[1].split(END, 1)[0].strip()
    generated = _run().stdout.strip()
    assert shown == f"```mermaid\n{generated}\n```", (
        "docs/architecture.md is out of date: paste the output of "
        "`.venv/bin/python scripts/import_graph.py` between its import-graph markers"
    )
