"""The dev tools (tiny checkpoints, timing harnesses) are for building and measuring the
creature, not part of it: product code never imports ``track2_voice.devtools``, so shipping or
changing a dev tool cannot change what the creature does. The CLI is their front door and may
import them; the dev tools may import each other. Read with ``ast``, lazy imports included."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("track2_voice", "orchestrator", "face", "affect")
DEVTOOLS = "track2_voice.devtools"
MAY_IMPORT = (ROOT / "track2_voice" / "devtools", ROOT / "orchestrator" / "cli")


def imports_devtools(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        else:
            continue
        found += [n for n in names if n == DEVTOOLS or n.startswith(DEVTOOLS + ".")]
    return sorted(set(found))


def test_no_product_module_imports_the_dev_tools() -> None:
    wrong = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            if any(path.is_relative_to(d) for d in MAY_IMPORT):
                continue
            if found := imports_devtools(path):
                wrong[str(path.relative_to(ROOT))] = found
    assert not wrong, f"product code imports the dev tools: {wrong}"


def test_the_checker_sees_a_lazy_import_of_the_dev_tools(tmp_path: Path) -> None:
    f = tmp_path / "m.py"
    f.write_text("def f():\n    from track2_voice.devtools.tiny_common import TINY_MIMI\n")
    assert "track2_voice.devtools.tiny_common" in imports_devtools(f)
    f.write_text("from track2_voice import devtools\n")
    assert imports_devtools(f) == ["track2_voice.devtools"]
    f.write_text("from track2_voice.backends.tiny_mimi import TINY_MIMI\n")
    assert imports_devtools(f) == []
