"""The one base of every settings model in the project (``configs/creature.yaml`` and the model
server's options alike), so the strict policy is written once."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Strict(BaseModel):
    """Unknown keys are errors, so a typo never silently falls back to a default; NaN and
    infinity are refused (a NaN floor would keep the mouth shut without an error)."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, allow_inf_nan=False)
