"""Real speech turned into singing with the WORLD vocoder: the speaker's own spectral envelope
(timbre) and aperiodicity, a new F0 that follows generated melodies in the gender's singing
range, voiced sounds held longer, legato joins between notes, and vibrato.

So a model learns sung pitch ranges, held vowels and vibrato on real voices, and must still tell
gender from timbre: the two ranges overlap (male up to G4, about 392 Hz; female down to F3, about
175 Hz), and half the phrases of either gender lie in that overlap (SHARED_RANGE), where pitch
tells nothing. Speech can also keep its words and timing and only move its pitch into the band
where both genders speak (shift_speech).
"""

from __future__ import annotations

import warnings

import numpy as np

FRAME_MS = 5.0
CHUNK_SECONDS = 8.0  # WORLD analyses this much at a time
STRETCH = (1.4, 2.6)  # voiced stretches are held this many times longer
NOTE_SECONDS = (0.18, 0.7)
GLIDE_SECONDS = 0.05  # legato: pitch moves between notes over about this long
VIBRATO_HZ = (4.5, 6.5)
VIBRATO_CENTS = (15.0, 60.0)
RANGES = {"male": (43, 67), "female": (53, 77)}  # MIDI notes: G2-G4, F3-F5
SHARED_RANGE = (53, 67)  # F3-G4: where both genders sing
SHARED_SHARE = 0.5  # of a resung voice's phrases: in SHARED_RANGE, not the gender's own range
SHARED_SPEECH_HZ = (140.0, 220.0)  # median F0 of shifted speech, whatever the speaker's gender
MAJOR = (0, 2, 4, 5, 7, 9, 11)
HARMONY_INTERVALS = (
    -9,
    -8,
    -5,
    -4,
    -3,
    3,
    4,
    5,
    7,
    8,
    9,
)  # semitones: thirds, fourths, fifths, sixths
UNISON_INTERVALS = (-12, 0, 12)  # the same notes, or an octave apart
DETUNE_CENTS = 15.0  # a voice singing along is up to this far off the lead's pitch
LAG_SECONDS = 0.05  # and changes note up to this much later


def _notes(
    frames: int, gender: str, rng: np.random.Generator, span: tuple[int, int] | None = None
) -> np.ndarray:
    """MIDI pitch for `frames` frames: notes stepping along a scale within `span` (default the
    gender's range), joined legato."""
    low, high = span or RANGES[gender]
    tonic = int(rng.integers(0, 12))
    scale = [n for n in range(low, high + 1) if (n - tonic) % 12 in MAJOR]
    frame_seconds = FRAME_MS / 1000
    notes = np.empty(frames)
    centre, index = int(rng.integers(len(scale))), 0  # the phrase's tessitura
    while index < frames:
        length = max(1, round(rng.uniform(*NOTE_SECONDS) / frame_seconds))
        position = int(np.clip(centre + rng.integers(-3, 4), 0, len(scale) - 1))
        notes[index : index + length] = scale[position]
        index += length
    glide = max(1, round(GLIDE_SECONDS / frame_seconds))
    kernel = np.hanning(2 * glide + 1)
    return np.convolve(np.pad(notes, glide, mode="edge"), kernel / kernel.sum(), mode="valid")


def _vibrato(frames: int, rng: np.random.Generator) -> np.ndarray:
    """A singer's vibrato in semitones, frame by frame."""
    time = np.arange(frames) * FRAME_MS / 1000
    depth = rng.uniform(*VIBRATO_CENTS) / 100
    return depth * np.sin(2 * np.pi * rng.uniform(*VIBRATO_HZ) * time + rng.uniform(0, 6.3))


def _hertz(notes: np.ndarray) -> np.ndarray:
    return 440.0 * 2 ** ((notes - 69) / 12)


def _melody(frames: int, gender: str, rng: np.random.Generator) -> np.ndarray:
    """F0 in Hz for `frames` frames: a generated melody with vibrato, in the gender's range or,
    SHARED_SHARE of the time, in the range both genders sing."""
    span = SHARED_RANGE if rng.random() < SHARED_SHARE else RANGES[gender]
    notes = _notes(frames, gender, rng, span)
    return _hertz(notes + _vibrato(frames, rng))


