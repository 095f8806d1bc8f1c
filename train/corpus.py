"""A labelled corpus of 3-s snippets mixed from real open recordings, for the default model.

Voices: studio phone prompts (asterisk), acted game dialogue (Fish Fillets), letters, syllables
and words read aloud (KLettres, KTuberling), each of these real speakers also turned into a singer
by the WORLD vocoder (train/resing.py: their own timbre on generated melodies, half of them in
the range both genders sing; some several snippets sung together, in harmony or in unison) and
into a speaker at a pitch either gender speaks at (their words and timbre, the pitch moved), so
that pitch alone never tells a gender, and a minority of synthetic singing (festival). A
speaker whose gender neither the source states nor pitch tells is label ONE_VOICE.
Music: instrumental game soundtracks and music21 scores rendered by fluidsynth with three
different soundfonts. With hard negatives, also scores whose melody an instrument that sings
(violin, saxophone, flute, synth lead...) plays with vibrato, alone or over the other parts, the
music most easily mistaken for a voice, and music ringing in a synthetic room. Every speaker
and every music source belongs to exactly one split, so validation and the held-out test hear
voices and music never seen in training.

Classes, as the seeds: 0 music alone, 1 one male voice, 2 one female voice, 3 two to four
different voices at once (later voices enter at random offsets). Voices sit -5..+15 dB above the
music by loudness; some snippets are voices alone and some music is very quiet. Every snippet is
loudness-normalised (ITU-R BS.1770, pyloudnorm). The corpus is a function of the seed: the same
seed and sources give the same files.

OUT/{train,validation,test}/N.mp3 + train_label.txt   the seeds' layout
OUT/{train,validation,test}/manifest.csv              path,label,group and where each part came from
OUT/corpus.json                                       seed, counts per class, source and gender
OUT/LICENSES/                                         the copyright file of every package used
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import importlib.util
import json
import logging
import math
import multiprocessing
import shutil
import tempfile
import zlib
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from vocalstream import audio
from vocalstream.errors import AudioError, DataError
from vocalstream.files import atomic_folder, atomic_path, cache_dir
from vocalstream.models.labels import ONE_VOICE, TRAINING_LABELS
from vocalstream.train import fetch
from vocalstream.train.data import LABELS_FILE, Example, read_manifest
from vocalstream.train.resing import (
    HARMONY_INTERVALS,
    UNISON_INTERVALS,
    VIBRATO_HZ,
    resing,
    shift_speech,
    sing_along,
)

_log = logging.getLogger("vocalstream").info
RATE = audio.CLASSIFIER_RATE  # nothing above 11 kHz reaches the classifier
SNIPPET_SAMPLES = audio.WINDOW_SAMPLES
SPLITS = ("train", "validation", "test")
MALE, FEMALE = "male", "female"
UNSTATED = "voice"  # a voice whose gender no source states and pitch cannot tell: never a gender

VOICE_TO_MUSIC_DB = (-5.0, 15.0)
LOUDNESS_LUFS = (-28.0, -14.0)
QUIET_MUSIC_LUFS = (-48.0, -36.0)
QUIET_MUSIC_SHARE = 0.15  # of class 0
VOICE_ONLY_SHARE = 0.12  # of classes 1-3
SYNTHETIC_SHARE = 0.12  # of voices, where the split has a synthetic voice of that gender
RESUNG_SHARE = 0.5  # of real voices: the speaker resynthesised singing instead of speaking
SHIFTED_SHARE = 0.5  # of the rest: the speech with its pitch moved where both genders speak
WORLD_INPUT_SECONDS = 150  # of each speaker's speech turned into singing or shifted
EFFECT_SHARE = 0.2  # of classes 1-2: the one voice doubled or with reverb, as produced songs
# are; of class 0, with hard negatives: the music with reverb
DOUBLING_MS = (12.0, 40.0)
REVERB_SECONDS = (0.4, 2.0)  # RT60 of a synthetic room
SPEED_RANGE = (0.95, 1.05)  # resampling: pitch and tempo together, under a semitone
LATEST_ENTRY_SECONDS = 1.5  # in class 3, later voices enter by then, so all overlap
UNSTATED_SHARE = 0.25  # of one-voice snippets and of several, where a split has such voices
SUNG_TOGETHER_SHARE = 0.5  # of several: the voices resung by WORLD singing one melody together
UNISON_SHARE = 0.5  # of those: on the same notes (or octaves apart), the rest in harmony
SILENT_LUFS = -60.0  # an excerpt quieter than this is drawn again
SONGS_PER_VOICE = 8  # of 4 phrases each, about 2 minutes per synthetic voice
VOICE_CACHE = "voices-3"  # renamed whenever a voice's recordings change, so none is reused stale
MAX_VOICE_SECONDS = 20 * 60  # of each speaker's recordings, after silences are shortened
GAP_SECONDS = 0.2  # the pause left between a speaker's phrases
PEAK = 0.98

REQUIRED_PROGRAMS = (
    ("apt-get", "fetch Debian packages", "apt"),
    ("dpkg-deb", "unpack Debian packages", "dpkg"),
    ("ffmpeg", "decode G.722 and GSM recordings", "ffmpeg"),
    ("fluidsynth", "render scores", "fluidsynth"),
    ("text2wave", "sing with festival voices", "festival"),
)


@dataclass(frozen=True)
class Voice:
    """One speaker. Recordings come from files matching `pattern` in a Debian package; a
    synthetic voice is a festival voice (`pattern` is its name) singing generated melodies; a
    resung voice is the real speaker `sung_from` made to sing by the WORLD vocoder, a shifted
    voice the real speaker `shifted_from` speaking at a pitch either gender speaks at. A voice of
    gender UNSTATED teaches one voice (label ONE_VOICE) and several, never a gender."""

    id: str
    gender: str
    source: str
    split: str
    package: str
    pattern: str
    synthetic: bool = False
    sung_from: str = ""
    shifted_from: str = ""
    excluded: tuple[str, ...] = ()  # the package's files left out, by name without suffix

    @property
    def speaker(self) -> str:
        return self.sung_from or self.shifted_from or self.id


# Asterisk's sound packs keep, beside each speaker's prompts, tones and a 16-s recording of
# screeching monkeys (tt-monkeys; tt-monkeysintro is speech): not the speaker's voice.
NON_SPEECH_PROMPTS = ("tt-monkeys", "beep", "beeperr", "ascending-2tone", "descending-2tone")


def _asterisk(id: str, gender: str, split: str, language: str, folder: str) -> Voice:
    pattern = f"usr/share/asterisk/sounds/{folder}/**/*.g722"
    package = f"asterisk-core-sounds-{language}-g722"
    return Voice(id, gender, "asterisk", split, package, pattern, excluded=NON_SPEECH_PROMPTS)


def _fillets(id: str, gender: str, split: str, language: str, letter: str) -> Voice:
    pattern = f"usr/share/games/fillets-ng/sound/**/*-{letter}-*.ogg"
    return Voice(id, gender, "fillets", split, f"fillets-ng-data-{language}", pattern)


def _klettres(gender: str, split: str, language: str, folder: str = "") -> Voice:
    """One language's letters and syllables; in `folder` alone where the language has a speaker
    for each (German)."""
    pattern = f"usr/share/klettres/{language}/{folder or '**'}/*.ogg"
    id = f"klettres-{language}" + (f"-{folder}" if folder else "")
    return Voice(id, gender, "klettres", split, "klettres-data", pattern)


def _ktuberling(gender: str, split: str, language: str, suffix: str = "ogg") -> Voice:
    pattern = f"usr/share/ktuberling/sounds/{language}/*.{suffix}"
    return Voice(f"ktuberling-{language}", gender, "ktuberling", split, "ktuberling-data", pattern)


def _prompts(id: str, gender: str, split: str, package: str, folder: str, suffix: str) -> Voice:
    """Asterisk voice prompts packaged apart from asterisk's core sounds."""
    pattern = f"usr/share/asterisk/sounds/{folder}/**/*.{suffix}"
    return Voice(id, gender, "asterisk", split, package, pattern, excluded=NON_SPEECH_PROMPTS)


