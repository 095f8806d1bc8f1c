"""From window results to events: one dict per window, and a smoothed timeline of segments."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.ndimage import median_filter

from vocalstream.models.labels import decide
from vocalstream.stream.pipeline import Result

SMOOTHING = ("median", "hysteresis", "none")


def window_event(result: Result) -> dict:
    """The documented per-window record (docs/output.md)."""
    return {
        "t0": round(result.start, 3),
        "t1": round(result.end, 3),
        "label": result.label,
        "label_id": result.label_id,
        "probs": {
            name: round(float(p), 4)
            for name, p in zip(result.labels, result.probabilities, strict=True)
        },
        "vocal_level": round(result.vocal_level, 2),
        "input_level": round(result.input_level, 2),
        "latency_ms": round(result.latency_ms, 1),
        "dropped": result.dropped,
        "padded": result.padded,
    }


@dataclass(frozen=True)
class Segment:
    """A stretch of one class on the smoothed timeline."""

    start: float
    end: float
    label: str
    label_id: int
    probability: float  # the class's mean probability over the segment's windows


@dataclass(frozen=True)
class Smoothing:
    method: str = "median"  # median | hysteresis | none
    median_windows: int = 3  # odd: windows in the median filter
    enter: float = 0.6  # hysteresis: a new class must reach this probability...
    exit: float = 0.4  # ...while the current one has fallen below this
    min_duration: float = 0.0  # seconds: shorter segments join their predecessor

    def __post_init__(self):
        if self.method not in SMOOTHING:
            raise ValueError(f"smoothing must be one of {SMOOTHING}")
        if self.median_windows < 1 or self.median_windows % 2 == 0:
            raise ValueError("the median filter needs an odd number of windows")
        if not 0.0 <= self.exit <= self.enter <= 1.0:
            raise ValueError("hysteresis needs 0 <= exit <= enter <= 1")


def _labels_over_time(probabilities: np.ndarray, smoothing: Smoothing) -> np.ndarray:
    if smoothing.method == "median" and len(probabilities) > 1:
        size = (smoothing.median_windows, 1)
        probabilities = median_filter(probabilities, size=size, mode="nearest")
    chosen = decide(probabilities)
    if smoothing.method != "hysteresis":
        return chosen
    current = chosen[0]
    for index, row in enumerate(probabilities):
        best = int(decide(row))
        if best != current and row[best] >= smoothing.enter and row[current] < smoothing.exit:
            current = best
        chosen[index] = current
    return chosen


def segments(
    results: Sequence[Result], hop: float, smoothing: Smoothing, duration: float | None = None
) -> list[Segment]:
    """Consecutive windows of one (smoothed) class merged into segments. Each window speaks for
    the hop that starts it (the last one for its whole length, up to `duration`); a segment's
    probability is the mean probability of its class over its windows."""
    if not results:
        return []
    probabilities = np.stack([r.probabilities for r in results])
    chosen = _labels_over_time(probabilities, smoothing)
    spans = [(r.start, min(r.start + hop, r.end)) for r in results]
    spans[-1] = (results[-1].start, results[-1].end)
    if duration is not None:
        spans = [(start, min(end, duration)) for start, end in spans]
    runs: list[list[int]] = []
    for index, label in enumerate(chosen):
        if runs and chosen[runs[-1][0]] == label:
            runs[-1].append(index)
        else:
            runs.append([index])
    if smoothing.min_duration > 0:
        merged: list[list[int]] = []
        for run in runs:
            duration = spans[run[-1]][1] - spans[run[0]][0]
            same_label = merged and chosen[merged[-1][0]] == chosen[run[0]]
            if merged and (duration < smoothing.min_duration or same_label):
                merged[-1].extend(run)  # absorbed: A, short B, A becomes one A
            else:
                merged.append(run)
        runs = merged
    labels = results[0].labels
    timeline = []
    for run in runs:
        label_id = int(chosen[run[0]])
        timeline.append(
            Segment(
                round(spans[run[0]][0], 3),
                round(spans[run[-1]][1], 3),
                labels[label_id],
                label_id,
                round(float(probabilities[run, label_id].mean()), 4),
            )
        )
    return timeline
