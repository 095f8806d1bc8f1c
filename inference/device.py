"""The one place that decides where models run and how many threads they get."""

from __future__ import annotations

import functools
import logging
import os
from pathlib import Path

import onnxruntime as ort

from vocalstream.errors import ModelError

DEVICES = ("auto", "cpu", "cuda")
CUDA = "CUDAExecutionProvider"
CPU = "CPUExecutionProvider"

log = logging.getLogger("vocalstream")


def cores() -> int:
    """The cores this process may use."""
    return max(1, len(os.sched_getaffinity(0)))


@functools.lru_cache(maxsize=1)
def _torch_cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def torch_device(requested: str = "auto") -> str:
    """ "cuda" or "cpu" for torch: "auto" takes CUDA when torch can use it, "cuda" insists."""
    _check(requested)
    if requested == "cuda" and not _torch_cuda():
        raise ModelError("CUDA was asked for but torch cannot use it here; use --compute cpu")
    chosen = "cuda" if requested in ("auto", "cuda") and _torch_cuda() else "cpu"
    log.info("torch device: %s", chosen)
    return chosen


def _check(requested: str) -> None:
    if requested not in DEVICES:
        raise ValueError(f"device must be one of {DEVICES}, got {requested!r}")


def create_session(
    path: str | os.PathLike, device: str = "auto", threads: int | None = None
) -> ort.InferenceSession:
    """Open an ONNX model on `device`: "cpu", "cuda" (an error if CUDA cannot run it) or "auto"
    (CUDA when it works, else the CPU). The provider that actually runs is provider(session).

    Intra-op threads default to every core. Spinning is off: two sessions of one process take
    turns (separator, classifier), and idle threads spinning would steal the other's cores."""
    _check(device)
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads or cores()
    options.inter_op_num_threads = 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    # onnxruntime-gpu logs screens of errors when the CUDA libraries are absent; vocalstream
    # reports the outcome itself.
    options.log_severity_level = 3
    ort.set_default_logger_severity(4)
    wanted = [CUDA, CPU] if device in ("auto", "cuda") else [CPU]
    try:
        session = ort.InferenceSession(os.fspath(path), options, providers=wanted)
    except Exception as error:  # onnxruntime raises bare RuntimeError subclasses
        raise ModelError(f"{Path(path)}: cannot be loaded by onnxruntime ({error})") from error
    if device == "cuda" and provider(session) != CUDA:
        raise ModelError(
            "CUDA was asked for but onnxruntime cannot use it here "
            f"(available: {', '.join(ort.get_available_providers())}); use --compute cpu or auto"
        )
    return session


def provider(session: ort.InferenceSession) -> str:
    """The execution provider that runs the session's nodes first: CUDA or CPU."""
    return session.get_providers()[0]
