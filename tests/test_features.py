"""The torch log-mel front-end against librosa, on real audio."""

import librosa
import numpy as np
import pytest
import torch
from conftest import ORCHESTRA, SONG, SPEECH, shared

from vocalstream import audio


def librosa_logmel(window: np.ndarray) -> np.ndarray:
    """The seeds' features, verbatim."""
    mel = librosa.feature.melspectrogram(y=window, sr=audio.CLASSIFIER_RATE)
    return librosa.power_to_db(mel, ref=np.max)


@pytest.fixture(scope="module")
def windows() -> np.ndarray:
    """Real 3-s windows: a song with a female lead, read speech, a string orchestra."""
    picks = []
    for name, offsets in ((SONG, (0, 31, 62, 100)), (SPEECH, (0, 5)), (ORCHESTRA, (10, 40))):
        signal = audio.load(shared(name), audio.CLASSIFIER_RATE, 1)[0]
        for seconds in offsets:
            start = seconds * audio.CLASSIFIER_RATE
            picks.append(signal[start : start + audio.WINDOW_SAMPLES])
    return np.stack(picks)


def test_shape_of_a_window(windows):
    features = audio.logmel(windows[0])
    assert features.shape == (1, 1, audio.N_MELS, audio.WINDOW_FRAMES) == (1, 1, 128, 130)


def test_parity_with_librosa_on_real_audio(windows):
    ours = audio.logmel(torch.from_numpy(windows)).numpy()[:, 0]
    theirs = np.stack([librosa_logmel(window) for window in windows])
    difference = np.abs(ours - theirs).max()
    assert difference < 1e-2, f"max abs difference {difference:.2e} dB"


def test_batch_equals_one_by_one(windows):
    batched = audio.logmel(windows)
    single = torch.cat([audio.logmel(window) for window in windows])
    torch.testing.assert_close(batched, single, atol=1e-4, rtol=0)


def test_silence_and_scale_behave_like_librosa(windows):
    silence = np.zeros(audio.WINDOW_SAMPLES, dtype=np.float32)
    np.testing.assert_array_equal(audio.logmel(silence)[0, 0].numpy(), librosa_logmel(silence))
    # ref=max makes the features blind to overall gain.
    torch.testing.assert_close(
        audio.logmel(windows[:1] * 0.01), audio.logmel(windows[:1]), atol=1e-3, rtol=0
    )
