"""A development set of real singing, for measuring models on what users play them: sung voices.

Every voice in it is a real person singing: the Dagstuhl ChoirSet singers (close microphones),
vocadito, a Children's Song Dataset take, and UTAU voicebanks (one real singer each, syllable
strings sung at fixed pitches) read from bare git mirrors of their repositories. A voice's gender
is given only where its source states it; elsewhere the voice counts for voice/no-voice and for
"several", never for gender. None of these singers may ever be trained on.

Clips are built from each voice alone (a cappella), over real instrumental music with the voice
entering and leaving, and with a second, different singer over it. Each clip's windows (3 s every
second) are labelled from where each voice is actually sounding:

OUT/clips/NAME.flac      44.1 kHz mono
OUT/windows.csv          clip, start, end, label (no_voice, male, female, voice, several), singers
OUT/voices.csv           every voice: source, gender and where the gender is stated, licence
OUT/devset.json          counts per label and per source, and the digest of clips and labels
"""

from __future__ import annotations

import csv
import hashlib
import json
import logging
import zlib
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from vocalstream import audio
from vocalstream.errors import DataError
from vocalstream.files import atomic_folder, sha256
from vocalstream.train import mirrors

log = logging.getLogger("vocalstream")

RATE = audio.SEPARATION_RATE
HOP_SECONDS = 1.0
ACTIVE_SECONDS = 1.0  # a voice sounding this long in a window is in it
ABSENT_SECONDS = 0.25  # ...and this little, out of it; windows between are left unlabelled
VOICED_TOP_DB = 30.0  # a cappella recordings: sounding = within this of the loudest part
CLIP_SECONDS = 16.0
VOICE_TO_MUSIC_DB = (-3.0, 9.0)  # vocals sit on top in a produced song
SYLLABLE_FILES = 40  # voicebank recordings drawn per phrase set
UNKNOWN = "voice"  # one singer whose gender the source does not state


@dataclass(frozen=True)
class Voice:
    id: str
    source: str
    gender: str  # male, female or UNKNOWN
    gender_statement: str  # where the source says so, quoted
    licence: str


@dataclass(frozen=True)
class Voicebank:
    """An UTAU voicebank in a bare git mirror at MIRRORS/OWNER+NAME/repo."""

    repository: str  # owner/name on GitHub
    voice: Voice
    folder: str = ""  # only recordings under this folder


VOICEBANKS = (
    Voicebank(
        "oxygen-dioxide/misa-mochi-ja",
        Voice("misa-mochi", "utau", "female", 'readme.txt: "Sex: Woman"', "CC BY-NC-SA"),
    ),
    Voicebank(
        "oxygen-dioxide/t-meey-ja",
        Voice(
            "t-meey",
            "utau",
            UNKNOWN,
            'readme.txt: "Male (Transgender)": gender not used',
            "CC BY-NC",
        ),
    ),
    Voicebank(
        "oxygen-dioxide/scottpoid-ja",
        Voice("scottpoid", "utau", UNKNOWN, "not stated", "free use with credit (SCOTTPOID)"),
    ),
    Voicebank(
        "oxygen-dioxide/milk-en",
        Voice("milk", "utau", UNKNOWN, "not stated", "redistribution with credit (Milk, Xepheris)"),
    ),
    Voicebank(
        "oxygen-dioxide/dorodoro-ja-vcv",
        Voice("dorodoro", "utau", UNKNOWN, "not stated", "free use, credit asked (Cerenothoa)"),
    ),
    Voicebank(
        "ErithacusProject/ErithacusVB",
        Voice("erithacus", "utau", UNKNOWN, "not stated", "CC BY 4.0"),
    ),
    Voicebank(
        "AFLeartLey/bingzhizhuihen_vocal",
        Voice(
            "bingzhizhuihen",
            "utau",
            "male",
            'readme.md: "... permissions and supports from himself"',
            "none stated (evaluation only)",
        ),
    ),
    Voicebank(
        "oxygen-dioxide/tsukiyama-tomo-ja-rebirth",
        Voice(
            "tsukiyama-tomo",
            "utau",
            UNKNOWN,
            "provider's not stated (character male)",
            "redistribution with credit (HuroNomoe)",
        ),
    ),
    Voicebank("RyuuseiKang/ibuki", Voice("ibuki", "utau", UNKNOWN, "not stated", "GPL-2.0")),
    Voicebank(
        "Sr-Kaio/kaio-utau-VB", Voice("kaio", "utau", UNKNOWN, "not stated", "non-commercial")
    ),
    Voicebank("kgs233/UTAU-Yuki", Voice("yuki", "utau", UNKNOWN, "not stated", "public domain")),
    Voicebank(
        "oxygen-dioxide/hikari-one-crystal-ja",
        Voice(
            "hikari",
            "utau",
            UNKNOWN,
            "provider's not stated (character female)",
            "redistribution and edits with credit",
        ),
    ),
    Voicebank(
        "oxygen-dioxide/hitsuboku-kumi-chn",
        Voice(
            "hitsuboku-kumi",
            "utau",
            UNKNOWN,
            "provider's not stated (character female)",
            "commercial use allowed, credit",
        ),
    ),
    Voicebank(
        "oxygen-dioxide/viki-hopper-ja",
        Voice("viki-hopper", "utau", UNKNOWN, "not stated", "use outside synthesizers allowed"),
    ),
    Voicebank(
        "oxygen-dioxide/ALYS-DB-001-JA", Voice("alys", "utau", UNKNOWN, "not stated", "GPL-3.0")
    ),
    Voicebank(
        "oxygen-dioxide/Xihelv-Chinese-CVVC",
        Voice(
            "xihelv",
            "utau",
            UNKNOWN,
            "provider's not stated (character female)",
            "source files redistributable",
        ),
    ),
    Voicebank(
        "Holdmyapplejuice/KawaiinekoCV",
        Voice("kawaiineko", "utau", UNKNOWN, "not stated", "permissive (README)"),
    ),
)

