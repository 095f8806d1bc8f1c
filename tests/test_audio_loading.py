"""Decoding, resampling and channel handling on real audio, and the bad-input matrix."""

import numpy as np
import pytest
import soundfile as sf
from conftest import SONG, SPEECH, shared

from vocalstream import audio
from vocalstream.errors import AudioError

RATE = audio.CLASSIFIER_RATE


@pytest.fixture(scope="module")
def speech() -> np.ndarray:
    """Four seconds of real read speech, mono, at the classifier rate."""
    return audio.load(shared(SPEECH), RATE, 1)[0, : 4 * RATE]


@pytest.mark.parametrize("extension", ["wav", "flac", "ogg", "mp3"])
def test_each_format_round_trips(tmp_path, speech, extension):
    path = tmp_path / f"speech.{extension}"
    sf.write(path, speech, RATE)
    decoded = audio.load(path, RATE, 1)
    assert decoded.dtype == np.float32 and decoded.shape == (1, len(speech))
    # wav/flac are lossless; the lossy codecs still track the waveform closely.
    assert np.corrcoef(decoded[0], speech)[0, 1] > 0.99


def test_load_matches_librosa_on_a_real_song():
    import librosa

    path = shared(SONG)
    ours = audio.load(path, RATE, 1)[0]
    theirs, _ = librosa.load(path, sr=RATE, mono=True)
    assert ours.shape == theirs.shape
    np.testing.assert_allclose(ours, theirs, atol=1e-5)


def test_stream_yields_bounded_blocks_that_add_up_to_load():
    path = shared(SONG)
    blocks = list(audio.stream(path, RATE, 2, block_seconds=2.0))
    # The resampler holds back a little between calls, so a block may carry a few ms extra.
    assert max(block.shape[1] for block in blocks) <= 1.05 * 2.0 * RATE
    np.testing.assert_array_equal(np.concatenate(blocks, axis=1), audio.load(path, RATE, 2))


def test_stream_memory_does_not_grow_with_file_length(tmp_path):
    import tracemalloc

    # Five minutes of real music at 44.1 kHz stereo: 212 MB as float32 once decoded.
    music = audio.load(shared(SONG), 44100, 2)
    minutes = np.tile(music, (1, int(np.ceil(300 * 44100 / music.shape[1]))))[:, : 300 * 44100]
    path = tmp_path / "long.flac"
    sf.write(path, minutes.T, 44100)
    tracemalloc.start()
    total = sum(block.shape[1] for block in audio.stream(path, RATE, 1))
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert total == 300 * RATE
    assert peak < 16e6, f"streaming peaked at {peak / 1e6:.0f} MB"


@pytest.mark.parametrize("channels_in", [1, 2, 6])
@pytest.mark.parametrize("channels_out", [1, 2])
def test_channel_counts(tmp_path, speech, channels_in, channels_out):
    gains = np.linspace(1.0, 0.5, channels_in, dtype=np.float32)
    path = tmp_path / "multi.wav"
    sf.write(path, speech[:, None] * gains, RATE, subtype="FLOAT")
    decoded = audio.load(path, RATE, channels_out)
    assert decoded.shape == (channels_out, len(speech))
    written = speech[:, None] * gains
    if channels_in == channels_out:
        expected = written
    else:  # anything but a match is mixed through mono, so no channel is dropped
        expected = np.repeat(written.mean(axis=1, keepdims=True), channels_out, axis=1)
    np.testing.assert_allclose(decoded.T, expected, atol=1e-6)


@pytest.mark.parametrize("source_rate", [8000, 44100, 96000])
def test_resampling_keeps_pitch_and_duration(tmp_path, source_rate):
    seconds, hz = 2.0, 1000.0
    t = np.arange(int(seconds * source_rate)) / source_rate
    path = tmp_path / f"tone{source_rate}.wav"
    sf.write(path, 0.5 * np.sin(2 * np.pi * hz * t), source_rate)
    decoded = audio.load(path, RATE, 1)[0]
    assert abs(len(decoded) - seconds * RATE) <= 1
    spectrum = np.abs(np.fft.rfft(decoded))
    assert np.fft.rfftfreq(len(decoded), 1 / RATE)[spectrum.argmax()] == pytest.approx(hz, abs=1)
    assert np.abs(decoded).max() == pytest.approx(0.5, abs=0.01)


def _write_bytes(path, data: bytes):
    path.write_bytes(data)
    return path


BAD_INPUTS = {
    "missing file": (lambda tmp, mp3: tmp / "absent.wav", "no such file"),
    "directory": (lambda tmp, mp3: tmp, "is a directory"),
    "empty file": (lambda tmp, mp3: _write_bytes(tmp / "empty.mp3", b""), "empty file"),
    "random bytes named .mp3": (
        lambda tmp, mp3: _write_bytes(tmp / "r.mp3", np.random.default_rng(0).bytes(50_000)),
        "not a readable audio file",
    ),
    "text named .wav": (
        lambda tmp, mp3: _write_bytes(tmp / "t.wav", b"hello\n" * 500),
        "not a readable audio file",
    ),
    "truncated mp3": (
        lambda tmp, mp3: _write_bytes(tmp / "cut.mp3", mp3[: len(mp3) // 2]),
        "truncated",
    ),
    "mp3 header only": (
        lambda tmp, mp3: _write_bytes(tmp / "head.mp3", mp3[:200]),
        "not a readable audio file",
    ),
}


@pytest.fixture(scope="module")
def mp3_bytes(tmp_path_factory, speech) -> bytes:
    path = tmp_path_factory.mktemp("mp3") / "speech.mp3"
    sf.write(path, speech, RATE)
    return path.read_bytes()


@pytest.mark.parametrize("case", BAD_INPUTS)
def test_bad_files_raise_one_clear_error(tmp_path, mp3_bytes, case, capfd):
    make, message = BAD_INPUTS[case]
    path = make(tmp_path, mp3_bytes)
    with pytest.raises(AudioError, match=message) as raised:
        audio.load(path, RATE, 1)
    assert str(path) in str(raised.value) and "\n" not in str(raised.value)
    assert capfd.readouterr().err == "", "decoder noise leaked to stderr"


@pytest.mark.parametrize("extension", ["flac", "wav"])
def test_truncated_lossless_files(tmp_path, speech, extension):
    whole = tmp_path / f"whole.{extension}"
    sf.write(whole, speech, RATE)
    data = whole.read_bytes()
    cut = _write_bytes(tmp_path / f"cut.{extension}", data[: len(data) // 2])
    if extension == "flac":
        with pytest.raises(AudioError, match="corrupt or truncated"):
            audio.load(cut, RATE, 1)
    else:
        # A WAV header's length is rewritten by libsndfile to what the file holds: the decodable
        # prefix is exactly the original's first half.
        decoded = audio.load(cut, RATE, 1)[0]
        np.testing.assert_allclose(decoded, speech[: len(decoded)], atol=1e-4)


def test_zero_length_audio(tmp_path):
    path = tmp_path / "zero.wav"
    sf.write(path, np.zeros(0, dtype=np.float32), RATE)
    with pytest.raises(AudioError, match="no audio samples"):
        audio.load(path, RATE, 1)


@pytest.mark.parametrize("bad_value", [np.nan, np.inf, -np.inf])
def test_non_finite_samples(tmp_path, speech, bad_value):
    samples = speech.copy()
    samples[RATE] = bad_value
    path = tmp_path / "bad.wav"
    sf.write(path, samples, RATE, subtype="FLOAT")
    with pytest.raises(AudioError, match=r"NaN or infinite sample at 1\.000 s"):
        audio.load(path, RATE, 1)
