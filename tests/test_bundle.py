"""Exporting trained runs to a bundle, verifying it, and classifying with onnxruntime."""

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import onnx
import pytest
import tiny_corpus
import torch
from conftest import ORCHESTRA, SONG, SPEECH, shared
from onnx import numpy_helper

import vocalstream
from vocalstream import audio
from vocalstream.errors import ModelError
from vocalstream.export.bundle import ensemble_of_runs, export_bundle
from vocalstream.export.rebase import rebase_bundle
from vocalstream.inference.bundle import (
    CLASSIFIER,
    MANIFEST,
    MUSIC,
    MUSIC_LICENCE,
    PITCH,
    PITCH_INPUT,
    PITCH_LICENCE,
    PITCH_OUTPUT,
    load_bundle,
    resolve_bundle,
)
from vocalstream.inference.device import create_session
from vocalstream.inference.frontend import music_features, pitch_input, snippet_features
from vocalstream.inference.fusion import fuse_gender, fuse_several, polyphony
from vocalstream.inference.model import VoiceModel
from vocalstream.inference.separator import OnnxMaskEstimator
from vocalstream.models.classifiers import VoiceGate
from vocalstream.models.labels import MTT_TAGS, decide
from vocalstream.models.musicnn import MusiCNN
from vocalstream.train import data
from vocalstream.train.recipe import load_recipe
from vocalstream.train.run import train_run


@pytest.fixture(scope="module")
def runs(tmp_path_factory, separator_cache):
    """Two real (if tiny) training runs: two CNN4s, and one ResNet18."""
    folder = tmp_path_factory.mktemp("bundle")
    examples = data.read_seed_folder(tiny_corpus.build(folder / "corpus"))
    quiet = {"log": lambda message: None, "progress": False}
    cnn = load_recipe("cnn4", {"epochs": 1, "copies": 2})
    resnet = load_recipe("resnet18x8", {"epochs": 1, "copies": 1})
    train_run(cnn, examples, folder / "cnn", {"epochs": 1}, **quiet)
    train_run(resnet, examples, folder / "resnet", {"epochs": 1}, **quiet)
    return [folder / "cnn", folder / "resnet"]


@pytest.fixture(scope="module")
def bundle(runs, tmp_path_factory):
    destination = tmp_path_factory.mktemp("out") / "bundle"
    export_bundle(runs, destination, [0.7, 0.3], fp16=True, include_separator=False)
    return destination


@pytest.fixture(scope="module")
def windows() -> np.ndarray:
    """64 real 3-s windows, 44.1 kHz stereo: a song, speech, an orchestra."""
    length = audio.WINDOW_SECONDS * audio.SEPARATION_RATE
    picks = []
    for name in (SONG, SPEECH, ORCHESTRA, "librosa-data/3436-172162-0000.ogg"):
        signal = audio.load(shared(name), audio.SEPARATION_RATE, 2)
        picks += [signal[:, s : s + length] for s in range(0, signal.shape[1] - length, length)]
    return np.stack(picks[:64])


@pytest.fixture(scope="module")
def features(windows, separator_cache) -> np.ndarray:
    estimator = OnnxMaskEstimator(separator_cache, "cpu")
    return np.stack([snippet_features(window, estimator) for window in windows])


def test_manifest_describes_the_ensemble(bundle):
    manifest = json.loads((bundle / MANIFEST).read_text())
    assert [m["weight"] for m in manifest["members"]] == pytest.approx([0.35, 0.35, 0.3])
    assert manifest["separation"] is True and manifest["frontend_version"] == audio.FRONTEND_VERSION
    assert manifest["separator"] == "vocals"
    assert manifest["labels"] == ["no_voice", "male", "female", "several"]
    assert set(manifest["files"]) == {"classifier.onnx", "classifier.fp16.onnx"}
    assert all("accuracy" in v for v in manifest["validation"])
    assert manifest["training_data"][0]["train"]


