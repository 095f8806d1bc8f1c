"""How far the engine's cheaper paths drift from the per-window, two-network, float32 path.

    python bench/agreement.py [--model BUNDLE ...] [--hop 1]

On real recordings (a song with a female lead, the README's sample, a solo singer, an
instrumental), 3-s windows every --hop seconds are featurised by:
- per-window: each window on its own, as front-end version 1 did (the reference);
- stream file / stream live: cut from one separated frame stream (engine v2);
with the official two networks (`2stems`) or the vocal network's own mask (`vocals`). For each
path: the mean and 95th percentile absolute log-mel difference from the reference (dB, over
cells within 60 dB of the window's maximum), and for each model the share of windows whose
argmax equals the model's argmax on the reference; then the model's classifier precisions
(float16, 8-bit) against its float32 (or float16) graph on the reference features.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from vocalstream import audio
from vocalstream.inference.bundle import CLASSIFIERS
from vocalstream.inference.frontend import FeatureStream, snippet_features
from vocalstream.inference.model import VoiceModel
from vocalstream.inference.separator import OnnxMaskEstimator, cached_separator_path

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
RECORDINGS = {
    "song (female lead)": DATA / "librosa-data/Karissa_Hobbs_-_Lets_Go_Fishin.ogg",
    "README sample": Path(__file__).resolve().parents[1] / "samples/example.mp3",
    "solo singer (vocadito)": DATA / "vocadito/vocadito_1.wav",
    "instrumental": DATA / "librosa-data/Kevin_MacLeod_-_Vibe_Ace.ogg",
}
RATE = audio.SEPARATION_RATE
WINDOW = audio.WINDOW_SECONDS * RATE


def per_window(signal: np.ndarray, hop: float, estimator) -> np.ndarray:
    starts = [
        round(i * hop * RATE) for i in range(int((signal.shape[1] - WINDOW) / (hop * RATE)) + 1)
    ]
    return np.stack([snippet_features(signal[:, s : s + WINDOW], estimator) for s in starts])


def streamed(signal: np.ndarray, hop: float, estimator, live: bool, count: int) -> np.ndarray:
    stream = FeatureStream(estimator, hop, live)
    windows = []
    block = int(0.1 * RATE)
    for start in range(0, signal.shape[1], block):
        windows += stream.push(signal[:, start : start + block])
    windows += stream.flush()
    return np.stack([w.features for w in windows[:count]])


def difference(features: np.ndarray, reference: np.ndarray) -> tuple[float, float]:
    cells = np.abs(features - reference)[reference > -60.0]
    return float(cells.mean()), float(np.percentile(cells, 95))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, nargs="*", default=[None])
    parser.add_argument("--hop", type=float, default=1.0)
    args = parser.parse_args()
    estimators = {
        v: OnnxMaskEstimator(cached_separator_path(v), "cpu") for v in ("2stems", "vocals")
    }
    models = {str(m or "default"): VoiceModel(m, device="cpu") for m in args.model}

    paths: dict[str, list[np.ndarray]] = {}
    for name, path in RECORDINGS.items():
        signal = audio.load(path, RATE, 2)
        reference = per_window(signal, args.hop, estimators["2stems"])
        paths.setdefault("per-window 2stems (reference)", []).append(reference)
        for variant, estimator in estimators.items():
            if variant != "2stems":
                paths.setdefault(f"per-window {variant}", []).append(
                    per_window(signal, args.hop, estimator)
                )
            for live in (False, True):
                label = f"stream {'live' if live else 'file'} {variant}"
                paths.setdefault(label, []).append(
                    streamed(signal, args.hop, estimator, live, len(reference))
                )
        print(f"{name}: {len(reference)} windows")
    features = {label: np.concatenate(parts) for label, parts in paths.items()}
    reference = features["per-window 2stems (reference)"]

    print(f"\n{len(reference)} windows of {len(RECORDINGS)} real recordings, hop {args.hop:g} s\n")
    header = " | ".join(f"argmax agreement, {name}" for name in models)
    print(f"| path | mean dB | p95 dB | {header} |")
    print("|---|---|---|" + "---|" * len(models))
    on_reference = {
        name: model.classifier_probabilities(reference).argmax(1) for name, model in models.items()
    }
    for label, values in features.items():
        mean, p95 = difference(values, reference)
        agreements = " | ".join(
            f"{(model.classifier_probabilities(values).argmax(1) == on_reference[name]).mean():.3f}"
            for name, model in models.items()
        )
        print(f"| {label} | {mean:.2f} | {p95:.2f} | {agreements} |")

    print("\n| model | classifier | against | max abs probability difference | argmax agreement |")
    print("|---|---|---|---|---|")
    for name, model in models.items():
        held = [p for p, file in CLASSIFIERS.items() if file in model.bundle.manifest["files"]]
        base = "fp32" if "fp32" in held else held[0]
        inputs = features[f"stream file {model.bundle.separator_variant}"]
        expected = VoiceModel(model.bundle, device="cpu", precision=base).classifier_probabilities(
            inputs
        )
        for precision in held:
            if precision != base:
                ours = VoiceModel(
                    model.bundle, device="cpu", precision=precision
                ).classifier_probabilities(inputs)
                agreement = (ours.argmax(1) == expected.argmax(1)).mean()
                gap = np.abs(ours - expected).max()
                print(f"| {name} | {precision} | {base} | {gap:.4f} | {agreement:.3f} |")


if __name__ == "__main__":
    main()
