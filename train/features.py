"""Classifier features of labelled snippets, computed once and cached on disk.

A snippet's features are those of its first WINDOW_SECONDS on their own (shorter snippets are
zero-padded), computed by the same streaming front-end the daemon runs: of the separated vocals,
or of the mix when there is no estimator. The cache key is the file's sha256, the front-end
version, the mode, the separator variant and the decibels' reference, so a second epoch, a second
run or a renamed file never separates again, and a front-end change never reuses stale features.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from tqdm import tqdm

from vocalstream import audio
from vocalstream.files import atomic_path, sha256
from vocalstream.inference.frontend import snippet_features
from vocalstream.inference.separator import DEFAULT_VARIANT, MaskEstimator


class FeatureCache:
    """Features of audio files, from disk when already computed. `estimator` (the spleeter
    masks, of separator variant `variant`) is only called for files not yet in the cache;
    without one the features are of the mix."""

    def __init__(
        self,
        directory: str | os.PathLike,
        estimator: MaskEstimator | None,
        variant: str = DEFAULT_VARIANT,
        reference: str = "window",
    ):
        self.estimator = estimator
        self.reference = reference
        self.mode = f"vocals-{variant}" if estimator is not None else "mix"
        if reference != "window":  # the original caches keep their names
            self.mode += f"-{reference}"
        self.directory = Path(directory) / f"{self.mode}-frontend{audio.FRONTEND_VERSION}"
        self.directory.mkdir(parents=True, exist_ok=True)

    def _entry(self, digest: str) -> Path:
        return self.directory / digest[:2] / f"{digest}.npy"

    def _compute(self, path: Path) -> np.ndarray:
        waveform = audio.load(path, audio.SEPARATION_RATE, audio.SEPARATION_CHANNELS)
        return snippet_features(waveform, self.estimator, self.reference)

    def features(self, paths: Sequence[str | os.PathLike], progress: bool = False) -> np.ndarray:
        """Features [len(paths), 1, N_MELS, WINDOW_FRAMES] float32, computing only what is new."""
        paths = [Path(p) for p in paths]
        entries = [self._entry(sha256(p)) for p in paths]
        missing = [i for i, entry in enumerate(entries) if not entry.exists()]
        bar = tqdm(
            missing,
            desc=f"features ({self.mode})",
            unit="file",
            disable=None if progress and missing else True,
        )
        for index in bar:
            features = self._compute(paths[index])
            entries[index].parent.mkdir(exist_ok=True)
            with atomic_path(entries[index]) as scratch:
                np.save(scratch, features)
        return np.stack([np.load(entry) for entry in entries])
