"""The bundled default model: intact, within its size budget, and used when no --model is given."""

import json
import subprocess
import sys

from conftest import REPO, SONG, shared

from vocalstream.inference.bundle import (
    CLASSIFIER_FP16,
    CLASSIFIER_INT8,
    DEFAULT_BUNDLE,
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
    assert set(bundle.manifest["files"]) == {CLASSIFIER_FP16, CLASSIFIER_INT8}
    members = [(m["architecture"], m["role"]) for m in bundle.manifest["members"]]
    assert members == [("cnn4", "who"), ("resnet18", "who"), ("cnn4", "voice")]
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
