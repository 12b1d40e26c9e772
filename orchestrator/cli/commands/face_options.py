"""The face's flags, shared by the commands that show a face (serve, demo, replay), and how a
command tells the person what a started service says (its URL, what to do next)."""

from __future__ import annotations

import argparse


def add_face_options(p: argparse.ArgumentParser, skip_flag: bool = True) -> None:
    if skip_flag:
        p.add_argument("--no-face", action="store_true", help="do not start the face server")
    p.add_argument("--face-host", metavar="HOST", help="face server interface (face.host)")
    p.add_argument("--face-port", type=int, metavar="PORT", help="face server port (face.port)")


def face_overrides(args: argparse.Namespace) -> dict:
    out: dict = {}
    if getattr(args, "face_host", None):
        out["face.host"] = args.face_host
    if getattr(args, "face_port", None) is not None:
        out["face.port"] = args.face_port
    if getattr(args, "no_face", False):
        out["face.enabled"] = False
    return out


def tell(notices: list[str]) -> None:
    """Print what a started service says the person should know (its URL, what to do next)."""
    for line in notices:
        print(line, flush=True)
