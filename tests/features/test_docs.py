from __future__ import annotations

import runpy
from pathlib import Path

from kelpseg.features import INDICES

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "index_table.py"


def test_docs_index_table_is_in_sync_with_the_registry() -> None:
    module = runpy.run_path(str(SCRIPT))
    table = module["index_table"]()
    assert all(f"| {name} |" in table for name in INDICES)
    assert module["main"](["--check"]) == 0, "run: python scripts/index_table.py"
