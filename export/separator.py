"""The spleeter separator as one ONNX graph, its on-disk cache, and an onnxruntime estimator."""

from __future__ import annotations

import contextlib
import io
import logging
import os
import tempfile
import warnings
from pathlib import Path

import numpy as np
import torch

from vocalstream import audio
from vocalstream.errors import ModelError
from vocalstream.export.runtime import create_session
from vocalstream.models.spleeter import CHECKPOINTS, SIZE_MULTIPLE, load_spleeter

OPSET = 18
INPUT, OUTPUT = "magnitude", "masks"
EXPORT_VERSION = 1  # bump when the graph changes, so caches rebuild


def export_separator(path: str | os.PathLike, model: torch.nn.Module | None = None) -> Path:
    """Write both U-Nets and the ratio mask as one ONNX graph:
    magnitude [B, 2, T, SEPARATION_BINS] -> masks [B, 2 stems, 2, T, SEPARATION_BINS],
    with B and T dynamic (T a multiple of 64)."""
    model = (model or load_spleeter()).eval()
    # A batch-1 example would silently fix the batch size at 1.
    example = torch.rand(2, 2, 2 * SIZE_MULTIPLE, audio.SEPARATION_BINS)
    batch = torch.export.Dim("batch", min=1, max=1024)
    frames = SIZE_MULTIPLE * torch.export.Dim("frames_over_64", min=1, max=4096)
    path = Path(path)
    # optimize=False: the exporter's onnxscript optimiser corrupts this two-network graph
    # (max mask error 0.47 and NaNs with torch 2.13 / onnxscript 0.7.2). onnxruntime applies its
    # own graph optimisations when it loads the model.
    with exporter_quiet():
        torch.onnx.export(
            model,
            (example,),
            path,
            dynamo=True,
            opset_version=OPSET,
            optimize=False,
            external_data=False,
            input_names=[INPUT],
            output_names=[OUTPUT],
            dynamic_shapes={INPUT: {0: batch, 2: frames}},
            verbose=False,
        )
    return path


@contextlib.contextmanager
def exporter_quiet():
    """The exporter prints progress and warns about torchvision ops this graph does not use."""
    exporter_log = logging.getLogger("torch.onnx")
    level = exporter_log.level
    exporter_log.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore", FutureWarning)
            yield
    finally:
        exporter_log.setLevel(level)


def cache_dir() -> Path:
    """Where built models are kept: $VOCALSTREAM_CACHE, else $XDG_CACHE_HOME/vocalstream."""
    if "VOCALSTREAM_CACHE" in os.environ:
        return Path(os.environ["VOCALSTREAM_CACHE"])
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "vocalstream"


def cached_separator_path(log=print) -> Path:
    """The separator ONNX built from the installed spleeter weights, exported on first use."""
    weights = "".join(sha256[:8] for _, sha256 in CHECKPOINTS.values())
    path = cache_dir() / f"spleeter2stems-{weights}-v{EXPORT_VERSION}-opset{OPSET}.onnx"
    if path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    log(f"building the ONNX separator from the spleeter weights (first use only): {path}")
    # Exported beside its final name, then renamed: a crash never leaves a half-written model.
    with tempfile.TemporaryDirectory(dir=path.parent) as scratch:
        export_separator(Path(scratch) / path.name)
        os.replace(Path(scratch) / path.name, path)
    return path


class OnnxMaskEstimator:
    """The separator graph run by onnxruntime; a drop-in MaskEstimator for stream.separation."""

    def __init__(self, path: str | os.PathLike, device: str = "cpu", threads: int | None = None):
        self.session = create_session(path, device, threads)
        names = (
            [i.name for i in self.session.get_inputs()],
            [o.name for o in self.session.get_outputs()],
        )
        if names != ([INPUT], [OUTPUT]):
            raise ModelError(f"{path}: not a vocalstream separator graph (inputs/outputs {names})")

    @property
    def provider(self) -> str:
        return self.session.get_providers()[0]

    def __call__(self, magnitude: torch.Tensor) -> torch.Tensor:
        feed = np.ascontiguousarray(magnitude.detach().cpu().numpy(), dtype=np.float32)
        (masks,) = self.session.run([OUTPUT], {INPUT: feed})
        return torch.from_numpy(masks)
