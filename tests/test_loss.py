"""The training loss over training labels: the four classes, and one voice of unstated gender."""

import numpy as np
import torch
import torch.nn.functional as F

from vocalstream.models.labels import ONE_VOICE
from vocalstream.train.engine import classification_report
from vocalstream.train.loss import cross_entropy, is_right, label_weights


def _logits(rows: int = 32) -> torch.Tensor:
    return torch.randn(rows, 4, generator=torch.Generator().manual_seed(1))


def test_on_the_four_classes_it_is_the_usual_cross_entropy():
    logits, labels = _logits(), torch.arange(32) % 4
    weight = torch.tensor([0.1, 0.2, 0.3, 0.4])
    torch.testing.assert_close(cross_entropy(logits, labels), F.cross_entropy(logits, labels))
    torch.testing.assert_close(
        cross_entropy(logits, labels, weight), F.cross_entropy(logits, labels, weight=weight)
    )


def test_one_voice_of_unstated_gender_costs_the_voice_not_a_gender():
    logits = _logits()
    labels = torch.full((32,), ONE_VOICE)
    probabilities = torch.softmax(logits, dim=1)
    expected = -torch.log(probabilities[:, 1] + probabilities[:, 2]).mean()
    torch.testing.assert_close(cross_entropy(logits, labels), expected)
    swapped = logits[:, [0, 2, 1, 3]]  # male and female exchanged: the same cost
    torch.testing.assert_close(cross_entropy(swapped, labels), cross_entropy(logits, labels))
    # Moving mass from several to a voice lowers it; from male to female does not move it.
    logits.requires_grad_(True)
    cross_entropy(logits, labels).backward()
    gradient = logits.grad
    assert torch.all(gradient[:, 3] > 0) and torch.all(gradient[:, 0] > 0)
    assert torch.all(gradient[:, 1] < 0) and torch.all(gradient[:, 2] < 0)


def test_one_voice_weighs_as_male_and_female_do_on_average():
    weight = torch.tensor([0.1, 0.2, 0.4, 0.3])
    torch.testing.assert_close(label_weights(weight), torch.tensor([0.1, 0.2, 0.4, 0.3, 0.3]))
    logits, labels = _logits(2), torch.tensor([0, ONE_VOICE])
    each = [cross_entropy(logits[i : i + 1], labels[i : i + 1]) for i in range(2)]
    expected = (0.1 * each[0] + 0.3 * each[1]) / 0.4
    torch.testing.assert_close(cross_entropy(logits, labels, weight), expected)


def test_a_voice_of_unstated_gender_is_right_as_male_or_female():
    labels = torch.tensor([ONE_VOICE] * 4 + [1, 2])
    predictions = torch.tensor([0, 1, 2, 3, 2, 2])
    assert is_right(labels, predictions).tolist() == [False, True, True, False, False, True]
    report = classification_report(labels.numpy(), predictions.numpy())
    assert report["accuracy"] == 3 / 6
    assert report["one_voice"] == {"recall": 0.5, "support": 4}
    assert np.sum(report["confusion"]) == 2  # the matrix holds the stated labels only
    assert report["per_class"]["female"]["recall"] == 1.0
