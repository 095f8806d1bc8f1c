"""The real-music branch's part in the decision: who sings, male or female.

The classifier's split of a one-voice window between male and female and musicnn's gender tags
are two pieces of evidence, each as log-odds for female. A logistic regression fitted on labelled
windows (export/music.py) weighs them; its probability re-splits the classifier's one-voice mass,
P(male) + P(female), leaving P(no voice) and P(several) as they were. musicnn learned gender from
real songs; the classifier from speech over music: each corrects the other where it is weak.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from vocalstream.models.labels import LABELS, MTT_TAGS

FEMALE_TAGS = ("female", "woman", "female vocal", "female voice")
MALE_TAGS = ("male", "man", "male vocal", "male voice")
EVIDENCE = ("who", "music")  # the regression's inputs, in order
_MALE, _FEMALE = LABELS.index("male"), LABELS.index("female")
_EPSILON = 1e-6


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def gender_evidence(
    probabilities: np.ndarray,
    tag_logits: np.ndarray,
    female_tags: Sequence[str] = FEMALE_TAGS,
    male_tags: Sequence[str] = MALE_TAGS,
) -> np.ndarray:
    """[B, 2]: the classifier's log-odds for female over male, and musicnn's (the summed
    probabilities of its female tags over its male tags)."""
    probabilities = np.asarray(probabilities, dtype=np.float64)
    tags = _sigmoid(np.asarray(tag_logits, dtype=np.float64))
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
    female = _sigmoid(evidence @ np.asarray(fusion["weights"]) + fusion["bias"])
    fused = np.array(probabilities, dtype=np.float32)
    one_voice = fused[:, _MALE] + fused[:, _FEMALE]
    fused[:, _FEMALE] = one_voice * female
    fused[:, _MALE] = one_voice - fused[:, _FEMALE]
    return fused
