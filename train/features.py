"""Classifier features of labelled snippets, computed once and cached on disk.

A snippet's features are those of its first WINDOW_SECONDS on their own (shorter snippets are
zero-padded), computed by the same streaming front-end the daemon runs: of the separated vocals,
or of the mix when there is no estimator. The cache key is the file's sha256, the front-end
version, the mode, the separator variant and the decibels' reference, so a second epoch, a second
run or a renamed file never separates again, and a front-end change never reuses stale features.
Each entry is written whole as it is computed, so an interrupted run keeps what it had done; with
jobs > 1, worker processes compute (and write) entries side by side, each with its own separator
on onnxruntime's CPU provider, the cores shared between them. A separated snippet's "window" and
"mix" features come from the same vocals, so both are written at once: the voice gate
(reference=mix) and the members beside it (reference=window) separate each snippet only once.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits
from tqdm import tqdm

from vocalstream import audio
from vocalstream.files import atomic_path, sha256
from vocalstream.inference.device import cores
from vocalstream.inference.frontend import BOTH, snippet_features
from vocalstream.inference.separator import DEFAULT_VARIANT, MaskEstimator, load_estimator
from vocalstream.processes import in_processes


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
        self.variant = variant
        self.reference = reference
        self.mode = _mode(estimator is not None, variant, reference)
        self.directory = _directory(directory, self.mode)
        self.directory.mkdir(parents=True, exist_ok=True)
        # A separated "window" or "mix" entry is computed as "both", each channel to its folder.
        shared = estimator is not None and reference in BOTH
        self.computed_reference = "both" if shared else reference
        self.folders = [
            _directory(directory, _mode(estimator is not None, variant, r))
            for r in (BOTH if shared else (reference,))
        ]

    def _entry(self, digest: str) -> Path:
        return self.directory / digest[:2] / f"{digest}.npy"

    def _targets(self, digest: str) -> tuple[Path, ...]:
        return tuple(folder / digest[:2] / f"{digest}.npy" for folder in self.folders)

    def features(
        self, paths: Sequence[str | os.PathLike], progress: bool = False, jobs: int = 1
    ) -> np.ndarray:
        """Features [len(paths), 1, N_MELS, WINDOW_FRAMES] float32, computing only what is new,
        in `jobs` processes."""
        paths = [Path(p) for p in paths]
        digests = [sha256(p) for p in paths]
        entries = [self._entry(d) for d in digests]
        missing = {
            self._targets(d): path
            for d, entry, path in zip(digests, entries, paths, strict=True)
            if not entry.exists()
        }
        bar = tqdm(
            total=len(missing),
            desc=f"features ({self.mode})",
            unit="file",
            disable=None if progress and missing else True,
        )
        # BLAS threads of the front-end's own beside onnxruntime's oversubscribe the cores: on 2
        # cores, 16 files/s with them against 22 without (bench/features.py).
        with bar, threadpool_limits(1, user_api="blas"):
            if jobs <= 1 or len(missing) <= 1:
                for targets, path in missing.items():
                    _write(targets, path, self.estimator, self.computed_reference)
                    bar.update()
            else:
                variant = self.variant if self.estimator is not None else None
                for _ in in_processes(
                    _write_in_worker,
                    missing.items(),
                    jobs,
                    _start_worker,
                    (variant, max(1, cores() // jobs), self.computed_reference),
                    "a feature worker died (out of memory?); what it finished is kept",
                ):
                    bar.update()
        return np.stack([np.load(entry) for entry in entries])


def _mode(separated: bool, variant: str, reference: str) -> str:
    mode = f"vocals-{variant}" if separated else "mix"
    if reference != "window":  # the original caches keep their names
        mode += f"-{reference}"
    return mode


def _directory(root: str | os.PathLike, mode: str) -> Path:
    return Path(root) / f"{mode}-frontend{audio.FRONTEND_VERSION}"


def _write(
    targets: Sequence[Path], path: Path, estimator: MaskEstimator | None, reference: str
) -> None:
    """The features of `path`, one channel group per target, each written whole."""
    waveform = audio.load(path, audio.SEPARATION_RATE, audio.SEPARATION_CHANNELS)
    features = snippet_features(waveform, estimator, reference)
    for target, part in zip(targets, np.split(features, len(targets)), strict=True):
        target.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(target) as scratch:
            np.save(scratch, part)


_worker: dict = {}  # a worker process's separator and reference


def _start_worker(variant: str | None, threads: int, reference: str) -> None:
    threadpool_limits(1, user_api="blas")
    estimator = None if variant is None else load_estimator("onnx", "cpu", variant, threads)
    _worker.update(estimator=estimator, reference=reference)


def _write_in_worker(item: tuple[tuple[Path, ...], Path]) -> None:
    targets, path = item
    _write(targets, path, _worker["estimator"], _worker["reference"])
