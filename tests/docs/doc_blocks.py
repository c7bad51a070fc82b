"""Shell blocks of the Markdown docs, with the ``docs-test`` markers that steer the docs test.

Every fenced block whose language is ``bash``, ``sh``, ``shell`` or ``console`` is a documented
command and runs in ``test_documented_commands.py``. HTML comments on the lines right above a
block (invisible when rendered, visible in the source) change that, one marker per line:

``<!-- docs-test: skip CATEGORY: reason -->``
    The block is not run. CATEGORY is one of :data:`SKIP_CATEGORIES`; nothing else may skip.
``<!-- docs-test: setup: COMMAND -->``
    COMMAND runs (in the same folder) before the block: data an earlier document prepared.

A marker with another kind, a skip without a known category, or a marker that no shell block
follows is an error, so a typo cannot quietly drop a block from the test.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

SHELL_LANGUAGES = frozenset({"bash", "sh", "shell", "console"})
SKIP_CATEGORIES: dict[str, str] = {
    "gpu": "needs one or more CUDA GPUs",
    "network": "needs the internet, other machines or a server (database, scheduler, Slurm)",
    "long": "runs for tens of minutes or hours on a CPU",
    "ci": "a make target that CI or the release check runs itself",
}

_FENCE = re.compile(r"^(?P<indent> {0,3})(?P<fence>`{3,}|~{3,})\s*(?P<info>[^`\s]*)")
_MARKER = re.compile(r"^\s*<!--\s*docs-test:(?P<body>.*?)-->\s*$")
_ANY_MARKER = re.compile(r"docs-test\s*:")
_SKIP = re.compile(r"^skip\s+(?P<category>[a-z]+)\s*:\s*(?P<reason>\S.*)$")
_SETUP = re.compile(r"^setup\s*:\s*(?P<command>\S.*)$")


class DocMarkerError(ValueError):
    """A ``docs-test`` marker that cannot be read, or that no shell block follows."""


@dataclass(frozen=True)
class SetupCommand:
    """A ``docs-test: setup`` command and the line of its marker."""

    line: int
    command: str


@dataclass(frozen=True)
class ShellBlock:
    """One fenced shell block of a document.

    Attributes:
        doc: the Markdown file.
        line: 1-based line number of the block's first command (the line after the fence).
        language: the fence's info string (``bash``, ``sh``, ...).
        text: the block's commands, prompts removed for ``console`` blocks.
        skip_category: the ``skip`` marker's category, or ``None`` if the block runs.
        skip_reason: the ``skip`` marker's reason.
        setup: ``setup`` commands to run before the block, in order.
    """

    doc: Path
    line: int
    language: str
    text: str
    skip_category: str | None = None
    skip_reason: str = ""
    setup: tuple[SetupCommand, ...] = field(default_factory=tuple)

    @property
    def where(self) -> str:
        """``doc:line`` for messages."""
        return f"{self.doc.name}:{self.line}"


def _console_commands(lines: list[str]) -> list[str]:
    """Keep the commands of a ``console`` block (``$ `` lines and their continuations)."""
    kept: list[str] = []
    continuing = False
    for line in lines:
        if line.startswith("$ "):
            kept.append(line[2:])
        elif continuing:
            kept.append(line)
        else:
            kept.append("")  # program output: keep line numbers aligned
            continue
        continuing = line.rstrip().endswith("\\")
    return kept


def _parse_marker(body: str, where: str) -> tuple[str, str, str]:
    """``(kind, category_or_empty, text)`` of a marker body, or :class:`DocMarkerError`."""
    body = body.strip()
    if match := _SKIP.match(body):
        category = match["category"]
        if category not in SKIP_CATEGORIES:
            known = ", ".join(SKIP_CATEGORIES)
            raise DocMarkerError(f"{where}: unknown skip category {category!r} (known: {known})")
        return "skip", category, match["reason"].strip()
    if match := _SETUP.match(body):
        return "setup", "", match["command"].strip()
    raise DocMarkerError(
        f"{where}: unreadable docs-test marker {body!r}; expected "
        "'skip CATEGORY: reason' or 'setup: command'"
    )


def extract_blocks(doc: Path, text: str | None = None) -> list[ShellBlock]:
    """Every shell block of ``doc`` in document order, with its markers.

    Args:
        doc: the Markdown file (read unless ``text`` is given).
        text: the document's text, for tests.

    Raises:
        DocMarkerError: a marker is unreadable, has an unknown kind or category, two skip
            markers name one block, or no shell block follows a marker.
    """
    lines = (doc.read_text(encoding="utf-8") if text is None else text).splitlines()
    blocks: list[ShellBlock] = []
    pending: list[tuple[int, str, str, str]] = []  # (line, kind, category, text)
    i = 0
    while i < len(lines):
        line = lines[i]
        number = i + 1
        where = f"{doc.name}:{number}"
        marker = _MARKER.match(line)
        if marker:
            pending.append((number, *_parse_marker(marker["body"], where)))
            i += 1
            continue
        if _ANY_MARKER.search(line):
            raise DocMarkerError(f"{where}: a docs-test marker must be a whole-line HTML comment")
        fence = _FENCE.match(line)
        if fence is None:
            if pending and line.strip():
                raise DocMarkerError(f"{doc.name}:{pending[0][0]}: no shell block follows marker")
            i += 1
            continue
        # Find the closing fence: the same character, at least as long.
        opener = fence["fence"]
        end = i + 1
        while end < len(lines):
            closing = lines[end].strip()
            if closing.startswith(opener[0] * len(opener)) and not closing.strip(opener[0]):
                break
            end += 1
        language = fence["info"].lower()
        body = lines[i + 1 : end]
        if language in SHELL_LANGUAGES:
            blocks.append(_block(doc, number + 1, language, body, pending))
        elif pending:
            raise DocMarkerError(
                f"{doc.name}:{pending[0][0]}: marker precedes a {language or 'plain'} block, "
                "not a shell block"
            )
        pending = []
        i = end + 1
    if pending:
        raise DocMarkerError(f"{doc.name}:{pending[0][0]}: no shell block follows marker")
    return blocks


def _block(
    doc: Path, line: int, language: str, body: list[str], markers: list[tuple[int, str, str, str]]
) -> ShellBlock:
    skips = [m for m in markers if m[1] == "skip"]
    if len(skips) > 1:
        raise DocMarkerError(f"{doc.name}:{skips[1][0]}: a second skip marker for one block")
    if skips and len(skips) != len(markers):
        raise DocMarkerError(f"{doc.name}:{markers[0][0]}: a skipped block needs no setup")
    commands = _console_commands(body) if language == "console" else body
    return ShellBlock(
        doc=doc,
        line=line,
        language=language,
        text="\n".join(commands) + "\n",
        skip_category=skips[0][2] if skips else None,
        skip_reason=skips[0][3] if skips else "",
        setup=tuple(SetupCommand(m[0], m[3]) for m in markers if m[1] == "setup"),
    )
