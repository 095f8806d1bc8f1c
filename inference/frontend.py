"""The streaming front-end: 44.1 kHz stereo blocks in, classifier windows out, every sample
framed and separated once.

Frames lie on one grid for the whole stream: frame k is centred on sample k * SEPARATION_HOP, with
zeros before the start, as a centred STFT pads. Mask estimation runs on runs of new frames with
real past frames as left context, padded on the right to the U-Net's multiple of 64. Each frame's
vocal power goes through the mel filters once. A window is 130 consecutive mel frames, cut at any
hop, and only then normalised to its own maximum (the seeds' ref=max dB), so overlapping windows
share all the work before that step.

On an isolated 3-s snippet this gives exactly the per-window features the models were trained
on: 130 frames of a centred STFT, separated as one run padded to 192 frames.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from vocalstream import audio
from vocalstream.models.spleeter import SIZE_MULTIPLE

N_FFT = audio.SEPARATION_N_FFT
HOP = audio.SEPARATION_HOP
BINS = audio.SEPARATION_BINS
RATE = audio.SEPARATION_RATE
HALF = N_FFT // 2
WINDOW_SAMPLES = audio.WINDOW_SECONDS * RATE  # 132300 samples of 44.1 kHz audio
WINDOW_FRAMES = audio.WINDOW_FRAMES  # 130 frames

FILE_RUN_FRAMES = 448  # file mode: new frames per separator call, with 64 frames of context
FILE_CONTEXT_FRAMES = 64  # 448 + 64 = 512, the official model's segment
LIVE_CONTEXT_FRAMES = 16  # live mode: at least this much context beside the newest frames


@dataclass(frozen=True)
class Window:
    index: int
    start: float  # seconds from the start of the stream
    end: float
    features: np.ndarray  # [1, N_MELS, WINDOW_FRAMES] log-mel, dB below the window's maximum
    padded: bool  # the stream ended inside it: zeros fill the rest


def _round_up(frames: int) -> int:
    return math.ceil(frames / SIZE_MULTIPLE) * SIZE_MULTIPLE


def window_decibels(mel_power: np.ndarray) -> np.ndarray:
    """Mel power [..., N_MELS, T] -> dB below each window's maximum, floored at -TOP_DB."""
    decibels = 10.0 * np.log10(np.maximum(mel_power, audio.AMIN))
    decibels -= decibels.max(axis=(-2, -1), keepdims=True)
    return np.maximum(decibels, -audio.TOP_DB).astype(np.float32)


