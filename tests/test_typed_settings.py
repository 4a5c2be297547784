"""Typed settings flow down: perception receives its settings and never loads a protocol."""

from __future__ import annotations

import ast
from pathlib import Path

import ewmbench

PACKAGE = Path(ewmbench.__file__).parent
# What turns a protocol name or file into settings: only callers above perception use these.
LOADERS = {"load_protocol", "resolve_protocol", "metric_settings", "DEFAULT_PROTOCOL"}


def _protocol_loaders_imported(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("ewmbench.protocols"):
            found += [f"{path.name}:{node.lineno} {a.name}" for a in node.names if a.name in LOADERS]
    return found


def test_the_check_sees_a_protocol_loader(tmp_path):
    module = tmp_path / "m.py"
    module.write_text("def f():\n    from ewmbench.protocols import Protocol, resolve_protocol\n")
    assert _protocol_loaders_imported(module) == ["m.py:2 resolve_protocol"]


def test_perception_never_loads_a_protocol():
    found = [
        hit
        for path in sorted((PACKAGE / "perception").rglob("*.py"))
        for hit in _protocol_loaders_imported(path)
    ]
    assert found == []
