"""Classifier features of labelled snippets, computed once and cached on disk.

A snippet's features are the log-mel [1, N_MELS, WINDOW_FRAMES] of its first WINDOW_SECONDS
(shorter snippets are zero-padded): of the separated vocals (the fused front-end, as the stream
computes them) or, with separation off, of the mix. The cache key is the file's sha256, the
front-end version and the mode, so a second epoch, a second run or a renamed file never
separates again, and a front-end change never reuses stale features.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from vocalstream import audio
from vocalstream.files import atomic_path, sha256
from vocalstream.stream.separation import MaskEstimator, vocal_logmel

BATCH = 16  # snippets separated together


def first_window(waveform: np.ndarray, samples: int) -> np.ndarray:
    """The first `samples` of [channels, n], zero-padded at the end if shorter."""
    waveform = waveform[:, :samples]
    return np.pad(waveform, ((0, 0), (0, samples - waveform.shape[1])))


class FeatureCache:
    """Features of audio files, from disk when already computed.

    separation=True needs `estimator` (the spleeter masks); it is only called for files not yet
    in the cache."""

    def __init__(
        self,
        directory: str | os.PathLike,
        separation: bool = True,
        estimator: MaskEstimator | None = None,
    ):
        self.mode = "vocals" if separation else "mix"
        if separation and estimator is None:
            raise ValueError("separation needs a mask estimator")
        self.estimator = estimator
        self.directory = Path(directory) / f"{self.mode}-frontend{audio.FRONTEND_VERSION}"
        self.directory.mkdir(parents=True, exist_ok=True)

    def _entry(self, digest: str) -> Path:
        return self.directory / digest[:2] / f"{digest}.npy"

    def _compute(self, paths: Sequence[Path]) -> np.ndarray:
        if self.mode == "vocals":
            rate, channels, samples = audio.SEPARATION_RATE, 2, audio.SEPARATION_RATE
        else:
            rate, channels, samples = audio.CLASSIFIER_RATE, 1, audio.CLASSIFIER_RATE
        samples *= audio.WINDOW_SECONDS
        batch = np.stack([first_window(audio.load(p, rate, channels), samples) for p in paths])
        with torch.inference_mode():
            if self.mode == "vocals":
                features = vocal_logmel(torch.from_numpy(batch), self.estimator)
            else:
                features = audio.logmel(torch.from_numpy(batch[:, 0]))
        return features.numpy()

    def features(self, paths: Sequence[str | os.PathLike], progress: bool = False) -> np.ndarray:
        """Features [len(paths), 1, N_MELS, WINDOW_FRAMES] float32, computing only what is new."""
        paths = [Path(p) for p in paths]
        entries = [self._entry(sha256(p)) for p in paths]
        missing = [i for i, entry in enumerate(entries) if not entry.exists()]
        with tqdm(
            total=len(missing),
            desc=f"features ({self.mode})",
            unit="file",
            disable=None if progress and missing else True,
        ) as bar:
            for start in range(0, len(missing), BATCH):
                chosen = missing[start : start + BATCH]
                for index, features in zip(
                    chosen, self._compute([paths[i] for i in chosen]), strict=True
                ):
                    entries[index].parent.mkdir(exist_ok=True)
                    with atomic_path(entries[index]) as scratch:
                        np.save(scratch, features)
                bar.update(len(chosen))
        return np.stack([np.load(entry) for entry in entries])
