"""The one base of every settings model in the project (``configs/creature.yaml``, the data
files' models and the model server's options alike), so the strict policy is written once; and
the facts the settings of more than one package need (where ``configs/`` is, the backend
names), here because every package may import this module."""

from __future__ import annotations

from pathlib import Path
from typing import Literal, get_args

from pydantic import BaseModel, ConfigDict

# The shipped settings and data files (``configs/`` at the top of the tree). Written here, the
# one place every package may import; ``orchestrator.data_files`` names the files in it.
CONFIGS_DIR = Path(__file__).resolve().parents[2] / "configs"

# The voice backends, named once: the voice settings choose one, the face keeps a text lead per
# backend, the CLI offers them as --backend (here because the face may not import the voice).
BackendName = Literal["replay", "mlx", "torch", "remote"]
BACKEND_NAMES: tuple[str, ...] = get_args(BackendName)


class Strict(BaseModel):
    """Unknown keys are errors, so a typo never silently falls back to a default; NaN and
    infinity are refused (a NaN floor would keep the mouth shut without an error)."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, allow_inf_nan=False)
