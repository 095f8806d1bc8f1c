"""Front-end speed: vocalstream (soundfile + soxr + torch) against librosa, on one real song.

    python bench/frontend.py [--audio FILE] [--threads N] [--repeats R]

Prints a table of median times per 3-s window and per minute of audio.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

import librosa
import numpy as np
import torch

from vocalstream import audio

DEFAULT_AUDIO = (
    Path(__file__).resolve().parents[2]
    / "shared/data/librosa-data/Karissa_Hobbs_-_Lets_Go_Fishin.ogg"
)


def median_seconds(work, repeats: int) -> float:
    work()  # warm-up: caches, lazy imports, first-call allocation
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        work()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def librosa_features(windows: np.ndarray) -> np.ndarray:
    return np.stack(
        [
            librosa.power_to_db(
                librosa.feature.melspectrogram(y=w, sr=audio.CLASSIFIER_RATE), ref=np.max
            )
            for w in windows
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--audio", type=Path, default=DEFAULT_AUDIO)
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    rate = audio.CLASSIFIER_RATE
    signal = audio.load(args.audio, rate, 1)[0]
    minute = 20  # 3-s windows in a minute
    windows = signal[: minute * audio.WINDOW_SAMPLES].reshape(minute, audio.WINDOW_SAMPLES)
    seconds_of_audio = len(signal) / rate

    # All vocalstream timings first, then librosa's: OpenBLAS threads left spinning by librosa's
    # mel step would otherwise starve torch's thread pool on a 2-core machine.
    decode_ours = median_seconds(lambda: audio.load(args.audio, rate, 1), args.repeats)
    one_ours = median_seconds(lambda: audio.logmel(windows[0]), args.repeats * 20)
    batch_ours = median_seconds(lambda: audio.logmel(windows), args.repeats)
    decode_librosa = median_seconds(lambda: librosa.load(args.audio, sr=rate), args.repeats)
    one_librosa = median_seconds(lambda: librosa_features(windows[:1]), args.repeats * 20)
    batch_librosa = median_seconds(lambda: librosa_features(windows), args.repeats)

    per_minute = 60.0 / seconds_of_audio
    rows = [
        ("decode + resample, per minute", decode_ours * per_minute, decode_librosa * per_minute),
        ("log-mel, one 3-s window", one_ours, one_librosa),
        ("log-mel, per minute (batch of 20)", batch_ours, batch_librosa),
        (
            "decode + log-mel, per minute",
            decode_ours * per_minute + batch_ours,
            decode_librosa * per_minute + batch_librosa,
        ),
    ]
    print(
        f"audio: {args.audio.name} ({seconds_of_audio:.0f} s), torch threads: {args.threads}, "
        f"median of {args.repeats}+ runs"
    )
    print(f"| {'stage':<36} | {'vocalstream ms':>14} | {'librosa ms':>10} | {'speed-up':>8} |")
    print(f"|{'-' * 38}|{'-' * 16}|{'-' * 12}|{'-' * 10}|")
    for name, ours, theirs in rows:
        print(
            f"| {name:<36} | {ours * 1e3:>14.2f} | {theirs * 1e3:>10.2f} | {theirs / ours:>7.1f}x |"
        )


if __name__ == "__main__":
    main()
