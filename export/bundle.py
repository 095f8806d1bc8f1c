"""Writing model bundles from trained runs (the layout is described in inference/bundle.py)."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import numpy as np
import torch

from vocalstream import audio
from vocalstream.errors import ModelError
from vocalstream.export.music import export_music, fit_gender_fusion, load_musicnn, music_manifest
from vocalstream.export.pitch import (
    fit_several_fusion,
    load_basic_pitch,
    pitch_manifest,
    pitch_session,
)
from vocalstream.files import atomic_folder, sha256
from vocalstream.inference.bundle import (
    BUNDLE_FORMAT,
    CLASSIFIER,
    CLASSIFIER_FP16,
    CLASSIFIER_INT8,
    INPUT,
    MANIFEST,
    MUSIC,
    MUSIC_LICENCE,
    OUTPUT,
    PITCH,
    PITCH_LICENCE,
    SEPARATOR,
)
from vocalstream.inference.frontend import CHANNELS
from vocalstream.inference.onnx_export import export_onnx
from vocalstream.inference.separator import (
    LEGACY_VARIANT,
    OnnxMaskEstimator,
    cached_separator_path,
)
from vocalstream.models.classifiers import Ensemble, VoiceGate
from vocalstream.models.labels import LABELS
from vocalstream.models.spleeter_weights import CHECKPOINTS
from vocalstream.train.corpus import sung_examples
from vocalstream.train.engine import load_trained
from vocalstream.train.run import load_run, read_examples
from vocalstream.version import __version__


def export_classifier(model: torch.nn.Module, path: Path, channels: int = 1) -> Path:
    """One graph, softmax averaging inside; the batch is dynamic."""
    example = torch.zeros(2, channels, audio.N_MELS, audio.WINDOW_FRAMES)
    dims = {0: torch.export.Dim("batch", min=1, max=4096)}
    # Constant folding lets onnxruntime fuse each batch norm into its convolution: half the time.
    return export_onnx(model, example, path, (INPUT, OUTPUT), dims, optimize=True)


def to_float16(source: Path, destination: Path) -> Path:
    """float16 weights and arithmetic, float32 input and output."""
    import onnx
    from onnxruntime.transformers.float16 import convert_float_to_float16

    model = convert_float_to_float16(onnx.load(source), keep_io_types=True)
    onnx.save(model, destination)
    return destination


def _from_softmax_on(model) -> list[str]:
    """The names of the Softmax nodes and of every node downstream of one."""
    consumers: dict[str, list] = {}
    for node in model.graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    reached, waiting = set(), [n for n in model.graph.node if n.op_type == "Softmax"]
    while waiting:
        node = waiting.pop()
        if node.name not in reached:
            reached.add(node.name)
            waiting += [c for output in node.output for c in consumers.get(output, [])]
    return sorted(reached)


def to_int8(source: Path, destination: Path, calibration: np.ndarray) -> Path:
    """7-bit weights (per channel) and 8-bit activations, calibrated on real features [N, C,
    N_MELS, WINDOW_FRAMES]. With 8-bit weights the graph's output would depend on the processor:
    x86 kernels without VNNI sum pairs of 8-bit products in 16 bits, which saturate.
    onnxruntime first folds each batch norm into its convolution, so the quantised graph runs on
    integer convolution kernels end to end. The probabilities, from the softmax on, stay in
    float: in 8-bit steps of 1/255 a voiced window's classes can all round to zero beside a
    confident no voice, and a voice gate then has no shares to split."""
    import onnx
    import onnxruntime as ort
    from onnxruntime.quantization import (
        CalibrationDataReader,
        QuantFormat,
        QuantType,
        quantize_static,
    )

    class Features(CalibrationDataReader):
        def __init__(self):
            self.batches = iter(calibration[i : i + 16] for i in range(0, len(calibration), 16))

        def get_next(self):
            batch = next(self.batches, None)
            return None if batch is None else {INPUT: np.ascontiguousarray(batch, np.float32)}

    folded = destination.with_suffix(".folded.onnx")
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    options.optimized_model_filepath = str(folded)
    ort.InferenceSession(str(source), options, providers=["CPUExecutionProvider"])
    quantiser_log = logging.getLogger()  # onnxruntime's quantiser advises on the root logger
    level = quantiser_log.level
    quantiser_log.setLevel(logging.ERROR)
    try:
        quantize_static(
            str(folded),
            str(destination),
            Features(),
            quant_format=QuantFormat.QDQ,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            per_channel=True,
            reduce_range=True,  # 7-bit weights: no saturation on processors without VNNI
            nodes_to_exclude=_from_softmax_on(onnx.load(folded)),
        )
    finally:
        quantiser_log.setLevel(level)
        folded.unlink(missing_ok=True)
    return destination


def ensemble_of_runs(
    runs: list[Path], run_weights: list[float] | None = None
) -> tuple[Ensemble, list[dict], list]:
    """The runs' members as one ensemble, each run weighted (default equally), its members
    inside it by their own weights."""
    run_weights = run_weights or [1.0 / len(runs)] * len(runs)
    if len(run_weights) != len(runs):
        raise ModelError(f"{len(runs)} runs but {len(run_weights)} weights")
    if abs(sum(run_weights) - 1.0) > 1e-6 or min(run_weights) < 0:
        raise ModelError(f"run weights must be non-negative and sum to 1, got {run_weights}")
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


def training_entries(runs: list[Path], summaries: list[dict]) -> list[dict]:
    """The manifest's "training_data": each run's recipe and class counts."""
    return [
        {"run": r.name, "recipe": s["recipe"], **s["data"]}
        for r, s in zip(runs, summaries, strict=True)
    ]


def validation_entries(runs: list[Path], summaries: list[dict]) -> list[dict]:
    """The manifest's "validation": each run's validation metrics."""
    return [{"run": r.name, **s["validation"]} for r, s in zip(runs, summaries, strict=True)]


def agreed(summaries: list[dict], key: str, default=None, what: str = "") -> object:
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
    int8_calibration: np.ndarray | None = None,
    voice_runs: list[Path] | None = None,
    music_weights: Path | None = None,
    fusion_data: Path | None = None,
    pitch_wheel: Path | None = None,
    several_data: Path | None = None,
) -> dict:
    """Write a bundle for the ensemble of `runs` (each run weighted, its members inside it by
    their own weights). fp16 adds the float16 classifier, fp32=False leaves the float32 one out
    (half the size); int8_calibration (features of real examples) adds the 8-bit classifier.
    voice_runs (trained on features below the mix's maximum, equally weighted) make a VoiceGate:
    they decide whether anyone sings, and `runs` (below the window's maximum) who.
    music_weights (musicnn's, from tools/musicnn_weights.py) add the real-music branch, its
    gender fusion fitted on the examples of fusion_data (a folder or manifest, as train --data).
    pitch_wheel (basic-pitch's wheel) adds the pitch branch, its several fusion fitted on the
    sung examples of several_data (a corpus manifest: train.corpus.sung_examples).
    Returns the manifest. The bundle appears whole or not at all."""
    if not (fp16 or fp32):
        raise ModelError("a bundle needs a float32 or a float16 classifier")
    ensemble, members, summaries = ensemble_of_runs(runs, weights)
    reference = agreed(summaries, "reference", "window", "the features' reference level")
    if voice_runs:
        voice, voice_members, voice_summaries = ensemble_of_runs(
            voice_runs, [1.0 / len(voice_runs)] * len(voice_runs)
        )
        voice_reference = agreed(voice_summaries, "reference", "window", "the gate's reference")
        if (reference, voice_reference) != ("window", "mix"):
            raise ModelError(
                "a voice gate takes runs trained with reference=mix and, for who is singing, "
                f"runs trained with reference=window; got {voice_reference} and {reference}"
            )
        ensemble = VoiceGate(ensemble, voice)
        members = [{**m, "role": "who"} for m in members]
        members += [{**m, "role": "voice"} for m in voice_members]
        runs, summaries, reference = [*runs, *voice_runs], summaries + voice_summaries, "both"
    separation = agreed(summaries, "separation", what="vocal separation")
    variant = agreed(summaries, "separator", LEGACY_VARIANT, "the separator variant")
    version = agreed(summaries, "frontend_version", what="the front-end version")
    if version != audio.FRONTEND_VERSION:
        raise ModelError(
            f"the runs used front-end version {version}; this vocalstream computes version "
            f"{audio.FRONTEND_VERSION}: retrain them"
        )
    music = pitch = None
    estimator = None
    if separation and (music_weights or pitch_wheel):
        estimator = OnnxMaskEstimator(cached_separator_path(variant), "cpu")
    if music_weights is not None:
        if fusion_data is None:
            raise ModelError("a music branch needs labelled data to fit its gender fusion on")
        network, notice = load_musicnn(music_weights)
        examples = read_examples(fusion_data)
        music = fit_gender_fusion(
            ensemble, network, examples, estimator, reference, fusion_data.as_posix()
        )
    if pitch_wheel is not None:
        if several_data is None:
            raise ModelError("a pitch branch needs a corpus split to fit its several fusion on")
        graph, pitch_licence = load_basic_pitch(pitch_wheel)
        examples = sung_examples(several_data)
        pitch = fit_several_fusion(
            ensemble, pitch_session(graph), examples, estimator, reference, several_data.as_posix()
        )
    with atomic_folder(destination) as folder:
        files = [export_classifier(ensemble, folder / CLASSIFIER, CHANNELS[reference])]
        if fp16:
            files.append(to_float16(files[0], folder / CLASSIFIER_FP16))
        if int8_calibration is not None:
            files.append(to_int8(files[0], folder / CLASSIFIER_INT8, int8_calibration))
        if not fp32:
            files.pop(0).unlink()
        if music is not None:
            files.append(export_music(network, folder / MUSIC))
            (folder / MUSIC_LICENCE).write_text(notice)
            files.append(folder / MUSIC_LICENCE)
        if pitch is not None:
            (folder / PITCH).write_bytes(graph)
            (folder / PITCH_LICENCE).write_text(pitch_licence)
            files += [folder / PITCH, folder / PITCH_LICENCE]
        if include_separator and separation:
            files.append(Path(shutil.copyfile(cached_separator_path(variant), folder / SEPARATOR)))
        manifest = {
            "format": BUNDLE_FORMAT,
            "vocalstream": __version__,
            "labels": list(LABELS),
            "frontend_version": audio.FRONTEND_VERSION,
            "separation": separation,
            "separator": variant,
            "reference": reference,
            "separator_weights_sha256": [digest for _, digest in CHECKPOINTS.values()],
            "audio": {
                "separation_rate": audio.SEPARATION_RATE,
                "window_seconds": audio.WINDOW_SECONDS,
                "n_fft": audio.SEPARATION_N_FFT,
                "hop": audio.SEPARATION_HOP,
                "n_mels": audio.N_MELS,
            },
            "input": {
                "name": INPUT,
                "shape": ["batch", CHANNELS[reference], audio.N_MELS, audio.WINDOW_FRAMES],
            },
            "output": {"name": OUTPUT, "shape": ["batch", len(LABELS)]},
            "members": members,
            "training_data": training_entries(runs, summaries),
            "validation": validation_entries(runs, summaries),
            "int8_calibration_examples": (
                None if int8_calibration is None else len(int8_calibration)
            ),
            "files": {Path(f).name: sha256(Path(f)) for f in files},
        }
        if music is not None:
            manifest["music"] = music_manifest(music)
        if pitch is not None:
            manifest["pitch"] = pitch_manifest(pitch)
        (folder / MANIFEST).write_text(json.dumps(manifest, indent=2))
    return manifest
