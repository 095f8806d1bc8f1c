"""musicnn's MagnaTagATune tagger (Pons & Serra, 2019) in torch: a real-music branch.

Input: log-compressed mel [B, MUSICNN_FRAMES, MUSICNN_MELS] at 16 kHz, log10(1 + 10000 * power),
the representation the model was trained on. Output: the 50 MTT tag logits and the 200-unit
penultimate embedding. Weights come from the checkpoint in musicnn's PyPI wheel (ISC licence),
converted by tools/musicnn_weights.py; the layer order and the tensor layouts below follow that
checkpoint, so the conversion is a plain transpose per tensor.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from vocalstream.audio import MUSICNN_MELS
from vocalstream.models.labels import MTT_TAGS

# TF's batch_normalization default.
BN_EPSILON = 1e-3
TIMBRAL = ((7, int(0.4 * MUSICNN_MELS)), (7, int(0.7 * MUSICNN_MELS)))
TEMPORAL = (128, 64, 32)
FRONT_TIMBRAL, FRONT_TEMPORAL = 204, 51
MIDEND, EMBEDDING = 64, 200


def _bn(channels: int) -> nn.BatchNorm1d:
    return nn.BatchNorm1d(channels, eps=BN_EPSILON)


def _bn2d(channels: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, eps=BN_EPSILON)


def _same_pad(kernel: int) -> tuple[int, int]:
    # TF's "same" puts the odd sample of an even kernel's padding after the input.
    return (kernel - 1) // 2, kernel // 2


class MusiCNN(nn.Module):
    """Front-end of vertical (timbre) and horizontal (tempo) filters, three dense 1-D conv
    layers with residual links, then max and mean over time into two dense layers."""

    def __init__(self, num_tags: int = len(MTT_TAGS)):
        super().__init__()
        self.input_norm = _bn2d(1)
        self.timbral = nn.ModuleList(nn.Conv2d(1, FRONT_TIMBRAL, k) for k in TIMBRAL)
        self.timbral_norm = nn.ModuleList(_bn2d(FRONT_TIMBRAL) for _ in TIMBRAL)
        self.temporal = nn.ModuleList(nn.Conv2d(1, FRONT_TEMPORAL, (k, 1)) for k in TEMPORAL)
        self.temporal_norm = nn.ModuleList(_bn2d(FRONT_TEMPORAL) for _ in TEMPORAL)
        front = FRONT_TIMBRAL * len(TIMBRAL) + FRONT_TEMPORAL * len(TEMPORAL)
        self.midend = nn.ModuleList(
            nn.Conv1d(c, MIDEND, 7, padding=3) for c in (front, MIDEND, MIDEND)
        )
        self.midend_norm = nn.ModuleList(_bn(MIDEND) for _ in range(3))
        pooled = 2 * (front + 3 * MIDEND)
        self.pool_norm = _bn(pooled)
        self.dense = nn.Linear(pooled, EMBEDDING)
        self.dense_norm = _bn(EMBEDDING)
        self.tags = nn.Linear(EMBEDDING, num_tags)

    def forward(self, mel: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """mel [B, T, MUSICNN_MELS] -> (tag logits [B, tags], embedding [B, EMBEDDING])."""
        x = self.input_norm(mel.unsqueeze(1))  # [B, 1, T, mels]
        front = []
        for conv, norm in zip(self.timbral, self.timbral_norm, strict=True):
            pad = (conv.kernel_size[0] - 1) // 2
            y = F.relu(conv(F.pad(x, (0, 0, pad, pad))))  # [B, C, T, mels']
            front.append(norm(y).amax(dim=3))
        for conv, norm in zip(self.temporal, self.temporal_norm, strict=True):
            y = F.relu(conv(F.pad(x, (0, 0, *_same_pad(conv.kernel_size[0])))))
            front.append(norm(y).amax(dim=3))
        features = [torch.cat(front, dim=1)]  # [B, C, T]
        y = self.midend_norm[0](F.relu(self.midend[0](features[0])))
        features.append(y)
        for conv, norm in zip(self.midend[1:], self.midend_norm[1:], strict=True):
            y = norm(F.relu(conv(y))) + y
            features.append(y)
        stacked = torch.cat(features, dim=1)
        # TF concatenates [max, mean] per channel before flattening: interleave them.
        pooled = torch.stack((stacked.amax(dim=2), stacked.mean(dim=2)), dim=2).flatten(1)
        embedding = self.dense_norm(F.relu(self.dense(self.pool_norm(pooled))))
        return self.tags(embedding), embedding
