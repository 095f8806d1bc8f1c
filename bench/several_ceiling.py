"""How far a refitted several fusion can take "several" on the real-singing development set.

python bench/several_ceiling.py DEVSET [--model BUNDLE] [--hop 1]

The bundle's several fusion was fitted on corpus snippets. This bench asks what a fusion of the
evidence at hand could reach if it were fitted on real duets instead, using the development set
itself, each singer scored by a fit on the clips they are not in (leave one singer out). It
reports, over the windows where the classifier hears a voice, each cue's ROC AUC for several
against one voice:
- who: the classifier's log-odds for several against one voice;
- polyphony: the pitch branch's share of frames with two pitches (inference/fusion.py);
- periodicity: pYIN's mean voiced probability over the loud frames of the same 2 s of vocal
  stem (librosa; two voices on near pitches beat, so the stem is less periodic). It is not in
  the product.

Each refit weighs one voice against several 2 : 1, as export/pitch.py does, re-splits the voice
mass as the product does and decides with models.labels.decide; the bundle's own fusion is
replayed the same way, and gives bench/devset.py's figures. "best_threshold_f1" is an upper
bound: the leave-one-singer-out scores with the threshold chosen on the same windows.
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

import librosa
import numpy as np
from scipy.special import expit
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score

from vocalstream import audio
from vocalstream.errors import ModelError, VocalstreamError
from vocalstream.inference.frontend import pitch_input
from vocalstream.inference.fusion import resplit_several, several_evidence
from vocalstream.inference.model import VoiceModel
from vocalstream.models.labels import LABELS, decide
from vocalstream.train.devset import digest, read_windows

NO_VOICE, SEVERAL = LABELS.index("no_voice"), LABELS.index("several")
LOUD = 0.1  # frames within 20 dB of the stem's loudest count for its periodicity
REFITS = (("who", "polyphony"), ("who", "polyphony", "periodicity"), ("who", "periodicity"))


def periodicity(stem: np.ndarray) -> float:
    """pYIN's mean voiced probability over the loud frames of a 22.05 kHz vocal stem."""
    _, _, voiced = librosa.pyin(
        stem, fmin=65, fmax=1000, sr=audio.PITCH_RATE, resolution=1.0, n_thresholds=20
    )
    rms = librosa.feature.rms(y=stem)[0][: len(voiced)]
    loud = rms >= LOUD * rms.max() if rms.max() > 0 else np.ones(len(voiced), bool)
    return float(voiced[loud].mean())


def evidence(engine: VoiceModel, rows: list[dict], hop: float) -> dict[str, np.ndarray]:
    """Each labelled window's product probabilities, its classifier's own, its polyphony and
    periodicity, through the file path's front-end (one separated stream per clip), in the
    order of `rows`."""
    found = {
        "final": np.zeros((len(rows), len(LABELS)), np.float32),
        "classifier": np.zeros((len(rows), len(LABELS)), np.float32),
        "polyphony": np.zeros(len(rows)),
        "periodicity": np.zeros(len(rows)),
        "silent": np.zeros(len(rows), bool),
    }
    for clip in dict.fromkeys(row["clip"] for row in rows):
        stream = engine.feature_stream(hop, live=False)
        signal = audio.load(clip, audio.SEPARATION_RATE, audio.SEPARATION_CHANNELS)
        by_start = {round(w.start, 3): w for w in stream.push(signal) + stream.flush()}
        where = [i for i, row in enumerate(rows) if row["clip"] == clip]
        windows = [by_start[round(rows[i]["start"], 3)] for i in where]
        found["final"][where] = engine.window_probabilities(windows)
        features = np.stack([w.features for w in windows])
        found["classifier"][where] = engine.classifier_probabilities(features)
        found["polyphony"][where] = engine.polyphonies(np.stack([w.vocals for w in windows]))
        found["periodicity"][where] = [periodicity(pitch_input(w.vocals)[:, 0]) for w in windows]
        found["silent"][where] = [w.input_level < audio.SILENCE_LEVEL_DB for w in windows]
    return found


