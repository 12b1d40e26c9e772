"""One error root: every exception the project defines derives from ``CreatureError``; the CLI
reports any ``UserError`` as one line with exit 2 (no hand-kept list of classes), and lets a bug
keep its traceback."""

from __future__ import annotations

import argparse
import ast
import builtins
import importlib
import pkgutil
from pathlib import Path

import pytest

from affect.visemes import VisemeError
from face.phone.tls import TLSError
from orchestrator.analysis.record_file import RecordReadError
from orchestrator.brain.calls import StatusError, StatusErrorCode
from orchestrator.brain.outbox import OutboxError
from orchestrator.cli.optional_stacks import STACKS
from track2_voice.audio.scene import SceneError
from track2_voice.backends.moshi_protocol import ConnectError
from track2_voice.common.errors import ConfigError, CreatureError, UserError

# the module, not the function ``orchestrator.cli.main`` that the package re-exports
cli_main = importlib.import_module("orchestrator.cli.main")
ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("track2_voice", "orchestrator", "face", "affect")
# the body programs run in environments of their own and import nothing of the creature
# (tests/test_reachy_mini_body.py), so their errors keep builtin bases
BODIES = "orchestrator.bodies"
BODIES_DIR = ROOT / "orchestrator" / "bodies"
BUILTIN_EXCEPTIONS = {
    name
    for name, obj in vars(builtins).items()
    if isinstance(obj, type) and issubclass(obj, BaseException)
}


def project_modules():
    """Every module of the four packages that imports here; a module that needs an optional
    stack this environment lacks (Ray, the Reachy Mini SDK) is left to the source check below."""
    for pkg in PACKAGES:
        for info in pkgutil.walk_packages(importlib.import_module(pkg).__path__, pkg + "."):
            if info.name.endswith("__main__") or info.name.startswith(BODIES + "."):
                continue
            try:
                yield importlib.import_module(info.name)
            except ModuleNotFoundError as e:
                if (e.name or "").split(".")[0] not in {*STACKS, "reachy_mini", "gguf"}:
                    raise


def defined_in_project(base: type) -> set[type]:
    """The subclasses of ``base`` that the project's modules define."""
    return {
        obj
        for module in project_modules()
        for obj in vars(module).values()
        if isinstance(obj, type) and issubclass(obj, base) and obj.__module__ == module.__name__
    }


def test_every_exception_the_project_defines_derives_from_the_root():
    defined = defined_in_project(BaseException)
    assert len(defined) > 30  # the walk found them (39 classes when the root was introduced)
    stray = sorted(
        f"{c.__module__}.{c.__qualname__}" for c in defined if not issubclass(c, CreatureError)
    )
    assert not stray, f"exceptions outside the root: {stray}"


def test_no_exception_class_in_the_source_hangs_off_a_builtin_alone():
    """Read from the source, so modules that need an optional stack are checked too."""
    stray = []
    for pkg in PACKAGES:
        for path in sorted((ROOT / pkg).rglob("*.py")):
            if path.is_relative_to(BODIES_DIR):
                continue
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if not isinstance(node, ast.ClassDef) or not node.bases:
                    continue
                names = [ast.unparse(b).split(".")[-1] for b in node.bases]
                if all(n in BUILTIN_EXCEPTIONS for n in names) and node.name != "CreatureError":
                    stray.append(f"{path.relative_to(ROOT)}:{node.name}")
    assert not stray, f"exceptions outside the root: {stray}"


def _main_raising(monkeypatch, exc: BaseException) -> int:
    """Run ``creature config`` with its command replaced by one that raises ``exc``."""
    real = cli_main.build_parser

    def build() -> argparse.ArgumentParser:
        parser = real()
        sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))

        def fail(args: argparse.Namespace) -> int:
            raise exc

        sub.choices["config"].set_defaults(func=fail)
        return parser

    monkeypatch.setattr(cli_main, "build_parser", build)
    return cli_main.main(["config"])


class ATypoInAFlag(UserError):
    """A user error no list has ever heard of."""


@pytest.mark.parametrize(
    "exc",
    [
        ATypoInAFlag("--frobnicate 3: expected a colour"),
        SceneError("scene 'x': no such scene"),
        ConnectError("cannot reach ws://gpu:8998/api/chat: connection refused"),
        TLSError("face.ssl_certfile: cannot read it"),
        OutboxError("slow_loop.outbox.path: not a database"),
        RecordReadError("run.jsonl: line 3: not JSON"),
        FileNotFoundError(2, "No such file or directory", "missing.wav"),
    ],
    ids=lambda e: type(e).__name__,
)
def test_a_user_error_raised_anywhere_is_one_line_and_exit_2(monkeypatch, capsys, exc):
    assert _main_raising(monkeypatch, exc) == 2
    err = capsys.readouterr().err
    assert err.splitlines() == [f"creature: error: {exc}"], err


@pytest.mark.parametrize(
    "exc",
    [
        ConfigError("my.yaml: voice.backend: unknown backend"),
        VisemeError("visemes.yaml: shapes.a.width: expected 0.2..1.6"),
    ],
    ids=lambda e: type(e).__name__,
)
def test_a_configuration_error_is_one_line_naming_where_it_came_from(monkeypatch, capsys, exc):
    assert _main_raising(monkeypatch, exc) == 2
    assert capsys.readouterr().err.splitlines() == [f"creature: {exc}"]


@pytest.mark.parametrize(
    "exc",
    [
        CreatureError("an invariant broke"),
        StatusError(StatusErrorCode.ILLEGAL_TRANSITION, "no such transition"),
        KeyError("x"),
    ],
    ids=lambda e: type(e).__name__,
)
def test_a_bug_keeps_its_traceback(monkeypatch, exc):
    with pytest.raises(type(exc)):
        _main_raising(monkeypatch, exc)
