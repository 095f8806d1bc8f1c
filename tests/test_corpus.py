"""The corpus builder: snippet mixing on real recordings, its output layout, determinism, and
its errors. One test builds a small corpus from the real Debian and PyPI sources."""

import csv
import json
import os
import subprocess
import sys

import numpy as np
import pyloudnorm
import pytest
import soundfile as sf
from conftest import shared

from vocalstream import audio
from vocalstream.errors import DataError
from vocalstream.models.labels import ONE_VOICE
from vocalstream.train import corpus, fetch
from vocalstream.train.data import read_manifest, read_seed_folder
from vocalstream.train.resing import (
    RANGES,
    SHARED_SPEECH_HZ,
    UNISON_INTERVALS,
    _analyse,
    resing,
    shift_speech,
    sing_along,
)

MALE_READERS = ["librosa-data/3436-172162-0000.ogg", "librosa-data/5703-47212-0000.ogg"]
FEMALE_READER = "librosa-data/198-209-0000.ogg"
MUSIC = [
    "librosa-data/Kevin_MacLeod_-_Vibe_Ace.ogg",
    "librosa-data/sorohanro_-_solo-trumpet-06.ogg",
    "librosa-data/Kevin_MacLeod_-_P_I_Tchaikovsky_Dance_of_the_Sugar_Plum_Fairy.ogg",
]


@pytest.fixture(scope="module")
def pools(tmp_path_factory):
    """Pools of real recordings: LibriSpeech readers (one also resung by WORLD, one also shifted)
    and a ChoirSet soprano, real music."""
    voices = [
        corpus.Voice("reader-3436", corpus.MALE, "librispeech", "train", "", ""),
        corpus.Voice("reader-5703", corpus.MALE, "librispeech", "train", "", ""),
        corpus.Voice("reader-198", corpus.FEMALE, "librispeech", "train", "", ""),
        # Marked synthetic only to take the builder's synthetic-share path.
        corpus.Voice("soprano", corpus.FEMALE, "choirset", "train", "", "", synthetic=True),
    ]
    paths = [*MALE_READERS, FEMALE_READER, "choirset/DCS_SE_FullChoir_ScaleUpDown02_S1_LRX.wav"]
    files = {voice.id: shared(path) for voice, path in zip(voices, paths, strict=True)}
    by_gender = {g: [v for v in voices if v.gender == g] for g in (corpus.MALE, corpus.FEMALE)}
    resung = {
        "reader-3436": corpus.dataclasses.replace(
            voices[0], id="reader-3436-sung", sung_from="reader-3436"
        )
    }
    shifted = {
        "reader-198": corpus.dataclasses.replace(
            voices[2], id="reader-198-shifted", shifted_from="reader-198"
        )
    }
    folder = tmp_path_factory.mktemp("world")
    speech = audio.load(shared(MALE_READERS[0]), corpus.RATE, 1)[0]
    files["reader-3436-sung"] = folder / "reader-3436-sung.flac"
    sf.write(files["reader-3436-sung"], resing(speech, corpus.RATE, corpus.MALE, 0), corpus.RATE)
    speech = audio.load(shared(FEMALE_READER), corpus.RATE, 1)[0]
    files["reader-198-shifted"] = folder / "reader-198-shifted.flac"
    sf.write(files["reader-198-shifted"], shift_speech(speech, corpus.RATE, 0), corpus.RATE)
    music = {"music0": [shared(MUSIC[0]), shared(MUSIC[2])], "music1": [shared(MUSIC[1])]}
    weights = {key: 1.0 for key in files}
    return corpus.Pools(by_gender, resung, files, weights, music, shifted=shifted)


@pytest.fixture(scope="module")
def split_folder(tmp_path_factory, pools):
    folder = tmp_path_factory.mktemp("corpus") / "train"
    rows = corpus.build_split(folder, "train", 48, seed=3, pools=pools)
    return folder, rows


