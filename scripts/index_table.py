"""Regenerate the index table of docs/features.md from the registry (``--check`` to verify).

.venv/bin/python scripts/index_table.py          # rewrite the table in place
.venv/bin/python scripts/index_table.py --check  # exit 1 if the docs are out of date
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from kelpseg.features import INDICES
from kelpseg.features.bands import BASE_BANDS

DOC = Path(__file__).resolve().parents[1] / "docs" / "features.md"
START, END = "<!-- index-table:start -->", "<!-- index-table:end -->"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def index_table() -> str:
    """The markdown table: one row per base band and registry entry."""
    lines = [
        "| name | formula source | bands used | formula | description |",
        "|---|---|---|---|---|",
    ]
    lines += [f"| {band} | band | {band} | raw tile band | |" for band in BASE_BANDS]
    for entry in INDICES.values():
        constants = ", ".join(f"{k}={v:g}" for k, v in entry.constants.items())
        formula = f"`{entry.formula}`" + (f" ({constants})" if constants else "")
        row = (entry.name, entry.source, " ".join(entry.bands), formula, entry.description)
        lines.append("| " + " | ".join(_cell(c) for c in row) + " |")
    return "\n".join(lines)


def render(doc: str) -> str:
    """``doc`` with the text between the table markers replaced by a fresh table."""
    if START not in doc or END not in doc:
        raise SystemExit(f"{DOC}: table markers {START} / {END} not found")
    head, rest = doc.split(START, 1)
    _, tail = rest.split(END, 1)
    return f"{head}{START}\n{index_table()}\n{END}{tail}"


def main(argv: list[str] | None = None) -> int:
    """Rewrite (or with ``--check`` verify) the table; returns the exit code."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if the table is stale")
    args = parser.parse_args(argv)
    current = DOC.read_text()
    fresh = render(current)
    if args.check:
        if fresh != current:
            print(f"{DOC} is out of date: run python scripts/index_table.py", file=sys.stderr)
            return 1
        return 0
    DOC.write_text(fresh)
    print(f"{DOC}: {len(INDICES)} indices + {len(BASE_BANDS)} bands")
    return 0


if __name__ == "__main__":
    sys.exit(main())
