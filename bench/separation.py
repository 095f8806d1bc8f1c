"""Separation speed on the CPU: official spleeter (TensorFlow) against vocalstream torch and ONNX.

    python bench/separation.py [--seconds 60] [--repeats 3] [--spleeter-python PATH]

Each implementation runs in its own process on the same clip (the bundled sample tiled to
--seconds), so no thread pool is left spinning for the next one. Official spleeter needs its own
virtual environment (see tools/spleeter_official.py); without it that row is left out.
Agreement is the SDR of each vocalstream backend against official spleeter's committed outputs.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "samples" / "example.mp3"
REFERENCE = REPO / "tests" / "data" / "spleeter"
DEFAULT_SPLEETER_PYTHON = REPO.parent / "spleeter-venv" / "bin" / "python"


def measure(backend: str, seconds: float, repeats: int, threads: int) -> dict:
    """Runs inside the child process: cold (model load + first call) and warm timings."""
    import numpy as np
    import torch

    from vocalstream import audio
    from vocalstream.inference.separator import load_estimator
    from vocalstream.models.spleeter import STEMS
    from vocalstream.stream.separation import Separator

    torch.set_num_threads(threads)
    clip = audio.load(SAMPLE, audio.SEPARATION_RATE, 2)
    samples = int(seconds * audio.SEPARATION_RATE)
    clip = np.tile(clip, (1, -(-samples // clip.shape[1])))[:, :samples]

    start = time.perf_counter()
    separator = Separator(load_estimator(backend, "cpu", variant="2stems"))
    separator.separate(clip)
    cold = time.perf_counter() - start
    warm = []
    for _ in range(repeats):
        start = time.perf_counter()
        separator.separate(clip)
        warm.append(time.perf_counter() - start)

    agreement = []
    for name in ("example", "fishin"):
        stems = separator.separate(audio.load(REFERENCE / f"{name}.mix.flac", 44100, 2))
        for index, stem in enumerate(STEMS):
            official = audio.load(REFERENCE / f"{name}.{stem}.flac", 44100, 2)
            error = np.sum((official - stems[index]) ** 2)
            agreement.append(float(10 * np.log10(np.sum(official**2) / error)))
    return {
        "implementation": f"vocalstream-{backend}",
        "seconds_audio": seconds,
        "cold_s": cold,
        "warm_s_median": statistics.median(warm),
        "min_sdr_db": min(agreement),
    }


def child(arguments: list[str]) -> dict:
    run = subprocess.run(arguments, capture_output=True, text=True)
    if run.returncode:
        sys.exit(f"{arguments[1]} failed:\n{run.stderr}")
    return json.loads(run.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)))
    parser.add_argument("--spleeter-python", type=Path, default=DEFAULT_SPLEETER_PYTHON)
    parser.add_argument("--only", choices=["torch", "onnx"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.only:
        print(json.dumps(measure(args.only, args.seconds, args.repeats, args.threads)))
        return

    rows = []
    if args.spleeter_python.exists():
        rows.append(
            child(
                [
                    str(args.spleeter_python),
                    str(REPO / "tools" / "spleeter_official.py"),
                    "time",
                    "--input",
                    str(SAMPLE),
                    "--seconds",
                    str(args.seconds),
                    "--repeats",
                    str(args.repeats),
                ]
            )
        )
    else:
        print(f"no spleeter venv at {args.spleeter_python}: official row left out", file=sys.stderr)
    for backend in ("torch", "onnx"):
        rows.append(
            child(
                [
                    sys.executable,
                    __file__,
                    "--only",
                    backend,
                    "--seconds",
                    str(args.seconds),
                    "--repeats",
                    str(args.repeats),
                    "--threads",
                    str(args.threads),
                ]
            )
        )

    official = next((r for r in rows if r["implementation"] == "spleeter-official-tf"), None)
    print(
        f"clip: {SAMPLE.name} tiled to {args.seconds:.0f} s; {args.threads} threads; "
        f"warm = median of {args.repeats}"
    )
    print(
        "| implementation | cold s | warm s per min of audio | x real time | "
        "speed-up vs official (warm) | min SDR vs official |"
    )
    print("|---|---|---|---|---|---|")
    for row in rows:
        per_minute = row["warm_s_median"] * 60.0 / row["seconds_audio"]
        ratio = official["warm_s_median"] / row["warm_s_median"] if official else float("nan")
        sdr = f"{row['min_sdr_db']:.1f} dB" if "min_sdr_db" in row else "reference"
        print(
            f"| {row['implementation']} | {row['cold_s']:.2f} | {per_minute:.2f} | "
            f"{60.0 / per_minute:.1f} | {ratio:.2f}x | {sdr} |"
        )


if __name__ == "__main__":
    main()
