"""The streaming front-end: one separated frame stream, windows cut at any hop, and exactly the
per-window features the models were trained on when a snippet stands alone."""

import librosa
import numpy as np
import pytest
import soxr
import torch
from conftest import ORCHESTRA, SONG, SPEECH, shared
from test_separation import REFERENCE

from vocalstream import audio
from vocalstream.inference.frontend import FeatureStream, snippet_features
from vocalstream.inference.separator import OnnxMaskEstimator, cached_separator_path
from vocalstream.stream.separation import Separator

RATE = audio.SEPARATION_RATE
WINDOW = audio.WINDOW_SECONDS * RATE


def slow_vocal_logmel(waveform: np.ndarray, separator: Separator) -> np.ndarray:
    """The seeds' route: separate, inverse STFT, resample to 22.05 kHz mono, librosa mel."""
    vocals = separator.separate(waveform)[0].mean(axis=0)
    mono = soxr.resample(vocals, RATE, audio.CLASSIFIER_RATE, quality="HQ")
    mel = librosa.feature.melspectrogram(y=mono.astype(np.float32), sr=audio.CLASSIFIER_RATE)
    return librosa.power_to_db(mel, ref=np.max)


def version_one_features(window: np.ndarray, estimator) -> np.ndarray:
    """Front-end version 1, which the bundled model was trained on: each 3-s window on its own,
    a centred STFT, 130 frames separated as one run zero-padded to 192, mono vocal power, mel,
    dB below the window's maximum."""
    x = torch.from_numpy(window)
    spectrum = torch.stft(
        x,
        4096,
        1024,
        window=torch.hann_window(4096),
        center=True,
        pad_mode="constant",
        return_complex=True,
    )[:, :1024]
    magnitude = torch.nn.functional.pad(spectrum.abs().transpose(1, 2), (0, 0, 0, 62))
    mask = torch.from_numpy(estimator(magnitude[None].numpy())[0, 0, :, :130]).transpose(1, 2)
    power = (mask * spectrum).mean(dim=0).abs().pow(2).numpy()
    mel = audio.mel_filters() @ np.pad(power, ((0, 1), (0, 0)))
    return librosa.power_to_db(mel, ref=np.max, top_db=80.0)[None]


def passthrough(magnitude: np.ndarray) -> np.ndarray:
    """A mask estimator that keeps everything: fast, for the stream's bookkeeping."""
    return np.ones((magnitude.shape[0], 1, *magnitude.shape[1:]), np.float32)


@pytest.fixture(scope="module")
def estimator(separator_cache):
    """The official two networks, which front-end version 1 used."""
    return OnnxMaskEstimator(cached_separator_path("2stems"), "cpu")


@pytest.fixture(scope="module")
def windows() -> np.ndarray:
    """Real 3-s stereo windows at 44.1 kHz, all with a singing voice in them."""
    mix = audio.load(REFERENCE / "example.mix.flac", RATE, 2)
    song = audio.load(REFERENCE / "fishin.mix.flac", RATE, 2)
    return np.stack([mix[:, RATE : RATE + WINDOW], song[:, :WINDOW], song[:, -WINDOW:]])


def test_a_snippet_alone_gives_exactly_the_version_one_features(windows, estimator):
    for window in windows:
        ours = snippet_features(window, estimator)
        assert ours.shape == (1, audio.N_MELS, audio.WINDOW_FRAMES)
        assert np.abs(ours - version_one_features(window, estimator)).max() < 1e-3


def test_mix_features_are_the_seeds_log_mel(windows):
    """Without separation, the features are the seeds' librosa log-mel of the 22.05 kHz mono mix:
    the two grids share bin width and hop."""
    for window in windows:
        ours = snippet_features(window, None)[0]
        mono = soxr.resample(window.mean(axis=0), RATE, audio.CLASSIFIER_RATE).astype(np.float32)
        mel = librosa.feature.melspectrogram(y=mono, sr=audio.CLASSIFIER_RATE)
        assert np.abs(ours - librosa.power_to_db(mel, ref=np.max)).mean() < 0.25


def test_close_to_the_slow_path_where_there_are_vocals(windows, estimator):
    separator = Separator(estimator)
    for index, window in enumerate(windows):
        difference = np.abs(
            snippet_features(window, estimator)[0] - slow_vocal_logmel(window, separator)
        )
        assert difference.mean() < 3.5, f"window {index}: {difference.mean():.2f} dB"


def stream_windows(signal, hop, live=False, block=4410, estimator=passthrough, reference="window"):
    stream = FeatureStream(estimator, hop, live, reference=reference)
    windows = []
    for start in range(0, signal.shape[1], block):
        windows += stream.push(signal[:, start : start + block])
    return windows + stream.flush()


def test_windows_at_a_hop_with_a_padded_tail():
    signal = np.random.default_rng(0).normal(0, 0.1, (2, round(10.9 * RATE))).astype(np.float32)
    windows = stream_windows(signal, 1.0)
    assert [w.start for w in windows] == [float(i) for i in range(9)]
    assert [w.padded for w in windows] == [False] * 8 + [True]
    assert all(w.end == w.start + 3 for w in windows)
    half = stream_windows(signal, 0.5)
    assert [w.start for w in half][:3] == [0.0, 0.5, 1.0] and half[-1].padded


def test_short_stream_gives_one_padded_window_and_exact_cover_gives_none():
    (window,) = stream_windows(np.ones((2, RATE), np.float32), 3.0)
    assert window.padded and window.features.shape == (1, audio.N_MELS, audio.WINDOW_FRAMES)
    exact = stream_windows(np.ones((2, 2 * WINDOW), np.float32), 3.0)
    assert [w.padded for w in exact] == [False, False]
    assert stream_windows(np.zeros((2, 0), np.float32), 1.0) == []


