"""Audio constants and the audio front-end: decoding, resampling, channel mixing, windows and the
mel filterbank.

Every sample rate, FFT size, hop and window length in vocalstream is defined here and nowhere else;
derived values are computed from the base ones.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.metadata
import os
from collections.abc import Iterator

import numpy as np
import soundfile as sf
import soxr

from vocalstream.errors import AudioError
from vocalstream.files import atomic_path, cache_dir

# Vocal separation: spleeter 2stems works on 44.1 kHz stereo.
SEPARATION_RATE = 44100
SEPARATION_CHANNELS = 2
SEPARATION_N_FFT = 4096
SEPARATION_HOP = 1024
SEPARATION_BINS = 1024  # the U-Net sees bins 0..1023 (0-11 kHz) of the 2049
SEPARATION_CHUNK_FRAMES = 512  # the official model's segment: 512 frames, about 11.9 s

# Classifier: the seeds' librosa defaults on 22.05 kHz mono.
CLASSIFIER_RATE = 22050
CLASSIFIER_N_FFT = 2048
CLASSIFIER_HOP = 512
N_MELS = 128
WINDOW_SECONDS = 3
WINDOW_SAMPLES = WINDOW_SECONDS * CLASSIFIER_RATE  # 66150 samples
WINDOW_FRAMES = 1 + WINDOW_SAMPLES // CLASSIFIER_HOP  # 130 frames of a centred STFT

# The real-music branch: musicnn's MTT tagger hears the mix as it was trained, a 96-band mel of
# 16 kHz mono, log10(1 + MUSICNN_LOG_GAIN * power). It pools over time, so the 188 frames of a
# centred 3-s window serve as well as the 187 it was trained on.
MUSICNN_RATE = 16000
MUSICNN_N_FFT = 512
MUSICNN_HOP = 256
MUSICNN_MELS = 96
MUSICNN_LOG_GAIN = 10000.0
MUSICNN_FRAMES = 1 + WINDOW_SECONDS * MUSICNN_RATE // MUSICNN_HOP  # 188 of a centred STFT

# The pitch branch: basic-pitch's note model hears the vocal stem as it was trained, 22.05 kHz
# mono in chunks of 2 s less one hop; a 3-s window gives it its middle 2 s. Its contour output is
# a pitch salience of every voice at once: 3 bins a semitone from A0, a frame every 256 samples.
PITCH_RATE = 22050
PITCH_SAMPLES = 43844
PITCH_BINS = 264
PITCH_BINS_PER_SEMITONE = 3

# librosa.power_to_db(ref=np.max) defaults.
AMIN = 1e-10
TOP_DB = 80.0

# A window's input level is its mix's mel power per frame in dB relative to that of a full-scale
# sine (measured through the front-end: 47.7 dB); below SILENCE_LEVEL_DB it holds nothing to hear,
# so no voice (a -60 dBFS sine reads -60, white noise at -60 dBFS RMS about -68).
FULL_SCALE_SINE_MEL_DB = 47.7
SILENCE_LEVEL_DB = -60.0

# Normalisation of the log-mel input used by the seeds' models.
MEL_MEAN = -50.217636
MEL_STD = 16.921597

# Bumped whenever a change here alters features, so caches and model bundles can tell.
FRONTEND_VERSION = 2

# Audio files vocalstream reads and writes, by extension (libsndfile decodes many more).
READABLE_EXTENSIONS = (".wav", ".flac", ".ogg", ".mp3")
OUTPUT_FORMATS = ("WAV", "FLAC", "OGG", "MP3")

# One block of decoded audio: about 10 s, so memory stays flat on any file length.
DECODE_BLOCK_SECONDS = 10.0

assert SEPARATION_N_FFT * CLASSIFIER_RATE == CLASSIFIER_N_FFT * SEPARATION_RATE, "grids coincide"
assert SEPARATION_HOP * CLASSIFIER_RATE == CLASSIFIER_HOP * SEPARATION_RATE, "grids coincide"


# A decode that ends this far short of the length the header declares means a truncated file.
TRUNCATION_TOLERANCE_SECONDS = 1.0
TRUNCATION_TOLERANCE_FRACTION = 0.02


@contextlib.contextmanager
def _native_stderr_silenced() -> Iterator[None]:
    """libsndfile's mp3 decoder prints its own warnings on corrupt input straight to file
    descriptor 2; the user gets vocalstream's one-line error instead."""
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def _open(path: str | os.PathLike) -> sf.SoundFile:
    path = os.fspath(path)
    if not os.path.exists(path):
        raise AudioError(f"{path}: no such file")
    if os.path.isdir(path):
        raise AudioError(f"{path}: is a directory, not an audio file")
    if os.path.getsize(path) == 0:
        raise AudioError(f"{path}: empty file")
    try:
        with _native_stderr_silenced():
            return sf.SoundFile(path)
    except (sf.LibsndfileError, RuntimeError, TypeError) as error:
        # libsndfile's own text here ("not a regular file") misleads; the cause stays chained.
        message = f"{path}: not a readable audio file (unknown or corrupt format)"
        raise AudioError(message) from error


