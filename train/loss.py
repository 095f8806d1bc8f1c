"""The training loss over training labels, which may allow more than one class (ONE_VOICE).

An example whose label allows a set of classes costs -log of the probability the model gives
that set: for the four classes alone it is the usual cross-entropy, and a singer of unstated
gender costs -log(P(male) + P(female)), so it teaches one voice without teaching a gender.
"""

from __future__ import annotations

import torch

from vocalstream.models.labels import ALLOWED_CLASSES, NUM_CLASSES

_ALLOWED = torch.tensor(
    [[c in allowed for c in range(NUM_CLASSES)] for allowed in ALLOWED_CLASSES], dtype=torch.bool
)


def label_weights(class_weights: torch.Tensor) -> torch.Tensor:
    """Per training label, from per-class weights: one voice of unstated gender weighs as male
    and female do on average."""
    unstated = class_weights[[1, 2]].mean().reshape(1)
    return torch.cat([class_weights, unstated])


def cross_entropy(
    logits: torch.Tensor, labels: torch.Tensor, weight: torch.Tensor | None = None
) -> torch.Tensor:
    """Mean of -log P(allowed classes) over the batch, weighted by `weight` (per class, as
    F.cross_entropy takes it) and normalised by the weights' sum, as F.cross_entropy is."""
    log_probabilities = torch.log_softmax(logits, dim=1)
    allowed = _ALLOWED.to(logits.device)[labels]
    losses = -torch.logsumexp(log_probabilities.masked_fill(~allowed, float("-inf")), dim=1)
    if weight is None:
        return losses.mean()
    per_example = label_weights(weight)[labels]
    return (losses * per_example).sum() / per_example.sum()


def is_right(labels: torch.Tensor, predictions: torch.Tensor) -> torch.Tensor:
    """Whether each predicted class is one its training label allows."""
    return _ALLOWED[labels, predictions]
