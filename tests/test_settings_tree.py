"""One settings tree on one strict base: every settings model in the project derives from
``Strict`` (no copy of its policy that could drift, as one without ``allow_inf_nan=False``
once took ``face.visemes.gate_db=nan``), and the model server's options refuse what the
config refuses."""

from __future__ import annotations

import pytest
from pydantic import BaseModel, ValidationError

from tests.test_errors import defined_in_project
from track2_voice.common.settings import BACKEND_NAMES, Strict
from track2_voice.config import Sampling, SamplingConfig, VoiceConfig
from track2_voice.model_server.cluster_options import ClusterOptions
from track2_voice.model_server.options import ServerOptions, SlotSampling


def test_every_settings_model_derives_from_the_strict_base():
    models = defined_in_project(BaseModel)
    assert len(models) > 40  # the walk found them
    stray = sorted(f"{m.__module__}.{m.__qualname__}" for m in models if not issubclass(m, Strict))
    assert not stray, f"settings models without the strict base: {stray}"


@pytest.mark.parametrize(
    "make",
    [
        lambda: ServerOptions(checkpoint="x", stall_timeout_s=float("nan")),
        lambda: ServerOptions(checkpoint="x", sampling=SlotSampling(temp=float("inf"))),
        lambda: ServerOptions(checkpoint="x", slot=3),  # a typo of slots
        lambda: ClusterOptions(cpus_per_replica=float("nan")),
        lambda: ClusterOptions(replica=3),
    ],
)
def test_the_model_server_options_refuse_what_the_config_refuses(make):
    with pytest.raises(ValidationError):
        make()


def test_the_voice_and_the_model_server_sample_with_one_model():
    """Same names, same defaults: a session's sampling is the voice's plus a seed per stream."""
    assert issubclass(SlotSampling, Sampling) and issubclass(SamplingConfig, Sampling)
    shared = set(Sampling.model_fields)
    assert {"temp", "temp_text", "top_k", "top_k_text"} == shared
    assert SlotSampling().model_dump(include=shared) == SamplingConfig().model_dump(include=shared)


def test_the_backend_names_are_the_voice_settings_choices():
    for name in BACKEND_NAMES:
        assert VoiceConfig(backend=name).backend == name
    with pytest.raises(ValidationError):
        VoiceConfig(backend="tensorflow")
