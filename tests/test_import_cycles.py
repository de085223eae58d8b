"""No import cycles between the project's modules (issue 16: "arrows that run one way").

An AST scan of every ``import`` in ``geo/``, ``layers/``, ``dashboard/``, ``gridpulse/`` and
``data/`` -- at module level, under ``if TYPE_CHECKING:`` and inside functions alike -- gives a
directed graph of modules; :func:`networkx.simple_cycles` must find no cycle in it.
``from pkg import name`` counts as an import of ``pkg.name`` when that is a module, else of
``pkg``; importing a module also runs its packages' ``__init__``, which is not an edge here
(a package re-exporting its children is the one arrow allowed to point down).

Run as a script to print the cycles: ``python tests/test_import_cycles.py``.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import networkx as nx

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("geo", "layers", "dashboard", "gridpulse", "data")


def module_name(path: Path, root: Path = ROOT) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules(root: Path = ROOT) -> dict[str, Path]:
    """Every module of :data:`PACKAGES` under ``root``."""
    out = {}
    for pkg in PACKAGES:
        for path in sorted((root / pkg).rglob("*.py")) if (root / pkg).is_dir() else ():
            out[module_name(path, root)] = path
    return out


def import_graph(mods: dict[str, Path]) -> nx.DiGraph:
    """Module -> module it imports (project modules only)."""
    g = nx.DiGraph()
    g.add_nodes_from(mods)
    for name, path in mods.items():
        is_pkg = path.name == "__init__.py"
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = name.split(".") if is_pkg else name.split(".")[:-1]
                    anchor = anchor[:len(anchor) - (node.level - 1)]
                    base = ".".join([*anchor, base] if base else anchor)
                for a in node.names:
                    full = f"{base}.{a.name}"
                    targets.append(full if full in mods else base)
            for target in targets:
                while target and target not in mods:  # ``import a.b.c`` of a name in a.b
                    target = target.rpartition(".")[0]
                if target and target != name and not (is_pkg and target.startswith(name + ".")):
                    g.add_edge(name, target)
    return g


def cycles(root: Path = ROOT) -> list[list[str]]:
    return sorted(sorted(c) for c in nx.simple_cycles(import_graph(modules(root))))


def test_no_import_cycle() -> None:
    found = cycles()
    assert found == [], "\n".join(" -> ".join(c) for c in found)


def test_the_scan_sees_a_cycle_and_a_type_checking_import(tmp_path: Path) -> None:
    pkg = tmp_path / "layers"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("from layers.a import A\n", encoding="utf-8")
    (pkg / "a.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
                              "    from layers.b import B\nA = 1\n", encoding="utf-8")
    (pkg / "b.py").write_text("def f():\n    from . import a\n", encoding="utf-8")
    (pkg / "c.py").write_text("import layers.a\n", encoding="utf-8")
    assert cycles(tmp_path) == [["layers.a", "layers.b"]]


if __name__ == "__main__":
    g = import_graph(modules())
    found = cycles()
    print(f"{g.number_of_nodes()} modules, {g.number_of_edges()} import edges, {len(found)} cycles")
    for c in found:
        print("  " + " -> ".join(c))
    sys.exit(1 if found else 0)
