"""Where audio comes from: a file, raw PCM on standard input, or a microphone.

Each source yields float32 blocks [channels, n] at the rate the model wants.
"""

from __future__ import annotations

import collections
import threading
import time
from collections.abc import Iterable, Iterator
from typing import BinaryIO

import numpy as np

from vocalstream import audio
from vocalstream.errors import AudioError, VocalstreamError

PCM_FORMATS = {"f32le": np.dtype("<f4"), "s16le": np.dtype("<i2"), "s32le": np.dtype("<i4")}
BLOCK_SECONDS = 0.1  # microphone and stdin blocks: small, for low latency


class DeviceError(VocalstreamError):
    """No usable capture device, or it stopped delivering audio."""


class SampleBudget:
    """At most `samples` of audio (all of it when None), over any number of block streams: a
    device that is reopened carries on with what is left."""

    def __init__(self, samples: int | None):
        self.left = samples

    def take(self, blocks: Iterable[np.ndarray]) -> Iterator[np.ndarray]:
        for block in blocks:
            if self.left is not None:
                block = block[:, : self.left]
                self.left -= block.shape[1]
            if block.shape[1]:
                yield block
            if self.exhausted:
                return

    @property
    def exhausted(self) -> bool:
        return self.left is not None and self.left <= 0


def pcm_blocks(
    stream: BinaryIO,
    source_rate: int,
    source_channels: int,
    pcm_format: str,
    rate: int,
    channels: int,
) -> Iterator[np.ndarray]:
    """Headerless interleaved PCM (e.g. `ffmpeg -f f32le -` or `arecord -t raw`) from a stream."""
    dtype = PCM_FORMATS[pcm_format]
    scale = 1.0 if dtype.kind == "f" else float(2 ** (8 * dtype.itemsize - 1))
    frame_bytes = dtype.itemsize * source_channels
    block_bytes = max(1, int(BLOCK_SECONDS * source_rate)) * frame_bytes
    convert = audio.Converter(source_rate, source_channels, rate, channels)
    pending = b""
    seconds = 0.0
    while True:
        chunk = stream.read(block_bytes)
        last = not chunk
        pending += chunk
        usable = len(pending) - len(pending) % frame_bytes
        frames = np.frombuffer(pending[:usable], dtype=dtype).reshape(-1, source_channels)
        pending = pending[usable:]
        frames = frames.astype(np.float32) / scale
        if not np.isfinite(frames).all():
            raise AudioError(f"standard input: NaN or infinite samples near {seconds:.1f} s")
        seconds += len(frames) / source_rate
        converted = convert(frames, last=last)
        if converted.shape[1]:
            yield converted
        if last:
            if seconds == 0:
                raise AudioError(
                    f"standard input: no audio (expected raw PCM, e.g. ffmpeg -f {pcm_format} -)"
                )
            return


def input_devices() -> list[dict]:
    """The capture devices PortAudio sees: index, name, channels, default rate."""
    sounddevice = _sounddevice()
    return [
        {
            "index": index,
            "name": device["name"],
            "channels": device["max_input_channels"],
            "default_rate": device["default_samplerate"],
        }
        for index, device in enumerate(sounddevice.query_devices())
        if device["max_input_channels"] > 0
    ]


def check_capture() -> None:
    """Raise DeviceError when this machine cannot capture at all (no PortAudio)."""
    _sounddevice()


def refresh_devices() -> None:
    """Make PortAudio list the devices anew, so that one plugged in (or back) since it started
    can be opened. Only while no stream is open."""
    sounddevice = _sounddevice()
    # sounddevice's documented way to re-read the device list (no public call does it).
    sounddevice._terminate()
    sounddevice._initialize()


def _sounddevice():
    try:
        import sounddevice
    except (OSError, ImportError) as error:  # OSError: the PortAudio library is absent
        message = f"no audio capture available: {error} (install libportaudio2)"
        raise DeviceError(message) from error
    return sounddevice


class Microphone:
    """Live capture on sounddevice. The PortAudio callback only copies each block into a bounded
    queue (the oldest block goes when it is full, counted as an overrun), so capture never
    waits on inference. The sample rate is negotiated: the model's rate if the device takes it,
    else the device's own, resampled here."""

    def __init__(self, device: int | str | None, rate: int, channels: int, stall_seconds=2.0):
        self.sounddevice = _sounddevice()
        self.rate, self.channels = rate, channels
        self.stall_seconds = stall_seconds
        try:
            info = self.sounddevice.query_devices(device, "input")
        except (ValueError, self.sounddevice.PortAudioError) as error:
            raise DeviceError(f"no capture device {device!r}: {error}") from error
        self.name = info["name"]
        self.device_channels = min(int(info["max_input_channels"]), max(channels, 1))
        self.device_rate = rate
        try:
            self.sounddevice.check_input_settings(
                device, channels=self.device_channels, samplerate=rate, dtype="float32"
            )
        except self.sounddevice.PortAudioError:
            self.device_rate = int(info["default_samplerate"])
        self.device = device
        self.overruns = 0
        self._blocks: collections.deque = collections.deque(maxlen=int(30 / BLOCK_SECONDS))
        self._ready = threading.Event()
        self._stream = None

    def _callback(self, data, frames, timing, status) -> None:
        if status.input_overflow:
            self.overruns += 1
        if len(self._blocks) == self._blocks.maxlen:
            self.overruns += 1
        self._blocks.append(data.copy())
        self._ready.set()

    def __enter__(self) -> Microphone:
        try:
            self._stream = self.sounddevice.InputStream(
                device=self.device,
                channels=self.device_channels,
                samplerate=self.device_rate,
                dtype="float32",
                blocksize=int(BLOCK_SECONDS * self.device_rate),
                callback=self._callback,
            )
            self._stream.start()
        except self.sounddevice.PortAudioError as error:
            raise DeviceError(f"cannot open capture device {self.name!r}: {error}") from error
        return self

    def __exit__(self, *exc) -> None:
        if self._stream is not None:
            self._stream.abort()
            self._stream.close()

    def blocks(self, stop: threading.Event) -> Iterator[np.ndarray]:
        convert = audio.Converter(self.device_rate, self.device_channels, self.rate, self.channels)
        last_audio = time.monotonic()
        while not stop.is_set():
            if not self._blocks:
                self._ready.clear()
                self._ready.wait(0.05)
                if not self._blocks:
                    if (
                        not self._stream.active
                        or time.monotonic() - last_audio > self.stall_seconds
                    ):
                        raise DeviceError(f"capture device {self.name!r} stopped delivering audio")
                    continue
            last_audio = time.monotonic()
            yield convert(self._blocks.popleft())
