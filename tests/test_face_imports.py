"""face/ and affect/ import no other project package (the orchestrator wires them together)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PROJECT = {"orchestrator", "track2_voice", "face", "affect"}


@pytest.mark.parametrize("package", ["face", "affect"])
def test_package_imports_only_itself(package: str) -> None:
    for path in (ROOT / package).rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            for name in names:
                top = name.split(".")[0]
                assert top not in PROJECT - {package}, f"{path}: imports {name}"
