"""onnxruntime sessions with deliberate providers and thread counts."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import onnxruntime as ort

from vocalstream.errors import ModelError

DEVICES = ("auto", "cpu", "cuda")
_PROVIDERS = {
    "cpu": ["CPUExecutionProvider"],
    "cuda": ["CUDAExecutionProvider", "CPUExecutionProvider"],
}


def default_threads() -> int:
    """Intra-op threads: every core the process may use. Torch must not compete in the same
    process at the same time; on 2 cores that oversubscription costs far more than it gains."""
    return max(1, len(os.sched_getaffinity(0)))


def create_session(
    path: str | os.PathLike, device: str = "cpu", threads: int | None = None
) -> ort.InferenceSession:
    """Open an ONNX model. device: "cpu", "cuda" (an error if CUDA cannot run it) or "auto"
    (CUDA when it works, else CPU). The provider actually running is session.get_providers()[0]."""
    if device not in DEVICES:
        raise ValueError(f"device must be one of {DEVICES}, got {device!r}")
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads or default_threads()
    options.inter_op_num_threads = 1
    # onnxruntime-gpu logs screens of errors when CUDA libraries are absent; vocalstream reports
    # the outcome itself, in one line.
    options.log_severity_level = 3
    ort.set_default_logger_severity(4)
    wanted = _PROVIDERS["cuda" if device in ("auto", "cuda") else "cpu"]
    try:
        session = ort.InferenceSession(os.fspath(path), options, providers=wanted)
    except Exception as error:  # onnxruntime raises bare RuntimeError subclasses
        raise ModelError(f"{Path(path)}: cannot be loaded by onnxruntime ({error})") from error
    if device == "cuda" and session.get_providers()[0] != "CUDAExecutionProvider":
        raise ModelError(
            "CUDA was asked for but onnxruntime cannot use it here "
            f"(available: {', '.join(ort.get_available_providers())}); use --device cpu or auto"
        )
    return session


def provider(session: ort.InferenceSession) -> str:
    """The execution provider that runs the session's nodes first: CUDA or CPU."""
    return session.get_providers()[0]


class VoiceClassifier:
    """A model bundle on onnxruntime: 3-s windows of audio in, class probabilities out.

    Windows are [B, channels, samples] at `sample_rate`: 44.1 kHz stereo when the bundle
    classifies separated vocals (the fused front-end), 22.05 kHz mono when it classifies the
    mix. Windows are processed `max_batch` at a time.

    onnxruntime gets the process's cores; torch, which only runs the front-end's small STFT and
    mel steps here, is set to one thread so the two pools do not fight over them (2 cores,
    seed000 ensemble: p99 per window 431 ms with two torch threads, 292 ms with one).
    """

    def __init__(
        self,
        bundle,
        device: str = "auto",
        threads: int | None = None,
        fp16: bool = False,
        max_batch: int = 32,
    ):
        import torch

        from vocalstream.export.bundle import CLASSIFIER, CLASSIFIER_FP16, Bundle, load_bundle
        from vocalstream.export.separator import OnnxMaskEstimator

        torch.set_num_threads(1)

        self.bundle = bundle if isinstance(bundle, Bundle) else load_bundle(bundle)
        files = self.bundle.manifest["files"]
        name = CLASSIFIER_FP16 if fp16 or CLASSIFIER not in files else CLASSIFIER
        if name not in files:
            raise ModelError(f"{self.bundle.folder}: has no {name} (export it with --fp16)")
        self.session = create_session(self.bundle.path(name), device, threads)
        self.separator = None
        if self.bundle.separation:
            self.separator = OnnxMaskEstimator(self.bundle.separator_path(), device, threads)
        self.labels = tuple(self.bundle.manifest["labels"])
        self.max_batch = max_batch
        self._binding = self.provider == "CUDAExecutionProvider"
        # onnxruntime's first runs allocate and pick kernels (about a second here): pay that now,
        # not on the first window of a live stream.
        for _ in range(2):
            self.classify(np.zeros((1, self.channels, self.window_samples), np.float32))

    @property
    def provider(self) -> str:
        return provider(self.session)

    @property
    def sample_rate(self) -> int:
        from vocalstream import audio

        return audio.SEPARATION_RATE if self.separator else audio.CLASSIFIER_RATE

    @property
    def channels(self) -> int:
        return 2 if self.separator else 1

    @property
    def window_samples(self) -> int:
        from vocalstream import audio

        return audio.WINDOW_SECONDS * self.sample_rate

    def features(self, windows):
        """Log-mel features [B, 1, N_MELS, WINDOW_FRAMES] of windows [B, channels, samples]."""
        import torch

        from vocalstream import audio
        from vocalstream.stream.separation import vocal_logmel

        batch = torch.from_numpy(np.ascontiguousarray(windows, dtype=np.float32))
        with torch.inference_mode():
            if self.separator is not None:
                return vocal_logmel(batch, self.separator).numpy()
            return audio.logmel(batch.mean(dim=1)).numpy()

    def probabilities_of(self, features):
        """Class probabilities [B, len(labels)] of features [B, 1, N_MELS, WINDOW_FRAMES]."""
        features = np.ascontiguousarray(features, dtype=np.float32)
        if not self._binding:
            return self.session.run(None, {"features": features})[0]
        binding = self.session.io_binding()  # CUDA: no extra host copies between runs
        binding.bind_cpu_input("features", features)
        binding.bind_output("probabilities")
        self.session.run_with_iobinding(binding)
        return binding.copy_outputs_to_cpu()[0]

    def classify(self, windows):
        """Class probabilities [B, len(labels)] of audio windows [B, channels, samples]."""
        windows = np.asarray(windows, dtype=np.float32)
        expected = (self.channels, self.window_samples)
        if windows.ndim != 3 or windows.shape[1:] != expected:
            raise ValueError(f"windows must be [B, {expected[0]}, {expected[1]}], got "
                             f"{list(windows.shape)}")  # fmt: skip
        parts = [
            self.probabilities_of(self.features(windows[i : i + self.max_batch]))
            for i in range(0, len(windows), self.max_batch)
        ]
        return np.concatenate(parts) if parts else np.zeros((0, len(self.labels)), np.float32)