class FeatureStream:
    """Push blocks [2, n] of 44.1 kHz audio; get each window as soon as its frames are done.

    estimator: the separator's mask estimator (vocals first), or None for features of the mix.
    live: separate as soon as a window waits for it (low latency, short runs with at least
    `context` frames of past context); otherwise in runs of FILE_RUN_FRAMES (cheapest).
    Memory holds about one window of frames plus one block, whatever the stream's length.
    """

    def __init__(self, estimator, hop_seconds: float, live: bool, context: int | None = None):
        if not 0 < hop_seconds <= audio.WINDOW_SECONDS:
            raise ValueError(f"hop must lie in (0, {audio.WINDOW_SECONDS}] seconds")
        self.estimator = estimator
        self.hop_seconds = hop_seconds
        self.live = live
        self.context = (
            context
            if context is not None
            else (LIVE_CONTEXT_FRAMES if live else FILE_CONTEXT_FRAMES)
        )
        self._window = audio.hann_window(N_FFT, torch.device("cpu"))
        self._mel_filters = audio.mel_filters()[:, :BINS]  # bin 1024 is zero after masking
        self._samples = np.zeros((2, HALF), np.float32)  # the centred STFT's leading zeros
        self._samples_start = -HALF  # stream index of _samples[:, 0]
        self._received = 0
        self._spectrum = torch.zeros((2, 0, BINS), dtype=torch.complex64)  # framed, not separated
        self._history = torch.zeros((2, 0, BINS))  # magnitudes of separated frames, for context
        self._mel = np.zeros((audio.N_MELS, 0), np.float32)
        self._mel_start = 0  # frame index of _mel[:, 0]
        self._separated = 0  # frames separated so far
        self._windows = 0  # windows emitted so far
        self._covered = 0  # stream samples up to the end of the last window emitted

    # -- where each window lies
    def _window_start(self, index: int) -> int:
        """The window's first sample."""
        return round(index * self.hop_seconds * RATE)

    def _first_frame(self, index: int) -> int:
        return round(self._window_start(index) / HOP)

    # -- framing
    def _frame(self) -> None:
        """STFT frames of every full frame in the sample buffer."""
        framed = self._separated + self._spectrum.shape[1]
        available = (self._samples_start + self._samples.shape[1] - HALF) // HOP + 1 - framed
        if available <= 0:
            return
        begin = framed * HOP - HALF - self._samples_start
        span = torch.from_numpy(self._samples[:, begin : begin + (available - 1) * HOP + N_FFT])
        spectrum = torch.stft(
            span, N_FFT, HOP, window=self._window, center=False, return_complex=True
        )[:, :BINS]  # [2, BINS, available]
        self._spectrum = torch.cat([self._spectrum, spectrum.transpose(1, 2)], dim=1)
        drop = begin + available * HOP
        self._samples = self._samples[:, drop:]
        self._samples_start += drop

    # -- separation
    def _separate(self, count: int) -> None:
        """Vocal mel power of the next `count` framed frames."""
        spectrum = self._spectrum[:, :count]
        magnitude = spectrum.abs()
        if self.estimator is None:
            vocals = spectrum
        else:
            context = min(self._history.shape[1], _round_up(count + self.context) - count)
            past = self._history[:, self._history.shape[1] - context :]
            frames = torch.cat([past, magnitude], dim=1)
            padding = _round_up(frames.shape[1]) - frames.shape[1]
            padded = torch.nn.functional.pad(frames, (0, 0, 0, padding))
            with torch.inference_mode():
                mask = self.estimator(padded.unsqueeze(0))[0, 0, :, context : context + count]
            vocals = mask * spectrum
            keep = self.context + SIZE_MULTIPLE  # the most context a run can take
            self._history = torch.cat([self._history, magnitude], dim=1)[:, -keep:]
        power = torch.view_as_real(vocals.mean(dim=0)).pow(2).sum(-1).numpy()  # [count, BINS]
        self._mel = np.concatenate([self._mel, self._mel_filters @ power.T], axis=1)
        self._spectrum = self._spectrum[:, count:]
        self._separated += count

    def _separate_ready(self, waiting_for: int | None) -> None:
        """Separate full runs; live, also whatever the next window waits for."""
        while self._spectrum.shape[1] >= FILE_RUN_FRAMES:
            self._separate(FILE_RUN_FRAMES)
        framed = self._separated + self._spectrum.shape[1]
        if waiting_for is not None and self._separated < waiting_for <= framed:
            self._separate(self._spectrum.shape[1])

    # -- windows
    def _cut(self, padded: bool) -> Window:
        index = self._windows
        first = self._first_frame(index) - self._mel_start
        features = window_decibels(self._mel[:, first : first + WINDOW_FRAMES])[None]
        start = self._window_start(index)
        self._windows += 1
        self._covered = start + WINDOW_SAMPLES
        # Frames before the next window's first are no longer needed.
        drop = max(0, self._first_frame(self._windows) - self._mel_start)
        self._mel = self._mel[:, drop:]
        self._mel_start += drop
        return Window(index, start / RATE, (start + WINDOW_SAMPLES) / RATE, features, padded)

    def _full_windows(self) -> list[Window]:
        windows = []
        while self._window_start(self._windows) + WINDOW_SAMPLES <= self._received:
            needed = self._first_frame(self._windows) + WINDOW_FRAMES
            self._separate_ready(needed if self.live else None)
            if self._separated < needed:
                break
            windows.append(self._cut(padded=False))
        return windows

    def push(self, block: np.ndarray) -> list[Window]:
        """Add audio [2, n] (or [n] / [1, n] mono); returns the windows it completes."""
        block = np.asarray(block, dtype=np.float32)
        if block.ndim == 1 or block.shape[0] == 1:
            block = np.broadcast_to(block.reshape(1, -1), (2, block.size))
        self._samples = np.concatenate([self._samples, block], axis=1)
        self._received += block.shape[1]
        self._frame()
        if not self.live:
            self._separate_ready(None)
        return self._full_windows()

    def flush(self) -> list[Window]:
        """End of the stream: the remaining full windows, then one zero-padded window if audio
        remains that no window covered."""
        full = self._windows
        while self._window_start(full) + WINDOW_SAMPLES <= self._received:
            full += 1
        covered = self._window_start(full - 1) + WINDOW_SAMPLES if full else 0
        last = full if self._received > covered else full - 1
        if last < self._windows:
            return []
        # Zeros after the end, as a centred STFT pads, up to the last frame any window needs.
        needed = self._first_frame(last) + WINDOW_FRAMES
        missing = (needed - 1) * HOP + HALF - (self._samples_start + self._samples.shape[1])
        if missing > 0:
            self._samples = np.pad(self._samples, ((0, 0), (0, missing)))
        self._frame()
        while self._spectrum.shape[1]:
            self._separate(min(FILE_RUN_FRAMES, self._spectrum.shape[1]))
        windows = []
        while self._windows <= last:
            padded = self._window_start(self._windows) + WINDOW_SAMPLES > self._received
            windows.append(self._cut(padded))
        return windows


def snippet_features(waveform: np.ndarray, estimator) -> np.ndarray:
    """Features [1, N_MELS, WINDOW_FRAMES] of a snippet's first 3 s on its own (zero-padded if
    shorter): waveform [2, n] or [n] at 44.1 kHz. This is how training sees its examples."""
    waveform = np.asarray(waveform, dtype=np.float32)
    waveform = waveform.reshape(-1, waveform.shape[-1])[:, :WINDOW_SAMPLES]
    stream = FeatureStream(estimator, audio.WINDOW_SECONDS, live=False)
    return (stream.push(waveform) + stream.flush())[0].features
