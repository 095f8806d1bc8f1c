"""A file's summary: how long each class holds on the smoothed timeline, each class's mean
probability over the windows, and one vocal tag for the whole file; the summary CSV."""

from __future__ import annotations

import csv
import os

import numpy as np

from vocalstream.api import Analysis
from vocalstream.files import atomic_path
from vocalstream.models.labels import LABELS

NO_VOICE = LABELS[0]
VOCAL_TAGS = {"male": "male vocals", "female": "female vocals", "several": "several voices"}
INSTRUMENTAL = "instrumental"
MIXED = "mixed"
TAGS = (INSTRUMENTAL, *VOCAL_TAGS.values(), MIXED)
INSTRUMENTAL_BELOW = 0.2  # a file voiced for less than this share of its length is instrumental
DOMINANT_FROM = 0.6  # a voice class holding this share of the voiced time names the file


def vocal_tag(seconds: dict[str, float]) -> str:
    """instrumental, male vocals, female vocals, several voices or mixed, from the seconds each
    class holds (docs/output.md states the rule)."""
    voiced = {label: time for label, time in seconds.items() if label != NO_VOICE}
    voiced_total = sum(voiced.values())
    if voiced_total == 0 or voiced_total < INSTRUMENTAL_BELOW * sum(seconds.values()):
        return INSTRUMENTAL
    leader = max(voiced, key=voiced.get)
    return VOCAL_TAGS[leader] if voiced[leader] >= DOMINANT_FROM * voiced_total else MIXED


def summarise(analysis: Analysis) -> dict:
    labels = analysis.windows[0].labels
    seconds = dict.fromkeys(labels, 0.0)
    for segment in analysis.segments:
        seconds[segment.label] += segment.end - segment.start
    total = sum(seconds.values())
    mean = np.mean([window.probabilities for window in analysis.windows], axis=0)
    return {
        "tag": vocal_tag(seconds),
        "seconds": {label: round(time, 3) for label, time in seconds.items()},
        "share": {
            label: round(time / total, 4) if total else 0.0 for label, time in seconds.items()
        },
        "mean_probs": {label: round(float(p), 4) for label, p in zip(labels, mean, strict=True)},
    }


COLUMNS = (
    "path",
    "size",
    "mtime",
    "duration",
    "tag",
    *(f"seconds_{label}" for label in LABELS),
    *(f"share_{label}" for label in LABELS),
    *(f"p_{label}" for label in LABELS),
    "error",
)


def summary_row(record: dict) -> dict:
    row = {name: record.get(name) for name in ("path", "size", "mtime", "duration", "error")}
    summary = record.get("summary")
    if summary:
        row["tag"] = summary["tag"]
        for key, prefix in (("seconds", "seconds_"), ("share", "share_"), ("mean_probs", "p_")):
            row |= {prefix + label: value for label, value in summary[key].items()}
    return row


def write_summary(records: list[dict], path: str | os.PathLike) -> None:
    """One row per record (a failed file: its error, the other columns empty), written whole."""
    # surrogateescape writes back the bytes of file names that are not UTF-8
    with (
        atomic_path(path) as scratch,
        open(scratch, "w", newline="", encoding="utf-8", errors="surrogateescape") as out,
    ):
        writer = csv.DictWriter(out, COLUMNS)
        writer.writeheader()
        writer.writerows(summary_row(record) for record in records)