def _stretch_map(voiced: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Indices of source frames for the output: each voiced run held STRETCH times longer."""
    edges = np.flatnonzero(np.diff(np.r_[0, voiced.astype(np.int8), 0]))
    starts, ends = edges[::2], edges[1::2]
    pieces, cursor = [], 0
    for start, end in zip(starts, ends, strict=True):
        pieces.append(np.arange(cursor, start))
        held = max(1, round((end - start) * rng.uniform(*STRETCH)))
        pieces.append(np.linspace(start, end - 1, held).round().astype(int))
        cursor = end
    pieces.append(np.arange(cursor, len(voiced)))
    return np.concatenate(pieces).astype(int)


def _pyworld():
    with warnings.catch_warnings():  # pyworld 0.3.5 imports the deprecated pkg_resources
        warnings.simplefilter("ignore", UserWarning)
        import pyworld  # an optional dependency of the corpus builder
    return pyworld


def _analyse(piece: np.ndarray, rate: int):
    """WORLD's F0, spectral envelope and aperiodicity of `piece` [n], frame by FRAME_MS."""
    pyworld = _pyworld()
    piece = piece.astype(np.float64)
    f0, times = pyworld.dio(piece, rate, frame_period=FRAME_MS)
    f0 = pyworld.stonemask(piece, f0, times, rate)
    return f0, pyworld.cheaptrick(piece, f0, times, rate), pyworld.d4c(piece, f0, times, rate)


def _in_range(f0: np.ndarray, gender: str) -> np.ndarray:
    """The melody moved by whole octaves until its median note lies in the gender's range."""
    low, high = RANGES[gender]
    median = 69 + 12 * np.log2(np.median(f0) / 440.0)
    octaves = 0
    while median + 12 * octaves > high - 3:
        octaves -= 1
    while median + 12 * octaves < low + 3:
        octaves += 1
    return f0 * 2.0**octaves


def sing_along(
    waveforms: list[np.ndarray],
    rate: int,
    genders: list[str],
    seed: int,
    intervals: tuple[int, ...] = HARMONY_INTERVALS,
) -> list[np.ndarray]:
    """Different voices [n] (speech or singing, each at `rate`) singing one melody together: the
    first voice leads, each other sings it one of `intervals` (semitones) away, moved by octaves
    into its own range, with its own vibrato, slightly off the lead's pitch and slightly late,
    as people singing together are. Each voice sounds where its own recording is voiced.
    Returns float32 waveforms as long as the inputs."""
    pyworld = _pyworld()
    rng = np.random.default_rng(seed)
    length = min(len(w) for w in waveforms)
    frames = int(length / rate * 1000 / FRAME_MS) + 1
    lead = _notes(frames, genders[0], rng)
    sung = []
    for index, (waveform, gender) in enumerate(zip(waveforms, genders, strict=True)):
        f0, envelope, aperiodicity = _analyse(waveform[:length], rate)
        order = _stretch_map(f0 > 0, rng)[: len(f0)]  # held vowels: never shorter than f0
        notes = lead[: len(order)] + _vibrato(len(order), rng)
        melody = _hertz(notes)
        if index:
            lag = int(rng.uniform(0, LAG_SECONDS) * 1000 / FRAME_MS)
            notes = np.r_[np.full(lag, notes[0]), notes[: len(notes) - lag]]
            notes += rng.choice(intervals) + rng.uniform(-DETUNE_CENTS, DETUNE_CENTS) / 100
            melody = _in_range(_hertz(notes), gender)
        voiced = f0[order] > 0
        voice = pyworld.synthesize(
            np.where(voiced, melody, 0.0),
            np.ascontiguousarray(envelope[order]),
            np.ascontiguousarray(aperiodicity[order]),
            rate,
            FRAME_MS,
        )
        voice = np.pad(voice, (0, max(0, length - len(voice))))[:length]
        sung.append((voice / max(1e-6, float(np.abs(voice).max())) * 0.5).astype(np.float32))
    return sung


def _analysed_chunks(waveform: np.ndarray, rate: int):
    """WORLD's analysis of each CHUNK_SECONDS of `waveform`, up to a last piece under 0.5 s."""
    chunk = int(CHUNK_SECONDS * rate)
    for begin in range(0, len(waveform), chunk):
        piece = waveform[begin : begin + chunk]
        if len(piece) < rate // 2:
            return
        yield _analyse(piece, rate)


def resing(waveform: np.ndarray, rate: int, gender: str, seed: int) -> np.ndarray:
    """Speech [n] at `rate` -> the same voice singing, float32 at `rate`."""
    pyworld = _pyworld()
    rng = np.random.default_rng(seed)
    sung = []
    for f0, envelope, aperiodicity in _analysed_chunks(waveform, rate):
        order = _stretch_map(f0 > 0, rng)
        voiced = f0[order] > 0
        melody = np.where(voiced, _melody(len(order), gender, rng), 0.0)
        sung.append(
            pyworld.synthesize(
                melody,
                np.ascontiguousarray(envelope[order]),
                np.ascontiguousarray(aperiodicity[order]),
                rate,
                FRAME_MS,
            )
        )
    if not sung:
        raise ValueError("too little speech to sing")
    singing = np.concatenate(sung)
    return (singing / max(1e-6, float(np.abs(singing).max())) * 0.5).astype(np.float32)


def shift_speech(waveform: np.ndarray, rate: int, seed: int) -> np.ndarray:
    """Speech [n] at `rate` -> the same words, timing and spectral envelope, the F0 scaled so that
    each chunk's median lies at a pitch drawn from SHARED_SPEECH_HZ; float32 at `rate`. So a
    man and a woman speak at the same pitches, and only timbre tells them apart."""
    pyworld = _pyworld()
    rng = np.random.default_rng(seed)
    shifted = []
    for f0, envelope, aperiodicity in _analysed_chunks(waveform, rate):
        voiced = f0 > 0
        if voiced.sum() < 20:  # under 0.1 s voiced: no pitch to move
            continue
        target = np.exp(rng.uniform(*np.log(SHARED_SPEECH_HZ)))
        f0 = f0 * (target / np.median(f0[voiced]))
        shifted.append(pyworld.synthesize(f0, envelope, aperiodicity, rate, FRAME_MS))
    if not shifted:
        raise ValueError("too little voiced speech to shift")
    speech = np.concatenate(shifted)
    return (speech / max(1e-6, float(np.abs(speech).max())) * 0.5).astype(np.float32)
