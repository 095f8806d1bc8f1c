"""What `vocalstream file` and `vocalstream listen` do, as plain functions over a classifier."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable, Iterator
from typing import TextIO

import numpy as np

from vocalstream.stream.pipeline import Pipeline
from vocalstream.stream.timeline import Smoothing, segments, window_event


def limited(blocks: Iterable[np.ndarray], samples: int | None) -> Iterator[np.ndarray]:
    """The first `samples` of a block stream (all of it when None)."""
    for block in blocks:
        if samples is not None:
            block = block[:, :samples]
            samples -= block.shape[1]
        if block.shape[1]:
            yield block
        if samples is not None and samples <= 0:
            return


def analyse(classifier, blocks: Iterable[np.ndarray], name: str, hop_seconds: float,
            smoothing: Smoothing) -> dict:  # fmt: skip
    """A whole recording: its per-window events and its smoothed timeline of segments."""
    streamed = 0

    def counted(source: Iterable[np.ndarray]) -> Iterator[np.ndarray]:
        nonlocal streamed
        for block in source:
            streamed += block.shape[1]
            yield block

    results = list(Pipeline(classifier, hop_seconds, live=False).run(counted(blocks)))
    duration = round(streamed / classifier.sample_rate, 3)
    return {
        "path": name,
        "duration": duration,
        "segments": segments(results, classifier.labels, hop_seconds, smoothing, duration),
        "windows": [window_event(r, classifier.labels) for r in results],
    }


def listen(classifier, blocks: Iterable[np.ndarray], out: TextIO, hop_seconds: float,
           stop: threading.Event, max_pending: int = 4) -> dict:  # fmt: skip
    """One JSON line per window, flushed, until the source ends or `stop` is set. Returns the
    health counters."""
    pipeline = Pipeline(classifier, hop_seconds, live=True, max_pending=max_pending)
    for result in pipeline.run(blocks, stop):
        out.write(json.dumps(window_event(result, classifier.labels)) + "\n")
        out.flush()
        if stop.is_set():
            break
    return {"windows": pipeline.windows, "dropped": pipeline.dropped}
