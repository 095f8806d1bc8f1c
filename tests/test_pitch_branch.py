"""The pitch branch: the vocal stem resynthesised from the stream, basic-pitch's polyphony, the
several fusion, and the shipped branch on real singers."""

import numpy as np
import pytest
import soxr
from conftest import SONG, shared
from scipy.special import expit

from vocalstream import audio
from vocalstream.files import sha256
from vocalstream.inference.bundle import PITCH, PITCH_INPUT, PITCH_OUTPUT, resolve_bundle
from vocalstream.inference.frontend import (
    HOP,
    WINDOW_SAMPLES,
    FeatureStream,
    pitch_input,
    vocal_waveform,
)
from vocalstream.inference.fusion import fuse_several, polyphony
from vocalstream.inference.model import VoiceModel
from vocalstream.models.labels import decide

RATE = audio.SEPARATION_RATE
# saved_models/icassp_2022/nmp.onnx in basic_pitch-0.4.0-py2.py3-none-any.whl from PyPI
BASIC_PITCH_SHA256 = "2c3c1d144bfa61ad236e92e169c13535c880469a12a047d4e73451f2c059a0ec"
CHOIR = "choirset/DCS_SE_FullChoir_ScaleUpDown02_{}_DYN.wav"


@pytest.fixture(scope="module")
def song() -> np.ndarray:
    return audio.load(shared(SONG), RATE, 2)[:, 30 * RATE : 36 * RATE]


@pytest.mark.parametrize("live", [False, True])
def test_the_vocal_stem_is_resynthesised_from_the_streams_frames(song, live):
    """Without a separator the "vocals" are the mix: resynthesised from a window's frames they
    give back its mono samples below 11 kHz, from its first frame's centre."""
    stream = FeatureStream(None, 1.0, live, keep_vocals=True)
    windows = stream.push(song) + stream.flush()
    assert len(windows) == 4 and all(w.vocals.shape == (130, 1024) for w in windows)
    for window in windows:
        start = round(window.start * RATE / HOP) * HOP
        expected = song.mean(axis=0)[start : start + WINDOW_SAMPLES]
        ours = soxr.resample(vocal_waveform(window.vocals), RATE, audio.PITCH_RATE)
        expected = soxr.resample(expected, RATE, audio.PITCH_RATE)
        inner = slice(1024, -2048)  # the edge frames lack their neighbours' overlap
        assert np.abs(ours[inner] - expected[inner]).max() < 1e-5
    middle = pitch_input(windows[0].vocals)
    assert middle.shape == (audio.PITCH_SAMPLES, 1) and middle.dtype == np.float32
    stem = soxr.resample(vocal_waveform(windows[0].vocals), RATE, audio.PITCH_RATE)
    offset = (len(stem) - audio.PITCH_SAMPLES) // 2
    np.testing.assert_array_equal(middle[:, 0], stem[offset : offset + audio.PITCH_SAMPLES])
    plain = FeatureStream(None, 1.0, live)
    assert all(w.vocals is None for w in plain.push(song) + plain.flush())


def test_polyphony_is_the_share_of_frames_with_two_pitches():
    contour = np.zeros((3, 2, 4, audio.PITCH_BINS), np.float32)
    contour[:, :, :, 100] = 0.9  # one pitch everywhere
    contour[1, :, :, 136] = 0.6  # a second, a twelfth above (36 bins): two voices
    contour[2, 0, :, 103] = 0.6  # a semitone above: the same voice's spread, not a second one
    contour[2, 1, :2, 160] = 0.2  # below the salience a pitch is heard at
    contour[2, 1, 2:, 160] = 0.5  # ...and above it, in half of the second chunk's frames
    np.testing.assert_allclose(polyphony(contour), [0.0, 1.0, 0.25])


def test_the_several_fusion_resplits_the_voice_mass():
    probabilities = np.array([[0.1, 0.3, 0.4, 0.2], [0.1, 0.3, 0.4, 0.2]], np.float32)
    fusion = {"weights": [1.0, 3.0], "bias": -0.5}
    fused = fuse_several(probabilities, [0.0, 0.5], fusion)
    several = 0.9 * expit(np.log(0.2 / 0.7) + 3.0 * np.array([0.0, 0.5]) - 0.5)
    np.testing.assert_allclose(fused[:, 3], several, rtol=1e-5)
    np.testing.assert_allclose(fused[:, 0], 0.1)  # no voice is the classifier's
    np.testing.assert_allclose(fused[:, 2] / fused[:, 1], 4 / 3, rtol=1e-5)  # so is the gender
    np.testing.assert_allclose(fused.sum(axis=1), 1.0, rtol=1e-6)
    assert fused[1, 3] > fused[0, 3]  # polyphony speaks for several voices


def test_the_shipped_branch_is_basic_pitch_unchanged():
    bundle = resolve_bundle(None)
    assert bundle.pitch is not None, "the bundled model has no pitch branch"
    assert sha256(bundle.path(PITCH)) == BASIC_PITCH_SHA256
    assert bundle.pitch["input"]["name"] == PITCH_INPUT
    assert bundle.pitch["output"]["name"] == PITCH_OUTPUT


def test_two_real_singers_are_more_polyphonic_than_either_alone(separator_cache):
    """ChoirSet's soprano and second bass (CC BY 4.0), each alone and summed, through the shipped
    model's own path: the vocal stem of the two holds two pitches far more often."""
    model = VoiceModel(None, device="cpu")
    soprano, bass = (audio.load(shared(CHOIR.format(part)), RATE, 2) for part in ("S1", "B2"))
    length = min(soprano.shape[1], bass.shape[1])
    heard = {}
    for name, signal in {
        "soprano": soprano[:, :length],
        "bass": bass[:, :length],
        "both": soprano[:, :length] + bass[:, :length],
    }.items():
        windows = [
            model.snippet_window(signal[:, start : start + WINDOW_SAMPLES])
            for start in range(0, length - WINDOW_SAMPLES, WINDOW_SAMPLES // 2)
        ]
        stems = np.stack([pitch_input(w.vocals) for w in windows])
        heard[name] = polyphony(model.pitch_session.run([PITCH_OUTPUT], {PITCH_INPUT: stems})[0])
        heard[name] = heard[name].mean()
    assert heard["both"] > 2 * max(heard["soprano"], heard["bass"]), heard


def test_the_branches_weigh_in_only_where_a_voice_is_heard(separator_cache):
    """The shipped model on the song's instrumental opening (no voice) and its sung lead: the
    opening keeps the classifier's probabilities; the lead keeps P(no voice), musicnn hears a
    woman, and one singer stays one voice."""
    model = VoiceModel(None, device="cpu")
    song = audio.load(shared(SONG), RATE, 2)
    windows = [model.snippet_window(song[:, s * RATE : s * RATE + WINDOW_SAMPLES]) for s in (0, 34)]
    plain = model.classifier_probabilities(np.stack([w.features for w in windows]))
    fused = model.window_probabilities(windows)
    assert list(decide(plain)) == list(decide(fused)) == [0, 2]
    np.testing.assert_array_equal(fused[0], plain[0])
    assert fused[1, 0] == pytest.approx(plain[1, 0], abs=1e-6)
    assert fused[1, 2] / fused[1, 1] > plain[1, 2] / plain[1, 1]
    # The classifier's probabilities sum to 1 within its rounding; the fusions keep that sum.
    np.testing.assert_allclose(fused.sum(axis=1), plain.sum(axis=1), rtol=1e-5)
