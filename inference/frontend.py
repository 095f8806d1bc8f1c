"""The streaming front-end: 44.1 kHz stereo blocks in, classifier windows out, every sample
framed and separated once.

Frames lie on one grid for the whole stream: frame k is centred on sample k * SEPARATION_HOP, with
zeros before the start, as a centred STFT pads. Mask estimation runs on runs of new frames with
real past frames as left context, padded on the right to the U-Net's multiple of 64. Each frame's
vocal power, and the mix's, goes through the mel filters once. A window is 130 consecutive mel
frames, cut at any hop, and only then turned into decibels below a reference, so overlapping
windows share all the work before that step. The reference is the window's own vocal maximum (the
seeds' ref=max), which keeps the shape of the vocals and discards their level, or the mix's
maximum, which keeps how loud the vocals are beside the music, or both as two channels. Every
window also reports that level as one number: the vocals' energy relative to the mix's, in dB.
With `keep_mix`, each window also carries its mono mix, from which the real-music branch computes
its own input (music_features) where it runs; with `keep_vocals`, the mono spectrum of its
separated vocals, from which the pitch branch resynthesises the vocal stem (pitch_input).

On an isolated 3-s snippet this gives exactly the per-window features the models were trained
on: 130 frames of a centred STFT, separated as one run padded to 192 frames.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np
import scipy.fft
import soxr
from scipy.signal import ShortTimeFFT

from vocalstream import audio
from vocalstream.models.spleeter_weights import SIZE_MULTIPLE

N_FFT = audio.SEPARATION_N_FFT
HOP = audio.SEPARATION_HOP
BINS = audio.SEPARATION_BINS
RATE = audio.SEPARATION_RATE
HALF = N_FFT // 2
WINDOW_SAMPLES = audio.WINDOW_SECONDS * RATE  # 132300 samples of 44.1 kHz audio
WINDOW_FRAMES = audio.WINDOW_FRAMES  # 130 frames

FILE_RUN_FRAMES = 480  # file mode: new frames per separator call, with 32 frames of context
FILE_CONTEXT_FRAMES = 32  # 480 + 32 = 512, the official model's segment
LIVE_CONTEXT_FRAMES = 16  # live mode: at least this much context beside the newest frames

# What a window's decibels are measured against: its own vocal maximum, the mix's maximum, or
# both (two channels, in that order).
REFERENCES = ("window", "mix", "both")
BOTH = ("window", "mix")  # the channels of "both", in order
CHANNELS = {"window": 1, "mix": 1, "both": len(BOTH)}


@dataclass(frozen=True)
class Window:
    index: int
    start: float  # seconds from the start of the stream
    end: float
    features: np.ndarray  # [channels, N_MELS, WINDOW_FRAMES] vocal log-mel, dB below a reference
    padded: bool  # the stream ended inside it: zeros fill the rest
    vocal_level: float  # the vocals' energy relative to the mix's, dB (0 without separation)
    input_level: float  # the mix's level, dB relative to a full-scale sine (input_level())
    mix: np.ndarray | None = None  # [WINDOW_SAMPLES] mono at 44.1 kHz (keep_mix), or None
    vocals: np.ndarray | None = None  # [WINDOW_FRAMES, BINS] mono vocal spectrum (keep_vocals)


def _round_up(frames: int) -> int:
    return math.ceil(frames / SIZE_MULTIPLE) * SIZE_MULTIPLE


def _decibels(power: np.ndarray) -> np.ndarray:
    return 10.0 * np.log10(np.maximum(power, audio.AMIN))


def window_decibels(mel_power: np.ndarray) -> np.ndarray:
    """Mel power [..., N_MELS, T] -> dB below each window's maximum, floored at -TOP_DB."""
    decibels = _decibels(mel_power)
    decibels -= decibels.max(axis=(-2, -1), keepdims=True)
    return np.maximum(decibels, -audio.TOP_DB).astype(np.float32)


def window_features(vocals: np.ndarray, mix: np.ndarray, reference: str) -> np.ndarray:
    """Mel power of a window's vocals and mix [N_MELS, T] -> the vocals in dB below the
    reference (REFERENCES), floored at -TOP_DB: [CHANNELS[reference], N_MELS, T]."""
    if reference == "window":
        return window_decibels(vocals)[None]
    if reference == "both":
        return np.concatenate([window_features(vocals, mix, r) for r in BOTH])
    decibels = _decibels(vocals)
    # A mono mean of out-of-phase channels can leave a vocal cell above the mix's.
    top = max(float(decibels.max()), float(_decibels(mix).max()))
    return np.maximum(decibels - top, -audio.TOP_DB).astype(np.float32)[None]


