"""The streaming engine: source blocks -> windows -> classifier -> results, on two threads.

A producer thread reads the source and cuts windows; the caller's thread classifies them. Live,
the producer never waits: when inference falls behind, the oldest pending windows are dropped and
counted. For files the producer waits instead, so nothing is lost. Either way at most
`max_pending` windows are held.
"""

from __future__ import annotations

import collections
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import numpy as np

from vocalstream.stream.windows import Window, Windower


@dataclass(frozen=True)
class Result:
    index: int
    start: float
    end: float
    padded: bool
    probabilities: np.ndarray  # [classes]
    latency_ms: float  # from the window's last sample being available to its result
    dropped: int  # windows dropped so far in this stream


class Pipeline:
    def __init__(
        self,
        classifier,
        hop_seconds: float,
        live: bool,
        max_pending: int = 8,
        batch: int = 8,
    ):
        self.classifier = classifier
        rate = classifier.sample_rate
        self.hop = max(1, round(hop_seconds * rate))
        self.live = live
        self.max_pending = max_pending
        self.batch = 1 if live else batch
        self.dropped = 0
        self.windows = 0

    def run(self, blocks: Iterable[np.ndarray], stop: threading.Event | None = None
            ) -> Iterator[Result]:  # fmt: skip
        stop = stop or threading.Event()
        classifier = self.classifier
        windower = Windower(classifier.window_samples, self.hop, classifier.sample_rate,
                            classifier.channels)  # fmt: skip
        pending: collections.deque[tuple[Window, float]] = collections.deque()
        condition = threading.Condition()
        state = {"done": False, "error": None}

        def offer(window: Window) -> None:
            with condition:
                if self.live:
                    if len(pending) >= self.max_pending:
                        pending.popleft()
                        self.dropped += 1
                else:
                    condition.wait_for(lambda: len(pending) < self.max_pending or stop.is_set())
                pending.append((window, time.monotonic()))
                condition.notify_all()

        def produce() -> None:
            try:
                for block in blocks:
                    for window in windower.push(block):
                        offer(window)
                    if stop.is_set():
                        break
                for window in windower.flush():
                    offer(window)
            except BaseException as error:  # handed to the consumer, which raises it
                state["error"] = error
            finally:
                with condition:
                    state["done"] = True
                    condition.notify_all()

        producer = threading.Thread(target=produce, name="vocalstream-source", daemon=True)
        producer.start()
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
                windows = [window for window, _ in taken]
                probabilities = classifier.classify(np.stack([w.samples for w in windows]))
                finished = time.monotonic()
                for (window, ready), row in zip(taken, probabilities, strict=True):
                    self.windows += 1
                    yield Result(window.index, window.start, window.end, window.padded, row,
                                 1e3 * (finished - ready), self.dropped)  # fmt: skip
        finally:
            stop.set()
            with condition:
                condition.notify_all()
            producer.join(timeout=5)
