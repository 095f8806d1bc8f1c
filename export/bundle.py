"""Writing model bundles from trained runs (the layout is described in inference/bundle.py)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import torch

from vocalstream import audio
from vocalstream.errors import ModelError
from vocalstream.files import atomic_folder, sha256
from vocalstream.inference.bundle import (
    BUNDLE_FORMAT,
    CLASSIFIER,
    CLASSIFIER_FP16,
    INPUT,
    MANIFEST,
    OUTPUT,
    SEPARATOR,
)
from vocalstream.inference.separator import DEFAULT_VARIANT, cached_separator_path, export_onnx
from vocalstream.models.classifiers import LABELS, Ensemble
from vocalstream.models.spleeter import CHECKPOINTS
from vocalstream.train.engine import load_trained
from vocalstream.train.run import load_run
from vocalstream.version import __version__


def export_classifier(model: torch.nn.Module, path: Path) -> Path:
    """One graph, softmax averaging inside; the batch is dynamic."""
    example = torch.zeros(2, 1, audio.N_MELS, audio.WINDOW_FRAMES)
    dims = {0: torch.export.Dim("batch", min=1, max=4096)}
    return export_onnx(model, example, path, (INPUT, OUTPUT), dims)


def to_float16(source: Path, destination: Path) -> Path:
    """float16 weights and arithmetic, float32 input and output."""
    import onnx
    from onnxruntime.transformers.float16 import convert_float_to_float16

    model = convert_float_to_float16(onnx.load(source), keep_io_types=True)
    onnx.save(model, destination)
    return destination


def ensemble_of_runs(
    runs: list[Path], run_weights: list[float]
) -> tuple[Ensemble, list[dict], list]:
    networks, members, summaries = [], [], []
    for run_dir, run_weight in zip(runs, run_weights, strict=True):
        summary = load_run(run_dir)
        summaries.append(summary)
        for member in summary["members"]:
            folder = run_dir / "members" / member["name"]
            networks.append(load_trained(folder, member["architecture"]))
            members.append(
                {
                    "run": run_dir.name,
                    "name": member["name"],
                    "architecture": member["architecture"],
                    "weight": run_weight * member["weight"],
                    "best_epoch": member["best"]["epoch"],
                    "validation_accuracy": member["best"]["val_accuracy"],
                }
            )
    return Ensemble(networks, [m["weight"] for m in members]), members, summaries


def _agreed(summaries: list[dict], key: str, default=None, what: str = "") -> object:
    values = {s.get(key, default) for s in summaries}
    if len(values) > 1:
        raise ModelError(f"the runs disagree on {what or key}: ensemble runs trained alike")
    return values.pop()


def export_bundle(
    runs: list[Path],
    destination: Path,
    weights: list[float] | None = None,
    fp16: bool = False,
    include_separator: bool = True,
    fp32: bool = True,
) -> dict:
    """Write a bundle for the ensemble of `runs` (each run weighted, its members inside it by
    their own weights). fp16 adds the float16 classifier, fp32=False leaves the float32 one out
    (half the size). Returns the manifest. The bundle appears whole or not at all."""
    if not (fp16 or fp32):
        raise ModelError("a bundle needs a float32 or a float16 classifier")
    weights = weights or [1.0 / len(runs)] * len(runs)
    if len(weights) != len(runs):
        raise ModelError(f"{len(runs)} runs but {len(weights)} weights")
    if abs(sum(weights) - 1.0) > 1e-6 or min(weights) < 0:
        raise ModelError(f"run weights must be non-negative and sum to 1, got {weights}")
    ensemble, members, summaries = ensemble_of_runs(runs, weights)
    separation = _agreed(summaries, "separation", what="vocal separation")
    variant = _agreed(summaries, "separator", DEFAULT_VARIANT, "the separator variant")
    version = _agreed(summaries, "frontend_version", what="the front-end version")
    if version != audio.FRONTEND_VERSION:
        raise ModelError(
            f"the runs used front-end version {version}; this vocalstream computes version "
            f"{audio.FRONTEND_VERSION}: retrain them"
        )
    with atomic_folder(destination) as folder:
        files = [export_classifier(ensemble, folder / CLASSIFIER)]
        if fp16:
            files.append(to_float16(files[0], folder / CLASSIFIER_FP16))
        if not fp32:
            files.pop(0).unlink()
        if include_separator and separation:
            files.append(Path(shutil.copyfile(cached_separator_path(variant), folder / SEPARATOR)))
        manifest = {
            "format": BUNDLE_FORMAT,
            "vocalstream": __version__,
            "labels": list(LABELS),
            "frontend_version": audio.FRONTEND_VERSION,
            "separation": separation,
            "separator": variant,
            "separator_weights_sha256": [digest for _, digest in CHECKPOINTS.values()],
            "audio": {
                "separation_rate": audio.SEPARATION_RATE,
                "window_seconds": audio.WINDOW_SECONDS,
                "n_fft": audio.SEPARATION_N_FFT,
                "hop": audio.SEPARATION_HOP,
                "n_mels": audio.N_MELS,
            },
            "input": {"name": INPUT, "shape": ["batch", 1, audio.N_MELS, audio.WINDOW_FRAMES]},
            "output": {"name": OUTPUT, "shape": ["batch", len(LABELS)]},
            "members": members,
            "training_data": [
                {"run": r.name, "recipe": s["recipe"], **s["data"]}
                for r, s in zip(runs, summaries, strict=True)
            ],
            "validation": [
                {"run": r.name, **s["validation"]} for r, s in zip(runs, summaries, strict=True)
            ],
            "files": {Path(f).name: sha256(Path(f)) for f in files},
        }
        (folder / MANIFEST).write_text(json.dumps(manifest, indent=2))
    return manifest