CHOIRSET_LICENCE = "CC BY 4.0 (Rosenzweig et al., TISMIR 2020)"
# Larynx microphones: one singer each, with little of the others.
CHOIRSET_VOICES = {
    "DCS_SE_FullChoir_ScaleUpDown02_S1_LRX.wav": Voice(
        "choirset-s1", "choirset", "female", "ChoirSet: soprano", CHOIRSET_LICENCE
    ),
    "DCS_SE_FullChoir_ScaleUpDown02_B1_LRX.wav": Voice(
        "choirset-b1", "choirset", "male", "ChoirSet: bass", CHOIRSET_LICENCE
    ),
    "DCS_SE_FullChoir_ScaleUpDownPiano04_B2_LRX.wav": Voice(
        "choirset-b2", "choirset", "male", "ChoirSet: bass", CHOIRSET_LICENCE
    ),
}
VOCADITO = Voice("vocadito-s1", "vocadito", UNKNOWN, "not stated", "CC BY 4.0")
CSD = Voice(
    "csd-en001b",
    "csd",
    "female",
    "CSD paper: one professional female singer",
    "CC BY-NC-SA 4.0 (evaluation only)",
)
CSD_MIRROR = ("janw/drmeter", "tests/fixtures/csd_en001b.mp3")

# Real instrumental recordings from librosa's example data (licences in their .txt files).
MUSIC = (
    "librosa-data/Hungarian_Dance_number_5_-_Allegro_in_F_sharp_minor_(string_orchestra).ogg",
    "librosa-data/Kevin_MacLeod_-_P_I_Tchaikovsky_Dance_of_the_Sugar_Plum_Fairy.ogg",
    "librosa-data/Kevin_MacLeod_-_Vibe_Ace.ogg",
    "librosa-data/sorohanro_-_solo-trumpet-06.ogg",
)


@dataclass
class Sung:
    """A voice's audio [n] at RATE and where it is sounding (a boolean per sample)."""

    voice: Voice
    samples: np.ndarray
    sounding: np.ndarray


def _sounding(samples: np.ndarray) -> np.ndarray:
    import librosa

    sounding = np.zeros(len(samples), bool)
    for start, end in librosa.effects.split(samples, top_db=VOICED_TOP_DB):
        sounding[start:end] = True
    return sounding


def _sung(voice: Voice, samples: np.ndarray) -> Sung:
    samples = samples / max(1e-6, float(np.abs(samples).max())) * 0.5
    return Sung(voice, samples.astype(np.float32), _sounding(samples))


