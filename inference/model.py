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
    PITCH,
    PITCH_INPUT,
    PITCH_OUTPUT,
    Bundle,
    resolve_bundle,
)
from vocalstream.inference.device import CPU, CUDA, create_session, provider
from vocalstream.inference.frontend import (
    FeatureStream,
    Window,
    music_features,
    pitch_input,
    snippet_window,
)
from vocalstream.inference.fusion import fuse_gender, fuse_several, polyphony
from vocalstream.inference.separator import VARIANTS, OnnxMaskEstimator
from vocalstream.models.labels import LABELS, decide

log = logging.getLogger("vocalstream")

# musicnn's activations take about 30 MB a window (its front-end keeps 204 filters x 188 frames
# x 59 bands twice). One window a run was the fastest here too: 24 ms, against 27 ms in fours,
# which also held 140 MB more.
MUSIC_BATCH = 1
# basic-pitch ran 19.9 ms a window alone and 17.9 ms in eights here: one a run holds least.
PITCH_BATCH = 1
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
        self.pitch_session = None
        if self.bundle.pitch:
            self.pitch_session = create_session(self.bundle.path(PITCH), device, threads)
        self.labels = tuple(self.bundle.manifest["labels"])
        self.max_batch = max_batch
        self._binding = self.provider == CUDA
        log.debug(
            "model %s: classifier %s, branches %s, separator %s, onnxruntime %s",
            self.bundle.folder,
            self.classifier,
            [name for name, s in ((MUSIC, self.music_session), (PITCH, self.pitch_session)) if s],
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
            if self.pitch_session is not None:
                stem = np.zeros((1, audio.PITCH_SAMPLES, 1), np.float32)
                self._run(self.pitch_session, PITCH_INPUT, PITCH_OUTPUT, stem)

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
            keep_vocals=self.pitch_session is not None,
        )

    def classifier_probabilities(self, features: np.ndarray) -> np.ndarray:
        """The classifier's own probabilities [B, len(labels)] of features [B, C, N_MELS,
        WINDOW_FRAMES], before any real-music branch."""
        if not len(features):
            return np.zeros((0, len(self.labels)), np.float32)
        return self._batched(self.session, INPUT, OUTPUT, features, self.max_batch)

    def probabilities(
        self,
        features: np.ndarray,
        mixes: np.ndarray | None = None,
        vocals: np.ndarray | None = None,
    ) -> np.ndarray:
        """Class probabilities [B, len(labels)] of features [B, C, N_MELS, WINDOW_FRAMES] and,
        for a bundle with branches, the windows' mono mixes [B, WINDOW_SAMPLES] (Window.mix:
        the real-music branch) and vocal spectra [B, WINDOW_FRAMES, BINS] (Window.vocals: the
        pitch branch).

        The branches only tell male from female and one voice from several, so they run only on
        windows where the classifier hears a voice (decide), and only there are their inputs
        computed; elsewhere the classifier's probabilities stand. On a mostly instrumental
        library that saves most of their cost."""
        probabilities = self.classifier_probabilities(features)
        if self.music_session is not None:
            mixes = self._inputs(mixes, features, "real-music", "mix")
        if self.pitch_session is not None:
            vocals = self._inputs(vocals, features, "pitch", "vocal spectrum")
        voiced = decide(probabilities) != NO_VOICE if len(probabilities) else []
        if not np.any(voiced):
            return probabilities
        if self.music_session is not None:
            mixes = mixes[voiced]
            music = np.stack([music_features(mix) for mix in mixes])
            tags = self._batched(self.music_session, MUSIC_INPUT, MUSIC_OUTPUT, music, MUSIC_BATCH)
            fusion = self.bundle.music["gender_fusion"]
            probabilities[voiced] = fuse_gender(probabilities[voiced], tags, fusion)
        if self.pitch_session is not None:
            heard = self.polyphonies(vocals[voiced])
            fusion = self.bundle.pitch["several_fusion"]
            probabilities[voiced] = fuse_several(probabilities[voiced], heard, fusion)
        return probabilities

    def polyphonies(self, vocals: np.ndarray) -> np.ndarray:
        """The pitch branch's polyphony [B] of windows' vocal spectra [B, WINDOW_FRAMES, BINS]."""
        stems = np.stack([pitch_input(spectrum) for spectrum in vocals])
        contour = self._batched(self.pitch_session, PITCH_INPUT, PITCH_OUTPUT, stems, PITCH_BATCH)
        return polyphony(contour)

    def window_probabilities(self, windows: list[Window]) -> np.ndarray:
        """probabilities() of windows from this model's feature_stream() or snippet_window()."""
        if not windows:
            return np.zeros((0, len(self.labels)), np.float32)
        return self.probabilities(
            np.stack([w.features for w in windows]),
            np.stack([w.mix for w in windows]) if self.music_session is not None else None,
            np.stack([w.vocals for w in windows]) if self.pitch_session is not None else None,
        )

    def _inputs(self, values, features: np.ndarray, branch: str, what: str) -> np.ndarray:
        if values is None or len(values) != len(features):
            raise ModelError(
                f"{self.bundle.folder}: its {branch} branch needs each window's {what}"
            )
        return np.asarray(values)

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
        return self.window_probabilities([self.snippet_window(s) for s in snippets])

    def snippet_window(self, snippet: np.ndarray) -> Window:
        """The window of a snippet's first 3 s on its own (frontend.snippet_window), with what
        this model's branches need."""
        return snippet_window(
            snippet,
            self.estimator,
            self.bundle.reference,
            keep_mix=self.music_session is not None,
            keep_vocals=self.pitch_session is not None,
        )
