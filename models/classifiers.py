"""The seeds' voice classifiers in torch: log-mel [B, 1, N_MELS, WINDOW_FRAMES] in dB -> logits
[B, NUM_CLASSES], and the ensemble that combines their probabilities.

Every network standardises its raw input itself, with the seeds' MEL_MEAN and MEL_STD, so the
features vocalstream.audio computes go in unchanged, in torch and in an exported ONNX graph alike.
Seed 000 ensembles a plain 4-layer CNN with a ResNet34 whose first conv is 3x3 stride 1; seed 002
uses torchvision's ResNet18 layout on one input channel. torchvision is not a dependency, so the
ResNets are written out here, with torchvision's module names and initialisation.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence

import torch
from torch import nn

from vocalstream.audio import MEL_MEAN, MEL_STD, N_MELS, WINDOW_FRAMES
from vocalstream.models.labels import NUM_CLASSES


class Normalise(nn.Module):
    """(x - MEL_MEAN) / MEL_STD, the standardisation the seeds apply before their networks."""

    def __init__(self, mean: float = MEL_MEAN, std: float = MEL_STD):
        super().__init__()
        # Not persistent: the constants belong to the front-end (audio.FRONTEND_VERSION), not to
        # a checkpoint, and state dicts then keep torchvision's key layout for the ResNets.
        self.register_buffer("mean", torch.tensor(mean), persistent=False)
        self.register_buffer("std", torch.tensor(std), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std


def _cnn_block(in_channels: int, out_channels: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
        nn.MaxPool2d(2),
    )


class CNN4(nn.Module):
    """Seed 000's "CNN 4-layers": four blocks of 3x3 conv, batch norm, ReLU and 2x2 max pool
    (1 -> 16 -> 32 -> 64 -> 128 channels), then Linear(8192, 128), ReLU, Linear(128, classes).

    The first linear layer fixes the input size: only inputs that pool down to 128 x 8 x 8, such as
    the 128 x 130 window, are accepted.
    """

    WIDTHS = (16, 32, 64, 128)
    HIDDEN = 128
    # Four floored halvings are one floored division by 16: 128 -> 8 bands, 130 -> 8 frames.
    FLAT_FEATURES = WIDTHS[-1] * (N_MELS // 16) * (WINDOW_FRAMES // 16)

    def __init__(self, num_classes: int = NUM_CLASSES):
        super().__init__()
        self.normalise = Normalise()
        self.features = nn.Sequential(
            *(_cnn_block(a, b) for a, b in itertools.pairwise((1, *self.WIDTHS)))
        )
        self.fc1 = nn.Linear(self.FLAT_FEATURES, self.HIDDEN)
        self.relu = nn.ReLU(inplace=True)
        self.fc2 = nn.Linear(self.HIDDEN, num_classes)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        hidden = torch.flatten(self.features(self.normalise(features)), 1)
        if hidden.shape[1] != self.FLAT_FEATURES:
            raise ValueError(
                f"CNN4 needs log-mel windows of {N_MELS} bands x {WINDOW_FRAMES} frames, which "
                f"flatten to {self.FLAT_FEATURES} features; input {list(features.shape)} gives "
                f"{hidden.shape[1]}"
            )
        return self.fc2(self.relu(self.fc1(hidden)))


def _conv3x3(in_channels: int, out_channels: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False)


class BasicBlock(nn.Module):
    """ResNet's basic residual block: two 3x3 convs with batch norm, the block's input added back
    before the last ReLU. Where the block changes width or stride, the added input goes through a
    1x1 conv and batch norm (downsample) to match."""

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1):
        super().__init__()
        self.conv1 = _conv3x3(in_channels, out_channels, stride)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = _conv3x3(out_channels, out_channels)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.downsample = None
        if stride != 1 or in_channels != out_channels:
            self.downsample = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False),
                nn.BatchNorm2d(out_channels),
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


# The first conv's kernel, stride and padding. "imagenet" is torchvision's; "small" is seed 000's
# change for small spectrograms, which keeps full resolution until the max pool.
RESNET_STEMS = {"imagenet": (7, 2, 3), "small": (3, 1, 1)}


class ResNet(nn.Module):
    """A ResNet of basic blocks, laid out as torchvision's: stem conv, batch norm, ReLU and 3x3
    stride-2 max pool; four stages of 64, 128, 256 and 512 channels, the last three starting with
    stride 2; global average pool; one linear layer to the class logits.

    layers: the number of blocks in each stage ([2, 2, 2, 2] is ResNet18, [3, 4, 6, 3] ResNet34).
    stem: a key of RESNET_STEMS. Any input height and width works thanks to the average pool.
    """

    WIDTHS = (64, 128, 256, 512)

    def __init__(
        self,
        layers: Sequence[int],
        stem: str = "imagenet",
        num_classes: int = NUM_CLASSES,
        in_channels: int = 1,
    ):
        super().__init__()
        if stem not in RESNET_STEMS:
            raise ValueError(
                f"unknown ResNet stem {stem!r}; choose one of {', '.join(RESNET_STEMS)}"
            )
        if len(layers) != len(self.WIDTHS) or min(layers) < 1:
            raise ValueError(
                f"layers must give at least one block for each of 4 stages, got {layers}"
            )
        kernel, stride, padding = RESNET_STEMS[stem]
        self.normalise = Normalise()
        self.conv1 = nn.Conv2d(
            in_channels, self.WIDTHS[0], kernel, stride=stride, padding=padding, bias=False
        )
        self.bn1 = nn.BatchNorm2d(self.WIDTHS[0])
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.layer1 = _stage(self.WIDTHS[0], self.WIDTHS[0], layers[0], stride=1)
        self.layer2 = _stage(self.WIDTHS[0], self.WIDTHS[1], layers[1], stride=2)
        self.layer3 = _stage(self.WIDTHS[1], self.WIDTHS[2], layers[2], stride=2)
        self.layer4 = _stage(self.WIDTHS[2], self.WIDTHS[3], layers[3], stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(self.WIDTHS[3], num_classes)
        # torchvision's initialisation; the linear layer keeps torch's default.
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(module, nn.BatchNorm2d):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        hidden = self.maxpool(self.relu(self.bn1(self.conv1(self.normalise(features)))))
        hidden = self.layer4(self.layer3(self.layer2(self.layer1(hidden))))
        return self.fc(torch.flatten(self.avgpool(hidden), 1))


def _stage(in_channels: int, out_channels: int, blocks: int, stride: int) -> nn.Sequential:
    first = BasicBlock(in_channels, out_channels, stride)
    return nn.Sequential(
        first, *(BasicBlock(out_channels, out_channels) for _ in range(blocks - 1))
    )


def resnet34() -> ResNet:
    """Seed 000's ResNet34: one input channel, first conv 3x3 stride 1 padding 1."""
    return ResNet([3, 4, 6, 3], stem="small")


