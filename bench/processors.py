"""Does a bundle's classifier answer the same on a processor without VNNI? On the dev set.

python bench/processors.py DEVSET [--model BUNDLE] [--cpu Haswell]

Every window of the development set (`vocalstream corpus build-dev`) goes through the model's
own front-end; each classifier graph of the bundle runs on those features natively and under
`qemu-x86_64 -cpu CPU` (qemu-user; Haswell has AVX2 but neither VNNI nor AVX-512), one thread.
Printed for each graph: the largest and mean change of a probability between the two, how many
windows change their argmax, and how far each is from the bundle's float classifier. Then the
dev set is scored as bench/devset.py scores it twice, through the product's file path, with the
classifier's outputs taken from the native run and from the emulated one; the separator and the
branches are float and run natively either way. Emulation is slow: the bundled model's two
graphs on the set's 924 windows take about 14 min on this 2-core machine.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import subprocess
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

import numpy as np
from devset import score

from vocalstream import audio
from vocalstream.inference.bundle import CLASSIFIERS, resolve_bundle
from vocalstream.inference.model import VoiceModel
from vocalstream.train.devset import digest, read_windows

RUNNER = Path(__file__).resolve().parents[1] / "tools" / "run_classifier.py"


def _key(features: np.ndarray) -> str:
    return hashlib.sha1(np.ascontiguousarray(features, np.float32).tobytes()).hexdigest()


class ReplayedClassifier(VoiceModel):
    """The model with its classifier's outputs looked up from a run elsewhere, by features."""

    def __init__(self, *arguments, outputs: dict[str, np.ndarray], **options):
        super().__init__(*arguments, **options)
        self.outputs = outputs

    def classifier_probabilities(self, features: np.ndarray) -> np.ndarray:
        return np.stack([self.outputs[_key(f)] for f in features]).astype(np.float32)


def dev_features(engine: VoiceModel, rows: list[dict], hop: float) -> np.ndarray:
    """The features of every window of every clip, as the file path computes them."""
    features = []
    for clip in sorted({row["clip"] for row in rows}):
        stream = engine.feature_stream(hop, live=False)
        signal = audio.load(clip, audio.SEPARATION_RATE, audio.SEPARATION_CHANNELS)
        features += [w.features for w in stream.push(signal) + stream.flush()]
    return np.stack(features)


def outputs_of(graph: Path, features: Path, folder: Path, cpu: str | None) -> np.ndarray:
    out = folder / f"{graph.name}-{cpu or 'native'}.npy"
    prefix = ["qemu-x86_64", "-cpu", cpu] if cpu else []
    command = [*prefix, sys.executable, str(RUNNER), str(graph), str(features)]
    run = subprocess.run([*command, str(out)], capture_output=True, text=True)
    if run.returncode:
        raise SystemExit(f"{graph.name} under {cpu or 'this processor'}: {run.stderr[-1000:]}")
    return np.load(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("devset", type=Path)
    parser.add_argument("--model", type=Path, default=None, help="bundle (default: bundled)")
    parser.add_argument("--cpu", default="Haswell", help="the processor qemu emulates")
    parser.add_argument("--hop", type=float, default=1.0)
    arguments = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    bundle = resolve_bundle(arguments.model)
    rows = read_windows(arguments.devset)
    held = [p for p, name in CLASSIFIERS.items() if name in bundle.manifest["files"]]
    report = {"devset": digest(arguments.devset), "model": str(bundle.folder), "cpu": arguments.cpu}
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        features = dev_features(VoiceModel(bundle, "cpu"), rows, arguments.hop)
        np.save(folder / "features.npy", features)
        runs = defaultdict(dict)
        for precision in held:
            graph = bundle.path(CLASSIFIERS[precision])
            for cpu in (None, arguments.cpu):
                runs[precision][cpu] = outputs_of(graph, folder / "features.npy", folder, cpu)
    reference = runs["fp32" if "fp32" in held else "fp16"][None]
    keys = [_key(f) for f in features]
    report["windows"] = len(features)
    for precision in held:
        native, emulated = runs[precision][None], runs[precision][arguments.cpu]
        change = np.abs(native - emulated)
        engines = {
            where: ReplayedClassifier(
                bundle, "cpu", precision=precision, outputs=dict(zip(keys, outputs, strict=True))
            )
            for where, outputs in (("native", native), ("emulated", emulated))
        }
        scored = {where: score(e, rows, arguments.hop) for where, e in engines.items()}
        report[precision] = {
            "largest_change": float(change.max()),
            "mean_change": float(change.mean()),
            "argmax_changes": int((native.argmax(1) != emulated.argmax(1)).sum()),
            "largest_from_float": float(np.abs(native - reference).max()),
            "dev": {
                where: {
                    k: round(r[k], 4)
                    for k in ("voice_no_voice", "gender", "gender_strict", "several_f1")
                }
                for where, r in scored.items()
            },
        }
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