def test_onnx_matches_torch_on_real_windows(runs, bundle, features):
    ensemble, _, _ = ensemble_of_runs(runs, [0.7, 0.3])
    with torch.inference_mode():
        expected = ensemble(torch.from_numpy(features)).numpy()
    classifier = VoiceModel(bundle, device="cpu")
    ours = classifier.probabilities(features)
    assert features.shape[0] == 64
    assert np.abs(ours - expected).max() < 1e-4
    assert (ours.argmax(1) == expected.argmax(1)).all()
    half = VoiceModel(bundle, device="cpu", precision="fp16").probabilities(features)
    print(
        f"fp16: max abs diff {np.abs(half - expected).max():.2e}, argmax agreement "
        f"{(half.argmax(1) == expected.argmax(1)).mean():.3f}"
    )
    assert np.abs(half - expected).max() < 1e-2


def test_int8_classifier_follows_float32_and_runs_on_the_cpu(runs, features, tmp_path):
    destination = tmp_path / "int8"
    export_bundle(
        runs, destination, [0.7, 0.3], include_separator=False, int8_calibration=features[::2]
    )
    manifest = load_bundle(destination).manifest
    assert set(manifest["files"]) == {"classifier.onnx", "classifier.int8.onnx"}
    assert manifest["int8_calibration_examples"] == 32
    assert VoiceModel(destination, device="cpu").classifier == "classifier.onnx"  # float first
    full = VoiceModel(destination, device="cpu", precision="fp32").probabilities(features)
    eight = VoiceModel(destination, device="cpu", precision="int8")
    assert eight.classifier == "classifier.int8.onnx"
    probabilities = eight.probabilities(features)
    difference = np.abs(probabilities - full).max()
    print(f"int8: max abs probability difference {difference:.3f}")
    assert difference < 0.05
    # The softmax and what follows stay in float: no probability is rounded to 1/255 steps.
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)
    # 7-bit weights, so that processors without VNNI do not saturate.
    graph = onnx.load(destination / "classifier.int8.onnx").graph
    weights = [
        numpy_helper.to_array(t) for t in graph.initializer if t.data_type == onnx.TensorProto.INT8
    ]
    assert weights and max(int(np.abs(w.astype(int)).max()) for w in weights) <= 64


def test_classifier_runs_the_whole_pipeline(bundle, windows, features):
    classifier = VoiceModel(bundle, device="cpu", max_batch=16)
    assert classifier.provider == "CPUExecutionProvider"
    probabilities = classifier.classify_snippets(windows[:40])
    assert probabilities.shape == (40, 4)
    np.testing.assert_allclose(probabilities.sum(1), 1.0, atol=1e-5)
    np.testing.assert_allclose(probabilities, classifier.probabilities(features[:40]), atol=1e-4)


def test_cuda_request_without_cuda(bundle):
    auto = VoiceModel(bundle, device="auto")
    if auto.provider == "CUDAExecutionProvider":
        pytest.skip("this machine has CUDA")
    with pytest.raises(ModelError, match="CUDA was asked for"):
        VoiceModel(bundle, device="cuda")


def copy_of(bundle, tmp_path):
    import shutil

    return shutil.copytree(bundle, tmp_path / "copy")


def test_one_corrupt_byte_is_refused(bundle, tmp_path):
    copy = copy_of(bundle, tmp_path)
    data_bytes = bytearray((copy / CLASSIFIER).read_bytes())
    data_bytes[len(data_bytes) // 2] ^= 0x01
    (copy / CLASSIFIER).write_bytes(bytes(data_bytes))
    with pytest.raises(ModelError, match="sha256 differs"):
        load_bundle(copy)


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda b: os.remove(b / CLASSIFIER), "classifier.onnx is missing"),
        (lambda b: os.remove(b / MANIFEST), "not a model bundle"),
        (lambda b: (b / MANIFEST).write_text("{not json"), "corrupt"),
        (lambda b: _edit(b, frontend_version=99), "front-end version 99"),
        (lambda b: _edit(b, format=7), "bundle format 7"),
        (lambda b: _edit(b, separator="nonesuch"), "separator variant 'nonesuch'"),
        (lambda b: _edit(b, separation=False, frontend_version=1), r"version 1 \(mix\)"),
    ],
)
def test_damaged_bundles_are_refused(bundle, tmp_path, damage, message):
    copy = copy_of(bundle, tmp_path)
    damage(copy)
    with pytest.raises(ModelError, match=message):
        load_bundle(copy)


def _edit(folder, **changes):
    manifest = json.loads((folder / MANIFEST).read_text())
    manifest.update(changes)
    (folder / MANIFEST).write_text(json.dumps(manifest))