def _festival(id: str, gender: str, split: str, package: str, name: str) -> Voice:
    return Voice(id, gender, "festival", split, package, name, synthetic=True)


# Genders: asterisk's are credited in its folder names or credits (Armelle Desjardins, July E.
# Jimenez, Paola Dal Zot's it_IT_f_Menardi); the rest are judged by pitch, median F0 under 165 Hz
# male and over 190 Hz female (notes in docs/MODEL_CARD.md), and UNSTATED between. Fish Fillets'
# small fish ("-m-") speaks at a median 269 Hz. A language whose KLettres and KTuberling voices
# may be one person keeps both in one split (lt, uk; KTuberling's nds, ar and nb are left out).
VOICES = (
    _asterisk("asterisk-en-allison", FEMALE, "train", "en", "en_US_f_Allison"),
    _fillets("fillets-cs-big-fish", MALE, "train", "cs", "v"),
    _fillets("fillets-cs-small-fish", FEMALE, "train", "cs", "m"),
    _klettres(MALE, "train", "da"),
    _klettres(MALE, "train", "en"),
    _klettres(MALE, "train", "fr"),
    _klettres(MALE, "train", "ml"),
    _klettres(FEMALE, "train", "cs"),
    _klettres(FEMALE, "train", "en_GB"),
    _prompts("asterisk-fr-armelle", FEMALE, "train", "asterisk-prompt-fr-armelle", "fr", "gsm"),
    _prompts(
        "asterisk-it-menardi",
        FEMALE,
        "train",
        "asterisk-prompt-it-menardi-wav",
        "it_IT_f_Menardi",
        "wav",
    ),
    _klettres(FEMALE, "train", "de", "alpha"),
    _klettres(MALE, "train", "de", "syllab"),
    _klettres(FEMALE, "train", "it"),
    _klettres(FEMALE, "train", "ru"),
    _klettres(FEMALE, "train", "nl"),
    _klettres(UNSTATED, "train", "es"),  # 185 Hz
    _klettres(UNSTATED, "train", "tn"),  # 340 Hz: a woman or a child
    _ktuberling(MALE, "train", "wa"),
    _ktuberling(MALE, "train", "de"),
    _ktuberling(FEMALE, "train", "gl"),
    _ktuberling(UNSTATED, "train", "sl"),  # 165 Hz
    _ktuberling(MALE, "train", "ga", "wav"),
    _ktuberling(MALE, "train", "es", "wav"),
    _ktuberling(FEMALE, "train", "it", "wav"),
    _ktuberling(FEMALE, "train", "ro", "wav"),
    _ktuberling(FEMALE, "train", "sv", "wav"),
    _ktuberling(FEMALE, "train", "sr"),
    _ktuberling(UNSTATED, "train", "nl", "wav"),  # 335 Hz: a woman or a child
    _ktuberling(UNSTATED, "train", "fi", "wav"),  # 425 Hz: a child?
    Voice(
        "fillets-en-elk",
        MALE,
        "fillets",
        "train",
        "fillets-ng-data",
        "usr/share/games/fillets-ng/sound/elk/en/deu-l-*.ogg",
    ),
    _festival("festival-kal", MALE, "train", "festvox-kallpc16k", "kal_diphone"),
    _festival("festival-lp", FEMALE, "train", "festvox-italp16k", "lp_diphone"),
    _asterisk("asterisk-ru", FEMALE, "validation", "ru", "ru_RU_f_IvrvoiceRU"),
    _klettres(MALE, "validation", "hu"),
    _klettres(MALE, "validation", "lt"),
    _klettres(FEMALE, "validation", "uk"),
    _klettres(UNSTATED, "validation", "he"),  # 172 Hz
    _ktuberling(MALE, "validation", "lt"),
    _ktuberling(FEMALE, "validation", "uk"),
    _prompts("asterisk-es-july", FEMALE, "validation", "asterisk-prompt-es-co", "es", "gsm"),
    _asterisk("asterisk-it-carlo", MALE, "test", "it", "it_IT_m_Carlo"),
    _asterisk("asterisk-fr-june", FEMALE, "test", "fr", "fr_CA_f_June"),
    _fillets("fillets-nl-big-fish", MALE, "test", "nl", "v"),
    _fillets("fillets-nl-small-fish", FEMALE, "test", "nl", "m"),
    _klettres(MALE, "test", "nds"),
    _klettres(FEMALE, "test", "ar"),
    _klettres(FEMALE, "test", "nb"),
    _festival("festival-ked", MALE, "test", "festvox-kdlpc16k", "ked_diphone"),
    _festival("festival-czech-dita", FEMALE, "test", "festvox-czech-dita", "czech_dita"),
)
# WORLD moves a voice within or between gender ranges, so only speakers of stated gender
_RESYNTHESISED = [v for v in VOICES if not v.synthetic and v.gender != UNSTATED]
RESUNG = {
    voice.id: dataclasses.replace(voice, id=f"{voice.id}-sung", source="world", sung_from=voice.id)
    for voice in _RESYNTHESISED
}
SHIFTED = {
    voice.id: dataclasses.replace(
        voice, id=f"{voice.id}-shifted", source="world-speech", shifted_from=voice.id
    )
    for voice in _RESYNTHESISED
}


