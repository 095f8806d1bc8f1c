"""Cutting a stream of audio blocks into fixed windows at a chosen hop."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Window:
    index: int
    start: float  # seconds from the start of the stream
    end: float
    samples: np.ndarray  # [channels, window samples]
    padded: bool  # the stream ended inside it: zeros fill the rest


class Windower:
    """Push blocks [channels, n]; get every complete window of `size` samples, one each `hop`.

    flush() ends the stream: if audio remains that no window has covered, one last window is
    zero-padded and flagged. Memory holds at most one window plus one block.
    """

    def __init__(self, size: int, hop: int, rate: int, channels: int):
        if not 0 < hop <= size:
            raise ValueError(f"hop must lie in 1..window ({size} samples), got {hop}")
        self.size, self.hop, self.rate = size, hop, rate
        self._buffer = np.zeros((channels, 0), dtype=np.float32)
        self._buffer_start = 0  # stream sample index of the buffer's first sample
        self._covered = 0  # stream samples up to the end of the last window emitted
        self._count = 0

    def _window(self, samples: np.ndarray, padded: bool) -> Window:
        start = self._buffer_start
        window = Window(self._count, start / self.rate, (start + self.size) / self.rate,
                        samples, padded)  # fmt: skip
        self._count += 1
        self._covered = start + self.size
        return window

    def push(self, block: np.ndarray) -> list[Window]:
        self._buffer = np.concatenate([self._buffer, np.asarray(block, dtype=np.float32)], axis=1)
        windows = []
        while self._buffer.shape[1] >= self.size:
            windows.append(self._window(self._buffer[:, : self.size].copy(), padded=False))
            self._buffer = self._buffer[:, self.hop :]
            self._buffer_start += self.hop
        return windows

    def flush(self) -> list[Window]:
        end = self._buffer_start + self._buffer.shape[1]
        if end <= self._covered or self._buffer.shape[1] == 0:
            return []
        missing = self.size - self._buffer.shape[1]
        window = self._window(np.pad(self._buffer, ((0, 0), (0, missing))), padded=True)
        self._buffer = self._buffer[:, :0]
        return [window]
