"""Inference speed: separator, classifier and isolated-window pipeline, torch against onnxruntime.

    python bench/inference.py [--bundle DIR] [--repeats 20]

Prints windows per second and per-call latency (p50 / p99) at batch 1 and 32 on real 3-s
windows. Each backend runs in its own process with deliberate thread counts. Without --bundle, a
timing bundle is made with vocalstream's own train and export commands: the seed000 ensemble
(CNN4 + ResNet34) trained for one epoch on 16 real snippets; its weights do not affect speed.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "librosa-data"


def windows(count: int) -> np.ndarray:
    from vocalstream import audio

    length = audio.WINDOW_SECONDS * audio.SEPARATION_RATE
    picks = []
    for path in sorted(DATA.glob("*.ogg")):
        signal = audio.load(path, audio.SEPARATION_RATE, 2)
        picks += [signal[:, s : s + length] for s in range(0, signal.shape[1] - length, length)]
    return np.stack([picks[i % len(picks)] for i in range(count)])


def timing_bundle(folder: Path, recipe_name: str = "seed000-ensemble") -> Path:
    import soundfile as sf

    from vocalstream import audio
    from vocalstream.export.bundle import export_bundle
    from vocalstream.train import data
    from vocalstream.train.recipe import load_recipe
    from vocalstream.train.run import train_run

    snippets = folder / "snippets"
    snippets.mkdir()
    for index, window in enumerate(windows(16)):
        sf.write(snippets / f"{index}.flac", window.T, audio.SEPARATION_RATE)
    (snippets / "train_label.txt").write_text("".join(f"{i % 4}\n" for i in range(16)))
    recipe = load_recipe(recipe_name)
    examples = data.read_seed_folder(snippets)
    train_run(recipe, examples, folder / "run", {"epochs": 1}, log=lambda m: None, progress=False)
    export_bundle([folder / "run"], folder / "bundle", include_separator=False)
    return folder / "bundle"


def measure(work, batch: int, repeats: int) -> dict:
    work()  # warm-up
    calls = []
    for _ in range(repeats):
        start = time.perf_counter()
        work()
        calls.append(time.perf_counter() - start)
    return {
        "windows_per_s": batch / statistics.median(calls),
        "p50_ms": 1e3 * float(np.percentile(calls, 50)),
        "p99_ms": 1e3 * float(np.percentile(calls, 99)),
    }


def run_backend(
    backend: str, bundle: Path, runs: list[Path], repeats: int, threads: int
) -> list[dict]:
    import torch

    from vocalstream import audio
    from vocalstream.inference.frontend import snippet_features
    from vocalstream.inference.model import VoiceModel
    from vocalstream.inference.separator import torch_estimator

    torch.set_num_threads(threads)
    classifier = VoiceModel(bundle, device="cpu", threads=threads)
    audio_windows = windows(32)
    frames = 192  # a 3-s window's 130 frames, padded to a multiple of 64
    magnitude = torch.rand(32, 2, frames, audio.SEPARATION_BINS)
    features_np = np.stack([snippet_features(w, classifier.estimator) for w in audio_windows])
    if backend == "torch":
        from vocalstream.export.bundle import ensemble_of_runs

        ensemble, _, _ = ensemble_of_runs(runs, [1.0 / len(runs)] * len(runs))
        separator = torch_estimator()

        def classify(features):
            with torch.inference_mode():
                return ensemble(torch.from_numpy(features)).numpy()

        def pipeline(batch):
            return classify(np.stack([snippet_features(w, separator) for w in batch]))
    else:
        separator = classifier.estimator
        classify = classifier.probabilities
        pipeline = classifier.classify_snippets

    rows = []
    for batch in (1, 32):
        count = repeats if batch == 1 else max(3, repeats // 4)
        for component, work in (
            ("separator", lambda b=batch: separator(magnitude[:b])),
            ("classifier", lambda b=batch: classify(features_np[:b])),
            ("pipeline", lambda b=batch: pipeline(audio_windows[:b])),
        ):
            rows.append(
                {
                    "component": component,
                    "backend": backend,
                    "batch": batch,
                    **measure(work, batch, count),
                }
            )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bundle", type=Path)
    parser.add_argument(
        "--runs",
        type=Path,
        nargs="*",
        default=[],
        help="The training runs behind --bundle, for the torch rows.",
    )
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)))
    parser.add_argument("--only", choices=["torch", "onnx"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.only:
        rows = run_backend(args.only, args.bundle, args.runs, args.repeats, args.threads)
        print(json.dumps(rows))
        return

    with tempfile.TemporaryDirectory() as scratch:
        bundle, runs = args.bundle, args.runs
        if bundle is None:
            bundle, runs = timing_bundle(Path(scratch)), [Path(scratch) / "run"]
            print(
                "timing bundle: seed000-ensemble trained 1 epoch on 16 real snippets",
                file=sys.stderr,
            )
        rows = []
        for backend in ("torch", "onnx"):
            if backend == "torch" and not runs:
                print("no --runs: the torch rows are left out", file=sys.stderr)
                continue
            command = [
                sys.executable,
                __file__,
                "--only",
                backend,
                "--bundle",
                str(bundle),
                "--repeats",
                str(args.repeats),
                "--threads",
                str(args.threads),
                "--runs",
                *map(str, runs),
            ]
            done = subprocess.run(command, capture_output=True, text=True)
            if done.returncode:
                sys.exit(done.stderr)
            rows += json.loads(done.stdout.strip().splitlines()[-1])

    print(f"CPU, {args.threads} threads; 3-s windows; latency = one call at that batch")
    print("| component | backend | batch | windows/s | p50 ms | p99 ms |")
    print("|---|---|---|---|---|---|")
    for row in sorted(rows, key=lambda r: (r["component"], r["batch"], r["backend"])):
        speed = f"{row['windows_per_s']:.1f} | {row['p50_ms']:.1f} | {row['p99_ms']:.1f}"
        print(f"| {row['component']} | {row['backend']} | {row['batch']} | {speed} |")


if __name__ == "__main__":
    main()
