"""Vocal separation of audio of any length into stem waveforms (`vocalstream separate`).

The framing reproduces the official spleeter: n_fft zeros are prepended, frames are cut without
centring and zero-padded at the end, the U-Net sees independent chunks of SEPARATION_CHUNK_FRAMES
frames (the last one padded with zero frames), masks are zero above SEPARATION_BINS, and the
inverse STFT is a plain windowed overlap-add. Because chunks are independent, the audio is
processed one chunk at a time with an overlap-add carry, which gives the same result as the whole
file at once while memory stays bounded.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Iterator

import numpy as np
import soundfile as sf
import torch
from tqdm import tqdm

from vocalstream import audio
from vocalstream.files import atomic_path
from vocalstream.inference.separator import MaskEstimator
from vocalstream.models.spleeter_weights import SIZE_MULTIPLE, STEMS

N_FFT = audio.SEPARATION_N_FFT
HOP = audio.SEPARATION_HOP
BINS = audio.SEPARATION_BINS


def _window() -> torch.Tensor:
    return torch.from_numpy(audio.hann_window(N_FFT).copy())


def _as_stereo(waveform: np.ndarray) -> np.ndarray:
    waveform = np.asarray(waveform, dtype=np.float32)
    if waveform.ndim == 1:
        waveform = waveform[None]
    if waveform.shape[0] == 1:
        waveform = np.repeat(waveform, 2, axis=0)
    if waveform.ndim != 2 or waveform.shape[0] != 2:
        raise ValueError(f"expected a waveform [2, n], [1, n] or [n], got {waveform.shape}")
    return waveform


class Separator:
    """Splits 44.1 kHz stereo audio into the STEMS with a mask estimator (torch or ONNX)."""

    def __init__(self, estimator: MaskEstimator, chunk_frames: int = audio.SEPARATION_CHUNK_FRAMES):
        assert N_FFT % HOP == 0, "overlap-add assumes whole hops per frame"
        if chunk_frames <= 0 or chunk_frames % SIZE_MULTIPLE:
            raise ValueError(f"chunk_frames must be a positive multiple of {SIZE_MULTIPLE}")
        self.estimator = estimator
        self.chunk_frames = chunk_frames
        window = _window()
        # Overlapping squared Hann windows (75 %) sum to 1.5 everywhere: spleeter scales by 2/3.
        self._gain = HOP / float(window.pow(2).sum())

    @property
    def _chunk_samples(self) -> int:
        return self.chunk_frames * HOP

    @property
    def _chunk_span(self) -> int:
        """Samples one chunk of frames reads: its hops plus the last frame's overhang."""
        return self._chunk_samples + N_FFT - HOP

    def _separate_chunk(self, samples: np.ndarray) -> np.ndarray:
        """[2, chunk_span] -> overlap-added stems [len(STEMS), 2, chunk_span]."""
        window = _window()
        spectrum = torch.stft(
            torch.from_numpy(samples), N_FFT, HOP, window=window, center=False, return_complex=True
        )[:, :BINS].transpose(1, 2)  # [2, chunk_frames, BINS]
        magnitude = spectrum.abs().unsqueeze(0).numpy()
        masks = torch.from_numpy(self.estimator(magnitude)[0])  # [stems, 2, chunk_frames, BINS]
        # irfft zero-fills the bins above BINS, as spleeter's mask does.
        frames = torch.fft.irfft(masks * spectrum, n=N_FFT, dim=-1) * window
        # Overlap-add: with N_FFT = 4 * HOP each frame lands on 4 consecutive hops.
        overlap = N_FFT // HOP
        pieces = frames.reshape(len(STEMS), 2, self.chunk_frames, overlap, HOP)
        stems = frames.new_zeros(len(STEMS), 2, self.chunk_frames + overlap - 1, HOP)
        for offset in range(overlap):
            stems[:, :, offset : offset + self.chunk_frames] += pieces[:, :, :, offset]
        return (stems.reshape(len(STEMS), 2, self._chunk_span) * self._gain).numpy()

    def separate_blocks(self, blocks: Iterable[np.ndarray]) -> Iterator[np.ndarray]:
        """Stereo blocks [2, n] in, stem blocks [len(STEMS), 2, m] out, the same total length."""
        pending = np.zeros((2, N_FFT), dtype=np.float32)  # spleeter prepends one frame of zeros
        carry = np.zeros((len(STEMS), 2, N_FFT - HOP), dtype=np.float32)
        to_drop, to_emit = N_FFT, 0

        def run_chunk() -> np.ndarray:
            nonlocal pending, carry
            span = pending[:, : self._chunk_span]
            if span.shape[1] < self._chunk_span:  # end of input: zero frames, as spleeter pads
                span = np.pad(span, ((0, 0), (0, self._chunk_span - span.shape[1])))
            stems = self._separate_chunk(np.ascontiguousarray(span))
            stems[..., : N_FFT - HOP] += carry
            carry = stems[..., self._chunk_samples :]
            pending = pending[:, self._chunk_samples :]
            return stems[..., : self._chunk_samples]

        def trimmed(stems: np.ndarray) -> np.ndarray:
            nonlocal to_drop, to_emit
            dropped = min(to_drop, stems.shape[-1])
            to_drop -= dropped
            stems = stems[..., dropped:][..., :to_emit]
            to_emit -= stems.shape[-1]
            return stems

        for block in blocks:
            block = _as_stereo(block)
            to_emit += block.shape[1]
            pending = np.concatenate([pending, block], axis=1)
            while pending.shape[1] >= self._chunk_span:
                stems = trimmed(run_chunk())
                if stems.shape[-1]:
                    yield stems
        remaining_frames = math.ceil(pending.shape[1] / HOP)
        while remaining_frames > 0 or to_emit > 0:
            stems = trimmed(run_chunk())
            remaining_frames -= self.chunk_frames
            if stems.shape[-1]:
                yield stems

    def separate(self, waveform: np.ndarray) -> np.ndarray:
        """Stereo (or mono) 44.1 kHz waveform -> stems [len(STEMS), 2, n]."""
        waveform = _as_stereo(waveform)
        parts = list(self.separate_blocks([waveform]))
        if not parts:
            return np.zeros((len(STEMS), 2, 0), dtype=np.float32)
        return np.concatenate(parts, axis=-1)


def separate_file(
    source: str | os.PathLike,
    destination: str | os.PathLike,
    separator: Separator,
    stem: str = "vocals",
    progress: bool = True,
) -> float:
    """Separate an audio file of any length and write one stem (44.1 kHz stereo) to
    `destination`, whose extension picks the format. Returns the seconds of audio written.
    Nothing is left at `destination` if anything fails."""
    stem_index = STEMS.index(stem)
    file_format = audio.writable_format(destination)
    written = 0
    with (
        atomic_path(destination) as scratch,
        sf.SoundFile(scratch, "w", audio.SEPARATION_RATE, 2, format=file_format) as output,
        tqdm(
            total=round(audio.duration(source), 1),
            unit="s",
            desc=f"separating {os.path.basename(source)}",
            disable=None if progress else True,  # None: only on a terminal
            leave=False,
        ) as bar,
    ):
        blocks = audio.stream(source, audio.SEPARATION_RATE, audio.SEPARATION_CHANNELS)
        for stems in separator.separate_blocks(blocks):
            output.write(np.clip(stems[stem_index].T, -1.0, 1.0))
            written += stems.shape[-1]
            bar.update(round(stems.shape[-1] / audio.SEPARATION_RATE, 1))
    return written / audio.SEPARATION_RATE
