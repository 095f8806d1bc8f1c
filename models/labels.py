"""The four classes, by id, and how a window's probabilities become one of them."""

import numpy as np

NUM_CLASSES = 4
LABELS = ("no_voice", "male", "female", "several")  # index = class id
assert len(LABELS) == NUM_CLASSES

# Training data may also carry ONE_VOICE: one voice whose gender neither its source states nor
# its pitch tells. It teaches one voice against several and silence, never a gender: male and
# female are both right for it. Models still output the four classes.
ONE_VOICE = NUM_CLASSES
TRAINING_LABELS = (*LABELS, "one_voice")
ALLOWED_CLASSES = ((0,), (1,), (2,), (3,), (1, 2))  # by training label: the classes that are right

# The real-music branch's outputs (models/musicnn.py): MagnaTagATune's 50 tags, in its order.
MTT_TAGS = (
    "guitar", "classical", "slow", "techno", "strings", "drums", "electronic", "rock", "fast",
    "piano", "ambient", "beat", "violin", "vocal", "synth", "female", "indian", "opera", "male",
    "singing", "vocals", "no vocals", "harpsichord", "loud", "quiet", "flute", "woman",
    "male vocal", "no vocal", "pop", "soft", "sitar", "solo", "man", "classic", "choir", "voice",
    "new age", "dance", "male voice", "female vocal", "beats", "harp", "cello", "no voice",
    "weird", "country", "metal", "female voice", "choral",
)  # fmt: skip


def decide(probabilities: np.ndarray) -> np.ndarray:
    """Class ids of probabilities [..., NUM_CLASSES]: first whether anyone sings, then who.
    No voice when its probability is at least one half, else the likeliest voice class. (A
    plain argmax would call a window silent at P(no voice) = 0.4 whenever the voice's 0.6 is
    split between male, female and several.)"""
    probabilities = np.asarray(probabilities)
    voice = 1 + np.argmax(probabilities[..., 1:], axis=-1)
    return np.where(probabilities[..., 0] >= 0.5, 0, voice)
