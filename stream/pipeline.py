"""The streaming engine: source blocks -> front-end windows -> classifier -> results, on two
threads.

A producer thread reads the source and feeds the front-end (framing, separation, windows); the
caller's thread classifies the windows. Live, the producer never waits: when the classifier falls
behind, the oldest pending windows are dropped and counted. For files the producer waits instead,
so nothing is lost. Either way at most `max_pending` windows are held.
"""

from __future__ import annotations

import collections
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

import numpy as np

from vocalstream import audio
from vocalstream.inference.frontend import Window
from vocalstream.inference.model import VoiceModel
from vocalstream.models.labels import decide


@dataclass(frozen=True)
class Result:
    """One classified 3-s window."""

    index: int
    start: float  # seconds from the start of the stream
    end: float
    padded: bool  # the stream ended inside the window: zeros fill the rest
    probabilities: np.ndarray  # [classes], in the order of `labels`
    latency_ms: float  # from the last sample the window needs being available to its result
    dropped: int  # windows dropped so far in this stream
    vocal_level: float  # the vocals' energy relative to the mix's, dB
    input_level: float  # the mix's level, dB relative to a full-scale sine
    labels: tuple[str, ...] = field(default=(), repr=False)

    @property
    def label_id(self) -> int:
        return int(decide(self.probabilities))

    @property
    def label(self) -> str:
        return self.labels[self.label_id]


class Pipeline:
    def __init__(
        self,
        model: VoiceModel,
        hop_seconds: float,
        live: bool,
        max_pending: int = 8,
        batch: int = 16,
    ):
        self.model = model
        self.hop_seconds = hop_seconds
        self.live = live
        self.max_pending = max_pending
        self.batch = 1 if live else batch
        self.dropped = 0
        self.windows = 0
        self.samples = 0  # audio received, at the front-end's rate

    def run(
        self, blocks: Iterable[np.ndarray], stop: threading.Event | None = None
    ) -> Iterator[Result]:
        """blocks: 44.1 kHz stereo [2, n] (or mono [n]) as they arrive."""
        stop = stop or threading.Event()
        features = self.model.feature_stream(self.hop_seconds, self.live)
        pending: collections.deque[tuple[Window, float]] = collections.deque()
        condition = threading.Condition()
        state = {"done": False, "error": None}

        def offer(windows: list[Window], ready: float) -> None:
            for window in windows:
                with condition:
                    if self.live:
                        if len(pending) >= self.max_pending:
                            pending.popleft()
                            self.dropped += 1
                    else:
                        condition.wait_for(lambda: len(pending) < self.max_pending or stop.is_set())
                    pending.append((window, ready))
                    condition.notify_all()

        def produce() -> None:
            try:
                for block in blocks:
                    arrived = time.monotonic()
                    self.samples += np.shape(block)[-1]
                    offer(features.push(block), arrived)
                    if stop.is_set():
                        break
                offer(features.flush(), time.monotonic())
            except BaseException as error:  # handed to the consumer, which raises it
                state["error"] = error
            finally:
                with condition:
                    state["done"] = True
                    condition.notify_all()

        producer = threading.Thread(target=produce, name="vocalstream-source", daemon=True)
        producer.start()
        labels = self.model.labels
        # Below the silence level there is nothing to hear, so no voice, whatever the model
        # makes of the noise floor it sees in dB below the window's maximum.
        silence = np.eye(len(labels), dtype=np.float32)[labels.index("no_voice")]
        try:
            while True:
                with condition:
                    condition.wait_for(lambda: pending or state["done"])
                    if state["error"] is not None:
                        raise state["error"]
                    if not pending:
                        return
                    taken = [pending.popleft() for _ in range(min(self.batch, len(pending)))]
                    condition.notify_all()
                probabilities = self.model.window_probabilities([window for window, _ in taken])
                silent = [window.input_level < audio.SILENCE_LEVEL_DB for window, _ in taken]
                probabilities[silent] = silence
                finished = time.monotonic()
                for (window, ready), row in zip(taken, probabilities, strict=True):
                    self.windows += 1
                    yield Result(
                        window.index,
                        window.start,
                        window.end,
                        window.padded,
                        row,
                        1e3 * (finished - ready),
                        self.dropped,
                        round(window.vocal_level, 2),
                        round(window.input_level, 2),
                        labels,
                    )
        finally:
            stop.set()
            with condition:
                condition.notify_all()
            producer.join(timeout=5)
