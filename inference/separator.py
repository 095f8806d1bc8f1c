"""The spleeter mask estimator: exported once to ONNX into the cache, run by onnxruntime (or torch).

A mask estimator maps the stereo magnitude [B, 2, T, SEPARATION_BINS] (float32 numpy, T a multiple
of 64) to masks [B, stems, 2, T, SEPARATION_BINS], the vocals first. Torch is only loaded to build
a graph into the cache, or for the torch backend.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np

from vocalstream import audio
from vocalstream.errors import ModelError
from vocalstream.files import atomic_path, cache_dir
from vocalstream.inference.device import create_session, provider, torch_device
from vocalstream.models.spleeter_weights import CHECKPOINTS, SIZE_MULTIPLE, STEMS

log = logging.getLogger("vocalstream")

INPUT, OUTPUT = "magnitude", "masks"
EXPORT_VERSION = 1  # bump when a graph changes, so caches rebuild

MaskEstimator = Callable[[np.ndarray], np.ndarray]


# The stems each variant's masks hold, vocals first.
VARIANTS = {
    # Both U-Nets and the ratio mask between their estimates: what official spleeter computes.
    "2stems": STEMS,
    # The vocal U-Net's own sigmoid mask: half the cost; 4.3 dB mean log-mel difference from
    # 2stems on real recordings (bench/agreement.py).
    "vocals": ("vocals",),
}
DEFAULT_VARIANT = "vocals"  # what new models are trained on
LEGACY_VARIANT = "2stems"  # what bundles that record no variant were trained on


def check_variant(name: str) -> None:
    if name not in VARIANTS:
        raise ModelError(f"unknown separator variant {name!r}; known: {', '.join(VARIANTS)}")


def build_network(variant: str):
    """The variant's mask estimator as a torch module, with the pretrained weights."""
    from vocalstream.models.spleeter import VocalMask, load_spleeter

    check_variant(variant)
    model = load_spleeter()
    return model if variant == "2stems" else VocalMask(model.vocals)


def export_separator(path: str | os.PathLike, variant: str) -> Path:
    """Write a variant's mask estimator as one ONNX graph with dynamic batch and frames."""
    import torch

    from vocalstream.inference.onnx_export import export_onnx

    example = torch.rand(2, 2, 2 * SIZE_MULTIPLE, audio.SEPARATION_BINS)
    dims = {
        0: torch.export.Dim("batch", min=1, max=1024),
        2: SIZE_MULTIPLE * torch.export.Dim("frames_over_64", min=1, max=4096),
    }
    return export_onnx(build_network(variant), example, Path(path), (INPUT, OUTPUT), dims)


def cached_separator_path(variant: str = DEFAULT_VARIANT) -> Path:
    """The variant's ONNX graph built from the installed spleeter weights, exported on first use."""
    check_variant(variant)
    weights = "".join(digest[:8] for _, digest in CHECKPOINTS.values())
    path = cache_dir() / f"spleeter-{variant}-{weights}-v{EXPORT_VERSION}.onnx"
    if path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    log.warning("building the ONNX separator from the spleeter weights (first use only): %s", path)
    with atomic_path(path) as scratch:
        export_separator(scratch, variant)
    return path


class OnnxMaskEstimator:
    """A separator graph run by onnxruntime."""

    def __init__(self, path: str | os.PathLike, device: str = "auto", threads: int | None = None):
        self.session = create_session(path, device, threads)
        inputs = [i.name for i in self.session.get_inputs()]
        outputs = self.session.get_outputs()
        if inputs != [INPUT] or [o.name for o in outputs] != [OUTPUT]:
            names = (inputs, [o.name for o in outputs])
            raise ModelError(f"{path}: not a vocalstream separator graph (inputs/outputs {names})")
        self.stems = outputs[0].shape[1]

    @property
    def provider(self) -> str:
        return provider(self.session)

    def __call__(self, magnitude: np.ndarray) -> np.ndarray:
        feed = np.ascontiguousarray(magnitude, dtype=np.float32)
        return self.session.run([OUTPUT], {INPUT: feed})[0]


def torch_estimator(model=None, device: str = "cpu") -> MaskEstimator:
    """A mask estimator run by torch on `device` (the official two networks by default)."""
    import torch

    model = (model or build_network("2stems")).eval().to(device)

    def estimate(magnitude: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return model(torch.as_tensor(magnitude).to(device)).cpu().numpy()

    return estimate


BACKENDS = ("onnx", "torch")


def load_estimator(
    backend: str = "onnx",
    device: str = "auto",
    variant: str = DEFAULT_VARIANT,
    threads: int | None = None,
) -> MaskEstimator:
    """The pretrained separator on onnxruntime (built into the cache on first use) or torch."""
    if backend == "torch":
        return torch_estimator(build_network(variant), torch_device(device))
    if backend != "onnx":
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    estimator = OnnxMaskEstimator(cached_separator_path(variant), device, threads)
    log.debug("separator %s: onnxruntime %s", variant, estimator.provider)
    return estimator
