"""The real-singing development set: window labels follow where each real voice sounds."""

import csv
import json
import subprocess

import numpy as np
from conftest import SHARED_DATA

from vocalstream.train import devset
from vocalstream.train.devset import RATE, Clip, Voice, window_labels

SOPRANO = Voice("s", "test", "female", "", "")
BASS = Voice("b", "test", "male", "", "")


def sounding(seconds: float, start: float, end: float) -> np.ndarray:
    where = np.zeros(int(seconds * RATE), bool)
    where[int(start * RATE) : int(end * RATE)] = True
    return where


def test_windows_are_labelled_by_the_voices_sounding_in_them():
    clip = Clip(
        "c",
        np.zeros(12 * RATE, np.float32),
        [(SOPRANO, sounding(12, 4.0, 12.0)), (BASS, sounding(12, 7.5, 9.0))],
    )
    labels = {start: (label, singers) for start, _, label, singers in window_labels(clip)}
    assert labels[0.0] == ("no_voice", "")
    assert labels[2.0] == ("female", "s")  # soprano 1 s, bass absent
    assert labels[6.0] == ("several", "s+b")  # both at least 1 s
    assert 5.0 not in labels  # the bass sounds 0.5 s of it: no fair label
    assert labels[8.0] == ("several", "s+b")
    assert labels[9.0] == ("female", "s")


def test_build_dev_from_the_shared_recordings(tmp_path):
    out = tmp_path / "dev"
    command = ["vocalstream", "corpus", "build-dev", str(out), "--data", str(SHARED_DATA), "-q"]
    done = subprocess.run(command, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout == ""
    with (out / "windows.csv").open() as file:
        rows = list(csv.DictReader(file))
    by_clip = {}
    for row in rows:
        by_clip.setdefault(row["clip"], []).append(row["label"])
    assert set(by_clip["clips/choirset-b1-a-cappella.flac"]) == {"male"}
    assert set(by_clip["clips/choirset-s1-a-cappella.flac"]) == {"female"}
    assert by_clip["clips/choirset-s1-over-music.flac"][0] == "no_voice"
    assert "female" in by_clip["clips/choirset-s1-over-music.flac"]
    assert all("several" in labels for name, labels in by_clip.items() if "-with-" in name)
    assert set(by_clip["clips/vocadito-s1-a-cappella.flac"]) <= {"voice", "no_voice"}
    summary = json.loads((out / "devset.json").read_text())
    assert summary["voices"] == 4 and summary["windows"] == len(rows)
    assert summary["digest"] == devset.digest(out)
    clip = out / "clips/choirset-b1-a-cappella.flac"
    flipped = bytearray(clip.read_bytes())
    flipped[len(flipped) // 2] ^= 0xFF
    clip.write_bytes(bytes(flipped))
    assert devset.digest(out) != summary["digest"]
    with (out / "voices.csv").open() as file:
        genders = {row["id"]: row["gender"] for row in csv.DictReader(file)}
    assert genders == {
        "choirset-s1": "female",
        "choirset-b1": "male",
        "choirset-b2": "male",
        "vocadito-s1": "voice",
    }
    again = subprocess.run(command, capture_output=True, text=True)
    assert again.returncode != 0
    assert again.stderr.strip().count("\n") == 0 and "not an empty folder" in again.stderr
