"""How far a bundle's gender call follows pitch alone: one speaker's excerpts, their F0 scaled by
WORLD with the spectral envelope (the timbre) kept, scored by the classifier before any branch.

    python bench/pitch_reliance.py RECORDING... [--model BUNDLE] [--excerpts 24]
        [--factors 0.7 1.0 1.4] [--json results.json]

RECORDING: one speaker's audio, a cappella (e.g. a prepared corpus voice,
~/.cache/vocalstream/corpus/voices-2/ID.flac). A model that hears timbre keeps the speaker's
gender as the pitch moves; one that reads pitch alone follows it across the ranges.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import librosa
import numpy as np
import pyworld

from vocalstream import audio
from vocalstream.errors import VocalstreamError
from vocalstream.inference.model import VoiceModel

WORLD_RATE = audio.CLASSIFIER_RATE  # WORLD is slow at 44.1 kHz; the classifier hears no more


def excerpts(paths: list[Path], count: int, seed: int = 0) -> list[np.ndarray]:
    """`count` non-overlapping window-long excerpts drawn from the recordings, mono, at
    WORLD_RATE."""
    length = audio.WINDOW_SECONDS * WORLD_RATE
    recordings = [audio.load(path, WORLD_RATE, 1)[0].astype(np.float64) for path in paths]
    places = [(r, s) for r, x in enumerate(recordings) for s in range(0, len(x) - length, length)]
    if len(places) < count:
        raise SystemExit(f"error: the recordings hold {len(places)} windows, fewer than {count}")
    chosen = np.random.default_rng(seed).choice(len(places), count, replace=False)
    return [recordings[r][s : s + length] for r, s in (places[i] for i in sorted(chosen))]


def rescale_pitch(excerpt: np.ndarray, factor: float) -> tuple[np.ndarray, float]:
    """The excerpt resynthesised by WORLD with its F0 times `factor`, and its median F0 after."""
    f0, times = pyworld.harvest(excerpt, WORLD_RATE)
    if factor != 1.0:
        envelope = pyworld.cheaptrick(excerpt, f0, times, WORLD_RATE)
        aperiodicity = pyworld.d4c(excerpt, f0, times, WORLD_RATE)
        excerpt = pyworld.synthesize(f0 * factor, envelope, aperiodicity, WORLD_RATE)
        excerpt = excerpt[: audio.WINDOW_SECONDS * WORLD_RATE]
        f0 = f0 * factor
    voiced = f0[f0 > 0]
    return excerpt, float(np.median(voiced)) if len(voiced) else float("nan")


def measure(model: VoiceModel, clips: list[np.ndarray], factor: float) -> dict:
    windows, pitches = [], []
    for clip in clips:
        shifted, pitch = rescale_pitch(clip, factor)
        heard = librosa.resample(
            shifted.astype(np.float32), orig_sr=WORLD_RATE, target_sr=audio.SEPARATION_RATE
        )
        windows.append(model.snippet_window(np.tile(heard, (audio.SEPARATION_CHANNELS, 1))))
        pitches.append(pitch)
    probabilities = model.classifier_probabilities(np.stack([w.features for w in windows]))
    labels = model.labels
    calls = np.bincount(probabilities.argmax(1), minlength=len(labels))
    means = np.round(probabilities.mean(0), 3).tolist()
    return {
        "factor": factor,
        "median_f0_hz": round(float(np.nanmedian(pitches)), 1),
        "mean_probabilities": dict(zip(labels, means, strict=True)),
        "calls": dict(zip(labels, calls.tolist(), strict=True)),
    }


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("recordings", nargs="+", type=Path)
    parser.add_argument("--model", type=Path, default=None, help="bundle (default: bundled)")
    parser.add_argument("--excerpts", type=_positive, default=24)
    parser.add_argument("--factors", type=float, nargs="+", default=[0.7, 1.0, 1.4])
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    try:
        model = VoiceModel(args.model, device="cpu")
        clips = excerpts(args.recordings, args.excerpts)
    except VocalstreamError as error:
        parser.exit(1, f"error: {error}\n")
    results = [measure(model, clips, factor) for factor in args.factors]
    for result in results:
        calls = ", ".join(f"{label} {n}" for label, n in result["calls"].items())
        print(f"F0 x{result['factor']:.2f} (median {result['median_f0_hz']:.0f} Hz): {calls}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
