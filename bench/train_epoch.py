"""Training speed on this machine: seconds per epoch for 1,000 snippets, per model.

    python bench/train_epoch.py [--snippets 1000] [--models cnn4,resnet34,resnet18]

Features are real: 3-s windows of the real recordings in ../shared/data, tiled to --snippets
(an epoch's cost does not depend on the values). One epoch of each model runs as its recipe
sets it (batch 16, augmentations, mixup) on an 80/20 train/validation split, validation
included. Feature extraction (with and without vocal separation) is timed per snippet apart.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from vocalstream import audio
from vocalstream.inference.frontend import snippet_features
from vocalstream.inference.separator import load_estimator
from vocalstream.train.engine import Split, train_model
from vocalstream.train.recipe import load_recipe

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "librosa-data"
RECIPE_OF = {"cnn4": "cnn4", "resnet34": "resnet34", "resnet18": "resnet18x8"}


def real_windows(rate: int, channels: int, count: int) -> np.ndarray:
    length = audio.WINDOW_SECONDS * rate
    windows = []
    for path in sorted(DATA.glob("*.ogg")):
        signal = audio.load(path, rate, channels)
        windows += [signal[:, s : s + length] for s in range(0, signal.shape[1] - length, length)]
    return np.stack(windows[:count])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--snippets", type=int, default=1000)
    parser.add_argument("--models", default="cnn4,resnet34,resnet18")
    parser.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    stereo = real_windows(audio.SEPARATION_RATE, 2, 64)
    estimator = load_estimator("onnx", "cpu")
    snippet_features(stereo[0], estimator)
    start = time.perf_counter()
    features = torch.from_numpy(np.stack([snippet_features(s, estimator) for s in stereo]))
    with_separation = (time.perf_counter() - start) / len(stereo)
    del estimator
    mono = torch.from_numpy(real_windows(audio.CLASSIFIER_RATE, 1, 64)[:, 0])
    start = time.perf_counter()
    audio.logmel(mono)
    mix_only = (time.perf_counter() - start) / len(mono)

    features = features.repeat(-(-args.snippets // len(features)), 1, 1, 1)[: args.snippets]
    labels = torch.arange(args.snippets) % 4
    cut = int(0.8 * args.snippets)
    weights = (0.25, 0.25, 0.25, 0.25)
    train = Split(features[:cut], labels[:cut], weights)
    validation = Split(features[cut:], labels[cut:], weights)

    print(
        f"{args.snippets} snippets ({cut} train + {args.snippets - cut} validation), "
        f"{args.threads} threads, torch {torch.__version__}"
    )
    print("| model | recipe | seconds per epoch | ms per snippet |")
    print("|---|---|---|---|")
    for name in args.models.split(","):
        recipe = load_recipe(RECIPE_OF[name], {"epochs": 1})
        with tempfile.TemporaryDirectory() as out:
            best = train_model(
                recipe, train, validation, Path(out), log=lambda m: None, progress=False
            )
        print(
            f"| {name} | {recipe.name} | {best['seconds']:.1f} | "
            f"{1e3 * best['seconds'] / args.snippets:.0f} |"
        )
    print(
        f"\nfeatures per snippet: {1e3 * with_separation:.0f} ms with vocal separation "
        f"(ONNX, batch 16), {1e3 * mix_only:.1f} ms for the mix alone; cached after the first "
        "epoch"
    )


if __name__ == "__main__":
    main()
