"""A training run end to end, in one folder: data, cached features, each member, the ensemble.

RUN_DIR/recipe.toml       the resolved recipe
RUN_DIR/members/NAME/     checkpoint.pt, best.pt, metrics.jsonl, curves.png, confusion.png
RUN_DIR/run.json          members and weights, data summary, validation metrics
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from vocalstream import audio
from vocalstream.errors import VocalstreamError
from vocalstream.files import atomic_path, cache_dir
from vocalstream.inference.separator import DEFAULT_VARIANT, LEGACY_VARIANT, load_estimator
from vocalstream.train import data
from vocalstream.train.engine import (
    Split,
    classification_report,
    distributed_from_environment,
    load_trained,
    predict_probabilities,
    train_model,
)
from vocalstream.train.features import FeatureCache
from vocalstream.train.recipe import Recipe, to_toml

RUN_SUMMARY = "run.json"


_log = logging.getLogger("vocalstream").info


def read_examples(source: Path, labels: Path | None = None) -> list[data.Example]:
    """A seeds'-format folder (N.mp3 + train_label.txt) or a CSV manifest (path,label[,group])."""
    if source.suffix.lower() == ".csv":
        return data.read_manifest(source)
    return data.read_seed_folder(source, labels)


def feature_cache(
    separation: bool,
    device: str,
    features_dir: Path | None,
    separator: str = DEFAULT_VARIANT,
    reference: str = "window",
) -> FeatureCache:
    estimator = None
    if separation:
        onnx_device = "auto" if device.startswith("cuda") else "cpu"
        estimator = load_estimator("onnx", onnx_device, separator)
    directory = features_dir or cache_dir() / "features"
    return FeatureCache(directory, estimator, separator, reference)


def run_feature_cache(summary: dict, device: str) -> FeatureCache:
    """The features a finished run was trained on (runs older than a field used its default)."""
    return feature_cache(
        summary["separation"],
        device,
        None,
        summary.get("separator", LEGACY_VARIANT),
        summary.get("reference", "window"),
    )


def _split(
    examples: list[data.Example], cache: FeatureCache, progress: bool, jobs: int = 1
) -> Split:
    features = cache.features([e.path for e in examples], progress, jobs)
    labels = torch.tensor([e.label for e in examples], dtype=torch.long)
    return Split(torch.from_numpy(features), labels, tuple(data.class_weights(examples)))


def train_run(
    recipe: Recipe,
    examples: list[data.Example],
    out: Path,
    overrides: dict[str, object] | None = None,
    device: str = "cpu",
    resume: bool = False,
    on_unreadable: str = "fail",
    features_dir: Path | None = None,
    log: Callable[[str], None] = _log,
    progress: bool = True,
    validation_examples: list[data.Example] | None = None,
    feature_jobs: int = 1,
) -> dict:
    """Train every member of `recipe` on `examples`; returns the run summary.

    Validation takes `validation_examples` when given (a corpus split by speaker and music, say),
    else a split of `examples` by the recipe's fraction and seed. Features not yet cached are
    computed in `feature_jobs` processes."""
    import torch.distributed as dist

    context = distributed_from_environment()
    out.mkdir(parents=True, exist_ok=True)
    examples, skipped = data.check_readable(examples, on_unreadable)
    if validation_examples is None:
        training, validation = data.split(
            examples, recipe.validation_fraction, recipe.seed, recipe.split_by_group
        )
    else:
        training = examples
        validation, skipped_validation = data.check_readable(validation_examples, on_unreadable)
        skipped += skipped_validation
        if not validation:
            raise VocalstreamError("no readable validation examples")
    for example, reason in skipped:
        log(f"skipped {example.path}: {reason}")
    if recipe.upsample_label0:
        training = data.upsample(training, label=0, copies=recipe.upsample_label0)

    cache = feature_cache(
        recipe.separation, device, features_dir, recipe.separator, recipe.reference
    )
    if context.world > 1 and not context.is_main:
        dist.barrier()  # rank 0 fills the cache first
    train_split = _split(training, cache, progress and context.is_main, feature_jobs)
    validation_split = _split(validation, cache, progress and context.is_main, feature_jobs)
    if context.world > 1 and context.is_main:
        dist.barrier()
    del cache  # drop the separator's onnxruntime threads before torch trains

    if context.is_main:
        (out / "recipe.toml").write_text(to_toml(recipe))
    members = recipe.member_recipes(overrides)
    weights = recipe.member_weights()
    results = []
    for member in members:
        best = train_model(
            member,
            train_split,
            validation_split,
            out / "members" / member.name,
            device=device,
            resume=resume,
            log=log,
            progress=progress,
        )
        results.append(best)

    summary = {
        "recipe": recipe.name,
        "members": [
            {"name": m.name, "architecture": m.architecture, "weight": w, "best": r}
            for m, w, r in zip(members, weights, results, strict=True)
        ],
        "separation": recipe.separation,
        "separator": recipe.separator,
        "reference": recipe.reference,
        "frontend_version": audio.FRONTEND_VERSION,
        "data": {
            "train": data.counts(training),
            "validation": data.counts(validation),
            "skipped": [str(e.path) for e, _ in skipped],
        },
    }
    if context.is_main:
        probabilities = ensemble_probabilities(out, summary, validation_split.features, device)
        summary["validation"] = classification_report(
            validation_split.labels.numpy(), probabilities.argmax(1).numpy()
        )
        with atomic_path(out / RUN_SUMMARY) as scratch:
            scratch.write_text(json.dumps(summary, indent=2))
        kind = f"ensemble of {len(members)}" if len(members) > 1 else "one model"
        log(f"{recipe.name}: validation accuracy {summary['validation']['accuracy']:.3f} ({kind})")
    return summary


