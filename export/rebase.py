"""New who-members on an existing bundle's voice gate and branches.

A voice-gated classifier (models.classifiers.VoiceGate) is one ONNX graph: P(no voice) comes from
the gate, and the voice classes share the rest as the who-ensemble shares them. Rebasing cuts the
gate out of each of a base bundle's classifier graphs, exactly as it was (its float16 or 8-bit
weights included), and joins it to the new who-ensemble's graph of the same precision. The
branches, their fitted fusions and the separator are copied unchanged. Given gate runs too, the
whole classifier is new and only the branches, their fusions and the separator are kept.

Why not retrain the gate with the rest: a gate is judged by whether it hears real singers, which
its training data (speech over music) does not show, so a gate that the real-singing dev set
confirmed is worth keeping while the who-members improve.
"""

from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper

from vocalstream.errors import ModelError
from vocalstream.export.bundle import (
    agreed,
    ensemble_of_runs,
    export_classifier,
    to_float16,
    to_int8,
    training_entries,
    validation_entries,
)
from vocalstream.files import atomic_folder, sha256
from vocalstream.inference.bundle import (
    CLASSIFIER,
    CLASSIFIER_FP16,
    CLASSIFIER_INT8,
    CLASSIFIERS,
    INPUT,
    MANIFEST,
    OUTPUT,
    load_bundle,
)
from vocalstream.inference.frontend import BOTH, CHANNELS
from vocalstream.inference.separator import LEGACY_VARIANT
from vocalstream.models.classifiers import VoiceGate
from vocalstream.version import __version__

# The ops an exporter or quantiser puts between a graph's last real op and its output.
_PASS_THROUGH = ("Cast", "QuantizeLinear", "DequantizeLinear", "Identity")


def gate_graph(classifier: onnx.ModelProto) -> onnx.ModelProto:
    """The part of a voice-gated classifier that computes P(no voice), features [B, 2, ...] ->
    [B, 1]: the first input of the Concat that assembles the output (VoiceGate.forward)."""
    producers = {output: node for node in classifier.graph.node for output in node.output}
    node = producers.get(classifier.graph.output[0].name)
    while node is not None and node.op_type in _PASS_THROUGH:
        node = producers.get(node.input[0])
    if node is None or node.op_type != "Concat" or len(node.input) != 2:
        raise ModelError("its classifier is not voice-gated: it has no gate to keep")
    inferred = onnx.shape_inference.infer_shapes(classifier)
    return onnx.utils.Extractor(inferred).extract_model([INPUT], [node.input[0]])


def _in_order(nodes: list, available: set[str]) -> list:
    """Nodes sorted so that each comes after those that compute its inputs (onnxruntime runs
    graphs in any order, the ONNX standard and its checker do not: the float16 converter puts
    its input cast last)."""
    ordered, waiting, available = [], list(nodes), set(available)
    while waiting:
        ready = [n for n in waiting if all(not i or i in available for i in n.input)]
        if not ready:
            raise ModelError("the classifier graph has a cycle or an input nothing computes")
        ordered += ready
        available.update(output for node in ready for output in node.output)
        waiting = [n for n in waiting if n not in ready]
    return ordered


