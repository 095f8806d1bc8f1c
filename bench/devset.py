"""Score models on the real-singing development set (`vocalstream corpus build-dev`).

python bench/devset.py DEVSET [--model BUNDLE]... [--hop 1] [--precision auto|fp32|fp16|int8]

Each clip runs through the product's own file path (model.analyse: one separated stream, windows
every second), and each labelled window is scored:
- voice/no-voice: a voiced window (male, female, voice, several) not called no_voice, and back;
- gender: on one-voice windows whose source states the singer's gender, the more probable of male
  and female (the gate's measure), and the strict 4-class hit;
- several: F1 of the class "several" over every labelled window.
Also the level-only rule, vocal_level >= LEVEL_DB, for voice/no-voice (the threshold was fixed
before looking at the set).
"""

from __future__ import annotations

import argparse
import json
import logging
from collections import defaultdict
from pathlib import Path

import numpy as np

import vocalstream
from vocalstream.inference.model import VoiceModel
from vocalstream.models.labels import decide
from vocalstream.train.devset import digest, read_windows

LEVEL_DB = -15.0
GATES = {"voice_no_voice": 0.92, "gender": 0.85, "several_f1": 0.75}


def _f1(truth: list[bool], predicted: list[bool]) -> float:
    hits = sum(t and p for t, p in zip(truth, predicted, strict=True))
    if not hits:
        return 0.0
    precision, recall = hits / sum(predicted), hits / sum(truth)
    return 2 * precision * recall / (precision + recall)


def score(engine: VoiceModel, rows: list[dict], hop: float) -> dict:
    model = vocalstream.Model(engine)
    by_clip = defaultdict(list)
    for row in rows:
        by_clip[row["clip"]].append(row)
    scored = []  # (row, probabilities, vocal_level)
    for clip, labelled in sorted(by_clip.items()):
        windows = {round(w.start, 3): w for w in model.analyse(clip, hop=hop).windows}
        for row in labelled:
            window = windows[round(row["start"], 3)]
            scored.append((row, window.probabilities, window.vocal_level))
    labels = list(model.labels)
    male, female, several, silent = (
        labels.index(n) for n in ("male", "female", "several", "no_voice")
    )
    voiced = [row["label"] != "no_voice" for row, _, _ in scored]
    heard = [int(decide(p)) != silent for _, p, _ in scored]
    level = [v >= LEVEL_DB for _, _, v in scored]
    gendered = [(row, p) for row, p, _ in scored if row["label"] in ("male", "female")]
    gender = [("male" if p[male] > p[female] else "female") == row["label"] for row, p in gendered]
    strict = [labels[int(decide(p))] == row["label"] for row, p in gendered]
    per_source = defaultdict(list)
    for (row, _, _), v, h in zip(scored, voiced, heard, strict=True):
        per_source[
            row["clip"].stem.split("-a-cappella")[0].split("-over-music")[0].split("-with-")[0]
        ].append(v == h)
    report = {
        "model": str(engine.bundle.folder),
        "classifier": model.engine.classifier,
        "windows": len(scored),
        "voice_no_voice": float(np.mean([v == h for v, h in zip(voiced, heard, strict=True)])),
        "voice_recall": float(np.mean([h for v, h in zip(voiced, heard, strict=True) if v])),
        "no_voice_recall": float(
            np.mean([not h for v, h in zip(voiced, heard, strict=True) if not v])
        ),
        "level_rule_voice_no_voice": float(
            np.mean([v == lv for v, lv in zip(voiced, level, strict=True)])
        ),
        "gender_windows": len(gendered),
        "gender": float(np.mean(gender)),
        "gender_male": float(
            np.mean(
                [g for (row, _), g in zip(gendered, gender, strict=True) if row["label"] == "male"]
            )
        ),
        "gender_female": float(
            np.mean(
                [
                    g
                    for (row, _), g in zip(gendered, gender, strict=True)
                    if row["label"] == "female"
                ]
            )
        ),
        "gender_strict": float(np.mean(strict)),
        "several_f1": _f1(
            [row["label"] == "several" for row, _, _ in scored],
            [int(decide(p)) == several for _, p, _ in scored],
        ),
        "voice_no_voice_by_singer": {
            k: round(float(np.mean(v)), 3) for k, v in sorted(per_source.items())
        },
    }
    truths = ("no_voice", "male", "female", "voice", "several")
    report["confusion"] = {
        truth: {
            name: sum(
                1
                for row, p, _ in scored
                if row["label"] == truth and labels[int(decide(p))] == name
            )
            for name in labels
        }
        for truth in truths
    }
    by_singer = defaultdict(list)
    for (row, _), right in zip(gendered, gender, strict=True):
        by_singer[row["singers"]].append(right)
    report["gender_by_singer"] = {k: round(float(np.mean(v)), 3) for k, v in by_singer.items()}
    report["gates"] = {name: report[name] >= floor for name, floor in GATES.items()}
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("devset", type=Path)
    parser.add_argument("--model", action="append", default=None, help="bundle (repeatable)")
    parser.add_argument("--hop", type=float, default=1.0)
    parser.add_argument("--precision", default="auto", help="auto, fp32, fp16 or int8")
    arguments = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    rows = read_windows(arguments.devset)
    for model_path in arguments.model or [None]:
        report = {"devset": digest(arguments.devset)}
        engine = VoiceModel(model_path, "cpu", precision=arguments.precision)
        report.update(score(engine, rows, arguments.hop))
        print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