def load_run(run_dir: Path) -> dict:
    path = run_dir / RUN_SUMMARY
    if not path.is_file():
        raise VocalstreamError(f"{run_dir}: not a finished vocalstream run (no {RUN_SUMMARY})")
    return json.loads(path.read_text())


def ensemble_probabilities(
    run_dir: Path, summary: dict, features: torch.Tensor, device: str = "cpu"
) -> torch.Tensor:
    """The weighted average of the members' softmaxes [N, NUM_CLASSES]."""
    total = None
    for member in summary["members"]:
        network = load_trained(run_dir / "members" / member["name"], member["architecture"], device)
        part = member["weight"] * predict_probabilities(network, features, device)
        total = part if total is None else total + part
    return total


def evaluate_run(run_dir: Path, examples: list[data.Example], device: str = "cpu") -> dict:
    summary = load_run(run_dir)
    cache = run_feature_cache(summary, device)
    split = _split(examples, cache, progress=True)
    del cache
    probabilities = ensemble_probabilities(run_dir, summary, split.features, device)
    return classification_report(split.labels.numpy(), probabilities.argmax(1).numpy())


def predict_folder(run_dir: Path, folder: Path, device: str = "cpu") -> list[tuple[str, int]]:
    """(id, category) for every audio file in `folder`, ids being file stems, sorted."""
    summary = load_run(run_dir)
    files = sorted(
        (p for p in folder.iterdir() if p.suffix.lower() in audio.READABLE_EXTENSIONS),
        key=lambda p: (not p.stem.isdigit(), int(p.stem) if p.stem.isdigit() else 0, p.stem),
    )
    if not files:
        raise VocalstreamError(f"{folder}: no audio files to predict")
    cache = run_feature_cache(summary, device)
    features = torch.from_numpy(cache.features(files, progress=True))
    del cache
    probabilities = ensemble_probabilities(run_dir, summary, features, device)
    return [(p.stem, int(c)) for p, c in zip(files, probabilities.argmax(1), strict=True)]


def calibration_features(run_dir: Path, source: Path, count: int = 256) -> np.ndarray:
    """Features of up to `count` examples of `source`, spread evenly over it, computed as the
    run's training computed them: what an 8-bit classifier is calibrated on."""
    summary = load_run(run_dir)
    examples = read_examples(source)
    chosen = examples[:: max(1, len(examples) // count)][:count]
    cache = run_feature_cache(summary, "cpu")
    return cache.features([e.path for e in chosen])


def write_predictions(rows: list[tuple[str, int]], destination: Path) -> None:
    with atomic_path(destination) as scratch:
        scratch.write_text("id,category\n" + "".join(f"{i},{c}\n" for i, c in rows))
