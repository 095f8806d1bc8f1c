"""The shipped model's quality on real recordings beside the checkout (../shared/data, CC BY /
public domain): a model that scores below these floors fails CI. Measured when the model was
shipped: music alone 74 of 75 windows, speech gender 11 of 13 (the model before: 13 of 13; on
the corpus's 200 held-out male snippets it finds 113 against 97), a voice found in every window
of a soprano and a bass singing together."""

import numpy as np
import pytest
from conftest import SHARED_DATA, shared

import vocalstream
from vocalstream import audio
from vocalstream.models.labels import decide
from vocalstream.train.devset import build_dev, read_windows

# On the real-singing windows below (159, 83 of them gendered, 35 of two singers): voice/no-voice,
# male vs female where the source says, and the F1 of "several", with the product's decision
# (no voice at P >= 0.5, else the likeliest voice class). The shipped model scores 0.925, 0.807
# and 0.708; the model before it (the same gate and branches, the corpus-v1 who-members) 0.925,
# 0.783 and 0.339; without its pitch branch 0.925, 0.783 and 0.304; without its real-music
# branch too 0.925, 0.687 and 0.298.
VOICE_FLOOR = 0.88
GENDER_FLOOR = 0.78
SEVERAL_FLOOR = 0.65
SPEECH_GENDER_FLOOR = 0.84

INSTRUMENTAL = [
    "librosa-data/Kevin_MacLeod_-_Vibe_Ace.ogg",
    "librosa-data/Hungarian_Dance_number_5_-_Allegro_in_F_sharp_minor_(string_orchestra).ogg",
    "librosa-data/Kevin_MacLeod_-_P_I_Tchaikovsky_Dance_of_the_Sugar_Plum_Fairy.ogg",
    "librosa-data/sorohanro_-_solo-trumpet-06.ogg",
]
SPEAKERS = {  # LibriSpeech readers, as the clips' notes give them
    "librosa-data/198-209-0000.ogg": "female",
    "librosa-data/3436-172162-0000.ogg": "male",
    "librosa-data/5703-47212-0000.ogg": "male",
}


@pytest.fixture(scope="module")
def model(separator_cache):
    return vocalstream.load_model(device="cpu")


def labels(model, source, **options) -> list[str]:
    return [w.label for w in model.analyse(source, **options).windows if not w.padded]


def test_music_alone_is_no_voice(model):
    found = [label for name in INSTRUMENTAL for label in labels(model, shared(name), hop=3.0)]
    assert len(found) == 75
    assert np.mean([label == "no_voice" for label in found]) >= 0.95, found


def test_one_speaker_gets_the_right_gender(model):
    right = [
        label == gender
        for name, gender in SPEAKERS.items()
        for label in labels(model, shared(name), hop=3.0)
    ]
    assert len(right) == 13 and np.mean(right) >= SPEECH_GENDER_FLOOR, right


def test_a_voice_is_found_in_a_choir_duet(model):
    soprano = audio.load(shared("choirset/DCS_SE_FullChoir_ScaleUpDown02_S1_DYN.wav"), 44100, 2)
    bass = audio.load(shared("choirset/DCS_SE_FullChoir_ScaleUpDown02_B2_DYN.wav"), 44100, 2)
    length = min(soprano.shape[1], bass.shape[1])
    found = labels(model, soprano[:, :length] + bass[:, :length], hop=1.0, sample_rate=44100)
    assert np.mean([label != "no_voice" for label in found]) >= 0.7, found


@pytest.fixture(scope="module")
def sung_windows(tmp_path_factory):
    """The real-singing development set built from the shared recordings alone: ChoirSet's
    soprano and two basses and vocadito's singer, a cappella, over real instrumentals, and in
    pairs (`vocalstream corpus build-dev`)."""
    folder = tmp_path_factory.mktemp("devset") / "dev"
    build_dev(folder, SHARED_DATA)
    return read_windows(folder)


def test_real_singing_is_heard_its_gender_told_and_duets_found(model, sung_windows):
    decided = []  # (true label, probabilities)
    for clip in sorted({row["clip"] for row in sung_windows}):
        windows = {round(w.start, 3): w for w in model.analyse(clip, hop=1.0).windows}
        decided += [
            (row["label"], windows[round(row["start"], 3)].probabilities)
            for row in sung_windows
            if row["clip"] == clip
        ]
    no_voice, male, female = (model.labels.index(name) for name in ("no_voice", "male", "female"))
    heard = [(label != "no_voice") == (decide(p) != no_voice) for label, p in decided]
    gender = [
        (p[male] > p[female]) == (label == "male")
        for label, p in decided
        if label in ("male", "female")
    ]
    truth = [label == "several" for label, _ in decided]
    called = [decide(p) == model.labels.index("several") for _, p in decided]
    hits = sum(t and c for t, c in zip(truth, called, strict=True))
    several_f1 = 2 * hits / (sum(truth) + sum(called))
    assert len(decided) > 100 and len(gender) > 50 and sum(truth) > 30
    assert np.mean(heard) >= VOICE_FLOOR, np.mean(heard)
    assert np.mean(gender) >= GENDER_FLOOR, np.mean(gender)
    assert several_f1 >= SEVERAL_FLOOR, several_f1
