"""The inference object: a verified bundle's separator and classifier, ready to run."""

from __future__ import annotations

import logging
import os

import numpy as np
from threadpoolctl import threadpool_limits

from vocalstream import audio
from vocalstream.errors import ModelError
from vocalstream.inference.bundle import INPUT, OUTPUT, Bundle, resolve_bundle
from vocalstream.inference.device import CPU, CUDA, create_session, provider
from vocalstream.inference.frontend import FeatureStream, snippet_features
from vocalstream.inference.separator import VARIANTS, OnnxMaskEstimator

log = logging.getLogger("vocalstream")


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
        self.labels = tuple(self.bundle.manifest["labels"])
        self.max_batch = max_batch
        self._binding = self.provider == CUDA
        log.debug(
            "model %s: classifier %s, separator %s, onnxruntime %s",
            self.bundle.folder,
            self.classifier,
            self.bundle.separator_variant if self.estimator else "none",
            self.provider,
        )

    def warm_up(self) -> None:
        """onnxruntime's first runs allocate and pick kernels (about a second here): a live
        stream pays that before its first window, not on it."""
        for _ in range(2):
            self.classify_snippets(np.zeros((1, 2, audio.WINDOW_SECONDS * audio.SEPARATION_RATE)))

    @property
    def provider(self) -> str:
        return provider(self.session)

    def feature_stream(self, hop_seconds: float, live: bool) -> FeatureStream:
        """A fresh front-end for one stream of 44.1 kHz stereo audio."""
        return FeatureStream(self.estimator, hop_seconds, live, reference=self.bundle.reference)

    def probabilities(self, features: np.ndarray) -> np.ndarray:
        """Class probabilities [B, len(labels)] of features [B, 1, N_MELS, WINDOW_FRAMES]."""
        features = np.ascontiguousarray(features, dtype=np.float32)
        parts = [
            self._run(features[start : start + self.max_batch])
            for start in range(0, len(features), self.max_batch)
        ]
        return np.concatenate(parts) if parts else np.zeros((0, len(self.labels)), np.float32)

    def _run(self, features: np.ndarray) -> np.ndarray:
        if not self._binding:
            return self.session.run([OUTPUT], {INPUT: features})[0]
        binding = self.session.io_binding()  # CUDA: no extra host copies between runs
        binding.bind_cpu_input(INPUT, features)
        binding.bind_output(OUTPUT)
        self.session.run_with_iobinding(binding)
        return binding.copy_outputs_to_cpu()[0]

    def classify_snippets(self, snippets: np.ndarray) -> np.ndarray:
        """Probabilities [B, len(labels)] of the first 3 s of each snippet [B, 2, n] (44.1 kHz),
        each on its own, as training saw them."""
        reference = self.bundle.reference
        features = np.stack([snippet_features(s, self.estimator, reference) for s in snippets])
        return self.probabilities(features)
