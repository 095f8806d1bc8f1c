"""The inference object: a verified bundle's separator and classifier, ready to run."""

from __future__ import annotations

import logging
import os

import numpy as np
from threadpoolctl import threadpool_limits

from vocalstream import audio
from vocalstream.errors import ModelError
from vocalstream.inference.bundle import (
    INPUT,
    MUSIC,
    MUSIC_INPUT,
    MUSIC_OUTPUT,
    OUTPUT,
    Bundle,
    resolve_bundle,
)
from vocalstream.inference.device import CPU, CUDA, create_session, provider
from vocalstream.inference.frontend import FeatureStream, music_features, snippet_window
from vocalstream.inference.fusion import fuse_gender
from vocalstream.inference.separator import VARIANTS, OnnxMaskEstimator
from vocalstream.models.labels import LABELS, decide

log = logging.getLogger("vocalstream")

# musicnn's activations take about 30 MB a window (its front-end keeps 204 filters x 188 frames
# x 59 bands twice). One window a run was the fastest here too: 24 ms, against 27 ms in fours,
# which also held 140 MB more.
MUSIC_BATCH = 1
NO_VOICE = LABELS.index("no_voice")


class VoiceModel:
    """A model bundle on onnxruntime: audio in (44.1 kHz stereo), class probabilities out.

    The separator and the classifier are two onnxruntime sessions sharing the cores (their
    threads do not spin while idle); the front-end around them is numpy, so no torch thread pool
    competes with theirs.
    """

    def __init__(
        self,
        bundle: Bundle | str | os.PathLike | None = None,
        device: str = "auto",
        threads: int | None = None,
        max_batch: int = 16,
        precision: str = "auto",
    ):
        # The front-end's numpy runs beside onnxruntime's threads; BLAS threads of its own on top
        # oversubscribe the cores (one worker of `batch --jobs 2` ran 26 % slower). Process-wide.
        threadpool_limits(1, user_api="blas")
        self.bundle = bundle if isinstance(bundle, Bundle) else resolve_bundle(bundle)
        self.estimator = None
        on = None  # the provider that runs, once a session shows it
        if self.bundle.separation:
            self.estimator = OnnxMaskEstimator(self.bundle.separator_path(), device, threads)
            if self.estimator.stems != len(VARIANTS[self.bundle.separator_variant]):
                raise ModelError(
                    f"{self.bundle.folder}: its separator does not match the variant "
                    f"{self.bundle.separator_variant!r} the classifier was trained on"
                )
            on = self.estimator.provider
        on = on or (CPU if device == "cpu" else None)
        self.classifier = self.bundle.classifier_file(precision, on)
        self.session = create_session(self.bundle.path(self.classifier), device, threads)
        self.music_session = None
        if self.bundle.music:
            self.music_session = create_session(self.bundle.path(MUSIC), device, threads)
        self.labels = tuple(self.bundle.manifest["labels"])
        self.max_batch = max_batch
        self._binding = self.provider == CUDA
        log.debug(
            "model %s: classifier %s, music branch %s, separator %s, onnxruntime %s",
            self.bundle.folder,
            self.classifier,
            MUSIC if self.music_session else "none",
            self.bundle.separator_variant if self.estimator else "none",
            self.provider,
        )

    def warm_up(self) -> None:
        """onnxruntime's first runs allocate and pick kernels (about a second here): a live
        stream pays that before its first window, not on it."""
        for _ in range(2):
            self.classify_snippets(np.zeros((1, 2, audio.WINDOW_SECONDS * audio.SEPARATION_RATE)))
            if self.music_session is not None:  # silence never reaches the branch
                music = np.zeros((1, audio.MUSICNN_FRAMES, audio.MUSICNN_MELS), np.float32)
                self._batched(self.music_session, MUSIC_INPUT, MUSIC_OUTPUT, music, MUSIC_BATCH)

    @property
    def provider(self) -> str:
        return provider(self.session)

    def feature_stream(self, hop_seconds: float, live: bool) -> FeatureStream:
        """A fresh front-end for one stream of 44.1 kHz stereo audio."""
        return FeatureStream(
            self.estimator,
            hop_seconds,
            live,
            reference=self.bundle.reference,
            keep_mix=self.music_session is not None,
        )

    def classifier_probabilities(self, features: np.ndarray) -> np.ndarray:
        """The classifier's own probabilities [B, len(labels)] of features [B, C, N_MELS,
        WINDOW_FRAMES], before any real-music branch."""
        if not len(features):
            return np.zeros((0, len(self.labels)), np.float32)
        return self._batched(self.session, INPUT, OUTPUT, features, self.max_batch)

    def probabilities(self, features: np.ndarray, mixes: np.ndarray | None = None) -> np.ndarray:
        """Class probabilities [B, len(labels)] of features [B, C, N_MELS, WINDOW_FRAMES] and,
        for a bundle with a real-music branch, the windows' mono mixes [B, WINDOW_SAMPLES]
        (Window.mix).

        The branch only tells male from female, so it runs only on windows where the classifier
        hears a voice (decide), and only there is its input computed; elsewhere P(male) and
        P(female) are the classifier's own. On a mostly instrumental library that saves most of
        its cost."""
        probabilities = self.classifier_probabilities(features)
        if self.music_session is None or not len(probabilities):
            return probabilities
        if mixes is None or len(mixes) != len(features):
            raise ModelError(f"{self.bundle.folder}: its real-music branch needs each window's mix")
        voiced = decide(probabilities) != NO_VOICE
        if voiced.any():
            music = np.stack([music_features(mix) for mix in np.asarray(mixes)[voiced]])
            tags = self._batched(self.music_session, MUSIC_INPUT, MUSIC_OUTPUT, music, MUSIC_BATCH)
            fusion = self.bundle.music["gender_fusion"]
            probabilities[voiced] = fuse_gender(probabilities[voiced], tags, fusion)
        return probabilities

    def _batched(self, session, name: str, output: str, values: np.ndarray, batch: int):
        values = np.ascontiguousarray(values, dtype=np.float32)
        parts = [
            self._run(session, name, output, values[start : start + batch])
            for start in range(0, len(values), batch)
        ]
        return np.concatenate(parts)

    def _run(self, session, name: str, output: str, values: np.ndarray) -> np.ndarray:
        if not self._binding:
            return session.run([output], {name: values})[0]
        binding = session.io_binding()  # CUDA: no extra host copies between runs
        binding.bind_cpu_input(name, values)
        binding.bind_output(output)
        session.run_with_iobinding(binding)
        return binding.copy_outputs_to_cpu()[0]

    def classify_snippets(self, snippets: np.ndarray) -> np.ndarray:
        """Probabilities [B, len(labels)] of the first 3 s of each snippet [B, 2, n] (44.1 kHz),
        each on its own, as training saw them."""
        keep_mix = self.music_session is not None
        windows = [
            snippet_window(s, self.estimator, self.bundle.reference, keep_mix) for s in snippets
        ]
        return self.probabilities(
            np.stack([w.features for w in windows]),
            np.stack([w.mix for w in windows]) if keep_mix else None,
        )
