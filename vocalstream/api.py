"""The Python API: load a model, analyse a recording, classify a live stream.

import vocalstream
model = vocalstream.load_model()              # the bundled model; or a bundle path, device=
result = model.analyse("song.mp3", hop=1.0)   # windows and smoothed segments
for segment in result.segments:
    print(segment.start, segment.end, segment.label, segment.probability)
"""

from __future__ import annotations

import dataclasses
import os
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vocalstream import audio
from vocalstream.defaults import FILE_HOP_SECONDS, LISTEN_HOP_SECONDS
from vocalstream.errors import AudioError
from vocalstream.inference.bundle import Bundle
from vocalstream.inference.model import VoiceModel
from vocalstream.stream.pipeline import Pipeline, Result
from vocalstream.stream.timeline import Segment, Smoothing, segments, window_event

RATE = audio.SEPARATION_RATE  # what the model listens to: 44.1 kHz stereo
CHANNELS = audio.SEPARATION_CHANNELS


@dataclass(frozen=True)
class Analysis:
    """A whole recording: every window's probabilities and the smoothed timeline."""

    path: str
    duration: float  # seconds
    windows: list[Result]
    segments: list[Segment]

    def to_dict(self) -> dict:
        """The documented record of `vocalstream file` (docs/output.md)."""
        return {
            "path": self.path,
            "duration": self.duration,
            "segments": [dataclasses.asdict(segment) for segment in self.segments],
            "windows": [window_event(window) for window in self.windows],
        }


def _converted(blocks: Iterable[np.ndarray], sample_rate: int) -> Iterator[np.ndarray]:
    """Blocks [n] or [channels, n] at any rate -> [2, m] at the model's rate."""
    convert = None
    for block in blocks:
        block = np.asarray(block, dtype=np.float32)
        block = block.reshape(-1, block.shape[-1]) if block.ndim else block.reshape(1, 1)
        if not np.isfinite(block).all():
            raise AudioError("the audio holds NaN or infinite samples")
        if convert is None:
            convert = audio.Converter(sample_rate, block.shape[0], RATE, CHANNELS)
        yield convert(block.T)
    if convert is not None:
        yield convert(np.zeros((0, convert.source_channels), np.float32), last=True)


class LiveStream:
    """The results of a live stream as they come, with its health counters."""

    def __init__(self, pipeline: Pipeline, results: Iterator[Result]):
        self._pipeline = pipeline
        self._results = results

    def __iter__(self) -> Iterator[Result]:
        return self._results

    @property
    def windows(self) -> int:
        """Windows classified so far."""
        return self._pipeline.windows

    @property
    def dropped(self) -> int:
        """Windows dropped so far because classification fell behind."""
        return self._pipeline.dropped


class Model:
    """A loaded model: `analyse` recordings, `stream` live audio. Labels are `model.labels`."""

    def __init__(self, engine: VoiceModel):
        self.engine = engine
        self.labels = engine.labels
        self._warm = False

    @property
    def provider(self) -> str:
        """The onnxruntime execution provider that actually runs: CUDA or CPU."""
        return self.engine.provider

    @property
    def bundle(self) -> Bundle:
        return self.engine.bundle

    def analyse(
        self,
        source: str | os.PathLike | np.ndarray | Iterable[np.ndarray],
        hop: float = FILE_HOP_SECONDS,
        smoothing: Smoothing | None = None,
        sample_rate: int = RATE,
        name: str | None = None,
    ) -> Analysis:
        """Classify a recording in 3-s windows every `hop` seconds and smooth them into segments.

        source: an audio file (wav, flac, ogg, mp3), or audio as an array [n] or [channels, n]
        (or blocks of it) at `sample_rate`."""
        if isinstance(source, (str, os.PathLike)):
            name = name or os.fspath(source)
            blocks: Iterable[np.ndarray] = audio.stream(source, RATE, CHANNELS)
        else:
            name = name or "<array>"
            source = [source] if isinstance(source, np.ndarray) else source
            blocks = _converted(source, sample_rate)
        pipeline = Pipeline(self.engine, hop, live=False)
        windows = list(pipeline.run(blocks))
        if not windows:
            raise AudioError(f"{name}: holds no audio samples")
        duration = round(pipeline.samples / RATE, 3)
        timeline = segments(windows, hop, smoothing or Smoothing(), duration)
        return Analysis(str(name), duration, windows, timeline)

    def stream(
        self,
        blocks: Iterable[np.ndarray],
        sample_rate: int = RATE,
        hop: float = LISTEN_HOP_SECONDS,
        stop: threading.Event | None = None,
        max_pending: int = 4,
    ) -> LiveStream:
        """Classify live audio: iterate over the result to get each window's Result as soon as
        it is classified.

        blocks: [n] or [channels, n] arrays at `sample_rate`, as they arrive. When the model
        falls behind, the oldest pending windows are dropped (Result.dropped counts them)."""
        if not self._warm:
            self.engine.warm_up()
            self._warm = True
        pipeline = Pipeline(self.engine, hop, live=True, max_pending=max_pending)
        return LiveStream(pipeline, pipeline.run(_converted(blocks, sample_rate), stop))


def load_model(
    model: str | os.PathLike | None = None, device: str = "auto", threads: int | None = None
) -> Model:
    """The bundled default model, or the bundle folder `model`, on `device` ("auto" takes CUDA
    where onnxruntime can use it, else the CPU; "cpu"; "cuda")."""
    return Model(VoiceModel(Path(model) if model is not None else None, device, threads))
