"""kelpseg's stages and the imports between them, read from the source (docs/architecture.md).

Run: ``.venv/bin/python scripts/import_graph.py`` prints the Mermaid picture that
docs/architecture.md shows; ``--check`` exits 1, naming each import, when a module imports a stage
at its own floor or above (an import that runs back up). ``tests/test_architecture.py`` runs both.

Every ``import kelpseg.X`` and ``from kelpseg.X import`` counts, also inside functions and
``TYPE_CHECKING`` blocks: a lazy import is still a dependency.
"""

from __future__ import annotations

import argparse
import ast
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "kelpseg"

#: The stages from the bottom up: a stage may import only the floors below its own.
FLOORS: list[tuple[str, ...]] = [
    ("__init__", "errors", "console"),
    ("io", "metrics"),
    ("config",),
    ("features", "synth", "split", "portable"),
    ("nn", "scenes"),
    ("inference", "tune"),
    ("evaluation", "export", "bench", "ablate"),
    ("quality",),
    ("eda",),
    ("tabular",),
    ("cli",),
    ("__main__",),
]
FLOOR = {stage: level for level, stages in enumerate(FLOORS) for stage in stages}


def stage_of(path: Path) -> str:
    """The stage of a module file: its top folder under kelpseg/, or the root module's name."""
    rel = path.relative_to(PACKAGE)
    return rel.parts[0] if len(rel.parts) > 1 else rel.stem


def imports(path: Path) -> list[tuple[int, str]]:
    """``(line, stage)`` of every kelpseg stage the module imports."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        else:
            continue
        for name in names:
            parts = name.split(".")
            if parts[0] == "kelpseg" and len(parts) > 1:
                found.append((node.lineno, parts[1]))
    return found


def stage_graph() -> dict[str, set[str]]:
    """Stage -> the other stages it imports."""
    graph: dict[str, set[str]] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        source = stage_of(path)
        graph.setdefault(source, set())
        graph[source] |= {stage for _, stage in imports(path) if stage != source}
    return graph


def upward_imports() -> list[str]:
    """Every import of a stage at the importer's floor or above, as ``file:line: a -> b``."""
    faults = []
    for path in sorted(PACKAGE.rglob("*.py")):
        source = stage_of(path)
        for line, stage in imports(path):
            if stage == source:
                continue
            if source not in FLOOR or stage not in FLOOR:
                unknown = source if source not in FLOOR else stage
                faults.append(f"{path.relative_to(PACKAGE.parent)}:{line}: {unknown} has no floor")
            elif FLOOR[stage] >= FLOOR[source]:
                where = f"{path.relative_to(PACKAGE.parent)}:{line}"
                faults.append(f"{where}: {source} (floor {FLOOR[source]}) imports {stage} "
                              f"(floor {FLOOR[stage]})")  # fmt: skip
    return faults


def mermaid() -> str:
    """The stage graph as a Mermaid flowchart, floors from the top down (no edges implied by
    others are dropped: every stage import is drawn)."""
    graph = stage_graph()
    lines = ["flowchart TB"]
    for level in reversed(range(len(FLOORS))):
        if any(s in graph for s in FLOORS[level]):
            lines.append(f"  subgraph floor{level}[floor {level}]")
            lines.extend(f"    {s}" for s in FLOORS[level] if s in graph)
            lines.append("  end")
    for source in sorted(graph, key=lambda s: (-FLOOR.get(s, 99), s)):
        for target in sorted(graph[source], key=lambda s: (-FLOOR.get(s, 99), s)):
            lines.append(f"  {source} --> {target}")
    return "\n".join(lines)


def main() -> None:
    """Print the picture, or with ``--check`` the imports that run back up (exit 1 if any)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="list imports that run back up")
    args = parser.parse_args()
    if not args.check:
        print(mermaid())
        return
    faults = upward_imports()
    print("\n".join(faults) or f"no import runs back up ({len(FLOORS)} floors)")
    sys.exit(1 if faults else 0)


if __name__ == "__main__":
    main()
