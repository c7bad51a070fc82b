"""Every shell block of README.md and docs/*.md runs, in order, as a reader would type it.

One test per document: its blocks run one after another in one fresh folder, with
``bash -euo pipefail``, this environment's ``kelpseg`` first on PATH, and the repository's
``configs/``, ``benchmarks/`` and ``scripts/`` beside them (the docs cite them relative to the
repository root). Blocks that need a GPU, the internet or hours carry a ``docs-test: skip``
marker with the reason, right above the block in the Markdown (see ``doc_blocks``).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.docs.doc_blocks import ShellBlock, extract_blocks

REPO = Path(__file__).resolve().parents[2]
DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
LINKED = ("configs", "benchmarks", "scripts")
BLOCK_TIMEOUT_S = 1800
# Limits against hangs only: a document trains small models, and on a 2-core machine loaded by
# other jobs (load 10-20) one block took over 15 minutes.
DOC_TIMEOUT_S = 2700
TAIL_LINES = 25
# The ERR trap names the failing command and its line in the script (line 1 is this trap).
_TRAP = "trap 'echo \"docs-test: line $LINENO: $BASH_COMMAND\" >&2' ERR\n"


def _documents_to_run() -> list[Path]:
    """Documents with at least one shell block that is not skipped."""
    return [doc for doc in DOCS if any(b.skip_category is None for b in extract_blocks(doc))]


def _environment(home: Path) -> dict[str, str]:
    env = dict(os.environ)
    bin_dir = str(Path(sys.executable).parent)
    env["PATH"] = os.pathsep.join([bin_dir, env.get("PATH", "")])
    env["HOME"] = str(home)  # the model registry (~/.cache/kelpseg) stays in the temp folder
    env["MPLBACKEND"] = "Agg"
    env["CUDA_VISIBLE_DEVICES"] = ""
    env["COLUMNS"] = "120"
    return env


def _workspace(tmp_path: Path) -> Path:
    work = tmp_path / "work"
    work.mkdir()
    for name in LINKED:
        (work / name).symlink_to(REPO / name, target_is_directory=True)
    # Docs run benchmarks as `.venv/bin/python benchmarks/...` from the repository root.
    (work / ".venv").symlink_to(Path(sys.prefix), target_is_directory=True)
    (tmp_path / "home").mkdir()
    return work


def _tail(text: str) -> str:
    lines = text.rstrip().splitlines()[-TAIL_LINES:]
    return "\n".join(f"    | {line}" for line in lines)


def _run(script: str, work: Path, env: dict[str, str], where: str, first_line: int) -> None:
    """Run ``script`` with bash; fail naming the document line and command that broke."""
    try:
        done = subprocess.run(
            ["bash", "-Eeuo", "pipefail", "-c", _TRAP + script],
            cwd=work,
            env=env,
            capture_output=True,
            text=True,
            timeout=BLOCK_TIMEOUT_S,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"{where}: still running after {BLOCK_TIMEOUT_S} s:\n{script}\n{exc}")
    if done.returncode == 0:
        return
    line, command = first_line, script.strip().splitlines()[0]
    for trap_line in reversed(done.stderr.splitlines()):
        if trap_line.startswith("docs-test: line "):
            number, _, command = trap_line.removeprefix("docs-test: line ").partition(": ")
            line = first_line + int(number) - 2
            break
    pytest.fail(
        f"{where} failed with exit code {done.returncode}\n"
        f"  line {line}: {command}\n"
        f"  stderr (last {TAIL_LINES} lines):\n{_tail(done.stderr)}\n"
        f"  stdout (last {TAIL_LINES} lines):\n{_tail(done.stdout)}",
        pytrace=False,
    )


def _run_block(block: ShellBlock, work: Path, env: dict[str, str]) -> None:
    for setup in block.setup:
        _run(setup.command, work, env, f"{block.doc.name}:{setup.line} (setup)", setup.line)
    _run(block.text, work, env, f"{block.doc.name}:{block.line}", block.line)


@pytest.mark.slow
@pytest.mark.timeout(DOC_TIMEOUT_S)
@pytest.mark.parametrize("doc", _documents_to_run(), ids=lambda doc: doc.name)
def test_documented_commands_run(doc: Path, tmp_path: Path) -> None:
    """Each shell block of the document runs as printed, in order, in one folder."""
    work = _workspace(tmp_path)
    env = _environment(tmp_path / "home")
    blocks = [block for block in extract_blocks(doc) if block.skip_category is None]
    for block in blocks:
        _run_block(block, work, env)
    assert blocks, f"{doc.name}: every shell block is skipped; nothing of it is tested"


def test_every_document_has_readable_markers() -> None:
    """Markers of every document parse (a typo fails here, fast, not in the slow test)."""
    skipped = [b for doc in DOCS for b in extract_blocks(doc) if b.skip_category is not None]
    for block in skipped:
        assert block.skip_reason, f"{block.where}: a skip marker without a reason"


def test_a_failing_block_names_its_line_command_and_stderr(tmp_path: Path) -> None:
    """The runner's failure names the document line of the command that broke, and its stderr."""
    block = extract_blocks(
        Path("guide.md"),
        "# Guide\n```bash\necho fine\nls no-such-file-here\necho never\n```\n",
    )[0]
    with pytest.raises(pytest.fail.Exception) as failure:
        _run_block(block, tmp_path, _environment(tmp_path))
    message = str(failure.value)
    assert "guide.md:3 failed with exit code 2" in message
    assert "line 4: ls no-such-file-here" in message
    assert "no-such-file-here" in message.split("stderr", 1)[1]