def mix_channels(frames: np.ndarray, channels: int) -> np.ndarray:
    """[n, c_in] -> [n, channels]. Anything but a match goes through mono, so a 5.1 centre channel
    (where the voice usually is) is never dropped."""
    if frames.shape[1] == channels:
        return frames
    mono = frames.mean(axis=1, keepdims=True)
    return np.repeat(mono, channels, axis=1)


class Converter:
    """Blocks of any rate and channel count in, float32 [channels, n] at `rate` out, statefully,
    so a stream converted block by block equals the whole converted at once."""

    def __init__(self, source_rate: int, source_channels: int, rate: int, channels: int):
        if min(source_rate, source_channels, rate, channels) <= 0:
            raise ValueError("sample rates and channel counts must be positive")
        self.source_channels, self.channels = source_channels, channels
        self._resampler = None
        if source_rate != rate:
            self._resampler = soxr.ResampleStream(source_rate, rate, channels, dtype="float32")

    def __call__(self, frames: np.ndarray, last: bool = False) -> np.ndarray:
        """frames [n, source_channels] (float32) -> [channels, m]; last=True flushes."""
        frames = mix_channels(np.asarray(frames, dtype=np.float32), self.channels)
        if self._resampler is not None:
            frames = self._resampler.resample_chunk(frames, last=last)
        return np.ascontiguousarray(frames.T)


def stream(
    path: str | os.PathLike,
    sr: int,
    channels: int = 1,
    block_seconds: float = DECODE_BLOCK_SECONDS,
) -> Iterator[np.ndarray]:
    """Decode an audio file block by block as float32 arrays [channels, n] at rate `sr`.

    Memory is bounded by one block whatever the file's length. Raises AudioError if the file is
    missing, not audio, holds NaN/inf samples, or decodes to nothing.
    """
    name = os.fspath(path)
    with _open(path) as audio:
        convert = Converter(audio.samplerate, audio.channels, sr, channels)
        block = max(1, int(block_seconds * audio.samplerate))
        decoded = 0
        while True:
            try:
                with _native_stderr_silenced():
                    frames = audio.read(block, dtype="float32", always_2d=True)
            except (sf.LibsndfileError, RuntimeError) as error:
                raise AudioError(
                    f"{name}: corrupt or truncated; decoding failed after "
                    f"{decoded / audio.samplerate:.1f} s ({error})"
                ) from error
            last = len(frames) == 0
            finite = np.isfinite(frames).all(axis=1)
            if not finite.all():
                at = decoded + int(np.argmin(finite))
                raise AudioError(f"{name}: NaN or infinite sample at {at / audio.samplerate:.3f} s")
            decoded += len(frames)
            converted = convert(frames, last=last)
            if converted.shape[1]:
                yield converted
            if last:
                break
        declared = audio.frames
        if decoded == 0:
            raise AudioError(f"{name}: holds no audio samples")
        missing = declared - decoded
        if missing > max(
            TRUNCATION_TOLERANCE_SECONDS * audio.samplerate,
            TRUNCATION_TOLERANCE_FRACTION * declared,
        ):
            raise AudioError(
                f"{name}: truncated; the header declares {declared / audio.samplerate:.1f} s "
                f"but only {decoded / audio.samplerate:.1f} s could be decoded"
            )


def duration(path: str | os.PathLike) -> float:
    """Seconds of audio the file's header declares (an estimate for some mp3 files)."""
    with _open(path) as audio:
        return audio.frames / audio.samplerate


def writable_format(path: str | os.PathLike) -> str:
    """The soundfile format for an output path, judged by its extension."""
    extension = os.path.splitext(os.fspath(path))[1].lstrip(".").upper()
    if extension not in OUTPUT_FORMATS:
        supported = ", ".join(f".{name.lower()}" for name in OUTPUT_FORMATS)
        raise AudioError(f"{os.fspath(path)}: cannot write this format; use {supported}")
    return extension


def load(path: str | os.PathLike, sr: int, channels: int = 1) -> np.ndarray:
    """Decode a whole audio file (wav, flac, ogg, mp3...) to float32 [channels, n] at rate `sr`."""
    return np.concatenate(list(stream(path, sr, channels)), axis=1)


@functools.lru_cache(maxsize=2)
def mel_filters(
    rate: int = CLASSIFIER_RATE, n_fft: int = CLASSIFIER_N_FFT, n_mels: int = N_MELS
) -> np.ndarray:
    """A mel filterbank [n_mels, 1 + n_fft // 2] with librosa's defaults; by default the
    classifier's.

    Kept in the cache after its first computation: importing librosa takes about a second,
    which every run would otherwise pay."""
    version = importlib.metadata.version("librosa")
    path = cache_dir() / f"mel-{rate}-{n_fft}-{n_mels}-librosa{version}.npy"
    if path.is_file():
        filters = np.load(path)
    else:
        import librosa

        filters = librosa.filters.mel(sr=rate, n_fft=n_fft, n_mels=n_mels)
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(path) as scratch:
            np.save(scratch, filters)
    filters.flags.writeable = False
    return filters


@functools.lru_cache(maxsize=4)
def hann_window(n_fft: int) -> np.ndarray:
    """The periodic Hann window librosa and spleeter use, float32."""
    window = 0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(n_fft) / n_fft)
    window = window.astype(np.float32)
    window.flags.writeable = False
    return window
