"""Streaming speed: file mode's real-time factor and listen mode's latency.

    python bench/stream.py [--bundle DIR ...] [--minutes 5] [--listen-seconds 60] [--hop 0.5]

File mode: a 5-minute real song (a real recording tiled) through `vocalstream file`'s code path,
decode included, model loaded beforehand. Listen mode: the same audio paced in real time in 0.1-s
blocks, as a microphone delivers it, at --hop; latency is from a window's last sample being
available to its result. Without --bundle, timing bundles are trained for one epoch on 16 real
snippets with vocalstream's own commands (seed000-ensemble, and cnn4 alone); weights do not
affect speed.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import soundfile as sf

from vocalstream import audio
from vocalstream.export.runtime import VoiceClassifier
from vocalstream.stream.pipeline import Pipeline
from vocalstream.stream.service import analyse
from vocalstream.stream.timeline import Smoothing

sys.path.insert(0, str(Path(__file__).parent))
from inference import timing_bundle  # noqa: E402

SONG = (
    Path(__file__).resolve().parents[2] / "shared/data/librosa-data/"
    "Karissa_Hobbs_-_Lets_Go_Fishin.ogg"
)


def paced(signal: np.ndarray, rate: int, seconds: float):
    """0.1-s blocks released in real time."""
    block = int(0.1 * rate)
    start = time.monotonic()
    for offset in range(0, int(seconds * rate), block):
        due = start + offset / rate
        time.sleep(max(0.0, due - time.monotonic()))
        yield signal[:, offset : offset + block]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bundle", type=Path, nargs="*", default=[])
    parser.add_argument("--minutes", type=float, default=5.0)
    parser.add_argument("--listen-seconds", type=float, default=60.0)
    parser.add_argument("--hop", type=float, default=0.5)
    args = parser.parse_args()
    threads = len(os.sched_getaffinity(0))

    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        bundles = {str(path): path for path in args.bundle}
        if not bundles:
            for recipe in ("seed000-ensemble", "cnn4"):
                (scratch / recipe).mkdir()
                bundles[recipe] = timing_bundle(scratch / recipe, recipe)
        song = audio.load(SONG, audio.SEPARATION_RATE, 2)
        samples = int(args.minutes * 60 * audio.SEPARATION_RATE)
        long = np.tile(song, (1, -(-samples // song.shape[1])))[:, :samples]
        path = scratch / "long.flac"
        sf.write(path, long.T, audio.SEPARATION_RATE)

        listen = f"{args.listen_seconds:g} s paced in real time, hop {args.hop:g} s"
        print(f"CPU, {threads} threads; file: {args.minutes:g} min of a real song; {listen}")
        print("| model | file: x real time | listen: p50 ms | listen: p99 ms | dropped |")
        print("|---|---|---|---|---|")
        for name, bundle in bundles.items():
            classifier = VoiceClassifier(bundle, device="cpu")
            started = time.perf_counter()
            blocks = audio.stream(path, classifier.sample_rate, classifier.channels)
            analyse(classifier, blocks, str(path), 3.0, Smoothing())
            factor = args.minutes * 60 / (time.perf_counter() - started)

            signal = song if classifier.channels == 2 else song.mean(axis=0, keepdims=True)
            pipeline = Pipeline(classifier, args.hop, live=True, max_pending=4)
            latencies = [
                result.latency_ms
                for result in pipeline.run(
                    paced(np.tile(signal, (1, 2)), classifier.sample_rate, args.listen_seconds),
                    threading.Event(),
                )
            ]
            p50, p99 = np.percentile(latencies, [50, 99])
            print(f"| {name} | {factor:.1f} | {p50:.0f} | {p99:.0f} | {pipeline.dropped} |")


if __name__ == "__main__":
    main()
