"""A bundle's pitch branch: basic-pitch's note model as pitch.onnx, taken unchanged from its PyPI
wheel, and the logistic regression that weighs the polyphony it hears in the vocal stem against
the classifier's own "several" (inference/fusion.py), fitted on sung examples that no network
was trained on."""

from __future__ import annotations

import logging
import zipfile
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch
from sklearn.linear_model import LogisticRegression
from tqdm import tqdm

from vocalstream import audio
from vocalstream.errors import ModelError
from vocalstream.inference.bundle import PITCH_INPUT, PITCH_OUTPUT
from vocalstream.inference.frontend import pitch_input, snippet_window
from vocalstream.inference.fusion import SEVERAL_EVIDENCE, polyphony, several_evidence
from vocalstream.models.labels import LABELS
from vocalstream.train.data import Example

log = logging.getLogger("vocalstream")

ORIGIN = (
    "basic-pitch's note model (Bittner et al. 2022, ICASSP; Spotify, Apache-2.0), "
    "saved_models/icassp_2022/nmp.onnx from the basic-pitch 0.4.0 wheel on PyPI, unchanged"
)
WHEEL_GRAPH = "basic_pitch/saved_models/icassp_2022/nmp.onnx"
MINIMUM_WINDOWS = 20  # per side, one voice and several, for the fusion's three parameters
FIT_BATCH = 32  # windows through the front-end at a time (about 2 MB each)


def load_basic_pitch(wheel: Path) -> tuple[bytes, str]:
    """The note model's graph and the wheel's licence, read from basic-pitch's wheel
    (`pip download basic-pitch==0.4.0 --no-deps`)."""
    try:
        with zipfile.ZipFile(wheel) as archive:
            graph = archive.read(WHEEL_GRAPH)
            licences = [n for n in archive.namelist() if n.endswith(".dist-info/LICENSE")]
            licence = archive.read(licences[0]).decode() if licences else ""
    except (OSError, zipfile.BadZipFile, KeyError) as error:
        raise ModelError(f"{wheel}: not basic-pitch's wheel (no {WHEEL_GRAPH})") from error
    if not licence:
        raise ModelError(f"{wheel}: carries no licence file")
    return graph, licence


def pitch_session(graph: bytes, threads: int = 2) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
    try:
        session = ort.InferenceSession(graph, options, providers=["CPUExecutionProvider"])
    except Exception as error:  # onnxruntime raises its own exception types
        raise ModelError(f"basic-pitch's graph does not load: {error}") from error
    inputs = [i.name for i in session.get_inputs()]
    outputs = [o.name for o in session.get_outputs()]
    if inputs != [PITCH_INPUT] or PITCH_OUTPUT not in outputs:
        raise ModelError(f"not basic-pitch's note model (inputs {inputs}, outputs {outputs})")
    return session


def fit_several_fusion(
    classifier: torch.nn.Module,
    session: ort.InferenceSession,
    examples: list[Example],
    estimator,
    reference: str,
    source: str,
) -> dict:
    """The fusion's weights and bias, fitted on voiced examples, one voice against several:
    each one's first window through the product's front-end, the classifier's probabilities
    (torch, float32) and the polyphony of its vocal stem. Returns the manifest's
    "several_fusion" entry.

    The examples are weighted to the prior the classifier was trained with, its four classes
    equally likely: one voice (male or female) twice as likely as several, whatever the
    examples' own proportions."""
    several = LABELS.index("several")
    voiced = [e for e in examples if e.label != LABELS.index("no_voice")]  # ONE_VOICE is voiced
    counts = {
        "one voice": sum(e.label != several for e in voiced),
        "several": sum(e.label == several for e in voiced),
    }
    if min(counts.values()) < MINIMUM_WINDOWS:
        raise ModelError(
            f"{source}: the several fusion needs at least {MINIMUM_WINDOWS} one-voice and "
            f"{MINIMUM_WINDOWS} several examples, found {counts}"
        )
    probabilities, heard = [], []
    batches = range(0, len(voiced), FIT_BATCH)
    quiet = not log.isEnabledFor(logging.INFO)
    for start in tqdm(batches, desc="several fusion", unit="batch", leave=False, disable=quiet):
        windows = [
            snippet_window(
                audio.load(e.path, audio.SEPARATION_RATE, 2), estimator, reference, keep_vocals=True
            )
            for e in voiced[start : start + FIT_BATCH]
        ]
        with torch.no_grad():
            features = torch.from_numpy(np.stack([w.features for w in windows]))
            probabilities.append(classifier.eval()(features).numpy())
        stems = np.stack([pitch_input(w.vocals) for w in windows])
        heard.append(polyphony(session.run([PITCH_OUTPUT], {PITCH_INPUT: stems})[0]))
    evidence = several_evidence(np.concatenate(probabilities), np.concatenate(heard))
    is_several = np.array([e.label == several for e in voiced])
    prior = {True: 1 / 3 / counts["several"], False: 2 / 3 / counts["one voice"]}
    prior = {side: weight * len(voiced) for side, weight in prior.items()}
    regression = LogisticRegression(class_weight=prior).fit(evidence, is_several)
    weights, bias = regression.coef_[0], float(regression.intercept_[0])
    fused = (evidence @ weights + bias > 0) == is_several
    fusion = {
        "evidence": list(SEVERAL_EVIDENCE),
        "weights": [float(w) for w in weights],
        "bias": bias,
        "fitted_on": {
            "data": source,
            "windows": counts,
            "prior": {"one voice": 2 / 3, "several": 1 / 3},
            "balanced_accuracy_classifier": _balanced(
                (evidence[:, 0] > 0) == is_several, is_several
            ),
            "balanced_accuracy_fused": _balanced(fused, is_several),
            "mean_polyphony": {
                "one voice": float(evidence[~is_several, 1].mean()),
                "several": float(evidence[is_several, 1].mean()),
            },
        },
    }
    log.info(
        "several fusion on %d windows: weights %s, bias %.3f; balanced accuracy %.3f fused, "
        "%.3f classifier",
        len(voiced),
        [round(w, 3) for w in fusion["weights"]],
        bias,
        fusion["fitted_on"]["balanced_accuracy_fused"],
        fusion["fitted_on"]["balanced_accuracy_classifier"],
    )
    return fusion


def _balanced(correct: np.ndarray, truth: np.ndarray) -> float:
    """The mean of the share decided correctly on each side of `truth`."""
    return float((correct[truth].mean() + correct[~truth].mean()) / 2)


def pitch_manifest(fusion: dict) -> dict:
    return {
        "model": ORIGIN,
        "input": {
            "name": PITCH_INPUT,
            "shape": ["batch", audio.PITCH_SAMPLES, 1],
            "rate": audio.PITCH_RATE,
            "what": "the middle PITCH_SAMPLES samples of the window's mono vocal stem",
        },
        "output": {
            "name": PITCH_OUTPUT,
            "shape": ["batch", "frames", audio.PITCH_BINS],
            "bins_per_semitone": audio.PITCH_BINS_PER_SEMITONE,
        },
        "several_fusion": fusion,
    }
