"""The spleeter mask estimator: exported once to ONNX into the cache, run by onnxruntime (or torch).

A mask estimator maps the stereo magnitude [B, 2, T, SEPARATION_BINS] (T a multiple of 64) to
masks [B, stems, 2, T, SEPARATION_BINS], stems ordered as in VARIANTS; the vocals come first.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from vocalstream import audio
from vocalstream.errors import ModelError
from vocalstream.files import atomic_path, cache_dir
from vocalstream.inference.device import create_session, provider, torch_device
from vocalstream.models.spleeter import (
    CHECKPOINTS,
    SIZE_MULTIPLE,
    STEMS,
    VocalMask,
    load_spleeter,
)

log = logging.getLogger("vocalstream")

OPSET = 18  # the lowest the dynamo exporter supports
INPUT, OUTPUT = "magnitude", "masks"
EXPORT_VERSION = 1  # bump when a graph changes, so caches rebuild

MaskEstimator = Callable[[torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class Variant:
    stems: tuple[str, ...]
    build: Callable[[], torch.nn.Module]
    description: str


VARIANTS = {
    "2stems": Variant(STEMS, load_spleeter, "both U-Nets and spleeter's ratio mask (official)"),
    "vocals": Variant(
        ("vocals",), lambda: VocalMask(load_spleeter().vocals), "the vocal U-Net's own mask"
    ),
}
DEFAULT_VARIANT = "2stems"


def _variant(name: str) -> Variant:
    if name not in VARIANTS:
        raise ModelError(f"unknown separator variant {name!r}; known: {', '.join(VARIANTS)}")
    return VARIANTS[name]


@contextlib.contextmanager
def exporter_quiet():
    """The exporter prints progress and warns about torchvision ops these graphs do not use."""
    exporter_log = logging.getLogger("torch.onnx")
    level = exporter_log.level
    exporter_log.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore", FutureWarning)
            yield
    finally:
        exporter_log.setLevel(level)


def export_onnx(
    model: torch.nn.Module, example: torch.Tensor, path: Path, names: tuple[str, str], dims: dict
) -> Path:
    """One ONNX graph of `model` with the dynamic input dimensions `dims` ({axis: Dim}).

    The example needs a batch of 2 or more: a batch-1 example silently fixes the batch at 1.
    optimize=False: the exporter's onnxscript optimiser corrupts the two-network separator (max
    mask error 0.47 and NaNs with torch 2.13 / onnxscript 0.7.2); onnxruntime optimises the
    graph itself when it loads it."""
    with exporter_quiet():
        torch.onnx.export(
            model.eval(),
            (example,),
            path,
            dynamo=True,
            opset_version=OPSET,
            optimize=False,
            external_data=False,
            input_names=[names[0]],
            output_names=[names[1]],
            dynamic_shapes={names[0]: dims},
            verbose=False,
        )
    return path


def export_separator(path: str | os.PathLike, variant: str = DEFAULT_VARIANT) -> Path:
    """Write a variant's mask estimator as one ONNX graph with dynamic batch and frames."""
    example = torch.rand(2, 2, 2 * SIZE_MULTIPLE, audio.SEPARATION_BINS)
    dims = {
        0: torch.export.Dim("batch", min=1, max=1024),
        2: SIZE_MULTIPLE * torch.export.Dim("frames_over_64", min=1, max=4096),
    }
    return export_onnx(_variant(variant).build(), example, Path(path), (INPUT, OUTPUT), dims)


def cached_separator_path(variant: str = DEFAULT_VARIANT) -> Path:
    """The variant's ONNX graph built from the installed spleeter weights, exported on first use."""
    _variant(variant)
    weights = "".join(digest[:8] for _, digest in CHECKPOINTS.values())
    name = f"spleeter-{variant}-{weights}-v{EXPORT_VERSION}-opset{OPSET}.onnx"
    path = cache_dir() / name
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

    def __call__(self, magnitude: torch.Tensor) -> torch.Tensor:
        feed = np.ascontiguousarray(magnitude.detach().cpu().numpy(), dtype=np.float32)
        (masks,) = self.session.run([OUTPUT], {INPUT: feed})
        return torch.from_numpy(masks)


def torch_estimator(model: torch.nn.Module | None = None, device: str = "cpu") -> MaskEstimator:
    """A mask estimator run by torch on `device` (the official two networks by default)."""
    model = (model or load_spleeter()).eval().to(device)

    def estimate(magnitude: torch.Tensor) -> torch.Tensor:
        with torch.inference_mode():
            return model(magnitude.to(device)).cpu()

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
        return torch_estimator(_variant(variant).build(), torch_device(device))
    if backend != "onnx":
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    estimator = OnnxMaskEstimator(cached_separator_path(variant), device, threads)
    log.info("separator %s: onnxruntime %s", variant, estimator.provider)
    return estimator
