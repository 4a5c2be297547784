"""The import graph: layers as design.md draws them (import-linter contracts in pyproject.toml),
and no modules that import each other in a circle."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_import_linter_contracts_hold():
    # In a process of its own: import-linter puts the working folder on sys.path.
    code = "import sys; from importlinter.cli import lint_imports; sys.exit(lint_imports(config_filename='pyproject.toml', no_cache=True, no_logo=True))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr


def test_every_top_level_module_has_a_layer():
    """A new module or package must be placed in the layers contract, so the graph stays checked."""
    import re
    import tomllib

    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    (layers,) = [c["layers"] for c in config["contracts"] if c["type"] == "layers"]
    placed = set(re.findall(r"ewmbench\.(\w+)", " ".join(layers)))
    package = ROOT / "ewmbench"
    present = {p.stem for p in package.glob("*.py") if p.stem not in ("__init__", "__main__")}
    present |= {p.name for p in package.iterdir() if (p / "__init__.py").is_file()}
    assert present - placed == set(), "add these to the layers in pyproject.toml"


def import_cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Groups of modules that import each other in a circle (strongly connected components of
    more than one module), each sorted; Tarjan's algorithm, iteratively."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    cycles: list[list[str]] = []
    counter = 0
    for root in sorted(edges):
        if root in index:
            continue
        work = [(root, iter(sorted(edges.get(root, ()))))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(edges.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                group = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    group.append(member)
                    if member == node:
                        break
                if len(group) > 1:
                    cycles.append(sorted(group))
    return cycles


def test_cycle_finder_hand_worked():
    edges = {"a": {"b"}, "b": {"c"}, "c": {"a", "d"}, "d": set(), "e": {"e", "d"}}
    assert import_cycles(edges) == [["a", "b", "c"]]
    assert import_cycles({"x": {"y"}, "y": set()}) == []


def executed_by_import(importer: str, imported: str) -> set[str]:
    """The modules whose code runs when ``importer`` imports ``imported``: the module and every
    package face above it, except the faces above the importer itself (already loaded by then)."""
    parts = imported.split(".")
    faces = {".".join(parts[:i]) for i in range(1, len(parts))}
    importer_parts = importer.split(".")
    loaded = {".".join(importer_parts[:i]) for i in range(1, len(importer_parts) + 1)}
    return {imported} | (faces - loaded)


def test_faces_counted_hand_worked():
    # an outside module importing a submodule runs the package face too
    assert executed_by_import("pkg.api", "pkg.compare.report") == {"pkg.compare", "pkg.compare.report"}
    # a sibling inside the package does not run the face again (it is already loading)
    assert executed_by_import("pkg.metrics.fidelity", "pkg.metrics.base") == {"pkg.metrics.base"}
    # a member importing its own package face is an edge to that face
    assert executed_by_import("pkg.metrics.base", "pkg.metrics") == {"pkg.metrics"}
    # a face importing its own member
    assert executed_by_import("pkg.metrics", "pkg.metrics.base") == {"pkg.metrics.base"}
    # with these edges, a member that imports its own face to register is a circle
    edges = {"pkg.metrics": {"pkg.metrics.base"}, "pkg.metrics.base": {"pkg.metrics"}}
    assert import_cycles(edges) == [["pkg.metrics", "pkg.metrics.base"]]
    # and so is a callable package forwarding up to a module that imports one of its members
    edges = {
        "pkg.compare": {"pkg.api"},
        "pkg.api": executed_by_import("pkg.api", "pkg.compare.report"),
        "pkg.compare.report": set(),
    }
    assert import_cycles(edges) == [["pkg.api", "pkg.compare"]]


def test_no_modules_import_each_other_in_a_circle():
    """Counting package faces and parent/child edges: importing ``a.b.c`` runs ``a.b``'s face, so
    a face that imports up to its importer closes a circle as surely as two plain modules do."""
    import grimp

    graph = grimp.build_graph("ewmbench", cache_dir=None)
    edges: dict[str, set[str]] = {}
    for module in graph.modules:
        edges[module] = set()
        for imported in graph.find_modules_directly_imported_by(module):
            edges[module] |= executed_by_import(module, imported)
    assert import_cycles(edges) == []
