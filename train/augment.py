"""The seeds' augmentations, on batches of log-mel features [B, 1, N_MELS, frames].

Features are cached, so waveform reversal is applied as a time flip of the log-mel: the magnitude
spectrogram of a reversed signal is the time-reversed spectrogram, up to a shift of less than one
hop in where the frames fall.
"""

from __future__ import annotations

import numpy as np
import torch

from vocalstream import audio
from vocalstream.train.loss import cross_entropy

# Band limits a voice can arrive with: a telephone's 3.4 kHz, G.722's 7 kHz, 16-kHz audio's 8 kHz.
BAND_LIMIT_HZ = (3400.0, 8000.0)


def mask_time_and_frequency(
    features: torch.Tensor,
    rng: np.random.Generator,
    p_time: float = 0.5,
    p_frequency: float = 0.5,
    max_width: int = 10,
) -> torch.Tensor:
    """Seed 000: with probability p each, one band of fewer than `max_width` frames and one of
    fewer than `max_width` mel bins, filled with the example's mean."""
    features = features.clone()
    for example in features:
        fill = example.mean()
        for axis, p in ((-1, p_time), (-2, p_frequency)):
            if rng.random() >= p:
                continue
            width = int(rng.integers(0, max_width))
            start = int(rng.integers(0, example.shape[axis] - width + 1))
            example.narrow(axis, start, width).fill_(fill)
    return features


def reverse_time(features: torch.Tensor, rng: np.random.Generator, p: float = 0.3) -> torch.Tensor:
    """Seed 000's waveform reversal, with probability p per example."""
    chosen = torch.from_numpy(rng.random(features.shape[0]) < p)
    features = features.clone()
    features[chosen] = features[chosen].flip(-1)
    return features


def mel_centres_hz() -> np.ndarray:
    """The classifier's mel bins' centre frequencies [N_MELS], Hz."""
    return audio.mel_filters().argmax(axis=1) * audio.CLASSIFIER_RATE / audio.CLASSIFIER_N_FFT


def limit_bandwidth(
    features: torch.Tensor, rng: np.random.Generator, p: float = 0.0
) -> torch.Tensor:
    """With probability p per example, the mel bins centred above a cutoff drawn from
    BAND_LIMIT_HZ set to the floor, -TOP_DB: the vocals of a band-limited recording. Without it,
    how high a voice's recording reaches tells its speaker apart, and so its gender wherever one
    source holds voices of one gender (corpus v5's asterisk prompts are all women's in training,
    and band-limited to 7 kHz). Tried at p = 0.3 it did not help (docs/MODEL_CARD.md)."""
    if p <= 0:  # draws nothing, so recipes without it augment exactly as before
        return features
    chosen = np.flatnonzero(rng.random(features.shape[0]) < p)
    centres = mel_centres_hz()
    features = features.clone()
    for example, cutoff in zip(chosen, rng.uniform(*BAND_LIMIT_HZ, len(chosen)), strict=True):
        features[example, ..., centres > cutoff, :] = -audio.TOP_DB
    return features


def mixup(
    features: torch.Tensor, labels: torch.Tensor, alpha: float, rng: np.random.Generator
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, float]:
    """Blend each example with a shuffled partner: x = lam * x + (1 - lam) * x[perm], with
    lam ~ Beta(alpha, alpha) (0.4 in seed 000, 0.2 in seed 002). Returns the mixed batch, both
    label sets and lam, for mixup_loss."""
    lam = float(rng.beta(alpha, alpha))
    permutation = torch.from_numpy(rng.permutation(features.shape[0]))
    mixed = lam * features + (1 - lam) * features[permutation]
    return mixed, labels, labels[permutation], lam


def mixup_loss(
    logits: torch.Tensor,
    labels_a: torch.Tensor,
    labels_b: torch.Tensor,
    lam: float,
    weight: torch.Tensor | None = None,
) -> torch.Tensor:
    """The loss of a mixed batch: lam * CE(labels_a) + (1 - lam) * CE(labels_b), over training
    labels (train.loss)."""
    return lam * cross_entropy(logits, labels_a, weight) + (1 - lam) * cross_entropy(
        logits, labels_b, weight
    )