def test_a_split_is_in_the_seeds_layout_with_a_manifest(split_folder):
    folder, rows = split_folder
    examples = read_seed_folder(folder)
    assert [e.label for e in examples] == [row["label"] for row in rows]
    assert sorted(e.label for e in examples) == sorted([0, 1, 2, 3] * 12)  # balanced classes
    listed = read_manifest(folder / "manifest.csv")
    assert [(e.path, e.label) for e in listed] == [(e.path, e.label) for e in examples]
    for example in examples[:6]:
        waveform = audio.load(example.path, corpus.RATE)
        assert waveform.shape == (1, corpus.SNIPPET_SAMPLES)


def test_labels_match_the_voices_mixed_in(split_folder):
    _, rows = split_folder
    for row in rows:
        speakers = row["speakers"].split("+") if row["speakers"] else []
        genders = row["genders"].split("+") if row["genders"] else []
        if row["label"] == 0:
            assert speakers == [] and row["music"]
        elif row["label"] in (1, 2):
            assert genders == [corpus.MALE if row["label"] == 1 else corpus.FEMALE]
        else:
            assert 2 <= len(speakers) <= 4 and len(set(speakers)) == len(speakers)
        if speakers and row["music"]:
            low, high = corpus.VOICE_TO_MUSIC_DB
            assert low <= row["voice_to_music_db"] <= high
    several = [row for row in rows if row["label"] == 3]
    assert any(len(set(r["genders"].split("+"))) == 2 for r in several)  # mixed genders
    assert any(len(set(r["genders"].split("+"))) == 1 for r in several)  # one gender


def test_snippets_are_loudness_normalised(split_folder):
    folder, rows = split_folder
    meter = pyloudnorm.Meter(corpus.RATE)
    for row in rows[:16]:
        waveform, rate = sf.read(folder / row["path"], dtype="float64")
        measured = meter.integrated_loudness(waveform)
        assert abs(measured - row["loudness_lufs"]) < 1.0  # mp3 coding moves it a little
        quiet = corpus.QUIET_MUSIC_LUFS if row["label"] == 0 else (None, None)
        ranges = [corpus.LOUDNESS_LUFS] + ([quiet] if quiet[0] else [])
        # A peak over PEAK was turned down, so a snippet may sit below its range, never above.
        assert any(row["loudness_lufs"] <= high + 0.5 for _, high in ranges)
        assert np.abs(waveform).max() <= 1.0


def test_the_same_seed_gives_the_same_corpus(tmp_path, pools):
    first = corpus.build_split(tmp_path / "a", "test", 8, seed=11, pools=pools)
    again = corpus.build_split(tmp_path / "b", "test", 8, seed=11, pools=pools)
    other = corpus.build_split(tmp_path / "c", "test", 8, seed=12, pools=pools)
    parallel = corpus.build_split(tmp_path / "d", "test", 8, seed=11, pools=pools, jobs=2)
    assert first == again == parallel
    for row in first:
        for copy in ("b", "d"):
            assert (tmp_path / "a" / row["path"]).read_bytes() == (
                tmp_path / copy / row["path"]
            ).read_bytes()
    assert (tmp_path / "a" / "manifest.csv").read_bytes() == (
        tmp_path / "d" / "manifest.csv"
    ).read_bytes()
    assert first != other


def test_every_speaker_and_music_source_belongs_to_one_split():
    assert len({voice.id for voice in corpus.VOICES}) == len(corpus.VOICES)
    held_out = {voice.package + voice.pattern for voice in corpus.VOICES if voice.split == "test"}
    seen = {voice.package + voice.pattern for voice in corpus.VOICES if voice.split != "test"}
    assert not held_out & seen
    for split in corpus.SPLITS:
        voices = [v for v in corpus.VOICES if v.split == split]
        assert {corpus.MALE, corpus.FEMALE} <= {v.gender for v in voices}
        assert sum(not v.synthetic for v in voices) > sum(v.synthetic for v in voices)
        assert any(m.split == split for m in corpus.MUSIC)
        assert any(
            isinstance(m, corpus.Renders) and m.lead for m in corpus.MUSIC if m.split == split
        )
    assert len({m.id for m in corpus.MUSIC}) == len(corpus.MUSIC)
    tracks = [(m.package, m.pattern) for m in corpus.MUSIC if isinstance(m, corpus.Tracks)]
    assert len(set(tracks)) == len(tracks)
    soundfonts = {(m.package, m.split) for m in corpus.MUSIC if isinstance(m, corpus.Renders)}
    assert len({package for package, _ in soundfonts}) == len(soundfonts)  # one per split
    assert not set(corpus.ALLOWED_PROGRAMS) & {52, 53, 54}  # choir, voice oohs, synth voice
    assert not set(corpus.LEAD_PROGRAMS) & {52, 53, 54, 85, 91, 94}  # and voice lead, choir pads


