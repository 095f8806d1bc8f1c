"""One capture-and-inference pipeline that can outlive its input device.

`Capture.run` feeds a microphone (or raw PCM blocks) through `Model.stream` and hands every
result to a callback. When the microphone goes away, `on_device_loss="exit"` raises the
DeviceError; `"wait"` marks the capture degraded, retries the device every `retry_seconds`
and carries on when it returns. Times and the dropped count continue across reopenings: after a
gap, `start` is the time since the first stream began.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator

import numpy as np

from vocalstream.api import CHANNELS, RATE, Model
from vocalstream.stream.pipeline import Result
from vocalstream.stream.sources import (
    DeviceError,
    Microphone,
    SampleBudget,
    check_capture,
    refresh_devices,
)

log = logging.getLogger("vocalstream")
DEVICE_LOSS = ("wait", "exit")


@dataclasses.dataclass(frozen=True)
class Health:
    status: str  # "ok" | "degraded"
    reason: str | None  # why it is degraded
    windows: int
    dropped: int
    overruns: int
    device: str | None  # the capture device's name, or "standard input"; None before opening
    device_up: bool
    reopened: int  # times the device came back after a loss


class Capture:
    def __init__(
        self,
        model: Model,
        hop: float,
        device: int | str | None = None,
        blocks: Iterable[np.ndarray] | None = None,
        on_device_loss: str = "exit",
        duration: float | None = None,
        retry_seconds: float = 1.0,
    ):
        """device: a microphone (index, name substring, or None for the system's); or `blocks`,
        44.1 kHz stereo blocks such as raw PCM from standard input, read once to their end."""
        if on_device_loss not in DEVICE_LOSS:
            raise ValueError(f"on_device_loss must be one of {DEVICE_LOSS}")
        if blocks is None:
            check_capture()  # no PortAudio at all will not come back: fail now, in any mode
        self.model = model
        self.hop = hop
        self.device = device
        self.blocks = blocks
        self.on_device_loss = on_device_loss
        self.budget = SampleBudget(None if duration is None else round(duration * RATE))
        self.retry_seconds = retry_seconds
        self.stopping = threading.Event()
        self._stream_stop = threading.Event()  # the current stream's: a pipeline sets it as it ends
        self._lock = threading.Lock()
        self._windows = 0
        self._dropped_before = 0  # by streams that have ended
        self._overruns_before = 0
        self._live = None
        self._microphone: Microphone | None = None
        self._device_name: str | None = None
        self._reason: str | None = "opening the input"
        self._reopened = 0
        self._origin: float | None = None  # monotonic time the first stream began

    def stop(self) -> None:
        """Finish the windows in flight, then make `run` return."""
        self.stopping.set()
        self._stream_stop.set()

    @property
    def health(self) -> Health:
        with self._lock:
            live, microphone = self._live, self._microphone
            return Health(
                "degraded" if self._reason else "ok",
                self._reason,
                self._windows,
                self._dropped_before + (live.dropped if live else 0),
                self._overruns_before + (microphone.overruns if microphone else 0),
                self._device_name,
                self._reason is None,
                self._reopened,
            )

    def run(self, deliver: Callable[[Result], None]) -> None:
        """Classify until stopped or the input ends; `deliver` gets each result in order."""
        lost = False
        while not self.stopping.is_set():
            self._stream_stop = threading.Event()
            if self.stopping.is_set():  # stop() came between the check and the new event
                return
            try:
                with self._opened() as blocks:
                    if lost:
                        self._reopened += 1
                        log.warning("the capture device is back: listening again")
                    lost = False
                    self._classify(blocks, deliver)
                return
            except DeviceError as error:
                if self.blocks is not None or self.on_device_loss == "exit":
                    raise
                if not lost:
                    log.warning("%s; waiting for it to come back", error)
                lost = True
                with self._lock:
                    self._reason = str(error)
                self.stopping.wait(self.retry_seconds)
                refresh_devices()

    @contextlib.contextmanager
    def _opened(self) -> Iterator[Iterable[np.ndarray]]:
        if self.blocks is not None:
            with self._lock:
                self._reason, self._device_name = None, "standard input"
            yield self.blocks
            return
        with Microphone(self.device, RATE, CHANNELS) as microphone:
            with self._lock:
                self._microphone, self._reason = microphone, None
                self._device_name = microphone.name
            try:
                yield microphone.blocks(self._stream_stop)
            finally:
                with self._lock:
                    self._overruns_before += microphone.overruns
                    self._microphone = None

    def _classify(self, blocks: Iterable[np.ndarray], deliver: Callable[[Result], None]) -> None:
        now = time.monotonic()
        if self._origin is None:
            self._origin = now
        offset = now - self._origin
        live = self.model.stream(self.budget.take(blocks), hop=self.hop, stop=self._stream_stop)
        with self._lock:
            self._live = live
        try:
            for result in live:
                result = dataclasses.replace(
                    result,
                    start=result.start + offset,
                    end=result.end + offset,
                    dropped=self._dropped_before + result.dropped,
                )
                with self._lock:
                    self._windows += 1
                deliver(result)
        finally:
            with self._lock:
                self._dropped_before += live.dropped
                self._live = None
