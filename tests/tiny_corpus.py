"""A tiny labelled corpus of real audio for training tests, in the seeds' format.

Voices (LibriSpeech readers, ChoirSet singers) are mixed over real instrumental music at +5 dB:
class 0 music alone, 1 one male voice, 2 one female voice, 3 a male and a female voice at once.
"""

from pathlib import Path

import numpy as np
import soundfile as sf
from conftest import shared

from vocalstream import audio

RATE = audio.CLASSIFIER_RATE
MUSIC = [
    "librosa-data/Hungarian_Dance_number_5_-_Allegro_in_F_sharp_minor_(string_orchestra).ogg",
    "librosa-data/Kevin_MacLeod_-_Vibe_Ace.ogg",
    "librosa-data/Kevin_MacLeod_-_P_I_Tchaikovsky_Dance_of_the_Sugar_Plum_Fairy.ogg",
    "librosa-data/sorohanro_-_solo-trumpet-06.ogg",
]
MALE = [
    "librosa-data/3436-172162-0000.ogg",
    "librosa-data/5703-47212-0000.ogg",
    "choirset/DCS_SE_FullChoir_ScaleUpDown02_B1_LRX.wav",
]
FEMALE = ["librosa-data/198-209-0000.ogg", "choirset/DCS_SE_FullChoir_ScaleUpDown02_S1_LRX.wav"]


def _clip(name: str, index: int) -> np.ndarray:
    signal = audio.load(shared(name), RATE, 1)[0]
    length = audio.WINDOW_SAMPLES
    start = (index * 2 * RATE) % max(1, len(signal) - length)
    clip = signal[start : start + length]
    return np.pad(clip, (0, length - len(clip))) / (np.sqrt(np.mean(clip**2)) + 1e-9)


def build(folder: Path, per_class: int = 8) -> Path:
    """Writes folder/N.mp3, folder/train_label.txt and folder/manifest.csv (with groups)."""
    folder.mkdir(parents=True, exist_ok=True)
    rows, labels = [], []
    for n in range(4 * per_class):
        label, k = n % 4, n // 4
        music_name = MUSIC[k % len(MUSIC)]
        music = _clip(music_name, k)
        voices = {
            0: [],
            1: [MALE[k % len(MALE)]],
            2: [FEMALE[k % len(FEMALE)]],
            3: [MALE[k % len(MALE)], FEMALE[(k + 1) % len(FEMALE)]],
        }[label]
        mix = 10 ** (-5 / 20) * music + sum(_clip(v, k) for v in voices)
        mix = 0.3 * mix / np.abs(mix).max()
        sf.write(folder / f"{n}.mp3", mix.astype(np.float32), RATE)
        labels.append(label)
        group = "+".join([Path(music_name).stem[:12], *(Path(v).stem[:12] for v in voices)])
        rows.append(f"{n}.mp3,{label},{group}")
    (folder / "train_label.txt").write_text("".join(f"{label}\n" for label in labels))
    (folder / "manifest.csv").write_text("path,label,group\n" + "\n".join(rows) + "\n")
    return folder