def test_voices_of_unstated_gender_are_real_and_never_in_the_test():
    unstated = [voice for voice in corpus.VOICES if voice.gender == corpus.UNSTATED]
    assert unstated and not any(voice.synthetic for voice in unstated)
    assert {voice.split for voice in unstated} <= {"train", "validation"}
    assert not {voice.id for voice in unstated} & set(corpus.RESUNG)  # no range to sing in


def test_a_voice_of_unstated_gender_is_one_voice_alone_and_one_of_several(tmp_path, pools):
    """vocadito's singer, whose gender its source does not state, beside the readers."""
    singer = corpus.Voice("vocadito", corpus.UNSTATED, "vocadito", "train", "", "")
    other = corpus.Voice("reader-unstated", corpus.UNSTATED, "librispeech", "train", "", "")
    files = {
        **pools.voice_files,
        singer.id: shared("vocadito/vocadito_1.wav"),
        other.id: shared(FEMALE_READER),
    }
    voices = {**pools.voices, corpus.UNSTATED: [singer, other]}
    mixed = corpus.Pools(voices, pools.resung, files, {key: 1.0 for key in files}, pools.music)
    rows = corpus.build_split(tmp_path / "train", "train", 64, seed=2, pools=mixed)
    unstated = {singer.id, other.id}
    alone = [row for row in rows if row["label"] == ONE_VOICE]
    assert alone and all(row["speakers"] in unstated for row in alone)
    assert all(row["genders"] == corpus.UNSTATED for row in alone)
    together = [row for row in rows if set(row["speakers"].split("+")) == unstated]
    assert together and all(row["label"] == 3 for row in together)
    for row in rows:  # never in a one-voice snippet that states a gender
        if set(row["speakers"].split("+")) & unstated:
            assert row["label"] in (3, ONE_VOICE)
    assert {row["label"] for row in rows} == {0, 1, 2, 3, ONE_VOICE}
    examples = read_manifest(tmp_path / "train" / "manifest.csv")
    assert ONE_VOICE in {example.label for example in examples}
    # A split without such voices draws as before: the held-out test does not move.
    plain = corpus.build_split(tmp_path / "plain", "train", 64, seed=2, pools=pools)
    assert ONE_VOICE not in {row["label"] for row in plain}


def test_a_missing_program_is_one_clear_error(tmp_path):
    with pytest.raises(DataError, match=r"no-such-program is not installed.*apt-get install x"):
        fetch.require_program("no-such-program", "do things", "x")
    script = f"{sys.prefix}/bin/vocalstream"
    out = tmp_path / "corpus"
    result = subprocess.run(
        [script, "corpus", "build", str(out), "--cache", str(tmp_path / "cache")],
        capture_output=True,
        text=True,
        env={**os.environ, "PATH": str(tmp_path)},
    )
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "Error: apt-get is not installed; the corpus builder needs it to fetch Debian packages "
        "(Debian: apt-get install apt)"
    ]
    assert not out.exists()


def test_a_program_is_cut_by_its_processor_time_not_by_a_busy_machine():
    spinning = [sys.executable, "-c", "while True: pass"]
    with pytest.raises(DataError, match="more than 1 s of processor time"):
        fetch.run(spinning, "spinning", cpu_seconds=1)
    waiting = [sys.executable, "-c", "import time; time.sleep(1.5)"]
    assert fetch.run(waiting, "waiting", cpu_seconds=1) == b""  # wall time is not cut


def test_an_existing_output_folder_is_refused(tmp_path):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "keep.txt").write_text("mine")
    with pytest.raises(DataError, match="already exists"):
        corpus.build(tmp_path / "out", {"train": 4, "validation": 4, "test": 4})
    assert (tmp_path / "out" / "keep.txt").read_text() == "mine"