def gated_graph(gate: onnx.ModelProto, who: onnx.ModelProto) -> onnx.ModelProto:
    """One graph, features [B, 2, N_MELS, T] -> probabilities [B, 4]: P(no voice) from `gate`
    (on both channels, as it was cut out), the rest shared as `who` (on the window-referenced
    channel) shares the voice classes."""
    features = copy.deepcopy(gate.graph.input[0])
    gate, who = onnx.compose.add_prefix(gate, "gate/"), onnx.compose.add_prefix(who, "who/")
    silent_source, shares_source = gate.graph.output[0].name, who.graph.output[0].name
    window_channel = BOTH.index("window")
    constants = [
        helper.make_tensor("join/window_start", TensorProto.INT64, [1], [window_channel]),
        helper.make_tensor("join/window_end", TensorProto.INT64, [1], [window_channel + 1]),
        helper.make_tensor("join/voices_start", TensorProto.INT64, [1], [1]),
        helper.make_tensor("join/voices_end", TensorProto.INT64, [1], [np.iinfo(np.int64).max]),
        helper.make_tensor("join/axis", TensorProto.INT64, [1], [1]),
        helper.make_tensor("join/one", TensorProto.FLOAT, [], [1.0]),
        helper.make_tensor("join/floor", TensorProto.FLOAT, [], [1e-6]),
    ]
    nodes = [
        helper.make_node("Identity", [INPUT], [gate.graph.input[0].name]),
        helper.make_node(
            "Slice",
            [INPUT, "join/window_start", "join/window_end", "join/axis"],
            [who.graph.input[0].name],
        ),
        *gate.graph.node,
        *who.graph.node,
        helper.make_node("Cast", [silent_source], ["join/silent"], to=TensorProto.FLOAT),
        helper.make_node(
            "Slice",
            [shares_source, "join/voices_start", "join/voices_end", "join/axis"],
            ["join/voices"],
        ),
        helper.make_node("ReduceSum", ["join/voices", "join/axis"], ["join/total"], keepdims=1),
        helper.make_node("Max", ["join/total", "join/floor"], ["join/divisor"]),
        helper.make_node("Div", ["join/voices", "join/divisor"], ["join/shares"]),
        helper.make_node("Sub", ["join/one", "join/silent"], ["join/heard"]),
        helper.make_node("Mul", ["join/heard", "join/shares"], ["join/voiced"]),
        helper.make_node("Concat", ["join/silent", "join/voiced"], [OUTPUT], axis=1),
    ]
    probabilities = helper.make_tensor_value_info(OUTPUT, TensorProto.FLOAT, ["batch", 4])
    initializers = [*constants, *gate.graph.initializer, *who.graph.initializer]
    graph = helper.make_graph(
        _in_order(nodes, {INPUT} | {tensor.name for tensor in initializers}),
        "voice_gated",
        [features],
        [probabilities],
        initializers,
    )
    opsets = {}
    for model in (gate, who):
        for opset in model.opset_import:
            opsets[opset.domain] = max(opsets.get(opset.domain, 0), opset.version)
    joined = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid(domain, version) for domain, version in opsets.items()],
        ir_version=max(gate.ir_version, who.ir_version),
    )
    onnx.checker.check_model(joined)
    return joined


def _voice_entries(entries: list[dict], voice_runs: set[str]) -> list[dict]:
    return [entry for entry in entries if entry["run"] in voice_runs]