@dataclass(frozen=True)
class Tracks:
    """Instrumental recordings in a Debian package; each file is one music source."""

    id: str
    split: str
    package: str
    pattern: str
    excluded: tuple[str, ...] = ()  # the package's files left out, by name without suffix


@dataclass(frozen=True)
class Renders:
    """music21 corpus scores by `composers`, rendered with a soundfont; each score is one music
    source. Every part gets an instrument drawn from ALLOWED_PROGRAMS, never a voice. With
    `lead`, the top part is a melody played by an instrument that sings (LEAD_PROGRAMS), with a
    singer's vibrato, over the others or alone: class 0's hardest negatives."""

    id: str
    split: str
    composers: tuple[str, ...]
    package: str  # the soundfont's Debian package
    soundfont: str
    pieces: int
    lead: bool = False


# General MIDI programs (0-based) of pitched instruments: pianos to strings and ensembles (0-51),
# brass, reeds and pipes (56-79). 52-54 are choir aahs, voice oohs and synth voice; the synth
# leads and pads above 79 include voice-like sounds too.
ALLOWED_PROGRAMS = tuple(range(0, 52)) + tuple(range(56, 80))
# Instruments whose melodies a separator and a classifier mistake for singing: violin, viola and
# cello; trumpet, trombone, muted trumpet and horn; saxophones, oboe, cor anglais, bassoon and
# clarinet; flutes and pipes; synth leads and pads. Never 85 (voice lead), 91 (choir pad) or 94
# (halo pad), which soundfonts make from sung samples.
LEAD_PROGRAMS = (
    (40, 41, 42, 56, 57, 59, 60)
    + tuple(range(64, 72))
    + tuple(range(72, 80))
    + (80, 81, 82, 83, 84, 86, 87, 88, 89, 90, 92, 93, 95)
)
LEAD_ALONE_SHARE = 0.3  # of lead pieces: the melody with nothing under it
LEAD_DB = (0.0, 8.0)  # the melody above the other parts, by RMS
VIBRATO_SEMITONES = (0.2, 0.6)  # the melody's vibrato depth, each way, at resing's VIBRATO_HZ

RENDER_CPU_SECONDS = 20  # a few scores make MIDI that fluidsynth renders for hours
SCORE_SUFFIXES = (".mxl", ".xml", ".krn", ".abc")  # not the corpus's analyses (.rntxt, .txt)

# Game tracks whose spleeter vocal stem came within 10 dB of the mix in a 6-window screen: choirs
# or voice-like synths the labels could not vouch for.
MUSIC = (
    Tracks(
        "warzone2100",
        "train",
        "warzone2100-music",
        "usr/share/games/warzone2100/music/**/*.opus",
        excluded=("track17", "menu_enhanced", "track13", "track3_enhanced"),
    ),
    Renders(
        "bach-timgm6mb",
        "train",
        ("bach",),
        "timgm6mb-soundfont",
        "usr/share/sounds/sf2/TimGM6mb.sf2",
        pieces=60,
    ),
    Renders(
        "bach-leads-timgm6mb",
        "train",
        ("bach",),
        "timgm6mb-soundfont",
        "usr/share/sounds/sf2/TimGM6mb.sf2",
        pieces=40,
        lead=True,
    ),
    Tracks("hyperrogue", "validation", "hyperrogue-music", "usr/share/hyperrogue/music/*.ogg"),
    Renders(
        "trecento-josquin-fluidr3",
        "validation",
        ("trecento", "josquin"),
        "fluidr3mono-gm-soundfont",
        "usr/share/fluidr3mono-gm-soundfont/FluidR3Mono_GM.sf3",
        pieces=30,
    ),
    Renders(
        "trecento-josquin-leads-fluidr3",
        "validation",
        ("trecento", "josquin"),
        "fluidr3mono-gm-soundfont",
        "usr/share/fluidr3mono-gm-soundfont/FluidR3Mono_GM.sf3",
        pieces=20,
        lead=True,
    ),
    Tracks("planetblupi", "test", "planetblupi-music-ogg", "usr/share/planetblupi/music/*.ogg"),
    Tracks("singularity", "test", "singularity-music", "usr/share/games/singularity/music/*.ogg"),
    Tracks("opsound", "test", "asterisk-moh-opsound-g722", "usr/share/asterisk/moh/**/*.g722"),
    Renders(
        "renaissance-musescore",
        "test",
        ("palestrina", "monteverdi"),
        "musescore-general-soundfont-small",
        "usr/share/sounds/sf3/MuseScore_General_Lite.sf3",
        pieces=30,
    ),
    Renders(
        "renaissance-leads-musescore",
        "test",
        ("palestrina", "monteverdi"),
        "musescore-general-soundfont-small",
        "usr/share/sounds/sf3/MuseScore_General_Lite.sf3",
        pieces=20,
        lead=True,
    ),
)


# ---------------------------------------------------------------------------------------------
# Preparing the material: each speaker as one long recording, each music source as files.


RAW_FORMATS = {".g722": "g722", ".gsm": "gsm"}  # telephone codecs without a container


def _decode_raw(paths: list[Path]) -> np.ndarray:
    """G.722 or GSM files decoded by ffmpeg, concatenated, at RATE."""
    ffmpeg = fetch.require_program("ffmpeg", "decode G.722 and GSM recordings", "ffmpeg")
    form = RAW_FORMATS[paths[0].suffix]
    parts = []
    for start in range(0, len(paths), 200):  # raw bitstreams: files concatenate
        joined = "concat:" + "|".join(str(path) for path in paths[start : start + 200])
        command = [
            ffmpeg,
            "-nostdin",
            "-v",
            "error",
            "-f",
            form,
            "-i",
            joined,
            "-ac",
            "1",
            "-ar",
            str(RATE),
            "-f",
            "f32le",
            "-",
        ]
        parts.append(np.frombuffer(fetch.run(command, f"decoding {form}"), dtype=np.float32))
    return np.concatenate(parts)