def vocal_level(vocals: np.ndarray, mix: np.ndarray) -> float:
    """The vocals' energy relative to the mix's over a window, dB in [-TOP_DB, 0] (digital
    silence holds no vocals: -TOP_DB)."""
    mix_energy = float(mix.sum(dtype=np.float64))
    if mix_energy <= audio.AMIN:
        return -audio.TOP_DB
    ratio = max(float(vocals.sum(dtype=np.float64)), audio.AMIN) / mix_energy
    return float(np.clip(10.0 * np.log10(ratio), -audio.TOP_DB, 0.0))


def input_level(mix: np.ndarray) -> float:
    """The mix's mel power [N_MELS, T] per frame, dB relative to a full-scale sine's, floored
    at -120 dB (digital silence)."""
    power = float(mix.sum(dtype=np.float64)) / max(mix.shape[-1], 1)
    decibels = 10.0 * math.log10(max(power, audio.AMIN)) - audio.FULL_SCALE_SINE_MEL_DB
    return max(decibels, -120.0)


def _window_mix(mix: np.ndarray) -> np.ndarray:
    return np.pad(mix[:WINDOW_SAMPLES], (0, max(0, WINDOW_SAMPLES - len(mix)))).astype(np.float32)


def music_features(mix: np.ndarray) -> np.ndarray:
    """A window's mono mix at 44.1 kHz (zero-padded to 3 s) -> musicnn's input [MUSICNN_FRAMES,
    MUSICNN_MELS]: resampled to 16 kHz, a centred STFT (zeros beyond the window), mel power,
    log10(1 + MUSICNN_LOG_GAIN * power)."""
    samples = soxr.resample(_window_mix(mix), RATE, audio.MUSICNN_RATE)
    half = audio.MUSICNN_N_FFT // 2
    samples = np.pad(samples, half)
    frames = np.lib.stride_tricks.sliding_window_view(samples, audio.MUSICNN_N_FFT)
    frames = frames[:: audio.MUSICNN_HOP][: audio.MUSICNN_FRAMES]
    spectrum = scipy.fft.rfft(frames * audio.hann_window(audio.MUSICNN_N_FFT), axis=-1)
    power = spectrum.real**2 + spectrum.imag**2
    filters = audio.mel_filters(audio.MUSICNN_RATE, audio.MUSICNN_N_FFT, audio.MUSICNN_MELS)
    return np.log10(1.0 + audio.MUSICNN_LOG_GAIN * (power @ filters.T)).astype(np.float32)


@functools.cache
def _resynthesis() -> ShortTimeFFT:
    """The inverse of the stream's STFT: frame p centred on sample p * HOP."""
    window = audio.hann_window(N_FFT).astype(np.float64)
    return ShortTimeFFT(window, hop=HOP, fs=RATE, mfft=N_FFT, phase_shift=None)


