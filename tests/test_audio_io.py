"""Audio in/out: odd rates are resampled with soxr, bad files give clear errors."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from tests.conftest import creature, espeak_wav
from track2_voice.audio.devices import AudioInputError, FileSource, check_sound_device, load_audio
from track2_voice.frames import FRAME_SAMPLES, SAMPLE_RATE


def test_odd_rate_wav_is_resampled_to_24k(tmp_path):
    wav = espeak_wav(tmp_path / "odd.wav", "testing one two three", rate=44100)
    info = sf.info(str(wav))
    assert info.samplerate == 44100
    pcm = load_audio(wav)
    expected = info.frames * SAMPLE_RATE / 44100
    assert abs(pcm.size - expected) <= 2
    assert pcm.dtype == np.float32


def test_stereo_is_mixed_down(tmp_path):
    p = tmp_path / "stereo.wav"
    t = np.arange(SAMPLE_RATE) / SAMPLE_RATE
    sf.write(
        str(p), np.stack([np.sin(2 * np.pi * 220 * t), np.zeros_like(t)], 1) * 0.5, SAMPLE_RATE
    )
    pcm = load_audio(p)
    assert pcm.ndim == 1 and pcm.size == SAMPLE_RATE
    assert 0.2 < np.abs(pcm).max() < 0.3


def test_file_source_pads_the_last_frame(tmp_path):
    p = tmp_path / "short.wav"
    sf.write(str(p), np.ones(FRAME_SAMPLES * 2 + 10, np.float32) * 0.1, SAMPLE_RATE)
    src = FileSource(p)
    frames = [src.read() for _ in range(4)]
    assert frames[3] is None and frames[2].pcm.shape == (FRAME_SAMPLES,)
    assert frames[2].pcm[10:].max() == 0.0


@pytest.mark.parametrize(
    "content,expect",
    [
        (None, "no such audio file"),
        (b"this is not audio", "cannot read audio"),
        (b"", "cannot read audio"),
    ],
)
def test_unreadable_input_gives_a_clear_error(tmp_path, content, expect):
    p = tmp_path / "bad.wav"
    if content is not None:
        p.write_bytes(content)
    with pytest.raises(AudioInputError, match=expect) as e:
        load_audio(p)
    assert str(p) in str(e.value)


def test_cli_unreadable_wav_is_one_clear_line(tmp_path):
    p = tmp_path / "broken.wav"
    p.write_bytes(b"RIFF\x00\x00garbage")
    r = creature("run", "--input", str(p), "--output", str(tmp_path / "o.wav"))
    assert r.returncode == 2
    assert str(p) in r.stderr and "cannot read audio" in r.stderr
    assert "Traceback" not in r.stderr


def test_no_sound_card_is_a_clear_error():
    # These machines have no sound card (a fact of the environment, not a fake); on one that has
    # a microphone the check must pass instead. Either way the check agrees with PortAudio.
    try:
        import sounddevice as sd
    except OSError:  # no PortAudio library at all
        with pytest.raises(AudioInputError, match=r"^the sound card is unavailable: "):
            check_sound_device("input")
        return
    try:
        device = sd.query_devices(kind="input")
    except sd.PortAudioError:
        device = None
    if device is None:
        with pytest.raises(AudioInputError) as e:
            check_sound_device("input")
        assert str(e.value).startswith("no sound input device found (")
        assert str(e.value).endswith("; use --input FILE / --output FILE instead")
    else:
        assert device["max_input_channels"] > 0
        assert check_sound_device("input") is None  # a microphone is there: no error