def _decode(paths: list[Path], log: Callable[[str], None]) -> np.ndarray:
    if paths[0].suffix in RAW_FORMATS:
        return _decode_raw(paths)
    parts = []
    for path in paths:
        try:
            parts.append(audio.load(path, RATE, 1)[0])
        except AudioError as error:  # a package may hold an empty or broken recording
            log(f"skipped {error}")
    return np.concatenate(parts)


def _shorten_silences(waveform: np.ndarray) -> np.ndarray:
    """Phrases joined with GAP_SECONDS between them, so a drawn excerpt is mostly speech."""
    import librosa

    intervals = librosa.effects.split(waveform, top_db=35, frame_length=1024, hop_length=256)
    gap = np.zeros(int(GAP_SECONDS * RATE), dtype=np.float32)
    pieces = []
    for start, end in intervals:
        if end - start >= RATE // 10:  # clicks and breaths alone are not speech
            pieces += [waveform[start:end], gap]
    if not pieces:
        raise DataError("a voice's recordings hold no audible speech")
    return np.concatenate(pieces)[: MAX_VOICE_SECONDS * RATE].astype(np.float32)


def _melody_xml(rng: np.random.Generator, gender: str, phrases: int = 4) -> str:
    """A festival SINGING document: random phrases on a major scale in the gender's range.
    festival sings an octave below the written note, so notes are written an octave up."""
    low, high = (48, 67) if gender == MALE else (57, 77)  # sung C3-G4, A3-F5 (MIDI numbers)
    scale = [n for n in range(low, high + 1) if (n - low) % 12 in (0, 2, 4, 5, 7, 9, 11)]
    syllables = ("la", "na", "da", "lo", "mi", "no", "ta", "so", "ne", "ma", "oh", "ah")
    names = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")
    doctype = '"-//SINGING//DTD SINGING mark up//EN" "Singing.v0_1.dtd" []'
    lines = [
        '<?xml version="1.0"?>',
        f"<!DOCTYPE SINGING PUBLIC {doctype}>",
        f'<SINGING BPM="{int(rng.integers(70, 140))}">',
    ]
    for _ in range(phrases):
        position = int(rng.integers(len(scale)))
        for _ in range(int(rng.integers(5, 12))):
            position = int(np.clip(position + rng.integers(-2, 3), 0, len(scale) - 1))
            note = scale[position] + 12
            beats = float(rng.choice([0.5, 0.5, 1.0, 1.0, 1.5, 2.0]))
            name = f"{names[note % 12]}{note // 12 - 1}"
            syllable = syllables[int(rng.integers(len(syllables)))]
            lines.append(
                f'<DURATION BEATS="{beats}"><PITCH NOTE="{name}">{syllable}</PITCH></DURATION>'
            )
        lines.append(f'<REST BEATS="{float(rng.choice([0.5, 1.0]))}"></REST>')
    lines.append("</SINGING>")
    return "\n".join(lines) + "\n"


def _sing(voice: Voice) -> np.ndarray:
    text2wave = fetch.require_program("text2wave", "sing with festival voices", "festival")
    rng = np.random.default_rng(zlib.crc32(voice.id.encode()))
    songs, failures = [], []
    # Short songs, and a crash costs one song: festival's diphone voices crash (segfault) on
    # some melodies, more often on long ones.
    for _ in range(3 * SONGS_PER_VOICE):
        if len(songs) == SONGS_PER_VOICE:
            break
        with tempfile.TemporaryDirectory() as scratch:
            song, sung = Path(scratch) / "song.xml", Path(scratch) / "song.wav"
            song.write_text(_melody_xml(rng, voice.gender))
            command = [
                text2wave,
                "-mode",
                "singing",
                "-eval",
                f"(voice_{voice.pattern})",
                str(song),
                "-o",
                str(sung),
            ]
            try:
                fetch.run(command, f"festival voice {voice.pattern}", timeout=120)
                songs.append(audio.load(sung, RATE, 1)[0])
            except (DataError, AudioError) as error:
                failures.append(str(error))
    if len(songs) < SONGS_PER_VOICE:
        raise DataError(f"{failures[-1]} (is the voice installed? apt-get install {voice.package})")
    return np.concatenate(songs)


class Material:
    """Fetches and prepares sources on first use, caching the results under `cache`."""

    def __init__(self, cache: Path, log: Callable[[str], None] = _log):
        self.cache = cache
        self.log = log
        self.packages: set[str] = set()

    def package(self, name: str) -> Path:
        root = fetch.debian_package(name, self.cache)
        self.packages.add(name)
        return root

    def voice(self, voice: Voice) -> Path:
        """The speaker's recordings as one FLAC at RATE, silences shortened."""
        path = self.cache / VOICE_CACHE / f"{voice.id}.flac"
        if path.is_file():
            if not voice.synthetic:
                self.packages.add(voice.package)
            return path
        self.log(f"preparing voice {voice.id}")
        if voice.sung_from or voice.shifted_from:
            spoken = self.voice(next(v for v in VOICES if v.id == voice.speaker))
            speech = audio.load(spoken, RATE, 1)[0][: WORLD_INPUT_SECONDS * RATE]
            seed = zlib.crc32(voice.id.encode())
            if voice.sung_from:
                waveform = resing(speech, RATE, voice.gender, seed)
            else:
                waveform = shift_speech(speech, RATE, seed)
        elif voice.synthetic:
            waveform = _sing(voice)
        else:
            waveform = _decode(self.voice_files(voice), self.log)
        _write_flac(path, _shorten_silences(waveform))
        return path

    def voice_files(self, voice: Voice) -> list[Path]:
        """The recordings of a speaker from a package."""
        return fetch.package_files(self.package(voice.package), voice.pattern, voice.excluded)

    def tracks(self, music: Tracks | Renders) -> list[Path]:
        if isinstance(music, Renders):
            return self._renders(music)
        files = fetch.package_files(self.package(music.package), music.pattern, music.excluded)
        if files[0].suffix != ".g722":
            return files
        decoded = []
        for file in files:
            path = self.cache / "music" / music.id / f"{file.stem}.flac"
            if not path.is_file():
                _write_flac(path, _decode_raw([file]))
            decoded.append(path)
        return decoded

    def soundfont(self, music: Renders) -> Path:
        return fetch.package_files(self.package(music.package), music.soundfont)[0]

    def _renders(self, music: Renders) -> list[Path]:
        folder = self.cache / "music" / music.id
        soundfont = self.soundfont(music)
        if (folder / fetch.COMPLETE).is_file():
            return sorted(folder.glob("*.flac"))
        self.log(f"rendering {music.pieces} scores for {music.id}")
        folder.mkdir(parents=True, exist_ok=True)
        rendered = 0
        for score_path in score_order(music):
            if rendered == music.pieces:
                break
            path = folder / f"{score_name(score_path)}.flac"
            if not path.is_file():
                try:
                    waveform = render_score(score_path, soundfont, music.lead)
                except Exception as error:  # music21 rejects some corpus files; use others
                    self.log(f"skipped score {path.stem}: {type(error).__name__}: {error}")
                    continue
                _write_flac(path, waveform)
            rendered += 1
        (folder / fetch.COMPLETE).write_text("")
        return sorted(folder.glob("*.flac"))


