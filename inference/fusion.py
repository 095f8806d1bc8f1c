"""The branches' part in the decision, once the classifier hears a voice.

Who sings, male or female (the real-music branch): the classifier's split of a one-voice window
and musicnn's gender tags are two pieces of evidence, each as log-odds for female. A logistic
regression fitted on labelled windows (export/music.py) weighs them; its probability re-splits the
classifier's one-voice mass, P(male) + P(female), leaving P(no voice) and P(several) as they were.
musicnn learned gender from real songs; the classifier from speech over music: each corrects the
other where it is weak.

One voice or several (the pitch branch): the classifier's log-odds for several against one voice,
and the polyphony of the vocal stem, the share of its frames where basic-pitch hears two pitches
or more at once. A second regression (export/pitch.py) weighs them; its probability re-splits the
voice mass, 1 - P(no voice), between several and one voice (male and female keep their ratio).
The classifier learned "several" from people talking at once; two singers hold two notes.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.ndimage import maximum_filter1d
from scipy.special import expit

from vocalstream import audio
from vocalstream.models.labels import LABELS, MTT_TAGS

FEMALE_TAGS = ("female", "woman", "female vocal", "female voice")
MALE_TAGS = ("male", "man", "male vocal", "male voice")
EVIDENCE = ("who", "music")  # the gender regression's inputs, in order
SEVERAL_EVIDENCE = ("who", "polyphony")  # the several regression's inputs, in order
PITCH_SALIENCE = 0.3  # a contour peak this salient is a pitch heard
PITCH_APART = 2 * audio.PITCH_BINS_PER_SEMITONE  # ...when no stronger one lies 2 semitones near
_MALE, _FEMALE, _SEVERAL = (LABELS.index(n) for n in ("male", "female", "several"))
_EPSILON = 1e-6


def gender_evidence(
    probabilities: np.ndarray,
    tag_logits: np.ndarray,
    female_tags: Sequence[str] = FEMALE_TAGS,
    male_tags: Sequence[str] = MALE_TAGS,
) -> np.ndarray:
    """[B, 2]: the classifier's log-odds for female over male, and musicnn's (the summed
    probabilities of its female tags over its male tags)."""
    probabilities = np.asarray(probabilities, dtype=np.float64)
    tags = expit(np.asarray(tag_logits, dtype=np.float64))
    female = tags[:, [MTT_TAGS.index(t) for t in female_tags]].sum(axis=1)
    male = tags[:, [MTT_TAGS.index(t) for t in male_tags]].sum(axis=1)
    return np.stack(
        [
            np.log(probabilities[:, _FEMALE] + _EPSILON)
            - np.log(probabilities[:, _MALE] + _EPSILON),
            np.log(female + _EPSILON) - np.log(male + _EPSILON),
        ],
        axis=1,
    )


def fuse_gender(probabilities: np.ndarray, tag_logits: np.ndarray, fusion: dict) -> np.ndarray:
    """Probabilities [B, 4] with the one-voice mass re-split by the fitted regression `fusion`
    ({"weights": [who, music], "bias": b}, and the tags it was fitted with, when it names them)."""
    female_tags = fusion.get("female_tags", FEMALE_TAGS)
    male_tags = fusion.get("male_tags", MALE_TAGS)
    evidence = gender_evidence(probabilities, tag_logits, female_tags, male_tags)
    female = expit(evidence @ np.asarray(fusion["weights"]) + fusion["bias"])
    fused = np.array(probabilities, dtype=np.float32)
    one_voice = fused[:, _MALE] + fused[:, _FEMALE]
    fused[:, _FEMALE] = one_voice * female
    fused[:, _MALE] = one_voice - fused[:, _FEMALE]
    return fused


def polyphony(contour: np.ndarray) -> np.ndarray:
    """Pitch salience [B, ..., frames, PITCH_BINS] (basic-pitch's contour) -> [B]: the share of
    frames with two pitches or more at once, each the strongest within 2 semitones of itself."""
    contour = np.asarray(contour, dtype=np.float32)
    neighbourhood = maximum_filter1d(contour, 2 * PITCH_APART + 1, axis=-1, mode="constant")
    peaks = ((contour >= PITCH_SALIENCE) & (contour >= neighbourhood)).sum(axis=-1)
    return (peaks >= 2).reshape(len(contour), -1).mean(axis=1)


def several_evidence(probabilities: np.ndarray, polyphonies: np.ndarray) -> np.ndarray:
    """[B, 2]: the classifier's log-odds for several voices over one, and the polyphony."""
    probabilities = np.asarray(probabilities, dtype=np.float64)
    one = probabilities[:, _MALE] + probabilities[:, _FEMALE]
    who = np.log(probabilities[:, _SEVERAL] + _EPSILON) - np.log(one + _EPSILON)
    return np.stack([who, np.asarray(polyphonies, dtype=np.float64)], axis=1)


def fuse_several(probabilities: np.ndarray, polyphonies: np.ndarray, fusion: dict) -> np.ndarray:
    """Probabilities [B, 4] with the voice mass re-split between several and one voice by the
    fitted regression `fusion` ({"weights": [who, polyphony], "bias": b})."""
    evidence = several_evidence(probabilities, polyphonies)
    return resplit_several(
        probabilities, expit(evidence @ np.asarray(fusion["weights"]) + fusion["bias"])
    )


def resplit_several(probabilities: np.ndarray, several: np.ndarray) -> np.ndarray:
    """Probabilities [B, 4] with the share `several` [B] of each voice mass, 1 - P(no voice),
    given to several voices and the rest to one voice, male and female in their ratio."""
    fused = np.array(probabilities, dtype=np.float32)
    one = fused[:, _MALE] + fused[:, _FEMALE]
    voice = one + fused[:, _SEVERAL]
    female_share = np.divide(fused[:, _FEMALE], one, out=np.full_like(one, 0.5), where=one > 0)
    fused[:, _SEVERAL] = voice * several
    fused[:, _FEMALE] = voice * (1.0 - several) * female_share
    fused[:, _MALE] = voice - fused[:, _SEVERAL] - fused[:, _FEMALE]
    return fused
