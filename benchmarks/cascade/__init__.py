"""A local Pipecat cascade (VAD -> STT -> LLM -> TTS), run in its own environment and timed
by the same harness as the creature (``track2_voice.devtools.turn_clock``); see docs/cascade.md."""
