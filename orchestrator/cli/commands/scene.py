"""``creature scene``: build a replay scene's audio offline, or show its timeline."""

from __future__ import annotations

import argparse

from track2_voice.audio.scene import build_scene, load_scene


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("scene", help="build or inspect replay scenes")
    ssub = p.add_subparsers(dest="scene_cmd", required=True, metavar="ACTION")
    b = ssub.add_parser("build", help="synthesize every line's audio with espeak-ng")
    b.add_argument("scene", help="scene name or path to scene.yaml / its directory")
    b.set_defaults(func=_build)
    s = ssub.add_parser("show", help="print lines and text pieces with their frame numbers")
    s.add_argument("scene", help="scene name or path")
    s.set_defaults(func=_show)


def _build(args: argparse.Namespace) -> int:
    for path in build_scene(args.scene):
        print(f"wrote {path}")
    return 0


def _show(args: argparse.Namespace) -> int:
    scene = load_scene(args.scene)
    for i, line in enumerate(scene.lines):
        spec = line.spec
        start = (
            f"after user (timeout {spec.timeout_s}s)"
            if spec.after_user
            else f"after {spec.after_s}s"
        )
        print(f"line {i}: {len(line.frames)} frames, starts {start}: {spec.text}")
        for k in sorted(line.pieces):
            print(f"  frame {k:4d}: {line.pieces[k]!r}")
    return 0