def _scores(final: np.ndarray, labels: np.ndarray) -> dict:
    decided = decide(final)
    truth, called = labels == "several", decided == SEVERAL
    gendered = np.isin(labels, ["male", "female"])
    strict = np.array(LABELS)[decided[gendered]] == labels[gendered]
    return {
        "several_f1": round(float(2 * (truth & called).sum() / (truth.sum() + called.sum())), 3),
        "several_found": int((truth & called).sum()),
        "several_called": int(called.sum()),
        "gender_strict": round(float(strict.mean()), 3),
    }


def _best_threshold_f1(score: np.ndarray, heard: np.ndarray, truth: np.ndarray) -> float:
    best = 0.0
    for threshold in np.unique(score[heard]):
        called = heard & (score >= threshold)
        best = max(best, 2 * (called & truth).sum() / (called.sum() + truth.sum()))
    return round(float(best), 3)


def _singers(clip: str) -> list[str]:
    """The singers of a clip named SINGER-a-cappella, SINGER-over-music or SINGER-with-OTHER,
    the lead first."""
    return Path(clip).stem.removesuffix("-a-cappella").removesuffix("-over-music").split("-with-")


def _fit(inputs: np.ndarray, several: np.ndarray) -> LogisticRegression:
    weight = {
        True: len(several) / 3 / several.sum(),
        False: 2 * len(several) / 3 / (~several).sum(),
    }
    return LogisticRegression(class_weight=weight).fit(inputs, several)


def report(found: dict[str, np.ndarray], rows: list[dict], fusion: dict) -> dict:
    labels = np.array([row["label"] for row in rows])
    clips = [str(row["clip"]) for row in rows]
    truth = labels == "several"
    heard = (decide(found["classifier"]) != NO_VOICE) & ~found["silent"]
    final = np.where(found["silent"][:, None], np.eye(len(LABELS))[NO_VOICE], found["final"])
    who, polyphony = several_evidence(found["classifier"], found["polyphony"]).T
    cues = {"who": who, "polyphony": polyphony, "periodicity": found["periodicity"]}
    signs = {"who": 1, "polyphony": 1, "periodicity": -1}  # a periodic stem speaks for one voice
    result = {
        "windows": len(rows),
        "heard": int(heard.sum()),
        "bundle_fusion": _scores(final, labels),
        "bundle_fusion_weights": fusion["weights"] + [fusion["bias"]],
        "cue_auc": {
            name: round(float(roc_auc_score(truth[heard], signs[name] * cue[heard])), 3)
            for name, cue in cues.items()
        },
        "refitted_leave_one_singer_out": {},
    }
    leads = np.array([_singers(c)[0] for c in clips])
    for names in REFITS:
        inputs = np.stack([cues[n] for n in names], axis=1)
        share = np.zeros(len(rows))
        for singer in sorted(set(leads)):
            train = heard & np.array([singer not in _singers(c) for c in clips])
            scored = heard & (leads == singer)
            fitted = _fit(inputs[train], truth[train])
            share[scored] = expit(fitted.decision_function(inputs[scored]))
        refitted = final.copy()
        refitted[heard] = resplit_several(final[heard], share[heard])
        whole = _fit(inputs[heard], truth[heard])
        result["refitted_leave_one_singer_out"]["+".join(names)] = {
            **_scores(refitted, labels),
            "best_threshold_f1": _best_threshold_f1(share, heard, truth),
            "weights_fitted_on_every_singer": [round(float(w), 3) for w in whole.coef_[0]]
            + [round(float(whole.intercept_[0]), 3)],
        }
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("devset", type=Path)
    parser.add_argument("--model", type=Path, default=None, help="bundle (default: bundled)")
    parser.add_argument("--hop", type=float, default=1.0)
    arguments = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    try:
        rows = read_windows(arguments.devset)
        engine = VoiceModel(arguments.model, "cpu")
        if engine.pitch_session is None:
            raise ModelError(f"{engine.bundle.folder}: has no pitch branch, so no several fusion")
        found = evidence(engine, rows, arguments.hop)
    except VocalstreamError as error:
        raise SystemExit(f"several_ceiling: {error}") from None
    result = {"devset": digest(arguments.devset), "model": str(engine.bundle.folder)}
    result.update(report(found, rows, engine.bundle.pitch["several_fusion"]))
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