def rebase_bundle(
    runs: list[Path],
    base: Path,
    destination: Path,
    weights: list[float] | None = None,
    int8_calibration: np.ndarray | None = None,
    voice_runs: list[Path] | None = None,
) -> dict:
    """Write a bundle whose who-members are the ensemble of `runs` (reference=window), on the
    voice gate, branches and separator of the bundle `base`, in each precision `base` holds.
    int8_calibration (the runs' features [N, 1, N_MELS, WINDOW_FRAMES] of real examples) is
    needed when `base` holds an 8-bit classifier. `voice_runs` (reference=mix) replace the
    gate too, and int8_calibration then holds both channels [N, 2, ...]: only the branches and
    their fusions, and the separator, are kept. Returns the manifest; the bundle appears whole
    or not at all."""
    bundle = load_bundle(base)
    manifest = bundle.manifest
    if bundle.reference != "both":
        raise ModelError(f"{base}: its classifier is not voice-gated: it has no gate to keep")
    ensemble, members, summaries = ensemble_of_runs(runs, weights)
    checks = (
        ("reference", "window", "the features' reference level", "window"),
        ("separation", None, "vocal separation", manifest["separation"]),
        ("separator", LEGACY_VARIANT, "the separator variant", bundle.separator_variant),
        ("frontend_version", None, "the front-end version", manifest["frontend_version"]),
    )
    for key, default, what, wanted in checks:
        if agreed(summaries, key, default, what) != wanted:
            raise ModelError(f"the runs and {base} differ in {what}: the who-members must match")
    precisions = [name for name in CLASSIFIERS.values() if name in manifest["files"]]
    if CLASSIFIER_INT8 in precisions and int8_calibration is None:
        raise ModelError(f"{base} holds an 8-bit classifier: calibrate the new members (--int8)")
    channels = CHANNELS["both"] if voice_runs else CHANNELS["window"]
    if int8_calibration is not None and int8_calibration.shape[1] != channels:
        raise ModelError(f"the 8-bit calibration needs {channels} feature channels")
    base_voice_members = [m for m in manifest["members"] if m.get("role") == "voice"]
    if voice_runs:
        voice, voice_members, voice_summaries = ensemble_of_runs(
            voice_runs, [1.0 / len(voice_runs)] * len(voice_runs)
        )
        if agreed(voice_summaries, "reference", "window", "the gate's reference") != "mix":
            raise ModelError("a voice gate takes runs trained with reference=mix")
        for key, default, what, wanted in checks[1:]:
            if agreed(voice_summaries, key, default, what) != wanted:
                raise ModelError(f"the gate's runs and {base} differ in {what}")
        voice_members = [{**m, "role": "voice"} for m in voice_members]
        training = training_entries([*runs, *voice_runs], summaries + voice_summaries)
        validation = validation_entries([*runs, *voice_runs], summaries + voice_summaries)
        kept_parts = "the branches with their fusions, the separator"
    else:
        voice_members = base_voice_members
        kept_runs = {m["run"] for m in voice_members}
        training = training_entries(runs, summaries) + _voice_entries(
            manifest["training_data"], kept_runs
        )
        validation = validation_entries(runs, summaries) + _voice_entries(
            manifest["validation"], kept_runs
        )
        kept_parts = "the voice gate's graphs, the branches with their fusions, the separator"
    with atomic_folder(destination) as folder:
        model = VoiceGate(ensemble, voice) if voice_runs else ensemble
        graphs = {CLASSIFIER: export_classifier(model, folder / "new.onnx", channels)}
        if CLASSIFIER_FP16 in precisions:
            graphs[CLASSIFIER_FP16] = to_float16(graphs[CLASSIFIER], folder / "new.fp16.onnx")
        if CLASSIFIER_INT8 in precisions:
            calibrated = to_int8(graphs[CLASSIFIER], folder / "new.int8.onnx", int8_calibration)
            graphs[CLASSIFIER_INT8] = calibrated
        for name in precisions:
            if voice_runs:
                shutil.copyfile(graphs[name], folder / name)
            else:
                gate = gate_graph(onnx.load(bundle.path(name)))
                onnx.save(gated_graph(gate, onnx.load(graphs[name])), folder / name)
        for path in graphs.values():
            path.unlink()
        kept = [name for name in manifest["files"] if name not in CLASSIFIERS.values()]
        for name in kept:
            shutil.copyfile(bundle.path(name), folder / name)
        rebased = {
            **manifest,
            "vocalstream": __version__,
            "members": [{**m, "role": "who"} for m in members] + voice_members,
            "training_data": training,
            "validation": validation,
            "int8_calibration_examples": (
                None if int8_calibration is None else len(int8_calibration)
            ),
            "base": {
                "kept": kept_parts,
                "files": {name: manifest["files"][name] for name in precisions + kept},
                "who_members": [m for m in manifest["members"] if m.get("role") != "voice"],
                "voice_members": base_voice_members,
                "note": "the fusions were fitted with these members, not the new ones",
            },
            "files": {name: sha256(folder / name) for name in precisions + kept},
        }
        (folder / MANIFEST).write_text(json.dumps(rebased, indent=2))
    return rebased