def vocal_waveform(spectrum: np.ndarray) -> np.ndarray:
    """A window's mono vocal spectrum [WINDOW_FRAMES, BINS] (Window.vocals) -> its vocal stem
    [WINDOW_SAMPLES] at 44.1 kHz from its first frame's centre. Bins above BINS, which the
    separator never sees, are silent: nothing above 11 kHz."""
    transform = _resynthesis()
    full = np.zeros((N_FFT // 2 + 1, transform.p_max(WINDOW_SAMPLES) - transform.p_min), complex)
    full[:BINS, -transform.p_min : len(spectrum) - transform.p_min] = spectrum.T
    return transform.istft(full, k1=WINDOW_SAMPLES).astype(np.float32)


def pitch_input(spectrum: np.ndarray) -> np.ndarray:
    """The pitch branch's input [PITCH_SAMPLES, 1] of a window's mono vocal spectrum: the middle
    PITCH_SAMPLES samples of its vocal stem at 22.05 kHz."""
    samples = soxr.resample(vocal_waveform(spectrum), RATE, audio.PITCH_RATE)
    start = (len(samples) - audio.PITCH_SAMPLES) // 2
    return samples[start : start + audio.PITCH_SAMPLES, None].astype(np.float32)


class FeatureStream:
    """Push blocks [2, n] of 44.1 kHz audio; get each window as soon as its frames are done.

    estimator: the separator's mask estimator (vocals first), or None for features of the mix.
    reference: what each window's decibels are measured against (REFERENCES).
    live: cut each window as soon as its last sample arrives, separating short runs with at
    least `context` frames of past context; otherwise wait for full runs of FILE_RUN_FRAMES
    (cheapest) and for the half FFT frame after each window.
    keep_mix: also give each window its mono mix (Window.mix).
    keep_vocals: also give each window the mono spectrum of its vocals (Window.vocals).
    Memory holds about one window of frames plus one block, whatever the stream's length.
    """

    def __init__(
        self,
        estimator,
        hop_seconds: float,
        live: bool,
        context: int | None = None,
        reference: str = "window",
        keep_mix: bool = False,
        keep_vocals: bool = False,
    ):
        if not 0 < hop_seconds <= audio.WINDOW_SECONDS:
            raise ValueError(f"hop must lie in (0, {audio.WINDOW_SECONDS}] seconds")
        if reference not in REFERENCES:
            raise ValueError(f"reference must be one of {REFERENCES}")
        self.estimator = estimator
        self.reference = reference
        self.hop_seconds = hop_seconds
        self.live = live
        if context is None:
            context = LIVE_CONTEXT_FRAMES if live else FILE_CONTEXT_FRAMES
        self.context = context
        self._window = audio.hann_window(N_FFT)
        self._mel_filters = audio.mel_filters()[:, :BINS]  # bin 1024 is zero after masking
        self._samples = np.zeros((2, HALF), np.float32)  # the centred STFT's leading zeros
        self._samples_start = -HALF  # stream index of _samples[:, 0]
        self._received = 0
        self._spectrum = np.zeros((2, 0, BINS), np.complex64)  # framed, not yet separated
        self._history = np.zeros((2, 0, BINS), np.float32)  # magnitudes separated, for context
        self._mel = np.zeros((2, audio.N_MELS, 0), np.float32)  # vocals, mix
        self._mel_start = 0  # frame index of _mel[:, 0]
        self._separated = 0  # frames separated so far
        self._windows = 0  # windows emitted so far
        self.keep_mix = keep_mix
        self._mono = np.zeros(0, np.float32)  # the mono mix from the next window's first sample
        self._mono_start = 0
        self.keep_vocals = keep_vocals
        self._vocals = np.zeros((0, BINS), np.complex64)  # mono vocal spectrum, frames as _mel

    # -- where each window lies
    def _window_start(self, index: int) -> int:
        """The window's first sample."""
        return round(index * self.hop_seconds * RATE)

    def _first_frame(self, index: int) -> int:
        return round(self._window_start(index) / HOP)

    # -- framing
    def _stft(self, span: np.ndarray) -> np.ndarray:
        """Frames of samples [2, n] every HOP -> spectrum [2, frames, BINS]."""
        frames = np.lib.stride_tricks.sliding_window_view(span, N_FFT, axis=1)[:, ::HOP]
        return scipy.fft.rfft(frames * self._window, axis=-1)[..., :BINS]

    def _frame(self) -> None:
        """STFT frames of every full frame in the sample buffer."""
        framed = self._separated + self._spectrum.shape[1]
        available = (self._samples_start + self._samples.shape[1] - HALF) // HOP + 1 - framed
        if available <= 0:
            return
        begin = framed * HOP - HALF - self._samples_start
        spectrum = self._stft(self._samples[:, begin : begin + (available - 1) * HOP + N_FFT])
        self._spectrum = np.concatenate([self._spectrum, spectrum], axis=1)
        drop = begin + available * HOP
        self._samples = self._samples[:, drop:]
        self._samples_start += drop

    def _provisional(self, needed: int) -> np.ndarray:
        """Spectrum [2, n, BINS] of the frames up to `needed` whose samples have not all arrived,
        with zeros for the missing ones, as a window standing alone is padded."""
        framed = self._separated + self._spectrum.shape[1]
        span = self._samples[:, : (needed - framed - 1) * HOP + N_FFT]
        span = np.pad(span, ((0, 0), (0, (needed - framed - 1) * HOP + N_FFT - span.shape[1])))
        return self._stft(span)

    # -- separation
    def _separate(
        self, count: int, provisional: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Mel power [2, N_MELS, n] of the vocals and the mix of the next `count` framed frames
        (and, with keep_vocals, the mono vocal spectrum), kept for the windows; and the same of
        `provisional` frames, separated in the same run and returned, not kept."""
        spectrum = self._spectrum[:, :count]
        if provisional is not None:
            spectrum = np.concatenate([spectrum, provisional], axis=1)
        if self.estimator is None:
            vocals = spectrum
        else:
            magnitude = np.abs(spectrum)
            frames = spectrum.shape[1]
            context = min(self._history.shape[1], _round_up(frames + self.context) - frames)
            past = self._history[:, self._history.shape[1] - context :]
            padding = _round_up(context + frames) - context - frames
            batch = np.pad(
                np.concatenate([past, magnitude], axis=1), ((0, 0), (0, padding), (0, 0))
            )
            vocals = self.estimator(batch[None])[0, 0, :, context : context + frames] * spectrum
            keep = self.context + SIZE_MULTIPLE  # the most context a run can take
            self._history = np.concatenate([self._history, magnitude[:, :count]], axis=1)[:, -keep:]
        mel = self._mel_power(vocals)
        mel = np.stack([mel, mel if self.estimator is None else self._mel_power(spectrum)])
        self._mel = np.concatenate([self._mel, mel[..., :count]], axis=-1)
        mono = vocals.mean(axis=0) if self.keep_vocals else self._vocals[:0]
        self._vocals = np.concatenate([self._vocals, mono[:count]])
        self._spectrum = self._spectrum[:, count:]
        self._separated += count
        return mel[..., count:], mono[count:]

    def _mel_power(self, spectrum: np.ndarray) -> np.ndarray:
        """Stereo spectrum [2, frames, BINS] -> mel power of its mono mean [N_MELS, frames]."""
        mono = spectrum.mean(axis=0)
        return self._mel_filters @ (mono.real**2 + mono.imag**2).T

    def _separate_runs(self) -> None:
        while self._spectrum.shape[1] >= FILE_RUN_FRAMES:
            self._separate(FILE_RUN_FRAMES)

    # -- windows
    def _cut(self, padded: bool, tail: tuple[np.ndarray, np.ndarray] | None = None) -> Window:
        """The next window; `tail`: the mel power and vocal spectrum of its last frames, when not
        kept (_separate)."""
        index = self._windows
        first = self._first_frame(index) - self._mel_start
        kept = WINDOW_FRAMES - (0 if tail is None else tail[0].shape[-1])
        mel = self._mel[..., first : first + kept]
        spectrum = self._vocals[first : first + kept]
        if tail is not None:
            mel = np.concatenate([mel, tail[0]], axis=-1)
            spectrum = np.concatenate([spectrum, tail[1]])
        start = self._window_start(index)
        self._windows += 1
        # Frames before the next window's first are no longer needed.
        drop = max(0, self._first_frame(self._windows) - self._mel_start)
        self._mel = self._mel[..., drop:]
        self._vocals = self._vocals[drop:]
        self._mel_start += drop
        vocals, mix = mel
        mix_samples = None
        if self.keep_mix:
            first_sample = start - self._mono_start
            mix_samples = _window_mix(self._mono[first_sample : first_sample + WINDOW_SAMPLES])
            drop = max(0, self._window_start(self._windows) - self._mono_start)
            self._mono = self._mono[drop:]
            self._mono_start += drop
        return Window(
            index,
            start / RATE,
            (start + WINDOW_SAMPLES) / RATE,
            window_features(vocals, mix, self.reference),
            padded,
            vocal_level(vocals, mix),
            input_level(mix),
            mix_samples,
            spectrum if self.keep_vocals else None,
        )

    def _full_windows(self) -> list[Window]:
        """Windows whose last sample has arrived. Live, a window is cut at once: its last frames,
        which would need up to half an FFT frame of samples after its end, are computed with
        zeros there instead (as a window alone is padded) and separated with the frames still
        pending. Files wait for those samples, and separate in long runs."""
        windows = []
        while self._window_start(self._windows) + WINDOW_SAMPLES <= self._received:
            needed = self._first_frame(self._windows) + WINDOW_FRAMES
            self._separate_runs()
            if self.live and self._separated < needed:
                framed = self._separated + self._spectrum.shape[1]
                provisional = self._provisional(needed) if framed < needed else None
                tail = self._separate(self._spectrum.shape[1], provisional)
                windows.append(self._cut(False, tail if tail[0].shape[-1] else None))
            elif self._separated >= needed:
                windows.append(self._cut(padded=False))
            else:
                break
        return windows

    def push(self, block: np.ndarray) -> list[Window]:
        """Add audio [2, n] (or [n] / [1, n] mono); returns the windows it completes."""
        block = np.asarray(block, dtype=np.float32)
        if block.ndim == 1 or block.shape[0] == 1:
            block = np.broadcast_to(block.reshape(1, -1), (2, block.size))
        self._samples = np.concatenate([self._samples, block], axis=1)
        if self.keep_mix:
            self._mono = np.concatenate([self._mono, block.mean(axis=0)])
        self._received += block.shape[1]
        self._frame()
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


def snippet_window(
    waveform: np.ndarray,
    estimator,
    reference: str = "window",
    keep_mix: bool = False,
    keep_vocals: bool = False,
) -> Window:
    """The window of a snippet's first 3 s on its own (zero-padded if shorter): waveform [2, n]
    or [n] at 44.1 kHz. This is how training sees its examples."""
    waveform = np.asarray(waveform, dtype=np.float32)
    waveform = waveform.reshape(-1, waveform.shape[-1])[:, :WINDOW_SAMPLES]
    stream = FeatureStream(
        estimator,
        audio.WINDOW_SECONDS,
        False,
        reference=reference,
        keep_mix=keep_mix,
        keep_vocals=keep_vocals,
    )
    return (stream.push(waveform) + stream.flush())[0]


def snippet_features(waveform: np.ndarray, estimator, reference: str = "window") -> np.ndarray:
    """Features [channels, N_MELS, WINDOW_FRAMES] of snippet_window()."""
    return snippet_window(waveform, estimator, reference).features
