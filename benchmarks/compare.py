"""Compare two benchmark results files; exit code 1 when a figure dropped beyond the tolerance.

    .venv/bin/python benchmarks/compare.py OLD.json NEW.json [--tolerance 0.15] [--metric ratio]

The same as ``kelpseg bench compare`` (:mod:`kelpseg.bench.compare`, the one implementation).
"""

from __future__ import annotations

import sys

from kelpseg.cli.app import main

if __name__ == "__main__":
    sys.exit(main(["bench", "compare", *sys.argv[1:]]))