def resnet18() -> ResNet:
    """Seed 002's ResNet18: torchvision's layout, including its 7x7 stride-2 first conv, on one
    input channel."""
    return ResNet([2, 2, 2, 2], stem="imagenet")


class Ensemble(nn.Module):
    """The weighted sum of the members' softmax: probabilities [B, NUM_CLASSES], not logits.

    Seed 000 combines CNN4 and ResNet34 with weights [0.5, 0.5]. The weights must be non-negative
    and sum to 1, so the output is again a probability distribution per row.
    """

    def __init__(self, members: Sequence[nn.Module], weights: Sequence[float]):
        super().__init__()
        weights = tuple(float(weight) for weight in weights)
        if not members or len(members) != len(weights):
            raise ValueError(
                "an ensemble needs at least one member and one weight per member; "
                f"got {len(members)} members and {len(weights)} weights"
            )
        if not all(math.isfinite(weight) and weight >= 0 for weight in weights):
            raise ValueError(f"ensemble weights must be non-negative numbers, got {list(weights)}")
        total = math.fsum(weights)
        if abs(total - 1.0) > 1e-6:
            raise ValueError(f"ensemble weights must sum to 1, got {list(weights)} (sum {total})")
        self.members = nn.ModuleList(members)
        self.weights = weights

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        probabilities = None
        for member, weight in zip(self.members, self.weights, strict=True):
            part = weight * torch.softmax(member(features), dim=1)
            probabilities = part if probabilities is None else probabilities + part
        return probabilities


class VoiceGate(nn.Module):
    """Two ensembles, each on its own channel of the features [B, 2, N_MELS, T]. `voice` sees
    the vocals in dB below the mix's maximum, which keeps how loud they are beside the music,
    and decides whether anyone sings: P(no voice) is its own. `who` sees the vocals in dB below
    their own maximum, which keeps their shape, and shares the rest between the voice classes in
    the proportions it gives them. Both output probabilities, class 0 being no voice."""

    def __init__(self, who: nn.Module, voice: nn.Module):
        super().__init__()
        self.who = who
        self.voice = voice

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        who = self.who(features[:, 0:1])[:, 1:]
        silent = self.voice(features[:, 1:2])[:, :1]
        shares = who / who.sum(dim=1, keepdim=True).clamp_min(1e-6)
        return torch.cat([silent, (1 - silent) * shares], dim=1)


ARCHITECTURES: dict[str, Callable[[], nn.Module]] = {
    "cnn4": CNN4,
    "resnet34": resnet34,
    "resnet18": resnet18,
}


def build(name: str) -> nn.Module:
    """A freshly initialised classifier of a registered architecture, by its ARCHITECTURES name."""
    if name not in ARCHITECTURES:
        raise ValueError(f"unknown architecture {name!r}; choose one of {', '.join(ARCHITECTURES)}")
    return ARCHITECTURES[name]()
