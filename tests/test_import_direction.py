"""Imports go one way: the orchestrator may import the voice, face and affect packages; those
import none of the others (the fast loop and the face know nothing of the brain). The one
exception is the neutral ground, ``track2_voice.common`` (the web layer, the settings base, the
error root): every package may import it, and it imports nothing of the project outside itself. Read from
the source with ``ast``, so a lazy import inside a function counts too."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("track2_voice", "orchestrator", "face", "affect")
NEUTRAL = "track2_voice.common"
ALLOWED = {
    "track2_voice": set(),
    "face": set(),
    "affect": set(),
    "orchestrator": {"track2_voice", "face", "affect"},
}


def imported_modules(path: Path) -> set[str]:
    """Every project module ``path`` imports (dotted names), lazy imports included."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
        else:
            continue
        out |= {n for n in names if n.split(".")[0] in PACKAGES}
    return out


def is_neutral(module: str) -> bool:
    return module == NEUTRAL or module.startswith(NEUTRAL + ".")


def imported_packages(path: Path) -> set[str]:
    """The top-level packages ``path`` imports, the neutral ground left out."""
    return {m.split(".")[0] for m in imported_modules(path) if not is_neutral(m)}


@pytest.mark.parametrize("package", PACKAGES)
def test_a_package_imports_only_what_the_design_allows(package: str) -> None:
    wrong = {}
    for path in sorted((ROOT / package).rglob("*.py")):
        bad = imported_packages(path) - ALLOWED[package] - {package}
        if bad:
            wrong[str(path.relative_to(ROOT))] = sorted(bad)
    assert not wrong, f"imports against the design's direction: {wrong}"


def test_the_neutral_ground_imports_nothing_of_the_project_outside_itself() -> None:
    root = ROOT / NEUTRAL.replace(".", "/")
    wrong = {}
    for path in sorted(root.rglob("*.py")):
        bad = {m for m in imported_modules(path) if not is_neutral(m)}
        if bad:
            wrong[str(path.relative_to(ROOT))] = sorted(bad)
    assert not wrong, f"the neutral ground imports the project: {wrong}"


def test_the_checker_sees_a_wrong_import(tmp_path: Path) -> None:
    f = tmp_path / "m.py"
    f.write_text("def f():\n    from orchestrator.bus import Bus\n")
    assert imported_packages(f) == {"orchestrator"}


def test_the_checker_lets_anyone_use_the_neutral_ground(tmp_path: Path) -> None:
    f = tmp_path / "m.py"
    f.write_text("from track2_voice.common.web import CloseCode\nimport track2_voice.loop\n")
    assert imported_packages(f) == {"track2_voice"}
    f.write_text("from track2_voice.common.web import CloseCode\n")
    assert imported_packages(f) == set()
