"""The bundled default model: intact, within its size budget, and used when no --model is given."""

import json
import subprocess
import sys

from conftest import REPO, SONG, SPEECH, shared

from vocalstream.inference.bundle import (
    CLASSIFIER_FP16,
    CLASSIFIER_INT8,
    DEFAULT_BUNDLE,
    MUSIC,
    MUSIC_LICENCE,
    PITCH,
    PITCH_LICENCE,
    SEPARATOR,
    resolve_bundle,
)
from vocalstream.inference.model import VoiceModel

BUDGET_BYTES = 60 * 1000 * 1000


def test_the_default_bundle_is_intact_and_small():
    bundle = resolve_bundle(None)  # checks every file's sha256 and the front-end version
    assert bundle.folder == DEFAULT_BUNDLE == REPO / "inference" / "default"
    size = sum(path.stat().st_size for path in DEFAULT_BUNDLE.iterdir())
    assert size <= BUDGET_BYTES, f"{size / 1e6:.1f} MB"
    # The separator is built from the installed weights at first use, never committed.
    assert SEPARATOR not in bundle.manifest["files"] and bundle.separation
    branches = {MUSIC, MUSIC_LICENCE, PITCH, PITCH_LICENCE}
    assert set(bundle.manifest["files"]) == {CLASSIFIER_FP16, CLASSIFIER_INT8, *branches}
    assert "Music Technology Group" in bundle.path(MUSIC_LICENCE).read_text()  # ISC notice
    assert "Apache License" in bundle.path(PITCH_LICENCE).read_text()
    assert bundle.music["gender_fusion"]["fitted_on"]["data"] == "corpus/validation/manifest.csv"
    assert bundle.pitch["several_fusion"]["fitted_on"]["data"] == "corpus3/validation/manifest.csv"
    members = [(m["architecture"], m["role"]) for m in bundle.manifest["members"]]
    assert members == [("cnn4", "who"), ("cnn4", "who"), ("cnn4", "voice")]
    # The gate and both fusions are the previous model's, fitted beside its two who-members.
    previous = [m["architecture"] for m in bundle.manifest["base"]["who_members"]]
    assert previous == ["cnn4", "resnet18"]
    assert bundle.reference == "both"


def test_the_default_model_runs_without_model_option(separator_cache):
    classifier = VoiceModel(resolve_bundle(None), device="cpu")
    assert classifier.provider == "CPUExecutionProvider"
    result = subprocess.run(
        [f"{sys.prefix}/bin/vocalstream", "file", str(shared(SONG)), "--compute", "cpu"],
        capture_output=True,
        text=True,
        env={"VOCALSTREAM_CACHE": str(separator_cache.parent), "PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 0, result.stderr
    (timeline,) = json.loads(result.stdout)["files"]
    assert timeline["segments"][0]["start"] == 0.0
    assert timeline["segments"][-1]["end"] > 130


def test_silence_is_no_voice(separator_cache):
    """Digital silence and a -70 dBFS hiss around a real voice: nothing to hear is no voice
    (the shipped model alone calls such windows `male`)."""
    import numpy as np

    from vocalstream import audio
    from vocalstream.api import load_model

    rate = 44100
    speech = audio.load(shared(SPEECH), rate, 2)[:, : 6 * rate]
    hiss = 10 ** (-70 / 20) * np.random.default_rng(0).standard_normal((2, 6 * rate))
    silence = np.zeros((2, 6 * rate), np.float32)
    recording = np.concatenate([silence, speech, hiss.astype(np.float32)], axis=1)
    windows = load_model(device="cpu").analyse(recording, hop=1.0).windows
    quiet = [w for w in windows if w.end <= 6 or w.start >= 13]  # frames reach 1 s around
    assert len(quiet) == 7
    assert all(w.label == "no_voice" and w.probabilities[0] == 1.0 for w in quiet)
    assert all(w.input_level < audio.SILENCE_LEVEL_DB for w in quiet)
    voiced = [w for w in windows if w.start >= 6 and w.end <= 12]
    assert [w.label for w in voiced].count("female") >= 3, [w.label for w in voiced]


def test_the_cpu_classifier_answers_the_same_on_a_processor_without_vnni(tmp_path):
    """A user's processor must not change the answers. qemu emulates a Haswell (AVX2, no VNNI,
    no AVX-512) and runs the classifier a CPU session picks, and the 8-bit one to show that the
    emulated processor is one where an 8-bit graph with full-range weights answers otherwise."""
    import numpy as np

    from vocalstream import audio

    model = VoiceModel(resolve_bundle(None), device="cpu")
    assert model.classifier == CLASSIFIER_FP16  # float arithmetic, not the 8-bit graph
    song = audio.load(shared(SONG), audio.SEPARATION_RATE, 2)[:, : 40 * audio.SEPARATION_RATE]
    stream = model.feature_stream(3.0, live=False)
    features = np.stack([w.features for w in stream.push(song) + stream.flush()][:12])
    np.save(tmp_path / "features.npy", features)

    def answers(classifier: str, emulated: bool) -> np.ndarray:
        out = tmp_path / f"{classifier}-{emulated}.npy"
        prefix = ["qemu-x86_64", "-cpu", "Haswell"] if emulated else []
        graph = str(resolve_bundle(None).path(classifier))
        command = [
            *prefix,
            sys.executable,
            str(REPO / "tools" / "run_classifier.py"),
            graph,
            str(tmp_path / "features.npy"),
        ]
        run = subprocess.run([*command, str(out)], capture_output=True, text=True)
        assert run.returncode == 0, run.stderr[-2000:]
        return np.load(out)

    assert np.abs(answers(CLASSIFIER_FP16, True) - answers(CLASSIFIER_FP16, False)).max() < 1e-5
    shifted = np.abs(answers(CLASSIFIER_INT8, True) - answers(CLASSIFIER_INT8, False)).max()
    assert shifted > 0.01, shifted