def test_bad_sizes_and_seeds_are_refused(tmp_path):
    for counts, seed, message in [
        ({"train": 3, "validation": 4, "test": 4}, 0, "at least 4"),
        ({"train": 4, "validation": 4, "test": 4}, -1, "0 or more"),
    ]:
        with pytest.raises(DataError, match=message):
            corpus.build(tmp_path / "out", counts, seed)
    with pytest.raises(DataError, match="jobs must be 1 or more"):
        corpus.build(tmp_path / "out", {"train": 4, "validation": 4, "test": 4}, jobs=0)
    assert not (tmp_path / "out").exists()


def test_the_corpus_builds_from_the_real_sources(tmp_path):
    """Fetches the Debian packages (about 600 MB), renders scores and sings with festival:
    the command a user runs on a fresh machine, at a small size."""
    out = tmp_path / "corpus"
    result = subprocess.run(
        [
            f"{sys.prefix}/bin/vocalstream",
            "corpus",
            "build",
            str(out),
            "--cache",
            str(tmp_path / "cache"),
            "--train",
            "8",
            "--validation",
            "4",
            "--test",
            "8",
            "--seed",
            "5",
        ],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    summary = json.loads((out / "corpus.json").read_text())
    for split, count in (("train", 8), ("validation", 4), ("test", 8)):
        examples = read_seed_folder(out / split)
        assert len(examples) == count
        assert summary["splits"][split]["snippets"] == count
        with (out / split / "manifest.csv").open() as file:
            rows = list(csv.DictReader(file))
        speakers = {s for row in rows for s in row["speakers"].split("+") if s}
        resynthesised = (*corpus.RESUNG.values(), *corpus.SHIFTED.values())
        split_of = {v.id: v.split for v in (*corpus.VOICES, *resynthesised)}
        assert {split_of[s] for s in speakers} <= {split}
    assert (out / "LICENSES" / "asterisk-core-sounds-en-g722.txt").is_file()
    assert not list(tmp_path.glob(".corpus-*"))
    allison = next(v for v in corpus.VOICES if v.id == "asterisk-en-allison")
    material = corpus.Material(tmp_path / "cache")
    package = material.package(allison.package)
    in_package = {f.stem for f in fetch.package_files(package, allison.pattern)}
    taken = {f.stem for f in material.voice_files(allison)}
    assert {"tt-monkeys", "beep", "tt-weasels"} <= in_package
    assert "tt-weasels" in taken and not taken & set(corpus.NON_SPEECH_PROMPTS)


def test_resung_speakers_sing_in_their_range_and_join_the_mixes(split_folder):
    """WORLD keeps the reader's timbre and holds the vowels longer, on melodies in the gender's
    range; the builder draws the resung double in place of the speaker about half the time."""
    import librosa

    speech = audio.load(shared(FEMALE_READER), corpus.RATE, 1)[0]
    for gender in (corpus.MALE, corpus.FEMALE):
        sung = resing(speech, corpus.RATE, gender, seed=1)
        assert len(sung) > 1.2 * len(speech)
        f0, voiced, _ = librosa.pyin(sung[: 8 * corpus.RATE], fmin=65, fmax=1000, sr=corpus.RATE)
        low, high = (440 * 2 ** ((n - 69) / 12) for n in RANGES[gender])
        median = float(np.nanmedian(f0[voiced]))
        assert 0.9 * low < median < 1.1 * high, (gender, median)
    _, rows = split_folder
    speakers = [s for row in rows for s in row["speakers"].split("+")]
    assert "reader-3436-sung" in speakers and "reader-3436" in speakers
    for row in rows:
        assert "reader-3436" not in row["speakers"] or row["label"] in (1, 3)


def test_shifted_speakers_speak_where_both_genders_do_with_their_own_timbre(split_folder):
    """WORLD moves a man's and a woman's speech into the pitches both genders speak at, keeping
    the timing and the spectral envelope: correlations of 0.93-0.99 with the speaker's own,
    where a plain pitch shift, which moves the formants too, keeps 0.71-0.82 on these readers.
    The builder draws the shifted double in place of the speaker."""

    def pitch_and_envelope(speech):
        f0, envelope, _ = _analyse(speech, corpus.RATE)
        log_envelope = np.log(envelope[f0 > 0]).mean(0)
        return float(np.median(f0[f0 > 0])), log_envelope

    for name, own_pitch in ((MALE_READERS[1], (70, 130)), (FEMALE_READER, (230, 290))):
        speech = audio.load(shared(name), corpus.RATE, 1)[0][: 8 * corpus.RATE]
        shifted = shift_speech(speech, corpus.RATE, seed=1)
        assert abs(len(shifted) - len(speech)) < 0.01 * corpus.RATE
        before, envelope_before = pitch_and_envelope(speech)
        after, envelope_after = pitch_and_envelope(shifted)
        assert own_pitch[0] < before < own_pitch[1], (name, before)
        assert 0.95 * SHARED_SPEECH_HZ[0] < after < 1.05 * SHARED_SPEECH_HZ[1], (name, after)
        assert np.corrcoef(envelope_before, envelope_after)[0, 1] > 0.9
    _, rows = split_folder
    speakers = [s for row in rows for s in row["speakers"].split("+")]
    assert "reader-198-shifted" in speakers and "reader-198" in speakers
    for row in rows:
        assert "reader-198" not in row["speakers"] or row["label"] in (2, 3)


def _tracks(midi_path) -> list[tuple[set[int], int]]:
    """(programs, length in ticks) of each track of a MIDI file that plays notes."""
    from music21 import midi

    file = midi.MidiFile()
    file.open(str(midi_path))
    file.read()
    file.close()
    tracks = []
    for track in file.tracks:
        kinds = midi.ChannelVoiceMessages
        programs = {e.data for e in track.events if e.type == kinds.PROGRAM_CHANGE}
        if any(e.type == kinds.NOTE_ON for e in track.events):
            ticks = sum(e.time for e in track.events if isinstance(e, midi.DeltaTime))
            tracks.append((programs, ticks))
    return tracks


def test_lead_renders_give_the_melody_to_an_instrument_that_sings(tmp_path):
    """Bach chorales as the lead sources render them: the soprano alone on a violin, saxophone,
    flute, synth lead..., and, unless the piece is the melody alone, the other parts apart on
    instruments that are never voices, with the same tempo; without a lead, one file of every
    part."""
    from music21 import corpus as scores

    chorales = [p for p in scores.getComposer("bach") if p.suffix in corpus.SCORE_SUFFIXES][:12]
    alone = 0
    for seed, path in enumerate(chorales):
        folder = tmp_path / str(seed)
        folder.mkdir()
        melody, *accompaniment = corpus._score_to_midi(path, folder, seed, lead=True)
        ((programs, ticks),) = _tracks(melody)
        assert programs <= set(corpus.LEAD_PROGRAMS)
        alone += not accompaniment
        for file in accompaniment:
            others = _tracks(file)
            assert len(others) >= 3 and all(p <= set(corpus.ALLOWED_PROGRAMS) for p, _ in others)
            assert {t for _, t in others} == {ticks}  # the same length: played together
    assert 0 < alone < len(chorales)
    (plain,) = corpus._score_to_midi(chorales[0], tmp_path, 0)
    assert len(_tracks(plain)) >= 4
    assert all(p <= set(corpus.ALLOWED_PROGRAMS) for p, _ in _tracks(plain))


def test_vibrato_swings_the_pitch_as_a_singer_does():
    import librosa

    tone = np.sin(2 * np.pi * 440 * np.arange(3 * corpus.RATE) / corpus.RATE).astype(np.float32)
    for seed in range(3):
        swung = corpus._vibrato(tone, np.random.default_rng(seed))
        f0, voiced, _ = librosa.pyin(swung, fmin=300, fmax=600, sr=corpus.RATE, hop_length=256)
        semitones = 12 * np.log2(f0[voiced][8:-8] / 440)
        depth = (np.percentile(semitones, 98) - np.percentile(semitones, 2)) / 2
        assert corpus.VIBRATO_SEMITONES[0] * 0.7 < depth < corpus.VIBRATO_SEMITONES[1] * 1.3
        spectrum = np.abs(np.fft.rfft(semitones - semitones.mean()))
        hertz = np.fft.rfftfreq(len(semitones), 256 / corpus.RATE)[np.argmax(spectrum)]
        assert corpus.VIBRATO_HZ[0] - 0.5 < hertz < corpus.VIBRATO_HZ[1] + 0.5


def test_hard_negatives_add_the_lead_renders_and_music_in_a_room(pools):
    """Only when asked: without them the corpus is drawn as before they existed."""
    hard = corpus.dataclasses.replace(pools, hard_negatives=True)
    loudness = corpus._Loudness()
    for chosen, effects in ((pools, {""}), (hard, {"", "reverb"})):
        rows = [
            corpus._snippet(np.random.default_rng(i), 0, chosen, loudness)[1] for i in range(30)
        ]
        assert {row["effect"] for row in rows} == effects
    for split in corpus.SPLITS:
        plain = corpus.music_sources(split)
        added = [m for m in corpus.music_sources(split, hard_negatives=True) if m not in plain]
        assert added and all(isinstance(m, corpus.Renders) and m.lead for m in added)
        assert not any(isinstance(m, corpus.Renders) and m.lead for m in plain)


def test_one_voice_is_sometimes_doubled_or_reverberant_and_stays_one_voice(split_folder):
    _, rows = split_folder
    assert {row["effect"] for row in rows if row["label"] == 0} == {""}
    assert {row["effect"] for row in rows if row["label"] == 3} <= {"", "harmony", "unison"}
    assert {"double", "reverb"} <= {row["effect"] for row in rows if row["label"] in (1, 2)}


def _sung_pitches(voices):
    import librosa

    pitches = []
    for voice in voices:
        f0, voiced, _ = librosa.pyin(voice, fmin=65, fmax=1000, sr=corpus.RATE)
        pitches.append(np.where(voiced, f0, np.nan))
    return pitches


def test_voices_sing_one_melody_in_harmony():
    """Two readers made to sing together: where both sound, a third, fourth, fifth or sixth
    apart (up to octaves), each moved into its own range."""

    male = audio.load(shared(MALE_READERS[0]), corpus.RATE, 1)[0][: 3 * corpus.RATE]
    female = audio.load(shared(FEMALE_READER), corpus.RATE, 1)[0][: 3 * corpus.RATE]
    lead, second = sing_along([male, female], corpus.RATE, [corpus.MALE, corpus.FEMALE], 4)
    assert len(lead) == len(second) == 3 * corpus.RATE
    pitches = _sung_pitches([lead, second])
    both = ~np.isnan(pitches[0]) & ~np.isnan(pitches[1])
    assert both.sum() > 20
    semitones = 12 * np.log2(pitches[1][both] / pitches[0][both])
    interval = float(np.median(semitones)) % 12
    assert min(abs(interval - step) for step in (3, 4, 5, 7, 8, 9)) < 0.6, interval
    assert np.median(pitches[1][both]) > np.median(pitches[0][both])  # the female voice above


def test_voices_sing_in_unison_each_with_its_own_vibrato():
    """Two men on one melody in unison: the same notes where both sound, but not one copied
    contour, so only timbre and the small differences of real ensembles tell them apart."""
    import pyworld

    first, second = (
        audio.load(shared(reader), corpus.RATE, 1)[0][: 3 * corpus.RATE] for reader in MALE_READERS
    )
    voices = sing_along([first, second], corpus.RATE, [corpus.MALE] * 2, 5, UNISON_INTERVALS)
    lead, other = (  # WORLD's own pitch tracker: far steadier than pyin on WORLD's output
        pyworld.stonemask(
            v.astype(np.float64), *pyworld.dio(v.astype(np.float64), corpus.RATE), corpus.RATE
        )
        for v in voices
    )
    both = (lead > 0) & (other > 0)
    assert both.sum() > 100
    semitones = 12 * np.log2(other[both] / lead[both])
    offset = float(np.median(semitones))
    assert min(abs(offset - step) for step in UNISON_INTERVALS) < 0.3, offset
    # Its own vibrato and timing: a copy of the lead's contour deviates about 0.07 here.
    assert np.median(np.abs(semitones - offset)) > 0.15


def test_some_several_snippets_are_sung_together(split_folder):
    _, rows = split_folder
    for together in ("harmony", "unison"):
        sung = [row for row in rows if row["effect"] == together]
        assert sung and all(row["label"] == 3 for row in sung), together
