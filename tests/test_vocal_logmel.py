"""The fused vocal front-end: masked separation spectrum straight to the classifier's log-mel."""

import librosa
import numpy as np
import pytest
import soxr
import torch
from test_separation import REFERENCE

from vocalstream import audio
from vocalstream.stream.separation import Separator, vocal_logmel


def slow_vocal_logmel(waveform: np.ndarray, separator: Separator) -> np.ndarray:
    """The seeds' route: separate, inverse STFT, resample to 22.05 kHz mono, librosa mel."""
    vocals = separator.separate(waveform)[0].mean(axis=0)
    mono = soxr.resample(vocals, audio.SEPARATION_RATE, audio.CLASSIFIER_RATE, quality="HQ")
    mel = librosa.feature.melspectrogram(y=mono.astype(np.float32), sr=audio.CLASSIFIER_RATE)
    return librosa.power_to_db(mel, ref=np.max)


def passthrough(magnitude: torch.Tensor) -> torch.Tensor:
    """A mask estimator that keeps everything in both stems."""
    return torch.ones(magnitude.shape[0], 2, *magnitude.shape[1:])


@pytest.fixture(scope="module")
def windows() -> np.ndarray:
    """Real 3-s stereo windows at 44.1 kHz, all with a singing voice in them."""
    mix = audio.load(REFERENCE / "example.mix.flac", audio.SEPARATION_RATE, 2)
    song = audio.load(REFERENCE / "fishin.mix.flac", audio.SEPARATION_RATE, 2)
    length = audio.WINDOW_SECONDS * audio.SEPARATION_RATE
    return np.stack([mix[:, 44100 : 44100 + length], song[:, :length], song[:, -length:]])


def test_shape_matches_the_classifier_input(windows, separator_cache):
    from vocalstream.export.separator import OnnxMaskEstimator

    features = vocal_logmel(windows, OnnxMaskEstimator(separator_cache))
    assert features.shape == (3, 1, audio.N_MELS, audio.WINDOW_FRAMES)


def test_grids_coincide(windows):
    """With nothing masked, the fused path is the classifier's own log-mel of the mono mix."""
    fused = vocal_logmel(windows, passthrough)[:, 0].numpy()
    for index, window in enumerate(windows):
        mono = soxr.resample(window.mean(axis=0), audio.SEPARATION_RATE, audio.CLASSIFIER_RATE)
        expected = audio.logmel(mono.astype(np.float32))[0, 0].numpy()
        assert np.abs(fused[index] - expected).mean() < 0.25


def test_close_to_the_slow_path_where_there_are_vocals(windows, separator_cache):
    from vocalstream.export.separator import OnnxMaskEstimator

    estimator = OnnxMaskEstimator(separator_cache)
    fused = vocal_logmel(windows, estimator)[:, 0].numpy()
    separator = Separator(estimator)
    for index, window in enumerate(windows):
        difference = np.abs(fused[index] - slow_vocal_logmel(window, separator))
        assert difference.mean() < 3.5, f"window {index}: {difference.mean():.2f} dB"