def _voicebank(mirror: Path, bank: Voicebank, rng: np.random.Generator) -> Sung:
    """SYLLABLE_FILES of the bank's recordings, trimmed to their sung part, in a row with short
    breaths between: phrases of one real singer."""
    files = mirrors.recordings(mirror, bank.folder)
    pieces = []
    for name in rng.choice(files, min(SYLLABLE_FILES, len(files)), replace=False):
        samples = mirrors.read_mono(mirror, name, RATE)
        sounding = np.flatnonzero(_sounding(samples))
        if len(sounding) > RATE // 4:
            pieces += [samples[sounding[0] : sounding[-1]], np.zeros(int(0.15 * RATE), np.float32)]
    return _sung(bank.voice, np.concatenate(pieces))


def _voices(data: Path, mirror_dir: Path | None, seed: int) -> list[Sung]:
    voices = []
    for name, voice in CHOIRSET_VOICES.items():
        voices.append(_sung(voice, audio.load(data / "choirset" / name, RATE, 1)[0]))
    vocadito = audio.load(data / "vocadito" / "vocadito_1.wav", RATE, 1)[0]
    voices.append(_sung(VOCADITO, vocadito))
    if mirror_dir is None:
        return voices
    mirror = mirrors.find(mirror_dir, CSD_MIRROR[0])
    if mirror is None:
        log.warning("no mirror of %s in %s: the CSD take is left out", CSD_MIRROR[0], mirror_dir)
    else:
        voices.append(_sung(CSD, mirrors.read_mono(mirror, CSD_MIRROR[1], RATE)))
    for bank in VOICEBANKS:
        mirror = mirrors.find(mirror_dir, bank.repository)
        if mirror is None:
            log.warning("no mirror of %s in %s: left out", bank.repository, mirror_dir)
            continue
        rng = np.random.default_rng([seed, zlib.crc32(bank.voice.id.encode())])
        voices.append(_voicebank(mirror, bank, rng))
    return voices


# ---------------------------------------------------------------------------------------------
# Clips and their labels


@dataclass
class Clip:
    name: str
    samples: np.ndarray
    parts: list[tuple[Voice, np.ndarray]]  # each voice and where it sounds in the clip