def test_export_command(runs, tmp_path, separator_cache):
    env = {**os.environ, "VOCALSTREAM_CACHE": str(separator_cache.parent)}
    out = tmp_path / "bundle"
    command = [f"{sys.prefix}/bin/vocalstream", "export", *map(str, runs), "-o", str(out)]
    done = subprocess.run(command, capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr
    assert set(load_bundle(out).manifest["files"]) == {"classifier.onnx", "separator.onnx"}
    smaller = tmp_path / "smaller"
    corpus = runs[0].parent / "corpus"
    done = subprocess.run(
        [*command[:-1], str(smaller), "--fp16-only", "--int8", str(corpus), "--no-separator"],
        capture_output=True,
        text=True,
        env=env,
    )
    assert done.returncode == 0, done.stderr
    files = set(load_bundle(smaller).manifest["files"])
    assert files == {"classifier.fp16.onnx", "classifier.int8.onnx"}
    bad = subprocess.run(
        [*command, "--weights", "0.9,0.3"], capture_output=True, text=True, env=env
    )
    assert bad.returncode == 1 and "sum to 1" in bad.stderr
    assert load_bundle(out)  # the failed export left the good bundle untouched
    # A classifier trained on one separator's vocals never runs on another's.
    _edit(out, separator="2stems")
    with pytest.raises(ModelError, match="does not match the variant '2stems'"):
        VoiceModel(out, device="cpu")


@pytest.fixture(scope="module")
def voice_run(tmp_path_factory, separator_cache):
    """A tiny real run trained on features below the mix's maximum: a voice gate."""
    folder = tmp_path_factory.mktemp("gate")
    examples = data.read_seed_folder(tiny_corpus.build(folder / "corpus"))
    recipe = load_recipe("cnn4", {"epochs": 1, "reference": "mix"})
    train_run(recipe, examples, folder / "run", {"epochs": 1}, log=lambda m: None, progress=False)
    return folder / "run"


def test_a_voice_gate_decides_voice_and_the_ensemble_who(runs, voice_run, windows, tmp_path):
    """export --voice-gate: one graph on two channels. P(no voice) is the gate's; the voice
    classes share the rest as the window-referenced ensemble shares them."""
    destination = tmp_path / "gated"
    done = subprocess.run(
        [
            f"{sys.prefix}/bin/vocalstream",
            "export",
            *map(str, runs),
            "--voice-gate",
            str(voice_run),
            "--no-separator",
            "-q",
            "-o",
            str(destination),
        ],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    manifest = json.loads((destination / MANIFEST).read_text())
    assert manifest["reference"] == "both" and manifest["input"]["shape"][1] == 2
    assert [m["role"] for m in manifest["members"]] == ["who", "who", "who", "voice"]
    model = VoiceModel(destination, device="cpu")
    estimator = model.estimator
    both = np.stack([snippet_features(w, estimator, "both") for w in windows[:12]])
    gated = model.probabilities(both)
    np.testing.assert_allclose(gated.sum(axis=1), 1.0, atol=1e-5)
    who, _, _ = ensemble_of_runs(runs, [0.5, 0.5])
    voice, _, _ = ensemble_of_runs([voice_run], [1.0])
    with torch.no_grad():
        shares = who(torch.from_numpy(both[:, :1])).numpy()[:, 1:]
        silent = voice(torch.from_numpy(both[:, 1:])).numpy()[:, 0]
    np.testing.assert_allclose(gated[:, 0], silent, atol=1e-4)
    expected = shares / shares.sum(axis=1, keepdims=True) * (1 - silent[:, None])
    np.testing.assert_allclose(gated[:, 1:], expected, atol=1e-4)
    # The gate must be trained on the mix's reference, the rest on the window's.
    with pytest.raises(ModelError, match="voice gate"):
        export_bundle(runs, tmp_path / "wrong", voice_runs=runs[:1], include_separator=False)


def test_rebase_keeps_the_gate_and_replaces_who(
    runs, voice_run, windows, bundle, separator_cache, tmp_path
):
    """export --base: the base bundle's gate graphs, exactly, in each precision it holds, and
    its other files unchanged; the voice classes shared as the new who-ensemble shares them."""
    estimator = OnnxMaskEstimator(separator_cache, "cpu")
    both = np.stack([snippet_features(w, estimator, "both") for w in windows[:24]])
    base = tmp_path / "base"
    export_bundle(
        runs[:1], base, fp16=True, fp32=False, int8_calibration=both, voice_runs=[voice_run]
    )
    rebased = tmp_path / "rebased"
    done = subprocess.run(
        [f"{sys.prefix}/bin/vocalstream", "export", str(runs[1]), "--base", str(base), "-q"]
        + ["--int8", str(tiny_corpus.build(tmp_path / "calibration")), "-o", str(rebased)],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    manifest = load_bundle(rebased).manifest
    held = {"classifier.fp16.onnx", "classifier.int8.onnx", "separator.onnx"}
    assert set(manifest["files"]) == held
    assert (
        manifest["files"]["separator.onnx"] == load_bundle(base).manifest["files"]["separator.onnx"]
    )
    assert [(m["run"], m["role"]) for m in manifest["members"]] == [
        ("resnet", "who"),
        ("run", "voice"),
    ]
    assert [m["run"] for m in manifest["base"]["who_members"]] == ["cnn"] * 2
    who, _, _ = ensemble_of_runs(runs[1:], [1.0])
    with torch.no_grad():
        shares = who(torch.from_numpy(both[:, :1])).numpy()[:, 1:]
    shares /= shares.sum(axis=1, keepdims=True)
    for precision in ("fp16", "int8"):
        old = VoiceModel(base, device="cpu", precision=precision).probabilities(both)
        new = VoiceModel(rebased, device="cpu", precision=precision).probabilities(both)
        np.testing.assert_allclose(new.sum(axis=1), 1.0, atol=1e-5)
        # The old 8-bit graph rounds its output to 1/255 steps, the gate cut from it does not.
        np.testing.assert_allclose(new[:, 0], old[:, 0], atol=0 if precision == "fp16" else 2e-3)
        expected = shares * (1 - new[:, :1])
        np.testing.assert_allclose(new[:, 1:], expected, atol=0.01 if precision == "fp16" else 0.1)
    # New gate runs replace the gate as well: the whole graph is exported, the branches kept.
    regated = rebase_bundle(
        runs[1:], base, tmp_path / "regated", int8_calibration=both, voice_runs=[voice_run]
    )
    assert [(m["run"], m["role"]) for m in regated["members"]] == [
        ("resnet", "who"),
        ("run", "voice"),
    ]
    assert regated["base"]["kept"] == "the branches with their fusions, the separator"
    assert [m["run"] for m in regated["base"]["voice_members"]] == ["run"]
    gate, _, _ = ensemble_of_runs([voice_run], [1.0])
    with torch.no_grad():
        expected = VoiceGate(who, gate)(torch.from_numpy(both)).numpy()
    for precision in ("fp16", "int8"):
        new = VoiceModel(tmp_path / "regated", device="cpu", precision=precision)
        np.testing.assert_allclose(
            new.probabilities(both), expected, atol=0.02 if precision == "fp16" else 0.1
        )
    with pytest.raises(ModelError, match="reference=mix"):
        rebase_bundle(
            runs[1:], base, tmp_path / "window-gate", int8_calibration=both, voice_runs=runs[1:]
        )
    # Only a gated base has a gate to keep, and who-members are trained below the window's peak.
    with pytest.raises(ModelError, match="not voice-gated"):
        rebase_bundle(runs[1:], bundle, tmp_path / "ungated")
    with pytest.raises(ModelError, match="reference level"):
        rebase_bundle([voice_run], base, tmp_path / "mix", int8_calibration=both[:, :1])
    with pytest.raises(ModelError, match="8-bit"):
        rebase_bundle(runs[1:], base, tmp_path / "uncalibrated")
    with pytest.raises(ModelError, match="2 feature channels"):
        rebase_bundle(
            runs[1:],
            base,
            tmp_path / "one-channel",
            int8_calibration=both[:, :1],
            voice_runs=[voice_run],
        )
    refused = _export(runs[1:], "--base", base, "-o", tmp_path / "clash")
    assert refused.returncode != 0 and not refused.stdout
    assert refused.stderr.strip().splitlines()[-1].endswith("drop --no-separator")
    assert not (tmp_path / "ungated").exists() and not (tmp_path / "clash").exists()


@pytest.fixture(scope="module")
def musicnn_weights(tmp_path_factory) -> tuple:
    """Weights in tools/musicnn_weights.py's layout (seeded, untrained: the branch's plumbing
    is under test here; test_music_branch.py checks the shipped weights against TensorFlow)."""
    torch.manual_seed(0)
    network = MusiCNN().eval()
    path = tmp_path_factory.mktemp("musicnn") / "musicnn.npz"
    state = {k: v.numpy() for k, v in network.state_dict().items() if "num_batches" not in k}
    np.savez(path, licence=np.array("test weights: no licence needed"), **state)
    return path, network


def _export(runs, *arguments) -> subprocess.CompletedProcess:
    """vocalstream export of the runs, without the separator, as a user runs it."""
    command = [f"{sys.prefix}/bin/vocalstream", "export", *map(str, runs), "--no-separator"]
    return subprocess.run([*command, *map(str, arguments)], capture_output=True, text=True)


def test_export_with_a_music_branch(runs, musicnn_weights, windows, tmp_path):
    """export --music-branch: music.onnx beside the classifier, a gender fusion fitted on
    --fusion-data, and a model that needs each window's music features."""
    weights, network = musicnn_weights
    fusion_data = tiny_corpus.build(tmp_path / "fusion", per_class=20)
    destination = tmp_path / "music"
    done = _export(
        runs, "--music-branch", weights, "--fusion-data", fusion_data, "-q", "-o", destination
    )
    assert done.returncode == 0, done.stderr
    bundle = load_bundle(destination)
    assert set(bundle.manifest["files"]) == {"classifier.onnx", MUSIC, MUSIC_LICENCE}
    assert (destination / MUSIC_LICENCE).read_text() == "test weights: no licence needed"
    fusion = bundle.music["gender_fusion"]
    assert fusion["fitted_on"]["windows"] == {"male": 20, "female": 20}
    assert len(fusion["weights"]) == 2 and np.isfinite(fusion["weights"]).all()
    assert bundle.music["output"]["tags"] == list(MTT_TAGS)

    model = VoiceModel(bundle, device="cpu")
    mono = windows[:8].mean(axis=1)
    music = np.stack([music_features(w) for w in mono])
    tags = create_session(bundle.path(MUSIC), "cpu").run(None, {"music": music})[0]
    with torch.no_grad():
        np.testing.assert_allclose(tags, network(torch.from_numpy(music))[0].numpy(), atol=1e-4)
    features = np.stack([snippet_features(w, model.estimator) for w in windows[:8]])
    fused = model.probabilities(features, mono)
    plain = model.classifier_probabilities(features)
    voiced = decide(plain) != 0  # the branch weighs in where a voice is heard
    expected = np.where(voiced[:, None], fuse_gender(plain, tags, fusion), plain)
    np.testing.assert_allclose(fused, expected, atol=1e-5)
    np.testing.assert_allclose(model.classify_snippets(windows[:8]), fused, atol=1e-4)
    with pytest.raises(ModelError, match="needs each window's mix"):
        model.probabilities(features)
    result = vocalstream.Model(model).analyse(windows[0], sample_rate=audio.SEPARATION_RATE)
    assert len(result.windows) == 1

    manifest = json.loads((destination / MANIFEST).read_text())
    for broken in ({"weights": [1.0]}, {"bias": "x"}, {"female_tags": ["soprano"]}):
        damaged = {**manifest, "music": {"gender_fusion": {**fusion, **broken}}}
        (destination / MANIFEST).write_text(json.dumps(damaged))
        with pytest.raises(ModelError, match="gender fusion is malformed"):
            load_bundle(destination)
    del manifest["files"][MUSIC]
    (destination / MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(ModelError, match="lists no music.onnx"):
        load_bundle(destination)
    bad = _export(runs, "--music-branch", weights, "-o", tmp_path / "no-data")
    assert bad.returncode == 1 and "fit its gender fusion" in bad.stderr
    assert not (tmp_path / "no-data").exists()
    with pytest.raises(ModelError, match="not musicnn weights"):
        export_bundle(
            runs, tmp_path / "x", music_weights=fusion_data / "0.mp3", fusion_data=fusion_data
        )


def _sung_manifest(folder: Path) -> Path:
    """The tiny corpus's manifest as a corpus manifest in which every voice sings."""
    lines = (folder / "manifest.csv").read_text().splitlines()
    rows = [lines[0] + ",voice_sources"]
    rows += [f"{line},{'' if line.split(',')[1] == '0' else 'world'}" for line in lines[1:]]
    (folder / "sung.csv").write_text("\n".join(rows) + "\n")
    return folder / "sung.csv"


def test_export_with_a_pitch_branch(runs, windows, tmp_path):
    """export --pitch-branch: basic-pitch's graph from its wheel, unchanged, beside the
    classifier, a several fusion fitted on --several-data, and a model that needs each window's
    vocal spectrum."""
    shipped = resolve_bundle(None).path(PITCH)
    wheel = tmp_path / "basic_pitch-0.4.0-py2.py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.write(shipped, "basic_pitch/saved_models/icassp_2022/nmp.onnx")
        archive.writestr("basic_pitch-0.4.0.dist-info/LICENSE", "Apache License 2.0 (test)")
    several_data = _sung_manifest(tiny_corpus.build(tmp_path / "sung", per_class=20))
    destination = tmp_path / "pitch"
    done = _export(
        runs, "--pitch-branch", wheel, "--several-data", several_data, "-q", "-o", destination
    )
    assert done.returncode == 0, done.stderr
    bundle = load_bundle(destination)
    assert set(bundle.manifest["files"]) == {"classifier.onnx", PITCH, PITCH_LICENCE}
    assert (destination / PITCH).read_bytes() == shipped.read_bytes()
    assert (destination / PITCH_LICENCE).read_text() == "Apache License 2.0 (test)"
    fusion = bundle.pitch["several_fusion"]
    assert fusion["fitted_on"]["windows"] == {"one voice": 40, "several": 20}
    assert len(fusion["weights"]) == 2 and np.isfinite(fusion["weights"]).all()

    model = VoiceModel(bundle, device="cpu")
    picked = [model.snippet_window(w) for w in windows[:8]]
    features = np.stack([w.features for w in picked])
    vocals = np.stack([w.vocals for w in picked])
    plain = model.classifier_probabilities(features)
    stems = np.stack([pitch_input(v) for v in vocals])
    contour = create_session(bundle.path(PITCH), "cpu").run([PITCH_OUTPUT], {PITCH_INPUT: stems})
    heard = polyphony(contour[0])
    voiced = decide(plain) != 0  # the branch weighs in where a voice is heard
    expected = np.where(voiced[:, None], fuse_several(plain, heard, fusion), plain)
    np.testing.assert_allclose(model.probabilities(features, None, vocals), expected, atol=1e-5)
    np.testing.assert_allclose(model.classify_snippets(windows[:8]), expected, atol=1e-4)
    with pytest.raises(ModelError, match="needs each window's vocal spectrum"):
        model.probabilities(features)
    result = vocalstream.Model(model).analyse(windows[0], sample_rate=audio.SEPARATION_RATE)
    assert len(result.windows) == 1

    manifest = json.loads((destination / MANIFEST).read_text())
    for broken in ({"weights": [1.0, "x"]}, {"bias": float("nan")}):
        damaged = {**manifest, "pitch": {"several_fusion": {**fusion, **broken}}}
        (destination / MANIFEST).write_text(json.dumps(damaged))
        with pytest.raises(ModelError, match="several fusion is malformed"):
            load_bundle(destination)
    del manifest["files"][PITCH]
    (destination / MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(ModelError, match="lists no pitch.onnx"):
        load_bundle(destination)
    for arguments, message in (
        (["--pitch-branch", str(wheel)], "fit its several fusion"),
        (["--pitch-branch", str(several_data), "--several-data", str(several_data)], "wheel"),
        (
            ["--pitch-branch", str(wheel), "--several-data", str(tmp_path / "sung/manifest.csv")],
            "not a corpus manifest",
        ),
    ):
        bad = _export(runs, *arguments, "-o", tmp_path / "bad")
        assert bad.returncode == 1 and message in bad.stderr, bad.stderr
        assert len(bad.stderr.strip().splitlines()) == 1
        assert not (tmp_path / "bad").exists()
