"""onnxruntime sessions with deliberate providers and thread counts."""

from __future__ import annotations

import os
from pathlib import Path

import onnxruntime as ort

from vocalstream.errors import ModelError

DEVICES = ("auto", "cpu", "cuda")
_PROVIDERS = {
    "cpu": ["CPUExecutionProvider"],
    "cuda": ["CUDAExecutionProvider", "CPUExecutionProvider"],
}


def default_threads() -> int:
    """Intra-op threads: every core the process may use. Torch must not compete in the same
    process at the same time; on 2 cores that oversubscription costs far more than it gains."""
    return max(1, len(os.sched_getaffinity(0)))


def create_session(
    path: str | os.PathLike, device: str = "cpu", threads: int | None = None
) -> ort.InferenceSession:
    """Open an ONNX model. device: "cpu", "cuda" (an error if CUDA cannot run it) or "auto"
    (CUDA when it works, else CPU). The provider actually running is session.get_providers()[0]."""
    if device not in DEVICES:
        raise ValueError(f"device must be one of {DEVICES}, got {device!r}")
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads or default_threads()
    options.inter_op_num_threads = 1
    # onnxruntime-gpu logs screens of errors when CUDA libraries are absent; vocalstream reports
    # the outcome itself, in one line.
    options.log_severity_level = 3
    ort.set_default_logger_severity(4)
    wanted = _PROVIDERS["cuda" if device in ("auto", "cuda") else "cpu"]
    try:
        session = ort.InferenceSession(os.fspath(path), options, providers=wanted)
    except Exception as error:  # onnxruntime raises bare RuntimeError subclasses
        raise ModelError(f"{Path(path)}: cannot be loaded by onnxruntime ({error})") from error
    if device == "cuda" and session.get_providers()[0] != "CUDAExecutionProvider":
        raise ModelError(
            "CUDA was asked for but onnxruntime cannot use it here "
            f"(available: {', '.join(ort.get_available_providers())}); use --device cpu or auto"
        )
    return session


def provider(session: ort.InferenceSession) -> str:
    """The execution provider that runs the session's nodes first: CUDA or CPU."""
    return session.get_providers()[0]
