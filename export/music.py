"""A bundle's real-music branch: musicnn's MTT tagger as music.onnx, and the logistic regression
that fuses its gender tags with the classifier's (inference/fusion.py), fitted on labelled
windows that neither network was trained on."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import onnx
import torch
from sklearn.linear_model import LogisticRegression
from tqdm import tqdm

from vocalstream import audio
from vocalstream.errors import ModelError
from vocalstream.inference.bundle import MUSIC_INPUT, MUSIC_OUTPUT
from vocalstream.inference.frontend import music_features, snippet_window
from vocalstream.inference.fusion import EVIDENCE, FEMALE_TAGS, MALE_TAGS, gender_evidence
from vocalstream.inference.onnx_export import export_onnx
from vocalstream.models.labels import LABELS, MTT_TAGS
from vocalstream.models.musicnn import MusiCNN
from vocalstream.train.data import Example

log = logging.getLogger("vocalstream")

ORIGIN = (
    "musicnn MTT_musicnn (Pons and Serra 2019), the checkpoint in musicnn 0.1.0's PyPI wheel "
    "(ISC licence), trained on MagnaTagATune; converted by tools/musicnn_weights.py"
)
LICENCE_KEY = "licence"
STACK_TRACE = "pkg.torch.onnx.stack_trace"
MINIMUM_WINDOWS = 20  # per gender, for the fusion's three parameters


def load_musicnn(weights: Path) -> tuple[MusiCNN, str]:
    """The tagger with the converted weights, and their licence notice (tools/musicnn_weights.py
    writes both)."""
    try:
        with np.load(weights) as arrays:
            state = {n: torch.from_numpy(arrays[n]) for n in arrays.files if n != LICENCE_KEY}
            notice = str(arrays[LICENCE_KEY]) if LICENCE_KEY in arrays.files else ""
    except (OSError, ValueError) as error:
        raise ModelError(f"{weights}: not musicnn weights from tools/musicnn_weights.py") from error
    if not notice:
        raise ModelError(f"{weights}: carries no licence notice (tools/musicnn_weights.py adds it)")
    network = MusiCNN()
    try:
        network.load_state_dict(state)
    except RuntimeError as error:
        raise ModelError(f"{weights}: these weights do not fit musicnn's MTT model") from error
    return network.eval(), notice


class _Tags(torch.nn.Module):
    def __init__(self, network: MusiCNN):
        super().__init__()
        self.network = network

    def forward(self, music: torch.Tensor) -> torch.Tensor:
        return self.network(music)[0]


def export_music(network: MusiCNN, path: Path) -> Path:
    """music.onnx, the same bytes for the same weights: without the exporter's stack traces,
    which name this checkout's paths and line numbers."""
    example = torch.zeros(2, audio.MUSICNN_FRAMES, audio.MUSICNN_MELS)
    dims = {0: torch.export.Dim("batch", min=1, max=4096)}
    export_onnx(_Tags(network), example, path, (MUSIC_INPUT, MUSIC_OUTPUT), dims, True)
    graph = onnx.load(path)
    for node in graph.graph.node:
        kept = [p for p in node.metadata_props if p.key != STACK_TRACE]
        del node.metadata_props[:]
        node.metadata_props.extend(kept)
    onnx.save(graph, path)
    return path


def fit_gender_fusion(
    classifier: torch.nn.Module,
    network: MusiCNN,
    examples: list[Example],
    estimator,
    reference: str,
    source: str,
) -> dict:
    """The fusion's weights and bias, fitted on the male and female examples: each one's first
    window through the product's front-end, the classifier's probabilities (torch, float32) and
    musicnn's tags. Returns the manifest's "gender_fusion" entry."""
    male, female = LABELS.index("male"), LABELS.index("female")
    gendered = [e for e in examples if e.label in (male, female)]
    counts = {LABELS[c]: sum(e.label == c for e in gendered) for c in (male, female)}
    if min(counts.values()) < MINIMUM_WINDOWS:
        raise ModelError(
            f"{source}: the gender fusion needs at least {MINIMUM_WINDOWS} male and "
            f"{MINIMUM_WINDOWS} female examples, found {counts}"
        )
    windows = [
        snippet_window(audio.load(e.path, audio.SEPARATION_RATE, 2), estimator, reference, True)
        for e in tqdm(
            gendered,
            desc="gender fusion",
            unit="window",
            leave=False,
            disable=not log.isEnabledFor(logging.INFO),
        )
    ]
    with torch.no_grad():
        probabilities = classifier.eval()(torch.from_numpy(np.stack([w.features for w in windows])))
        music = np.stack([music_features(w.mix) for w in windows])
        tags = network(torch.from_numpy(music))[0]
    evidence = gender_evidence(probabilities.numpy(), tags.numpy())
    is_female = np.array([e.label == female for e in gendered])
    regression = LogisticRegression().fit(evidence, is_female)
    weights, bias = regression.coef_[0], float(regression.intercept_[0])
    fused = (evidence @ weights + bias > 0) == is_female
    fusion = {
        "evidence": list(EVIDENCE),
        "weights": [float(w) for w in weights],
        "bias": bias,
        "female_tags": list(FEMALE_TAGS),
        "male_tags": list(MALE_TAGS),
        "fitted_on": {
            "data": source,
            "windows": counts,
            "gender_accuracy_classifier": float(((evidence[:, 0] > 0) == is_female).mean()),
            "gender_accuracy_music": float(((evidence[:, 1] > 0) == is_female).mean()),
            "gender_accuracy_fused": float(fused.mean()),
        },
    }
    log.info(
        "gender fusion on %d windows: weights %s, bias %.3f; accuracy %.3f fused, %.3f classifier",
        len(gendered),
        [round(w, 3) for w in fusion["weights"]],
        bias,
        fusion["fitted_on"]["gender_accuracy_fused"],
        fusion["fitted_on"]["gender_accuracy_classifier"],
    )
    return fusion


def music_manifest(fusion: dict) -> dict:
    return {
        "model": ORIGIN,
        "input": {
            "name": MUSIC_INPUT,
            "shape": ["batch", audio.MUSICNN_FRAMES, audio.MUSICNN_MELS],
            "rate": audio.MUSICNN_RATE,
            "n_fft": audio.MUSICNN_N_FFT,
            "hop": audio.MUSICNN_HOP,
            "log_gain": audio.MUSICNN_LOG_GAIN,
        },
        "output": {"name": MUSIC_OUTPUT, "shape": ["batch", len(MTT_TAGS)], "tags": list(MTT_TAGS)},
        "gender_fusion": fusion,
    }
