"""Smoothing, segments and output formats, on small exact inputs."""

import csv
import io
import json

import numpy as np

from vocalstream.models.labels import decide
from vocalstream.stream.formats import render
from vocalstream.stream.pipeline import Result
from vocalstream.stream.sources import SampleBudget
from vocalstream.stream.timeline import Smoothing, segments, window_event

LABELS = ("no_voice", "male", "female", "several")


def result(index, probabilities, start=None, padded=False):
    start = 3.0 * index if start is None else start
    probabilities = np.array(probabilities, np.float32)
    return Result(index, start, start + 3.0, padded, probabilities, 5.0, 0, -12.345, -20.0, LABELS)


def test_window_event_schema():
    event = window_event(result(2, [0.1, 0.2, 0.6, 0.1]))
    assert event == {
        "t0": 6.0,
        "t1": 9.0,
        "label": "female",
        "label_id": 2,
        "probs": {"no_voice": 0.1, "male": 0.2, "female": 0.6, "several": 0.1},
        "vocal_level": -12.35,
        "input_level": -20.0,
        "latency_ms": 5.0,
        "dropped": 0,
        "padded": False,
    }


# No voice, with a one-window "male" blip inside it, then a female voice.
NOISY = [
    [0.9, 0.1, 0, 0],
    [0.9, 0.1, 0, 0],
    [0.1, 0.9, 0, 0],
    [0.9, 0.1, 0, 0],
    [0.9, 0.1, 0, 0],
    [0.1, 0.2, 0.7, 0],
    [0.1, 0.2, 0.7, 0],
    [0.1, 0.2, 0.7, 0],
]


def test_median_smoothing_removes_a_single_window_blip():
    timeline = segments(
        [result(i, p) for i, p in enumerate(NOISY)],
        3.0,
        Smoothing("median", 3),
        duration=20.0,
    )
    assert [(s.start, s.end, s.label) for s in timeline] == [
        (0.0, 15.0, "no_voice"),
        (15.0, 20.0, "female"),
    ]
    raw = segments([result(i, p) for i, p in enumerate(NOISY)], 3.0, Smoothing("none"))
    assert [s.label for s in raw] == ["no_voice", "male", "no_voice", "female"]


def test_hysteresis_and_minimum_duration():
    rows = [[0.9, 0.1, 0, 0], [0.5, 0.5, 0, 0], [0.35, 0.65, 0, 0], [0.2, 0.8, 0, 0]]
    timeline = segments(
        [result(i, p) for i, p in enumerate(rows)],
        3.0,
        Smoothing("hysteresis", enter=0.6, exit=0.4),
    )
    assert [(s.start, s.label) for s in timeline] == [(0.0, "no_voice"), (6.0, "male")]
    short = segments(
        [result(i, p) for i, p in enumerate(NOISY)],
        3.0,
        Smoothing("none", min_duration=4.0),
    )
    assert [(s.start, s.end, s.label) for s in short] == [
        (0.0, 15.0, "no_voice"),
        (15.0, 24.0, "female"),
    ]


def test_overlapping_windows_speak_for_their_hop():
    results = [result(i, [0.9, 0.1, 0, 0], start=float(i)) for i in range(3)]
    (only,) = segments(results, 1.0, Smoothing("none"), duration=4.5)
    assert (only.start, only.end) == (0.0, 4.5)


FILES = [
    {
        "path": "a/song.mp3",
        "duration": 7.5,
        "segments": [
            {"start": 0.0, "end": 3.0, "label": "no_voice", "label_id": 0, "probability": 0.8},
            {"start": 3.0, "end": 7.5, "label": "female", "label_id": 2, "probability": 0.7},
        ],
        "windows": [window_event(result(0, [0.8, 0.1, 0.1, 0.0]))],
    }
]


def test_every_format_renders():
    document = json.loads(render(FILES, "json", False, {"labels": list(LABELS)}))
    assert document["files"][0]["segments"][1]["label"] == "female"
    assert "windows" not in document["files"][0]
    lines = render(FILES, "jsonl", False, {}).splitlines()
    assert json.loads(lines[1]) == {"file": "a/song.mp3", **FILES[0]["segments"][1]}
    rows = list(csv.DictReader(io.StringIO(render(FILES, "csv", False, {}))))
    assert rows[1]["end"] == "7.5" and rows[1]["label"] == "female"
    window_rows = list(csv.DictReader(io.StringIO(render(FILES, "csv", True, {}))))
    assert window_rows[0]["p_no_voice"] == "0.8"
    assert render(FILES, "rttm", False, {}).splitlines()[1] == (
        "SPEAKER song 1 3.000 4.500 <NA> <NA> female 0.7000 <NA>"
    )
    grid = render(FILES, "textgrid", False, {})
    assert 'class = "IntervalTier"' in grid and "intervals: size = 2" in grid
    assert 'text = "female"' in grid and "xmax = 7.5" in grid


def test_a_sample_budget_spans_streams():
    blocks = [np.ones((1, 4), np.float32)] * 5
    budget = SampleBudget(10)
    assert [b.shape[1] for b in budget.take(blocks[:2])] == [4, 4] and not budget.exhausted
    assert [b.shape[1] for b in budget.take(blocks)] == [2] and budget.exhausted
    assert list(budget.take(blocks)) == []
    assert sum(b.shape[1] for b in SampleBudget(None).take(blocks)) == 20


def test_a_window_is_voiced_when_no_voice_is_less_likely_than_not():
    """P(no voice) 0.4 beside a voice split three ways is a voice: the likeliest of them."""
    assert result(0, [0.4, 0.35, 0.15, 0.1]).label == "male"
    assert result(0, [0.5, 0.45, 0.05, 0.0]).label == "no_voice"
    batch = np.array([[0.4, 0.1, 0.2, 0.3], [0.9, 0.05, 0.05, 0.0], [0.0, 0.2, 0.3, 0.5]])
    assert decide(batch).tolist() == [3, 0, 3]
    timeline = segments([result(i, row) for i, row in enumerate(batch)], 3.0, Smoothing("none"))
    assert [s.label for s in timeline] == ["several", "no_voice", "several"]