def test_hop_must_fit_the_window():
    with pytest.raises(ValueError, match="hop"):
        FeatureStream(passthrough, 3.5, live=False)


def test_block_size_does_not_change_the_features(estimator):
    song = audio.load(shared(SONG), RATE, 2)[:, : 20 * RATE]
    small = stream_windows(song, 1.0, block=1000, estimator=estimator)
    whole = stream_windows(song, 1.0, block=song.shape[1], estimator=estimator)
    assert len(small) == len(whole) == 18
    for a, b in zip(small, whole, strict=True):
        np.testing.assert_allclose(a.features, b.features, atol=1e-3)


def test_live_windows_match_file_windows_on_a_real_song(estimator):
    """Live mode separates short runs with little context and no look-ahead; its windows stay
    close to file mode's, which separates in long runs."""
    song = audio.load(shared(SONG), RATE, 2)[:, 30 * RATE : 60 * RATE]
    live = stream_windows(song, 0.5, live=True, estimator=estimator)
    files = stream_windows(song, 0.5, live=False, estimator=estimator)
    assert [w.start for w in live] == [w.start for w in files]
    differences = [np.abs(a.features - b.features).mean() for a, b in zip(live, files, strict=True)]
    assert np.mean(differences) < 3.0, np.mean(differences)


def test_memory_stays_bounded_on_a_long_stream():
    stream = FeatureStream(passthrough, 1.0, live=True)
    block = np.zeros((2, 4410), np.float32)
    for _ in range(600):  # a minute
        stream.push(block)
    assert stream._mel.shape[-1] <= 2 * audio.WINDOW_FRAMES
    assert stream._samples.shape[1] <= 2 * 4096 + 4410


def test_live_windows_need_no_sample_after_their_end():
    """Live, the window is out as soon as its last sample is in; a file waits half an FFT frame
    for the samples its last frame spans."""
    signal = np.random.default_rng(1).normal(0, 0.1, (2, WINDOW)).astype(np.float32)
    live = FeatureStream(passthrough, 1.0, live=True)
    assert live.push(signal[:, :-1]) == []
    (window,) = live.push(signal[:, -1:])
    assert (window.start, window.end, window.padded) == (0.0, 3.0, False)
    # Standing alone, it is the same window a file gives once the stream ends there.
    np.testing.assert_allclose(window.features, stream_windows(signal, 1.0)[0].features, atol=1e-3)
    assert FeatureStream(passthrough, 1.0, live=False).push(signal) == []


def test_the_vocal_level_tells_a_voice_from_music(separator_cache):
    """Speech alone is nearly all vocals; an orchestra leaks a little into the vocal stem, far
    below the mix. Measured against the mix, the features keep that level; measured against the
    window's own maximum they lose it, and otherwise agree."""
    vocal_network = OnnxMaskEstimator(separator_cache, "cpu")
    speech = audio.load(shared(SPEECH), RATE, 2)[:, :WINDOW]
    orchestra = audio.load(shared(ORCHESTRA), RATE, 2)[:, 10 * RATE : 10 * RATE + WINDOW]
    levels = {}
    for name, signal in (("speech", speech), ("orchestra", orchestra)):
        (own,) = stream_windows(signal, 3.0, estimator=vocal_network)
        (mix,) = stream_windows(signal, 3.0, estimator=vocal_network, reference="mix")
        assert own.vocal_level == mix.vocal_level
        levels[name] = mix.vocal_level
        assert own.features.max() == 0.0
        gap = float(mix.features.max())
        unfloored = mix.features > -audio.TOP_DB
        np.testing.assert_allclose(
            own.features[unfloored] + gap, mix.features[unfloored], atol=1e-3
        )
    assert levels["speech"] > -1.0, levels
    assert levels["orchestra"] < -20.0, levels
    (silence,) = stream_windows(np.zeros((2, WINDOW), np.float32), 3.0, estimator=vocal_network)
    assert silence.vocal_level == -audio.TOP_DB
    with pytest.raises(ValueError, match="reference"):
        FeatureStream(passthrough, 1.0, live=False, reference="loudest")


def test_both_references_are_two_channels():
    signal = np.random.default_rng(2).normal(0, 0.1, (2, WINDOW)).astype(np.float32)
    half = np.concatenate([np.zeros((2, WINDOW // 2), np.float32), signal[:, WINDOW // 2 :]], 1)
    for sound in (signal, half * 0.01):
        (both,) = stream_windows(sound, 3.0, reference="both")
        (own,) = stream_windows(sound, 3.0)
        (mix,) = stream_windows(sound, 3.0, reference="mix")
        assert both.features.shape == (2, audio.N_MELS, audio.WINDOW_FRAMES)
        np.testing.assert_array_equal(both.features[0], own.features[0])
        np.testing.assert_array_equal(both.features[1], mix.features[0])


def test_the_input_level_reads_a_sine_in_dbfs():
    seconds = np.arange(WINDOW) / RATE
    for dbfs in (0.0, -20.0, -60.0):
        sine = 10 ** (dbfs / 20) * np.sin(2 * np.pi * 440 * seconds)
        (window,) = stream_windows(np.stack([sine, sine]).astype(np.float32), 3.0)
        assert abs(window.input_level - dbfs) < 0.5, (dbfs, window.input_level)
    (silence,) = stream_windows(np.zeros((2, WINDOW), np.float32), 3.0)
    assert silence.input_level == -120.0