def score_order(music: Renders) -> list[Path]:
    """The music21 corpus scores of `music`'s composers, in the order its renders try them:
    spread over the corpus, every step-th score, then the ones between."""
    from music21 import corpus  # an optional dependency, checked by check_requirements

    scores = sorted(
        path
        for composer in music.composers
        for path in corpus.getComposer(composer)
        if path.suffix in SCORE_SUFFIXES
    )
    step = max(1, len(scores) // music.pieces)
    return [path for offset in range(step) for path in scores[offset::step]]


def score_name(score_path: Path) -> str:
    """A music21 corpus score's name in the corpus (and its renders' seed)."""
    return f"{score_path.parent.name}-{score_path.stem}".replace(".", "_")


def render_score(
    score_path: Path, soundfont: Path, lead: bool = False, vibrato: bool = True
) -> np.ndarray:
    """A music21 score rendered by fluidsynth at RATE as Renders do: its instruments drawn
    (_score_to_midi) and, with `lead`, its melody given vibrato (or not, to measure what the
    vibrato does) and mixed over the other parts. The draws are seeded by the score's name."""
    fluidsynth = fetch.require_program("fluidsynth", "render scores", "fluidsynth")
    seed = zlib.crc32(score_name(score_path).encode())
    with tempfile.TemporaryDirectory() as scratch:
        midis = _score_to_midi(score_path, Path(scratch), seed, lead)
        waveforms = [_render(fluidsynth, soundfont, midi) for midi in midis]
    rng = np.random.default_rng([seed, 1])  # apart from the instruments' draws
    if lead and vibrato:
        waveforms[0] = _vibrato(waveforms[0], rng)
    return _mixed(waveforms, rng)


def _render(fluidsynth: str, soundfont: Path, midi: Path) -> np.ndarray:
    wav = midi.with_suffix(".wav")
    fetch.run(
        [fluidsynth, "-ni", "-q", "-F", str(wav), "-r", str(RATE), str(soundfont), str(midi)],
        f"rendering {midi.name}",
        cpu_seconds=RENDER_CPU_SECONDS,  # not wall time: what is cut must not depend on load
    )
    return audio.load(wav, RATE, 1)[0]


def _score_to_midi(score_path: Path, folder: Path, seed: int, lead: bool = False) -> list[Path]:
    """The score as MIDI files in `folder`, each part on an instrument drawn from
    ALLOWED_PROGRAMS: one file, or with `lead` its top part alone on one from LEAD_PROGRAMS and,
    unless the piece is that melody alone (LEAD_ALONE_SHARE), a second file of the other parts.
    Every file keeps the score's tempo, so the two play together."""
    from music21 import converter, instrument, midi, stream

    rng = np.random.default_rng(seed)
    score = converter.parse(score_path)
    if isinstance(score, stream.Opus):  # a collection: its first piece
        score = score.scores[0]
    for index, part in enumerate(score.parts):
        for old in list(part.recurse().getElementsByClass(instrument.Instrument)):
            old.activeSite.remove(old)
        player = instrument.Instrument()
        singing = lead and index == 0
        player.midiProgram = int(rng.choice(LEAD_PROGRAMS if singing else ALLOWED_PROGRAMS))
        part.insert(0, player)
    whole = folder / "score.mid"
    score.write("midi", fp=whole)
    if not lead:
        return [whole]
    file = midi.MidiFile()
    file.open(str(whole))
    file.read()
    file.close()
    note_on = midi.ChannelVoiceMessages.NOTE_ON
    playing = [t for t in file.tracks if any(e.type == note_on for e in t.events)]
    sides = [("melody", playing[:1])]
    if len(playing) > 1 and rng.random() >= LEAD_ALONE_SHARE:
        sides.append(("accompaniment", playing[1:]))
    paths = []
    for side, kept in sides:
        split = midi.MidiFile()
        split.format, split.ticksPerQuarterNote = file.format, file.ticksPerQuarterNote
        split.tracks = [t for t in file.tracks if t not in playing or t in kept]
        paths.append(folder / f"{side}.mid")
        split.open(str(paths[-1]), "wb")
        split.write()
        split.close()
    return paths


def _vibrato(waveform: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The waveform read through a delay that swings at VIBRATO_HZ, so its pitch swings by up to
    VIBRATO_SEMITONES: what makes a separator take a melody for a voice."""
    rate, depth = (float(rng.uniform(*bounds)) for bounds in (VIBRATO_HZ, VIBRATO_SEMITONES))
    swing = (2 ** (depth / 12) - 1) / (2 * np.pi * rate) * RATE  # samples of delay, peak
    times = np.arange(len(waveform), dtype=np.float64)
    phase = float(rng.uniform(0, 2 * np.pi))
    delayed = times - swing * (1 + np.sin(2 * np.pi * rate * times / RATE + phase))
    return np.interp(delayed, times, waveform).astype(np.float32)


def _mixed(waveforms: list[np.ndarray], rng: np.random.Generator) -> np.ndarray:
    """A lead piece's melody LEAD_DB above its accompaniment (by RMS), or a piece as rendered."""
    if len(waveforms) == 1:
        return waveforms[0]
    melody, accompaniment = waveforms
    length = max(len(melody), len(accompaniment))
    melody, accompaniment = (np.pad(w, (0, length - len(w))) for w in (melody, accompaniment))
    gain = 10 ** (rng.uniform(*LEAD_DB) / 20) * _rms(accompaniment) / _rms(melody)
    return melody * np.float32(gain) + accompaniment


def _rms(waveform: np.ndarray) -> float:
    return float(np.sqrt(np.mean(waveform.astype(np.float64) ** 2)) + 1e-9)


def _write_flac(path: Path, waveform: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as scratch:
        sf.write(scratch, waveform, RATE, subtype="PCM_16")


# ---------------------------------------------------------------------------------------------
# Mixing one snippet.


def _excerpt(path: Path, rng: np.random.Generator, speed: float = 1.0) -> np.ndarray:
    """SNIPPET_SAMPLES at RATE from a random place in `path`, played `speed` times faster."""
    with sf.SoundFile(path) as file:
        wanted = math.ceil(SNIPPET_SAMPLES * speed * file.samplerate / RATE) + 64
        start = int(rng.integers(0, max(1, file.frames - wanted)))
        file.seek(start)
        frames = file.read(wanted, dtype="float32", always_2d=True).mean(axis=1)
        source_rate = file.samplerate
    # Resampling from a rate `speed` times higher plays it faster (and higher).
    frames = soxr.resample(frames, source_rate * speed, RATE)
    return np.pad(frames, (0, max(0, SNIPPET_SAMPLES - len(frames))))[:SNIPPET_SAMPLES]


class _Loudness:
    def __init__(self):
        import pyloudnorm  # an optional dependency, checked by check_requirements

        self.meter = pyloudnorm.Meter(RATE)

    def __call__(self, waveform: np.ndarray) -> float:
        with np.errstate(divide="ignore"):
            return float(self.meter.integrated_loudness(waveform.astype(np.float64)))


def _gain(waveform: np.ndarray, from_lufs: float, to_lufs: float) -> np.ndarray:
    return waveform * np.float32(10 ** ((to_lufs - from_lufs) / 20))


@dataclass
class Pools:
    """What one split may draw from."""

    voices: dict[str, list[Voice]]  # by gender
    resung: dict[str, Voice]  # each real speaker's singing double, by the speaker's id
    voice_files: dict[str, Path]
    voice_weights: dict[str, float]  # speakers with more recordings are drawn more often
    music: dict[str, list[Path]]  # tracks by music source
    hard_negatives: bool = False  # class 0 also rings in rooms (and music has lead sources)
    shifted: dict[str, Voice] = dataclasses.field(default_factory=dict)  # pitch-shifted doubles


def music_sources(split: str, hard_negatives: bool = False) -> list[Tracks | Renders]:
    """The music one split draws from: with `hard_negatives`, its lead renders too."""
    return [
        source
        for source in MUSIC
        if source.split == split
        and (hard_negatives or not (isinstance(source, Renders) and source.lead))
    ]


def _pools(split: str, material: Material, hard_negatives: bool = False) -> Pools:
    voices = [voice for voice in VOICES if voice.split == split]
    by_gender = {g: [v for v in voices if v.gender == g] for g in (MALE, FEMALE, UNSTATED)}
    resung = {key: voice for key, voice in RESUNG.items() if voice.split == split}
    shifted = {key: voice for key, voice in SHIFTED.items() if voice.split == split}
    files = _VoiceFiles(material, [*resung.values(), *shifted.values()])
    files.update({voice.id: material.voice(voice) for voice in voices})
    weights = {key: math.sqrt(sf.info(path).duration) for key, path in files.items()}
    music = {source.id: material.tracks(source) for source in music_sources(split, hard_negatives)}
    return Pools(by_gender, resung, files, weights, music, hard_negatives, shifted)


class _VoiceFiles(dict):
    """Prepared voices by id; a resung or shifted voice is only prepared (WORLD takes a while)
    when first drawn."""

    def __init__(self, material: Material, lazy: list[Voice]):
        super().__init__()
        self.material = material
        self.lazy = {voice.id: voice for voice in lazy}

    def __missing__(self, key: str) -> Path:
        self[key] = self.material.voice(self.lazy[key])
        return self[key]

    def prepare_all(self) -> None:
        for key in self.lazy:
            self[key]


def _draw_voices(rng: np.random.Generator, label: int, pools: Pools) -> list[Voice]:
    unstated = pools.voices.get(UNSTATED, [])
    if label == ONE_VOICE:
        genders = [UNSTATED]
    elif label in (1, 2):
        genders = [MALE if label == 1 else FEMALE]
    elif len(unstated) >= 2 and rng.random() < UNSTATED_SHARE:
        genders = [UNSTATED] * min(int(rng.integers(2, 5)), len(unstated))
    else:
        count = int(rng.integers(2, 5))
        if rng.random() < 0.5:  # mixed genders
            genders = [MALE, FEMALE] + list(rng.choice([MALE, FEMALE], count - 2))
        else:
            same = MALE if rng.random() < 0.5 else FEMALE
            genders = [same] * min(count, len(pools.voices[same]))
            if len(genders) < 2:
                genders = [MALE, FEMALE]
    chosen: list[Voice] = []
    for gender in genders:
        free = [v for v in pools.voices[gender] if v.id not in {c.speaker for c in chosen}]
        if not free:
            continue
        synthetic = [v for v in free if v.synthetic]
        real = [v for v in free if not v.synthetic]
        group = synthetic if synthetic and (not real or rng.random() < SYNTHETIC_SHARE) else real
        weights = np.array([pools.voice_weights[v.id] for v in group])
        voice = group[int(rng.choice(len(group), p=weights / weights.sum()))]
        if voice.id in pools.resung and rng.random() < RESUNG_SHARE:
            voice = pools.resung[voice.id]
        elif voice.id in pools.shifted and rng.random() < SHIFTED_SHARE:
            voice = pools.shifted[voice.id]
        chosen.append(voice)
    return chosen


def _voice_excerpt(rng: np.random.Generator, path: Path, loudness: _Loudness) -> np.ndarray:
    for _ in range(20):
        excerpt = _excerpt(path, rng, float(rng.uniform(*SPEED_RANGE)))
        level = loudness(excerpt)
        if level > SILENT_LUFS:
            return _gain(excerpt, level, -23.0)
    raise DataError(f"{path}: no audible 3-s excerpt in 20 draws")


def _music_excerpt(rng: np.random.Generator, pools: Pools, loudness: _Loudness):
    for _ in range(20):
        # Each source equally often, whatever its number of tracks.
        sources = sorted(pools.music)
        source = sources[int(rng.integers(len(sources)))]
        tracks = pools.music[source]
        path = tracks[int(rng.integers(len(tracks)))]
        excerpt = _excerpt(path, rng)
        level = loudness(excerpt)
        if level > SILENT_LUFS:
            return source, f"{source}:{path.stem}", _gain(excerpt, level, -23.0)
    raise DataError("no audible music excerpt in 20 draws")


def _doubled(voice: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The voice with a slightly late, slightly detuned copy of itself: a double-tracked or
    chorused lead is still one singer."""
    delay = int(rng.uniform(*DOUBLING_MS) / 1000 * RATE)
    detuned = soxr.resample(voice, RATE * float(rng.uniform(0.994, 1.006)), RATE)
    copy = np.zeros_like(voice)
    copy[delay:] = np.resize(detuned, len(voice))[: len(voice) - delay]
    return voice + copy * np.float32(10 ** (rng.uniform(-6, -1) / 20))


def _reverberant(dry: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Audio in a synthetic room: exponentially decaying noise as the impulse response."""
    import scipy.signal

    seconds = float(rng.uniform(*REVERB_SECONDS))
    times = np.arange(int(seconds * RATE)) / RATE
    response = rng.normal(size=len(times)) * np.exp(-6.9 * times / seconds)  # -60 dB at the end
    wet = scipy.signal.fftconvolve(dry, response)[: len(dry)]
    wet *= np.sqrt(np.mean(dry**2) / max(1e-12, np.mean(wet**2)))
    return (dry + wet * np.float32(10 ** (rng.uniform(-9, -2) / 20))).astype(np.float32)


def _snippet(rng: np.random.Generator, label: int, pools: Pools, loudness: _Loudness):
    """(waveform, description) of one snippet of class `label`."""
    if label in (1, 2) and pools.voices.get(UNSTATED) and rng.random() < UNSTATED_SHARE:
        label = ONE_VOICE
    row: dict[str, object] = {"label": label}
    voices = [] if label == 0 else _draw_voices(rng, label, pools)
    voice_only = label != 0 and rng.random() < VOICE_ONLY_SHARE
    # Drawn on the side, so that the snippets not sung together are drawn as they were before it.
    side = rng.spawn(1)[0]
    together = ""  # or how the voices sing one melody: "harmony" or "unison"
    if (
        label == 3
        and all(v.gender != UNSTATED for v in voices)
        and side.random() < SUNG_TOGETHER_SHARE
    ):
        together = "unison" if side.random() < UNISON_SHARE else "harmony"
    parts, gains = [], []
    for index, voice in enumerate(voices):
        parts.append(_voice_excerpt(rng, pools.voice_files[voice.id], loudness))
        gain = np.ones(SNIPPET_SAMPLES, dtype=np.float32)
        if index:  # later voices enter at a random moment, with a 20-ms fade-in
            gain *= np.float32(10 ** (rng.uniform(-4, 4) / 20))
            entry = int(rng.uniform(0, LATEST_ENTRY_SECONDS) * RATE)
            ramp = np.clip((np.arange(SNIPPET_SAMPLES) - entry) / (0.02 * RATE), 0, 1)
            gain *= ramp.astype(np.float32)
        gains.append(gain)
    if together:
        genders = [v.gender for v in voices]
        intervals = UNISON_INTERVALS if together == "unison" else HARMONY_INTERVALS
        sung = sing_along(parts, RATE, genders, int(side.integers(2**31)), intervals)
        levels = [loudness(part) for part in sung]
        if min(levels) > SILENT_LUFS:  # else a voice found nothing voiced to sing: as it was
            parts = [_gain(part, level, -23.0) for part, level in zip(sung, levels, strict=True)]
        else:
            together = ""
    mix = np.zeros(SNIPPET_SAMPLES, dtype=np.float32)
    for part, gain in zip(parts, gains, strict=True):
        mix += part * gain
    effect = ""
    if label in (1, 2, ONE_VOICE) and rng.random() < EFFECT_SHARE:
        effect = "double" if rng.random() < 0.5 else "reverb"
        mix = _doubled(mix, rng) if effect == "double" else _reverberant(mix, rng)
    row.update(
        effect=effect or together,
        speakers="+".join(v.id for v in voices),
        genders="+".join(v.gender for v in voices),
        voice_sources="+".join(sorted({v.source for v in voices})),
        synthetic=sum(v.synthetic for v in voices),
        music="",
        music_source="",
        voice_to_music_db="",
    )
    if not voice_only:
        source, music_id, music = _music_excerpt(rng, pools, loudness)
        if voices:
            ratio = float(rng.uniform(*VOICE_TO_MUSIC_DB))
            mix = _gain(mix, loudness(mix), -23.0 + ratio) + music
            row["voice_to_music_db"] = round(ratio, 1)
        elif pools.hard_negatives and rng.random() < EFFECT_SHARE:  # instruments in a room
            mix = _reverberant(music, rng)
            row["effect"] = "reverb"
        else:
            mix = music
        row.update(music=music_id, music_source=source)
    quiet = label == 0 and rng.random() < QUIET_MUSIC_SHARE
    target = float(rng.uniform(*(QUIET_MUSIC_LUFS if quiet else LOUDNESS_LUFS)))
    mix = _gain(mix, loudness(mix), target)
    peak = float(np.abs(mix).max())
    if peak > PEAK:
        mix *= np.float32(PEAK / peak)
    row["loudness_lufs"] = round(loudness(mix), 1)
    row["group"] = "+".join(filter(None, [str(row["music"]), str(row["speakers"])]))
    return mix, row


# ---------------------------------------------------------------------------------------------
# The corpus.

MANIFEST_FIELDS = (
    "path",
    "label",
    "group",
    "effect",
    "speakers",
    "genders",
    "voice_sources",
    "synthetic",
    "music",
    "music_source",
    "voice_to_music_db",
    "loudness_lufs",
)


SINGING_SOURCES = ("world", "festival")  # voices that sing: resung speakers, diphone singing


def sung_examples(manifest: Path) -> list[Example]:
    """The voiced snippets of a corpus split whose every voice sings (SINGING_SOURCES)."""
    examples = read_manifest(manifest)
    with Path(manifest).open(newline="", encoding="utf-8") as file:
        rows = list(csv.DictReader(file))
    if not rows or "voice_sources" not in rows[0]:
        raise DataError(f"{manifest}: not a corpus manifest (no voice_sources column)")
    return [
        example
        for example, row in zip(examples, rows, strict=True)
        if row["voice_sources"] and set(row["voice_sources"].split("+")) <= set(SINGING_SOURCES)
    ]


def _split_seed(seed: int, split: str) -> list[int]:
    return [seed, SPLITS.index(split)]


def build_split(
    folder: Path,
    split: str,
    count: int,
    seed: int,
    pools: Pools,
    progress: bool = False,
    jobs: int = 1,
) -> list[dict]:
    """Write `count` snippets of `split`, drawn from `pools`, into `folder`; returns their
    manifest rows. Each snippet draws from its own seed, so `jobs` worker processes write the
    same files as one."""
    from tqdm import tqdm

    balanced = np.resize(np.arange(4), count)
    labels = np.random.default_rng(_split_seed(seed, split)).permutation(balanced)
    folder.mkdir(parents=True)
    job = _SplitJob(folder, split, seed, pools, labels)
    with contextlib.ExitStack() as stack:
        if jobs == 1:
            written = map(job.write, range(count))
        else:
            if isinstance(pools.voice_files, _VoiceFiles):  # prepared once, not in every worker
                pools.voice_files.prepare_all()
            # Forked workers inherit the job; only snippet indices and rows cross processes.
            context = multiprocessing.get_context("fork")
            pool = stack.enter_context(context.Pool(jobs, _start_worker, (job,)))
            written = pool.imap(_write_in_worker, range(count), chunksize=16)
        bar = tqdm(written, total=count, desc=split, unit="snippet", disable=not progress)
        rows = list(bar)
    (folder / LABELS_FILE).write_text("".join(f"{row['label']}\n" for row in rows))
    with (folder / "manifest.csv").open("w", newline="") as file:
        writer = csv.DictWriter(file, MANIFEST_FIELDS)
        writer.writeheader()
        writer.writerows(rows)
    return rows


@dataclass
class _SplitJob:
    """What writing one snippet of a split needs: the same in every worker."""

    folder: Path
    split: str
    seed: int
    pools: Pools
    labels: np.ndarray
    loudness: _Loudness = dataclasses.field(default_factory=_Loudness)

    def write(self, index: int) -> dict:
        rng = np.random.default_rng([*_split_seed(self.seed, self.split), index])
        waveform, row = _snippet(rng, int(self.labels[index]), self.pools, self.loudness)
        name = f"{index}.mp3"
        sf.write(self.folder / name, waveform, RATE, format="MP3")
        return {"path": name, **row}


_worker_job: _SplitJob | None = None


def _start_worker(job: _SplitJob) -> None:
    global _worker_job
    _worker_job = job


def _write_in_worker(index: int) -> dict:
    return _worker_job.write(index)


def summarise(rows: Iterable[dict]) -> dict:
    """Counts per class, per voice and music source, per gender, and the synthetic share."""
    rows = list(rows)
    voices = [
        (speaker, gender)
        for row in rows
        if row["speakers"]
        for speaker, gender in zip(
            row["speakers"].split("+"), row["genders"].split("+"), strict=True
        )
    ]
    sources = {voice.id: voice.source for voice in (*VOICES, *RESUNG.values(), *SHIFTED.values())}
    synthetic = sum(speaker in {v.id for v in VOICES if v.synthetic} for speaker, _ in voices)
    music = Counter(r["music_source"] or "none" for r in rows)
    return {
        "snippets": len(rows),
        "per_class": {
            TRAINING_LABELS[k]: v for k, v in sorted(Counter(r["label"] for r in rows).items())
        },
        "voices_per_gender": dict(sorted(Counter(gender for _, gender in voices).items())),
        "voices_per_source": dict(sorted(Counter(sources[s] for s, _ in voices).items())),
        "voices_per_speaker": dict(sorted(Counter(s for s, _ in voices).items())),
        "synthetic_voice_share": round(synthetic / max(1, len(voices)), 3),
        "voice_only_snippets": sum(1 for r in rows if r["speakers"] and not r["music"]),
        "music_per_source": dict(sorted(music.items())),
        "music_pieces": len({r["music"] for r in rows if r["music"]}),
    }


def check_requirements() -> None:
    """Every program and module the build needs, checked before anything is fetched."""
    for program, purpose, package in REQUIRED_PROGRAMS:
        fetch.require_program(program, purpose, package)
    for module in ("music21", "pyloudnorm", "pyworld"):
        if importlib.util.find_spec(module) is None:
            raise DataError(
                f"{module} is not installed; the corpus builder needs it: "
                "pip install 'vocalstream[corpus]'"
            )


def build(
    out: Path,
    counts: dict[str, int],
    seed: int = 0,
    cache: Path | None = None,
    log: Callable[[str], None] = _log,
    progress: bool = False,
    hard_negatives: bool = False,
    jobs: int = 1,
) -> dict:
    """Build the corpus into `out`, which must not exist or be empty; it appears whole or not at
    all. Returns the summary also written to out/corpus.json. `hard_negatives` adds class 0's
    hardest music: the lead renders (a melody with vibrato on an instrument that sings) among
    the music sources, and music ringing in a synthetic room; without it the corpus is as it
    was before they existed. `jobs` processes write the snippets, the same as one."""
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise DataError(f"{out}: already exists and is not an empty folder")
    if any(count < 4 for count in counts.values()):
        raise DataError("each split needs at least 4 snippets (one per class)")
    if seed < 0:
        raise DataError(f"the seed must be 0 or more, got {seed}")
    if jobs < 1:
        raise DataError(f"jobs must be 1 or more, got {jobs}")
    check_requirements()
    material = Material(cache or cache_dir() / "corpus", log)
    with atomic_folder(out) as scratch:
        summary: dict[str, object] = {
            "seed": seed,
            "rate": RATE,
            "hard_negatives": hard_negatives,
            "splits": {},
        }
        for split in SPLITS:
            pools = _pools(split, material, hard_negatives)
            rows = build_split(scratch / split, split, counts[split], seed, pools, progress, jobs)
            summary["splits"][split] = summarise(rows)
        summary["packages"] = sorted(material.packages | {v.package for v in VOICES if v.synthetic})
        _copy_licences(scratch / "LICENSES", summary["packages"], material)
        (scratch / "corpus.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary


def _copy_licences(folder: Path, packages: list[str], material: Material) -> None:
    folder.mkdir()
    for name in packages:
        unpacked = material.cache / "debian" / name
        installed = Path("/usr/share/doc") / name / "copyright"
        source = fetch.copyright_file(unpacked) if unpacked.is_dir() else None
        source = source or (installed if installed.is_file() else None)
        if source is not None:
            shutil.copyfile(source, folder / f"{name}.txt")
    (folder / "music21-corpus.txt").write_text(
        "Scores from the music21 corpus (BSD-licensed toolkit; the corpus works are in the public "
        "domain or distributed with permission, see music21's documentation).\n"
    )