def _excerpt(sung: Sung, seconds: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """`seconds` of the voice from a random place (looped if it is shorter)."""
    length = int(seconds * RATE)
    repeats = -(-length // len(sung.samples)) + 1
    samples, sounding = np.tile(sung.samples, repeats), np.tile(sung.sounding, repeats)
    start = int(rng.integers(0, max(1, len(sung.samples) - 1)))
    return samples[start : start + length], sounding[start : start + length]


def _rms(samples: np.ndarray, where: np.ndarray | None = None) -> float:
    chosen = samples if where is None or not where.any() else samples[where]
    return float(np.sqrt(np.mean(chosen.astype(np.float64) ** 2)) + 1e-9)


def _clip(
    name: str,
    voices: list[tuple[Sung, float, float]],
    music: np.ndarray | None,
    rng: np.random.Generator,
) -> Clip:
    """CLIP_SECONDS of music (or silence) with each voice sounding from `enter` to `leave`
    seconds, the voices at equal level and together VOICE_TO_MUSIC_DB above the music."""
    length = int(CLIP_SECONDS * RATE)
    mix = np.zeros(length, np.float32)
    parts = []
    for sung, enter, leave in voices:
        begin, end = int(enter * RATE), int(leave * RATE)
        samples, sounding = _excerpt(sung, leave - enter, rng)
        placed, where = np.zeros(length, np.float32), np.zeros(length, bool)
        placed[begin:end], where[begin:end] = samples[: end - begin], sounding[: end - begin]
        mix += placed * np.float32(0.1 / _rms(placed, where))
        parts.append((sung.voice, where))
    if music is not None:
        voiced = np.any([where for _, where in parts], axis=0) if parts else None
        ratio = float(rng.uniform(*VOICE_TO_MUSIC_DB))
        level = _rms(mix, voiced) / 10 ** (ratio / 20) if parts else 0.1
        mix += music[:length] * np.float32(level / _rms(music[:length]))
    mix *= np.float32(0.9 / max(1e-6, float(np.abs(mix).max())))
    return Clip(name, mix, parts)


def window_labels(clip: Clip) -> list[tuple[float, float, str, str]]:
    """(start, end, label, singers) of each labelled 3-s window, one every HOP_SECONDS."""
    rows = []
    window = audio.WINDOW_SECONDS * RATE
    for start in range(0, len(clip.samples) - window + 1, int(HOP_SECONDS * RATE)):
        seconds = [
            (voice, where[start : start + window].sum() / RATE) for voice, where in clip.parts
        ]
        active = [voice for voice, sounding in seconds if sounding >= ACTIVE_SECONDS]
        if any(ABSENT_SECONDS < sounding < ACTIVE_SECONDS for _, sounding in seconds):
            continue  # a voice half in, half out: no fair label
        if len(active) > 1:
            label = "several"
        elif active:
            label = active[0].gender
        else:
            label = "no_voice"
        rows.append((start / RATE, (start + window) / RATE, label, "+".join(v.id for v in active)))
    return rows


def _clips(voices: list[Sung], music: list[np.ndarray], seed: int) -> list[Clip]:
    clips = []
    for index, sung in enumerate(voices):
        rng = np.random.default_rng([seed, zlib.crc32(sung.voice.id.encode())])
        other = voices[(index + 1 + int(rng.integers(len(voices) - 1))) % len(voices)]
        piece = music[index % len(music)]
        length = int(CLIP_SECONDS * RATE)
        piece = np.tile(piece, -(-2 * length // len(piece)))  # a short loop repeats
        start = int(rng.integers(0, len(piece) - length))
        backing = piece[start : start + length]
        clips += [
            _clip(f"{sung.voice.id}-a-cappella", [(sung, 0.0, CLIP_SECONDS)], None, rng),
            _clip(f"{sung.voice.id}-over-music", [(sung, 4.0, 12.0)], backing, rng),
            _clip(
                f"{sung.voice.id}-with-{other.voice.id}",
                [(sung, 0.0, CLIP_SECONDS), (other, 5.0, 13.0)],
                backing,
                rng,
            ),
        ]
    return clips


def build_dev(out: Path, data: Path, mirrors: Path | None = None, seed: int = 0) -> dict:
    """Write the development set into `out` (new or empty); it appears whole or not at all.
    data: the folder of real recordings beside the checkout (../shared/data); mirrors: bare git
    mirrors of the voicebank repositories (OWNER+NAME/repo), or None for the shared data alone."""
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise DataError(f"{out}: already exists and is not an empty folder")
    for relative in ("choirset", "vocadito", *MUSIC):
        if not (data / relative).exists():
            raise DataError(f"{data}: has no {relative}; give the shared real-audio folder")
    voices = _voices(data, mirrors, seed)
    music = [audio.load(data / relative, RATE, 1)[0] for relative in MUSIC]
    clips = _clips(voices, music, seed)
    with atomic_folder(out) as scratch:
        (scratch / "clips").mkdir()
        rows = []
        for clip in clips:
            sf.write(scratch / "clips" / f"{clip.name}.flac", clip.samples, RATE, subtype="PCM_16")
            for start, end, label, singers in window_labels(clip):
                rows.append(
                    {
                        "clip": f"clips/{clip.name}.flac",
                        "start": start,
                        "end": end,
                        "label": label,
                        "singers": singers,
                    }
                )
        with (scratch / "windows.csv").open("w", newline="") as file:
            writer = csv.DictWriter(file, ("clip", "start", "end", "label", "singers"))
            writer.writeheader()
            writer.writerows(rows)
        with (scratch / "voices.csv").open("w", newline="") as file:
            fields = ("id", "source", "gender", "gender_statement", "licence")
            writer = csv.DictWriter(file, fields)
            writer.writeheader()
            writer.writerows({f: getattr(s.voice, f) for f in fields} for s in voices)
        summary = {
            "seed": seed,
            "voices": len(voices),
            "voices_by_gender": dict(Counter(s.voice.gender for s in voices)),
            "clips": len(clips),
            "windows": len(rows),
            "windows_by_label": dict(sorted(Counter(r["label"] for r in rows).items())),
            "digest": digest(scratch),
        }
        (scratch / "devset.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary


def digest(folder: Path) -> str:
    """sha256 of a development set's clips and labels: two sets scored alike hold the same."""
    hashed = hashlib.sha256()
    for path in [*sorted((folder / "clips").glob("*.flac")), folder / "windows.csv"]:
        hashed.update(f"{path.relative_to(folder)}\0{sha256(path)}\n".encode())
    return hashed.hexdigest()


def read_windows(folder: Path) -> list[dict]:
    """The labelled windows of a development set, each with its clip's full path."""
    path = folder / "windows.csv"
    if not path.is_file():
        raise DataError(f"{folder}: not a development set (no windows.csv)")
    with path.open(newline="") as file:
        rows = list(csv.DictReader(file))
    for row in rows:
        row["clip"] = folder / row["clip"]
        row["start"], row["end"] = float(row["start"]), float(row["end"])
    return rows
