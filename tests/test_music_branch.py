"""The real-music branch: musicnn's MTT tagger, its input from the front-end, the gender fusion,
and the shipped branch against the original TensorFlow model."""

import numpy as np
import pytest
from conftest import REPO, SONG, shared

from vocalstream import audio
from vocalstream.inference.bundle import MUSIC, MUSIC_INPUT, MUSIC_OUTPUT, resolve_bundle
from vocalstream.inference.device import create_session
from vocalstream.inference.frontend import FeatureStream, music_features
from vocalstream.inference.fusion import FEMALE_TAGS, MALE_TAGS, fuse_gender
from vocalstream.models.labels import MTT_TAGS

# tools/musicnn_weights.py ran musicnn's own TF graph (musicnn 0.1.0, tensorflow 2.12) on three
# windows of the song, computed by music_features(): its opening (instrumental) and two of its
# sung lead (34 s and 37 s). It stores that input, the tag logits and the embedding.
REFERENCE = REPO / "tests" / "data" / "musicnn" / "reference.npz"
RATE = audio.SEPARATION_RATE


@pytest.fixture(scope="module")
def song() -> np.ndarray:
    return audio.load(shared(SONG), RATE, 2)


def test_shipped_branch_matches_the_original_tensorflow_model():
    bundle = resolve_bundle(None)
    assert bundle.music is not None, "the bundled model has no real-music branch"
    reference = np.load(REFERENCE)
    session = create_session(bundle.path(MUSIC), "cpu")
    logits = session.run([MUSIC_OUTPUT], {MUSIC_INPUT: reference["mel"]})[0]
    assert np.abs(logits - reference["logits"]).max() < 1e-3
    female = [MTT_TAGS.index(t) for t in FEMALE_TAGS]
    male = [MTT_TAGS.index(t) for t in MALE_TAGS]
    sung = 1 / (1 + np.exp(-logits[1:]))
    assert (sung[:, female].sum(1) > 2 * sung[:, male].sum(1)).all()  # a woman sings


def test_music_features_are_librosas_log_mel_at_16_khz(song):
    import librosa

    window = song.mean(0)[34 * RATE : 34 * RATE + audio.WINDOW_SECONDS * RATE]
    ours = music_features(window)
    resampled = librosa.resample(
        window, orig_sr=RATE, target_sr=audio.MUSICNN_RATE, res_type="soxr_hq"
    )
    power = librosa.feature.melspectrogram(
        y=resampled,
        sr=audio.MUSICNN_RATE,
        n_fft=audio.MUSICNN_N_FFT,
        hop_length=audio.MUSICNN_HOP,
        n_mels=audio.MUSICNN_MELS,
    )
    expected = np.log10(1 + audio.MUSICNN_LOG_GAIN * power.T)
    assert ours.shape == (audio.MUSICNN_FRAMES, audio.MUSICNN_MELS) == expected.shape
    assert np.abs(ours - expected).max() < 1e-4
    assert music_features(window[: RATE // 2]).shape == ours.shape  # short: zero-padded


@pytest.mark.parametrize("live", [False, True])
def test_each_streamed_window_carries_its_own_mix(song, live):
    excerpt = song[:, 30 * RATE : 40 * RATE + RATE // 2]
    stream = FeatureStream(None, 1.0, live, keep_mix=True)
    windows = []
    for start in range(0, excerpt.shape[1], RATE // 10):
        windows += stream.push(excerpt[:, start : start + RATE // 10])
    windows += stream.flush()
    assert len(windows) == 9 and windows[-1].padded
    mono = excerpt.mean(0)
    length = audio.WINDOW_SECONDS * RATE
    for window in windows:
        first = round(window.start * RATE)
        expected = mono[first : first + length]
        np.testing.assert_array_equal(window.mix, np.pad(expected, (0, length - len(expected))))
    assert stream._mono.size <= audio.WINDOW_SECONDS * RATE  # bounded, whatever the length
    plain = FeatureStream(None, 1.0, live)
    assert all(w.mix is None for w in plain.push(excerpt) + plain.flush())


def test_fusion_resplits_only_the_one_voice_mass():
    probabilities = np.array(
        [[0.1, 0.6, 0.2, 0.1], [0.5, 0.1, 0.3, 0.1], [0.0, 0.3, 0.3, 0.4]], np.float32
    )
    tags = np.full((3, len(MTT_TAGS)), -6.0, np.float32)
    tags[:, [MTT_TAGS.index(t) for t in FEMALE_TAGS]] = 2.0  # musicnn hears a woman
    unchanged = fuse_gender(probabilities, tags, {"weights": [1.0, 0.0], "bias": 0.0})
    np.testing.assert_allclose(unchanged, probabilities, atol=1e-5)
    music = fuse_gender(probabilities, tags, {"weights": [0.0, 1.0], "bias": 0.0})
    np.testing.assert_allclose(music[:, [0, 3]], probabilities[:, [0, 3]])
    np.testing.assert_allclose(music.sum(1), 1.0, atol=1e-6)
    assert (music[:, 2] > music[:, 1]).all() and (music[:, 2] > probabilities[:, 2]).all()
    tags = np.full((3, len(MTT_TAGS)), -6.0, np.float32)
    tags[:, [MTT_TAGS.index(t) for t in MALE_TAGS]] = 2.0  # and now a man
    male = fuse_gender(probabilities, tags, {"weights": [0.0, 1.0], "bias": 0.0})
    assert (male[:, 1] > male[:, 2]).all()
