"""Exporting torch modules to ONNX graphs (the separator cache, and bundles)."""

from __future__ import annotations

import contextlib
import io
import logging
import warnings
from pathlib import Path

import torch

OPSET = 18  # the lowest the dynamo exporter supports


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
    model: torch.nn.Module,
    example: torch.Tensor,
    path: Path,
    names: tuple[str, str],
    dims: dict,
    optimize: bool = False,
) -> Path:
    """One ONNX graph of `model` with the dynamic input dimensions `dims` ({axis: Dim}).

    The example needs a batch of 2 or more: a batch-1 example silently fixes the batch at 1.
    optimize runs the exporter's onnxscript optimiser (constant folding, which lets onnxruntime
    fuse batch norms into convolutions); it corrupts the two-network separator (max mask error
    0.47 and NaNs with torch 2.13 / onnxscript 0.7.2), so callers choose."""
    with exporter_quiet():
        torch.onnx.export(
            model.eval(),
            (example,),
            path,
            dynamo=True,
            opset_version=OPSET,
            optimize=optimize,
            external_data=False,
            input_names=[names[0]],
            output_names=[names[1]],
            dynamic_shapes={names[0]: dims},
            verbose=False,
        )
    return path
