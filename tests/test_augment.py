"""The seeds' augmentations on log-mel batches."""

import librosa
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from conftest import SPEECH, shared

from vocalstream import audio
from vocalstream.inference.frontend import window_decibels
from vocalstream.train import engine
from vocalstream.train.augment import (
    BAND_LIMIT_HZ,
    limit_bandwidth,
    mask_time_and_frequency,
    mel_centres_hz,
    mixup,
    mixup_loss,
    reverse_time,
)
from vocalstream.train.recipe import load_recipe

MEL_CENTRES_HZ = mel_centres_hz()


@pytest.fixture
def batch() -> torch.Tensor:
    return torch.randn(64, 1, 128, 130, generator=torch.Generator().manual_seed(0))


def test_masks_are_narrow_bands_filled_with_the_mean(batch):
    masked = mask_time_and_frequency(batch, np.random.default_rng(0), 1.0, 1.0, max_width=10)
    for before, after in zip(batch, masked, strict=True):
        changed = before != after
        frames = changed.any(dim=-2).sum().item()  # columns touched by the time mask
        bins = changed.any(dim=-1).sum().item()
        assert frames < 10 + 128 and bins < 10 + 130  # a band each, plus the other band's cells
        assert torch.allclose(after[changed], before.mean().expand(int(changed.sum())))


def test_mask_probability(batch):
    masked = mask_time_and_frequency(batch, np.random.default_rng(1), 0.5, 0.0, max_width=10)
    touched = (masked != batch).flatten(1).any(1).float().mean().item()
    assert 0.3 < touched < 0.7


def test_reverse_flips_whole_examples_in_time(batch):
    reversed_ = reverse_time(batch, np.random.default_rng(2), p=0.3)
    flipped = [torch.equal(r, b.flip(-1)) for r, b in zip(reversed_, batch, strict=True)]
    kept = [torch.equal(r, b) for r, b in zip(reversed_, batch, strict=True)]
    assert all(f or k for f, k in zip(flipped, kept, strict=True)) and 5 < sum(flipped) < 35


def test_mixup_blends_pairs_and_mixes_the_loss(batch):
    labels = torch.arange(64) % 4
    mixed, labels_a, labels_b, lam = mixup(batch, labels, 0.4, np.random.default_rng(3))
    assert 0.0 <= lam <= 1.0 and torch.equal(labels_a, labels)
    partners = (mixed - lam * batch) / (1 - lam)  # each row is some example of the batch
    distances = torch.cdist(partners.flatten(1), batch.flatten(1))
    partner = distances.argmin(dim=1)
    assert torch.all(distances.min(dim=1).values < 1e-2 * distances.median())
    assert torch.equal(labels[partner], labels_b)
    assert sorted(partner.tolist()) == list(range(64))  # a permutation
    logits = torch.randn(64, 4)
    expected = lam * F.cross_entropy(logits, labels_a) + (1 - lam) * F.cross_entropy(
        logits, labels_b
    )
    torch.testing.assert_close(mixup_loss(logits, labels_a, labels_b, lam), expected)


def test_same_generator_state_gives_the_same_augmentation(batch):
    first = mask_time_and_frequency(batch, np.random.default_rng(7))
    second = mask_time_and_frequency(batch, np.random.default_rng(7))
    assert torch.equal(first, second)


def test_band_limit_floors_every_bin_above_a_cutoff_in_range(batch):
    limited = limit_bandwidth(batch, np.random.default_rng(4), p=1.0)
    lowest, highest = (np.searchsorted(MEL_CENTRES_HZ, hz) for hz in BAND_LIMIT_HZ)
    cutoffs = set()
    for before, after in zip(batch, limited, strict=True):
        floored = (after[0] == -audio.TOP_DB).all(dim=-1).numpy()
        first = int(np.argmax(floored))
        assert floored[first:].all() and lowest <= first <= highest + 1
        assert torch.equal(after[..., :first, :], before[..., :first, :])
        cutoffs.add(first)
    assert len(cutoffs) > 10  # drawn, not fixed


def test_band_limit_probability_and_no_op(batch):
    limited = limit_bandwidth(batch, np.random.default_rng(5), p=0.3)
    touched = (limited != batch).flatten(1).any(1).float().mean().item()
    assert 0.15 < touched < 0.45
    rng = np.random.default_rng(5)
    assert limit_bandwidth(batch, rng, p=0.0) is batch
    assert rng.random() == np.random.default_rng(5).random()  # nothing drawn: old runs replay


def test_band_limit_is_what_a_band_limited_real_recording_looks_like():
    """A LibriSpeech reader, recorded at 16 kHz: the classifier's log-mel of it holds nothing
    above 8 kHz, which the augmentation writes as the floor."""
    speech = audio.load(shared(SPEECH), audio.CLASSIFIER_RATE, 1)[0][: audio.WINDOW_SAMPLES]
    spectrum = librosa.stft(speech, n_fft=audio.CLASSIFIER_N_FFT, hop_length=audio.CLASSIFIER_HOP)
    spectrum = np.abs(spectrum) ** 2
    decibels = window_decibels(audio.mel_filters() @ spectrum)
    above, below = decibels[MEL_CENTRES_HZ > 8200], decibels[MEL_CENTRES_HZ < 7000]
    assert above.mean() < -70.0 < below.mean()


def test_a_recipe_turns_band_limiting_on_in_training(batch):
    quiet = {"time_mask_p": 0.0, "frequency_mask_p": 0.0, "reverse_p": 0.0}
    rng = np.random.default_rng(6)
    assert torch.equal(engine._augment(batch, load_recipe("cnn4", quiet), rng), batch)
    limited = engine._augment(batch, load_recipe("cnn4", {**quiet, "band_limit_p": 1.0}), rng)
    always = max(BAND_LIMIT_HZ) < MEL_CENTRES_HZ  # above any cutoff
    assert (limited[:, 0, always] == -audio.TOP_DB).all()
