"""Model files from a Hugging Face repo id or a local directory with the same layout.

Both paths go through ``ModelRepo.file``; downloads show huggingface_hub's progress bars and
land in its cache, so the second start is offline. Errors say which file is missing where.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from track2_voice.backends.base import BackendError

log = logging.getLogger(__name__)


def looks_like_a_path(repo: str) -> bool:
    """A mistyped directory must read "no such directory", not Hugging Face's message about
    repo ids: anything starting like a path, with other than one '/', or whose first part is a
    local directory (``ckpts/tiny`` next to ``ckpts/``) is taken for a path."""
    if repo.startswith((".", "/", "~")) or repo.count("/") != 1 or "\\" in repo:
        return True
    return Path(repo.split("/", 1)[0]).expanduser().is_dir()


class ModelRepo:
    def __init__(self, repo: str) -> None:
        self.repo = repo
        self.local = Path(repo).expanduser()
        self.is_local = self.local.is_dir()
        if not self.is_local and looks_like_a_path(repo):
            what = "not a directory" if self.local.exists() else "no such directory"
            raise BackendError(
                f"{repo}: {what} (a Hugging Face repo id looks like kyutai/moshiko-mlx-q4)"
            )

    def listing(self) -> list[str]:
        if self.is_local:
            return sorted(p.name for p in self.local.iterdir())
        try:
            from huggingface_hub import list_repo_files

            return sorted(list_repo_files(self.repo))
        except Exception:
            return []

    def has(self, name: str) -> bool:
        if self.is_local:
            return (self.local / name).exists()
        return name in self.listing()

    def file(self, name: str, what: str = "file") -> Path:
        if name.startswith("hf://"):
            parts = name[5:].split("/")
            return ModelRepo("/".join(parts[:2])).file("/".join(parts[2:]), what)
        if self.is_local:
            path = self.local / name
            if not path.exists():
                present = ", ".join(self.listing()) or "nothing"
                raise BackendError(
                    f"{self.local}: missing {what} {name} (the directory holds: {present})"
                )
            return path
        from huggingface_hub import hf_hub_download

        log.info("fetching %s from %s (cached after the first time)", name, self.repo)
        try:
            return Path(hf_hub_download(self.repo, name))
        except Exception as e:
            kind = type(e).__name__
            raise BackendError(f"{self.repo}: cannot get {what} {name} ({kind}: {e})") from e

    def config(self) -> dict[str, Any] | None:
        """``config.json`` if the repo has one (newer Kyutai repos do), else None."""
        if self.is_local:
            path = self.local / "config.json"
            if not path.exists():
                return None
        else:
            try:
                from huggingface_hub import hf_hub_download

                path = Path(hf_hub_download(self.repo, "config.json"))
            except Exception as e:
                if type(e).__name__ in ("EntryNotFoundError", "RemoteEntryNotFoundError"):
                    return None
                raise BackendError(
                    f"{self.repo}: cannot get config.json ({type(e).__name__}: {e})"
                ) from e
        try:
            return json.loads(path.read_text())
        except json.JSONDecodeError as e:
            raise BackendError(f"{path}: not valid JSON ({e})") from e
